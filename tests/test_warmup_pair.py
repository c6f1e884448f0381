"""The paired measure of a contaminated warm-up (stream.warmup_pair) and its building blocks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stream.decide import DecisionConfig
from stream.eval_logs import RunLog
from stream.metrics import RunIntervals, paired_bootstrap_ci
from stream.onnx_session import load_models
from stream.replay import replay_runs
from stream.sources import ReplayRun, start_at
from stream.warmup_pair import DETECTORS, clean_start, warmup_pair

MODELS = Path(__file__).resolve().parent.parent / "exported_models"


def test_clean_start_is_the_end_of_the_last_activation_begun_in_the_warm_up():
    truth = np.array([[10.0, 30.0], [50.0, 75.0], [90.0, 100.0]])
    assert clean_start(truth, 0.0, 60.0) == 75.0


def test_an_activation_beginning_when_the_warm_up_ends_does_not_contaminate_it():
    assert clean_start(np.array([[60.0, 80.0]]), 0.0, 60.0) is None
    assert clean_start(np.zeros((0, 2)), 0.0, 60.0) is None


def test_the_warm_up_counts_from_the_run_s_first_sample():
    assert clean_start(np.array([[110.0, 130.0]]), 100.0, 60.0) == 130.0


def _run(n: int = 100, hz: float = 10.0) -> ReplayRun:
    t = np.arange(n) / hz
    return ReplayRun(
        run_id="r",
        binary_id="b",
        t_sim_s=t,
        raw=np.arange(n * 2, dtype=np.float64).reshape(n, 2),
        masks=np.ones((n, 3), np.uint8),
        hz_in=hz,
        duration_s=n / hz,
        truth=np.array([[1.0, 3.0]]),
        n_samples_in=n,
    )


def test_starting_a_run_later_drops_earlier_samples_and_keeps_its_end():
    run = _run()
    late = start_at(run, 4.0)
    assert late.t_sim_s[0] == pytest.approx(4.0) and late.raw[0, 0] == run.raw[40, 0]
    assert late.t_sim_s[0] + late.duration_s == pytest.approx(run.t_sim_s[0] + run.duration_s)
    assert late.n_samples_in == 60 and late.truth is run.truth


def test_a_start_after_the_last_sample_is_refused():
    with pytest.raises(ValueError, match="after the last sample"):
        start_at(_run(), 50.0)


def _log(score: np.ndarray, truth, start: float = 0.0) -> RunLog:
    n = score.size
    t_end = start + 10.0 + np.arange(n, dtype=np.float64)
    ctx = np.zeros((n, 8), np.float32)
    ctx[:, 0] = score  # p_dynamic
    ctx[:, 2] = 0.5  # p_static
    return RunLog(
        run_id="r",
        t_end_s=t_end,
        ctx=ctx,
        fused=score.astype(np.float64),
        feats=np.zeros((n, 3)),
        zscore=np.zeros(n),
        t_sim_s=np.arange(0.0, t_end[-1], 0.1),
        power_mw=np.zeros(1),
        truth=np.asarray(truth, np.float64).reshape(-1, 2),
        scored_start_s=float(t_end[0]),
        scored_end_s=float(t_end[-1]) + 1.0,
    )


DECISIONS = {
    d: DecisionConfig(
        on_threshold=0.6, off_threshold=0.6, min_duration_s=0.0, merge_gap_s=0.0, stride_s=1.0
    )
    for d in DETECTORS
}


def test_identical_replays_cost_nothing():
    s = np.where((np.arange(200) >= 90) & (np.arange(200) < 120), 0.9, 0.1)
    log = _log(s, [[100.0, 130.0]])
    out = warmup_pair({"r": log}, {"r": log}, DECISIONS, window_s=10.0, hz=10.0, n_resamples=50)
    for d in DETECTORS:
        assert out[d]["f1_loss"] == 0.0 and out[d]["f1_loss_ci95"] == [0.0, 0.0]


def test_an_event_missed_only_after_a_contaminated_warm_up_is_its_cost():
    quiet = np.full(200, 0.1)
    found = quiet.copy()
    found[90:120] = 0.9
    truth = [[20.0, 40.0], [100.0, 130.0]]  # the first activation is the contaminating one
    contaminated = _log(quiet, truth)
    clean = _log(found[45:], truth, start=45.0)  # clean start at 45 s, first window at 55 s
    out = warmup_pair(
        {"r": contaminated}, {"r": clean}, DECISIONS, window_s=10.0, hz=10.0, n_resamples=50
    )
    fusion = out["fusion"]
    assert fusion["contaminated"]["n_true"] == fusion["clean_start"]["n_true"] == 1
    assert fusion["contaminated"]["event_f1"] == 0.0 and fusion["clean_start"]["event_f1"] == 1.0
    assert fusion["f1_loss"] == 1.0


def test_a_clean_replay_without_its_contaminated_twin_is_refused():
    log = _log(np.full(50, 0.1), [])
    with pytest.raises(ValueError, match="no contaminated one"):
        warmup_pair({}, {"r": log}, DECISIONS, window_s=10.0, hz=10.0)


def test_paired_bootstrap_of_identical_sides_is_zero():
    runs = [
        RunIntervals(f"r{k}", truth=[[10, 20]], pred=[[10, 20]], scored_end_s=100) for k in "ab"
    ]
    assert paired_bootstrap_ci(runs, runs, n_resamples=100) == (0.0, 0.0)


def test_paired_bootstrap_needs_the_same_runs_on_both_sides():
    a = [RunIntervals("a", truth=[[10, 20]], pred=[], scored_end_s=100)]
    b = [RunIntervals("b", truth=[[10, 20]], pred=[], scored_end_s=100)]
    with pytest.raises(ValueError, match="same runs"):
        paired_bootstrap_ci(a, b)


def test_evaluating_contaminated_warmup_adds_the_paired_comparison(tiny_data, tmp_path, cli_runner):
    import cli

    out = tmp_path / "r"
    args = ["evaluate", "--split", "contaminated_warmup", "--data", str(tiny_data)]
    res = cli_runner.invoke(cli.main, [*args, "--models", str(MODELS), "--out", str(out)])
    assert res.exit_code == 0, res.output
    pair = json.loads((out / "report.json").read_text())["warmup_pair"]
    assert pair["warmup_s"] == 60.0
    assert pair["n_runs"] > 0  # the tiny benchmark's seed gives contaminated test runs
    assert set(pair["detectors"]) == set(DETECTORS)
    assert "contaminated warm-up costs" in (out / "report.md").read_text()


def test_replaying_from_a_later_start_sees_no_earlier_sample(tiny_data):
    run_dir = sorted((tiny_data / "runs").iterdir())[0]
    models = load_models(MODELS, "cpu")
    res = replay_runs([run_dir], models, start_s={run_dir.name: 30.0}, record_windows=True)
    assert res.runs[0].t_sim_s[0] >= 30.0
    first = res.first_window_t[res.runs[0].run_id]
    m = models.manifest  # a window's time is its last sample's
    assert first is None or first >= 30.0 + m.window_s - 1.0 / m.hz - 1e-9
