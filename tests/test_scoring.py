"""Scoring truth and prediction files: joining runs, durations, and the summary text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.intervals_io import IntervalFileError
from stream.scoring import format_report, score_files


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_single_run_files_without_run_ids_are_joined(tmp_path):
    truth = write(tmp_path / "t.csv", "t_start_sim_s,t_end_sim_s\n100,200\n")
    pred = write(tmp_path / "p.csv", "run_id,t_start_s,t_end_s,t_emit_s\nx,110,200,120\n")
    rep = score_files(truth, pred, duration_s=3600.0)
    assert (rep.n_runs, rep.n_matched, rep.ttd_median_s) == (1, 1, 20.0)
    assert rep.ttd_from_start is False


def test_run_directory_duration_from_meta_gives_far(tmp_path):
    write(tmp_path / "intervals.csv", "t_start_sim_s,t_end_sim_s\n0,1800\n")
    write(tmp_path / "meta.json", json.dumps({"run_id": "r1", "duration_s": 3600}))
    pred = write(tmp_path / "p.csv", "run_id,t_start_s,t_end_s\nr1,0,1800\nr1,2000,2010\n")
    rep = score_files(tmp_path, pred)
    assert rep.far_per_hour == 2.0 and rep.ttd_from_start is True


def test_runs_only_in_truth_are_silent_and_runs_only_in_pred_have_no_truth(tmp_path):
    truth = write(
        tmp_path / "t.csv",
        "run_id,t_start_sim_s,t_end_sim_s,duration_s\na,0,100,3600\nbenign,,,3600\n",
    )
    pred = write(tmp_path / "p.csv", "run_id,t_start_s,t_end_s\na,0,100\nstray,5,6\n")
    rep = score_files(truth, pred)
    assert rep.n_runs == 3
    assert (rep.n_true, rep.n_pred, rep.n_matched, rep.n_false_alarms) == (1, 2, 1, 1)
    assert rep.far_per_hour is None and "stray" in rep.far_reason


def test_duration_argument_is_a_fallback_not_an_override(tmp_path):
    truth = write(tmp_path / "t.csv", "run_id,t_start_sim_s,t_end_sim_s,duration_s\na,0,100,1900\n")
    pred = write(tmp_path / "p.csv", "run_id,t_start_s,t_end_s\na,200,210\nstray,5,6\n")
    rep = score_files(truth, pred, duration_s=1800.0)
    assert rep.benign_hours == pytest.approx((1800 + 1800) / 3600)
    assert rep.far_per_hour == pytest.approx(2.0)


def test_empty_prediction_file_means_no_detections_in_every_run(tmp_path):
    truth = write(tmp_path / "t.csv", "run_id,t_start_sim_s,t_end_sim_s\na,0,10\nb,0,10\n")
    pred = write(tmp_path / "detections.jsonl", "")
    rep = score_files(truth, pred, duration_s=100.0)
    assert (rep.n_runs, rep.n_pred, rep.event_recall) == (2, 0, 0.0)


def test_unnamed_predictions_against_many_runs_are_refused(tmp_path):
    truth = write(tmp_path / "t.csv", "run_id,t_start_sim_s,t_end_sim_s\na,0,10\nb,0,10\n")
    pred = write(tmp_path / "p.csv", "t_start_s,t_end_s\n0,10\n")
    with pytest.raises(IntervalFileError, match="names no run_id"):
        score_files(truth, pred)


def test_files_with_no_run_in_common_are_refused(tmp_path):
    truth = write(tmp_path / "t.csv", "run_id,t_start_sim_s,t_end_sim_s\na,0,10\n")
    pred = write(tmp_path / "p.csv", "run_id,t_start_s,t_end_s\nz,0,10\n")
    with pytest.raises(IntervalFileError, match="no run_id in common"):
        score_files(truth, pred)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_non_positive_duration_is_refused(tmp_path, bad):
    truth = write(tmp_path / "t.csv", "t_start_sim_s,t_end_sim_s\n")
    with pytest.raises(ValueError, match="'duration_s' parameter of join_runs must be > 0"):
        score_files(truth, truth, duration_s=bad)


def test_format_report_says_why_far_is_missing_and_flags_ttd_from_starts(tmp_path):
    truth = write(tmp_path / "t.csv", "t_start_sim_s,t_end_sim_s\n0,10\n")
    text = format_report(score_files(truth, truth))
    assert "false alarms 0: n/a (duration unknown" in text
    assert "from interval starts" in text
    assert "F1 1.000" in text
