"""Reading and writing interval files: accepted layouts and errors that name file, row and column."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.intervals_io import (
    IntervalFileError,
    read_pred,
    read_truth,
    write_intervals_csv,
    write_intervals_jsonl,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def error_of(fn, path: Path) -> str:
    with pytest.raises(IntervalFileError) as info:
        fn(path)
    assert str(path) in str(info.value)
    return str(info.value)


# --- accepted layouts -------------------------------------------------------------------------


def test_truth_csv_keeps_each_interval_s_labels(tmp_path):
    f = write(
        tmp_path / "intervals.csv",
        "t_start_sim_s,t_end_sim_s,trojan_family,trojan_variant,strength,binary_id\n"
        "10,20,compute,miner,0.5,bin_a\n30.5,40,io,,,\n",
    )
    got = read_truth(f)
    assert got.has_run_ids is False
    assert got.intervals[""].tolist() == [[10.0, 20.0], [30.5, 40.0]]
    assert got.labels[""]["trojan_family"].tolist() == ["compute", "io"]
    assert got.labels[""]["trojan_variant"].tolist() == ["miner", ""]
    np.testing.assert_equal(got.labels[""]["strength"], [0.5, np.nan])


def test_truth_without_label_columns_has_no_labels(tmp_path):
    got = read_truth(write(tmp_path / "t.csv", "t_start_sim_s,t_end_sim_s\n1,2\n"))
    assert got.labels == {}


def test_header_only_truth_is_a_run_without_activations(tmp_path):
    got = read_truth(write(tmp_path / "t.csv", "t_start_sim_s,t_end_sim_s\n"))
    assert got.intervals[""].shape == (0, 2)


def test_multi_run_truth_with_durations_and_a_declared_benign_run(tmp_path):
    f = write(
        tmp_path / "t.csv",
        "run_id,t_start_sim_s,t_end_sim_s,duration_s\na,0,10,100\na,20,30,100\nbenign,,,3600\n",
    )
    got = read_truth(f)
    assert got.run_ids == ("a", "benign")
    assert got.intervals["benign"].shape == (0, 2)
    assert got.duration_s == {"a": 100.0, "benign": 3600.0}


def test_pred_csv_accepts_short_time_names_emit_times_and_score_columns(tmp_path):
    f = write(
        tmp_path / "p.csv",
        "run_id,t_start_s,t_end_s,t_emit_s,peak_score,mean_score,p_dynamic,static_score\n"
        "r1,12,22,13,0.9,0.7,0.8,0.1\nr1,40,50,,0.9,0.7,0.8,0.1\n",
    )
    got = read_pred(f)
    assert got.intervals["r1"].tolist() == [[12.0, 22.0], [40.0, 50.0]]
    assert got.emit_s["r1"][0] == 13.0 and np.isnan(got.emit_s["r1"][1])


def test_pred_jsonl_detections_ignore_extra_keys(tmp_path):
    lines = [
        {"run_id": "r1", "t_start_s": 1, "t_end_s": 5, "t_emit_s": 2, "experts": {"dynamic": 0.9}},
        {"run_id": "r2", "t_start_s": 3, "t_end_s": 4, "peak_score": 0.7},
    ]
    f = write(tmp_path / "detections.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    got = read_pred(f)
    assert got.run_ids == ("r1", "r2")
    assert got.emit_s["r1"].tolist() == [2.0] and np.isnan(got.emit_s["r2"][0])


def test_run_directory_reads_meta_leniently(tmp_path):
    run = tmp_path / "run_0001"
    run.mkdir()
    write(run / "intervals.csv", "t_start_sim_s,t_end_sim_s\n5,10\n")
    write(run / "meta.json", json.dumps({"run_id": "dev7", "duration_s": 600, "other": {"x": 1}}))
    write(run / "detections.jsonl", json.dumps({"t_start_s": 6, "t_end_s": 9}) + "\n")
    truth, pred = read_truth(run), read_pred(run)
    assert truth.run_ids == ("dev7",) and truth.duration_s == {"dev7": 600.0}
    assert pred.run_ids == ("dev7",) and pred.has_run_ids


def test_directory_of_runs_without_meta_uses_directory_names(tmp_path):
    for name, text in (("run_a", "5,10\n"), ("run_b", "")):
        (tmp_path / name).mkdir()
        write(tmp_path / name / "intervals.csv", "t_start_sim_s,t_end_sim_s\n" + text)
    got = read_truth(tmp_path)
    assert got.run_ids == ("run_a", "run_b")
    assert got.intervals["run_b"].shape == (0, 2)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "run 3"]),
        st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(0, 1e4), st.floats(0, 100)), max_size=4),
        min_size=1,
    )
)
def test_csv_and_jsonl_round_trip_exactly(tmp_path_factory, runs):
    tmp = tmp_path_factory.mktemp("rt")
    iv = {k: np.array([[s, s + d] for s, d, _ in v], float).reshape(-1, 2) for k, v in runs.items()}
    emit = {k: np.array([s + e for s, _, e in v], float) for k, v in runs.items()}
    durations = {k: 1000.0 + n for n, k in enumerate(iv)}
    write_intervals_csv(tmp / "pred.csv", iv, emit_s=emit)
    write_intervals_csv(tmp / "truth.csv", iv, duration_s=durations)
    write_intervals_jsonl(tmp / "pred.jsonl", iv, emit)
    truth = read_truth(tmp / "truth.csv")
    assert truth.duration_s == durations
    for got in (read_pred(tmp / "pred.csv"), read_pred(tmp / "pred.jsonl"), truth):
        assert got.run_ids == tuple(iv)
        for k in iv:
            assert np.array_equal(got.intervals[k], iv[k])
    for got in (read_pred(tmp / "pred.csv"), read_pred(tmp / "pred.jsonl")):
        for k in iv:
            assert np.array_equal(got.emit_s[k], emit[k])


# --- errors -----------------------------------------------------------------------------------


def test_empty_file_is_refused(tmp_path):
    msg = error_of(read_truth, write(tmp_path / "t.csv", ""))
    assert "empty file" in msg


def test_reversed_interval_names_row_and_column(tmp_path):
    f = write(tmp_path / "t.csv", "t_start_sim_s,t_end_sim_s\n1,2\n5,3\n")
    msg = error_of(read_truth, f)
    assert "row 2" in msg and "'t_end_sim_s'" in msg and "reversed" in msg


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "abc"])
def test_non_finite_or_non_numeric_time_names_row_and_column(tmp_path, value):
    f = write(tmp_path / "t.csv", f"t_start_sim_s,t_end_sim_s\n1,2\n{value},3\n")
    msg = error_of(read_truth, f)
    assert "row 2" in msg and "'t_start_sim_s'" in msg


def test_non_numeric_strength_label_names_row_and_column(tmp_path):
    f = write(tmp_path / "t.csv", "t_start_sim_s,t_end_sim_s,strength\n1,2,0.4\n3,4,strong\n")
    msg = error_of(read_truth, f)
    assert "row 2" in msg and "'strength'" in msg


def test_unknown_column_is_refused_naming_it(tmp_path):
    f = write(tmp_path / "t.csv", "t_start_sim_s,t_end_sim_s,t_emit\n1,2,3\n")
    msg = error_of(read_truth, f)
    assert "header row" in msg and "column 't_emit'" in msg and "unknown column" in msg


def test_emit_time_is_an_unknown_column_in_truth(tmp_path):
    f = write(tmp_path / "t.csv", "t_start_sim_s,t_end_sim_s,t_emit_s\n1,2,3\n")
    assert "'t_emit_s'" in error_of(read_truth, f)


def test_missing_required_column_is_named(tmp_path):
    f = write(tmp_path / "t.csv", "t_start_sim_s,strength\n1,0.5\n")
    msg = error_of(read_truth, f)
    assert "missing required column(s) t_end_sim_s" in msg


def test_both_long_and_short_time_names_are_ambiguous(tmp_path):
    f = write(tmp_path / "p.csv", "t_start_s,t_start_sim_s,t_end_s\n1,1,2\n")
    assert "twice" in error_of(read_pred, f)


def test_half_empty_interval_is_refused(tmp_path):
    f = write(tmp_path / "t.csv", "run_id,t_start_sim_s,t_end_sim_s\na,1,\n")
    msg = error_of(read_truth, f)
    assert "row 1" in msg and "'t_end_sim_s'" in msg


def test_wrong_number_of_fields_names_the_row(tmp_path):
    f = write(tmp_path / "t.csv", "t_start_sim_s,t_end_sim_s\n1,2\n3,4,5\n")
    assert "row 2" in error_of(read_truth, f)


def test_conflicting_durations_within_a_run_are_refused(tmp_path):
    f = write(
        tmp_path / "t.csv", "run_id,t_start_sim_s,t_end_sim_s,duration_s\na,0,1,10\na,2,3,20\n"
    )
    msg = error_of(read_truth, f)
    assert "row 2" in msg and "'duration_s'" in msg


def test_bad_json_line_names_the_line(tmp_path):
    f = write(tmp_path / "d.jsonl", '{"t_start_s": 1, "t_end_s": 2}\n{oops\n')
    assert "row 2" in error_of(read_pred, f)


def test_jsonl_line_without_end_names_the_key(tmp_path):
    f = write(tmp_path / "d.jsonl", '{"t_start_s": 1}\n')
    msg = error_of(read_pred, f)
    assert "row 1" in msg and "'t_end_s'" in msg


def test_malformed_meta_json_is_refused(tmp_path):
    write(tmp_path / "intervals.csv", "t_start_sim_s,t_end_sim_s\n")
    meta = write(tmp_path / "meta.json", "{not json")
    with pytest.raises(IntervalFileError, match=re.escape(str(meta))):
        read_truth(tmp_path)


def test_directory_without_interval_files_is_refused(tmp_path):
    assert "holds no intervals.csv" in error_of(read_truth, tmp_path)


def test_missing_path_is_refused(tmp_path):
    assert "no such file" in error_of(read_truth, tmp_path / "nope.csv")
