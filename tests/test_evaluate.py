"""Specification of `cli.py evaluate`: val-only choices, identical baselines, report files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.baselines import DETECTORS, zscore_power
from stream.decide import DecisionConfig, DecisionStage
from stream.evaluate import DecisionGrid, Part, choose_decision
from stream.offline_decide import decide_offline
from stream.sources import ReplayRun

MODELS = Path(__file__).resolve().parent.parent / "exported_models"

REPORT_KEYS = {
    "split",
    "rule",
    "n_runs",
    "far_target_per_hour",
    "selection",
    "grid",
    "n_resamples",
    "seed",
    "provider",
    "models",
    "model_train_overlap",
    "detectors",
    "far_vs_ttd",
    "timing_s",
    "plots",
}
DETECTOR_KEYS = {
    "description",
    "decision",
    "far_target_met_on_val",
    "val",
    "test",
    "test_ci95",
    "window",
    "test_by_event",
    "test_far_by_stratum",
    "test_miss_causes",
}


@pytest.fixture(scope="module")
def models():
    from stream.onnx_session import load_models

    return load_models(MODELS, "cpu", threads=1)


@pytest.fixture(scope="module")
def evaluated(tiny_data, tmp_path_factory):
    """One end-to-end `cli.py evaluate` of the tiny benchmark's random split (shared by tests)."""
    from click.testing import CliRunner

    import cli

    out = tmp_path_factory.mktemp("report") / "random"
    args = ["evaluate", "--split", "random", "--data", str(tiny_data), "--models", str(MODELS)]
    result = CliRunner().invoke(cli.main, [*args, "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text()), out


# --- offline decisions are the runtime's decisions ---------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.sampled_from([1.0, 1.0, 2.0, 3.5]), min_size=0, max_size=40),
    scores=st.lists(st.integers(0, 10), min_size=40, max_size=40),
    on=st.sampled_from([0.3, 0.5, 0.8]),
    off_frac=st.sampled_from([0.0, 0.5, 1.0]),
    min_dur=st.sampled_from([0.0, 1.0, 3.0]),
    gap=st.sampled_from([0.0, 1.0, 2.5, 5.0]),
    back=st.sampled_from([0.0, 4.0]),
    fast=st.sampled_from([None, 0.0, 0.5, 1.0]),
    split_at=st.integers(0, 40),
)
def test_offline_decisions_equal_the_decision_stage(
    steps, scores, on, off_frac, min_dur, gap, back, fast, split_at
):
    t_all = np.cumsum(steps) if steps else np.zeros(0)
    s_all = np.asarray(scores[: t_all.size], float) / 10.0
    run = (np.arange(t_all.size) >= split_at).astype(np.int64)  # two runs, each in time order
    t = t_all
    rt = None if fast is None else on + fast * (1.0 - on)  # fast raise in [on, 1]
    cfg = DecisionConfig(on, on * off_frac, min_dur, gap, back, 1.0, rt)
    stage, online = DecisionStage(2, cfg), []
    for r in (0, 1):
        for ti, si in zip(t[run == r], s_all[run == r], strict=True):
            online += stage.update(np.array([r]), np.array([ti]), np.array([si]))
    online += stage.flush()
    got = decide_offline(t, s_all, run, cfg)
    expected = sorted((d.device, d.t_start_s, d.t_end_s, d.t_emit_s) for d in online)
    cols = (got.run.tolist(), got.start.tolist(), got.end.tolist(), got.emit.tolist())
    assert sorted(zip(*cols, strict=True)) == expected


# --- the validation objective -----------------------------------------------------------------


def _onset_part() -> Part:
    """One validation hour: 30 activations scored 0.8 from 3 s after onset, with one confident
    0.99 window at onset + 3 s; 30 benign 3 s spikes at 0.8, one of them at 0.99."""
    t = np.arange(1.0, 3601.0)
    s = np.full(t.size, 0.1)
    truth = []
    for k in range(30):
        a = 100.0 + 110.0 * k
        truth.append((a, a + 40.0))
        s[(t > a + 2.0) & (t <= a + 40.0)] = 0.8
        s[t == a + 3.0] = 0.99
        s[(t > a + 60.0) & (t <= a + 63.0)] = 0.8
    s[t == 161.0] = 0.99  # the one confident benign spike
    return Part(
        ("r",),
        np.zeros(t.size, np.int64),
        t,
        np.zeros(t.size),
        {"d": s},
        (np.asarray(truth),),
        ((0.0, 3601.0),),
    )


GRID = dict(
    on_quantiles=(0.9,),
    off_ratios=(1.0,),
    min_durations_s=(1.0, 10.0),
    merge_gaps_s=(0.0,),
    backdates_s=(0.0,),
    raise_quantiles=(0.995,),
)


def test_within_the_f1_tolerance_the_faster_config_is_chosen():
    grid = DecisionGrid(**GRID, ttd_f1_tolerance=0.02)
    c = choose_decision(_onset_part(), "d", far_target=2.0, stride_s=1.0, grid=grid)
    assert c.config.raise_threshold == pytest.approx(0.99)
    assert c.val.ttd_median_s == pytest.approx(0.0 + 3.0)  # raised by the confident window
    assert c.val.event_f1 == pytest.approx(2 * 30 / (2 * 30 + 1))  # one false alarm bought it


def test_zero_tolerance_is_pure_best_f1():
    grid = DecisionGrid(**GRID, ttd_f1_tolerance=0.0)
    c = choose_decision(_onset_part(), "d", far_target=2.0, stride_s=1.0, grid=grid)
    assert c.config.raise_threshold is None and c.config.min_duration_s == 10.0
    assert c.val.event_f1 == 1.0 and c.val.ttd_median_s == pytest.approx(12.0)


def test_a_negative_f1_tolerance_is_refused():
    with pytest.raises(ValueError, match="'ttd_f1_tolerance' parameter of DecisionGrid"):
        DecisionGrid(ttd_f1_tolerance=-0.1)


# --- baselines ---------------------------------------------------------------------------------


def _run_with_power(power: np.ndarray) -> ReplayRun:
    from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS

    raw = np.zeros((power.size, len(FEATURE_COLUMNS)))
    raw[:, FEATURE_COLUMNS.index("p_sys5v_mw")] = power
    t = np.arange(power.size) / 10.0
    return ReplayRun(
        "r",
        None,
        t,
        raw,
        np.ones((power.size, len(MASK_COLUMNS)), np.uint8),
        10.0,
        power.size / 10.0,
        np.zeros((0, 2)),
        power.size,
    )


def test_zscore_baseline_is_causal_and_rises_on_a_power_step():
    rng = np.random.default_rng(0)
    power = 5000 + rng.normal(0, 50, 600)
    t_end = np.arange(9, 600, 10) / 10.0
    before = zscore_power(_run_with_power(power), t_end, 10)
    changed = power.copy()
    changed[400:] += 3000  # a later step must not change earlier scores
    after = zscore_power(_run_with_power(changed), t_end, 10)
    k = int(np.searchsorted(t_end, 39.95))
    np.testing.assert_array_equal(before[:k], after[:k])
    assert after[k + 1] > 0.9 > before[k + 1]


# --- the evaluation ----------------------------------------------------------------------------


def test_every_detector_gets_a_full_report(evaluated):
    report, _ = evaluated
    assert set(report["detectors"]) == set(DETECTORS)
    for name, entry in report["detectors"].items():
        assert set(entry) >= DETECTOR_KEYS, name
        for key in ("event_f1", "event_precision", "event_recall", "miss_rate"):
            assert 0.0 <= entry["test"][key] <= 1.0, (name, key)
        assert entry["test"]["n_runs"] == report["n_runs"]["test"]
        assert 0.0 <= entry["decision"]["off_threshold"] <= entry["decision"]["on_threshold"] <= 1.0


def test_report_files_are_written_with_the_documented_keys(evaluated):
    on_disk, out = evaluated
    assert set(on_disk) >= REPORT_KEYS
    assert on_disk["far_vs_ttd"]["descriptive_only_swept_on_test_after_freezing"] is True
    assert "validation runs only" in (out / "report.md").read_text()
    for plot in on_disk["plots"]:
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_breaks_test_recall_down_by_trojan(evaluated):
    """Per family, variant and strength band, the events add up to the pooled test recall."""
    on_disk, out = evaluated
    fusion = on_disk["detectors"]["fusion"]
    n_true = fusion["test"]["n_true"]
    assert n_true > 0
    for key in ("trojan_family", "trojan_variant", "strength_band"):
        strata = fusion["test_by_event"][key]
        assert "unknown" not in strata  # the simulator labels every event
        assert sum(v["n"] for v in strata.values()) == n_true
        hits = sum(v["n"] * v["recall"] for v in strata.values())
        assert hits / n_true == pytest.approx(fusion["test"]["event_recall"], abs=1e-9)
    assert "## Test recall by trojan" in (out / "report.md").read_text()


def _rewrite_truth(data: Path, run_ids, rows: str) -> None:
    header = "t_start_sim_s,t_end_sim_s,trojan_family,trojan_variant,strength\n"
    for rid in run_ids:
        (data / "runs" / rid / "intervals.csv").write_text(header + rows)


def test_report_breaks_test_false_alarms_down_by_workload_and_power_mode(evaluated, tiny_data):
    from stream.evaluate import read_split
    from stream.strata import read_run_strata

    report, out = evaluated
    got = report["detectors"]["fusion"]["test_far_by_stratum"]
    test_runs = read_split(tiny_data, "random").test
    workloads = {read_run_strata(tiny_data / "runs" / r)["workload"] for r in test_runs}
    assert set(got["workload"]) == workloads
    assert sum(v["runs"] for v in got["power_mode"].values()) == len(test_runs)
    pooled = report["detectors"]["fusion"]["test"]
    assert sum(v["false_alarms"] for v in got["workload"].values()) == pooled["n_false_alarms"]
    assert "## Test false alarms by what the device was doing" in (out / "report.md").read_text()


def test_report_says_why_each_missed_test_event_was_missed(evaluated):
    report, out = evaluated
    for name, det in report["detectors"].items():
        causes, test = det["test_miss_causes"], det["test"]
        assert sum(causes["all"].values()) == test["n_true"], name
        assert causes["all"]["detected"] == test["n_matched"], name
        by_band = causes["by_group"]
        assert sum(sum(c.values()) for c in by_band.values()) == test["n_true"], name
    assert "## Why test events were missed" in (out / "report.md").read_text()


def test_decisions_depend_on_validation_only(tiny_data, evaluated, tmp_path, cli_runner):
    """Rewriting every test run's truth changes test scores but no chosen config.

    Both evaluations go through the same command, so the scores are computed identically (ONNX
    Runtime's CPU results depend on its thread count in the last bits).
    """
    import cli
    from stream.evaluate import read_split

    report, _ = evaluated
    data = tmp_path / "fusionbench_sim"
    shutil.copytree(tiny_data, data)
    split = read_split(data, "random")
    _rewrite_truth(data, split.test, "20.0,45.0,compute,x,1.0\n")
    out = tmp_path / "again"
    args = ["evaluate", "--split", "random", "--data", str(data), "--models", str(MODELS)]
    res = cli_runner.invoke(cli.main, [*args, "--device", "cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    again = json.loads((out / "report.json").read_text())
    for name in DETECTORS:
        assert again["detectors"][name]["decision"] == report["detectors"][name]["decision"], name
    assert any(again["detectors"][n]["test"] != report["detectors"][n]["test"] for n in DETECTORS)


def test_unknown_split_is_one_line_and_non_zero(tiny_data, cli_runner):
    import cli

    result = cli_runner.invoke(cli.main, ["evaluate", "--split", "nope", "--data", str(tiny_data)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "'split' parameter of evaluate" in result.output
    assert "nope" in result.output


def test_cli_evaluate_writes_the_report(evaluated):
    report, out = evaluated
    assert report["split"] == "random" and set(report["detectors"]) == set(DETECTORS)
    assert (out / "report.md").is_file() and (out / "timelines.png").is_file()


def test_per_split_models_are_trained_on_that_split_and_never_see_its_test_runs(
    tiny_data, tmp_path, cli_runner
):
    import cli

    models = tmp_path / "models"
    args = [
        "evaluate",
        "--split",
        "random",
        "--data",
        str(tiny_data),
        "--train-per-split",
        str(models),
        "--out",
        str(tmp_path / "r"),
        "--synthetic-runs",
        "3",
        "--synthetic-trojans",
        "1",
    ]
    result = cli_runner.invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((models / "random" / "manifest.json").read_text())
    assert manifest["training"]["split"] == "random"
    config = json.loads((models / "random" / "train_config.json").read_text())
    assert (config["synthetic_runs"], config["synthetic_trojans"]) == (3, 1.0)
    stamp = json.loads((tiny_data / "synthetic" / "random" / "synthetic.json").read_text())
    assert (stamp["n_runs"], stamp["trojan_share"]) == (3, 1.0)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["models"]["split"] == "random"
    assert report["model_train_overlap"] in (None, "")


def test_training_seeds_each_get_models_and_reports_and_a_spread_table(
    tiny_data, tmp_path, cli_runner
):
    import cli

    models, out = tmp_path / "models", tmp_path / "r"
    args = ["evaluate", "--split", "random", "--data", str(tiny_data)]
    args += ["--train-per-split", str(models), "--out", str(out), "--seeds", "0,3"]
    args += ["--synthetic-runs", "0"]
    result = cli_runner.invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    seeds = [
        json.loads((d / "random" / "train_config.json").read_text())["seed"]
        for d in (models, models / "seed3")
    ]
    assert seeds == [0, 3]
    assert (out / "report.json").is_file() and (out / "seed3" / "report.json").is_file()
    table = (out / "seeds.md").read_text()
    assert "| random | fusion |" in table and table.count("| 2 |") == len(DETECTORS)


def test_synthetic_options_without_training_per_split_are_refused(tiny_data, cli_runner):
    import cli

    args = ["evaluate", "--split", "random", "--data", str(tiny_data), "--synthetic-runs", "2"]
    result = cli_runner.invoke(cli.main, args)
    assert result.exit_code == 2 and "need --train-per-split" in result.output


@pytest.mark.parametrize("seeds", ["0,0", "-1", "a", ""])
def test_bad_training_seeds_are_refused_with_the_template(seeds, tiny_data, tmp_path, cli_runner):
    import cli

    args = ["evaluate", "--split", "random", "--data", str(tiny_data), "--seeds", seeds]
    args += ["--train-per-split", str(tmp_path / "m")]
    result = cli_runner.invoke(cli.main, args)
    assert result.exit_code != 0
    assert "The '--seeds' parameter of evaluate must be" in result.output
