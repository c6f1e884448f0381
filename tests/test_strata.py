"""Event recall by trojan family, variant and strength band (stream.strata)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.metrics import RunIntervals, score_runs
from stream.strata import far_by_stratum, read_event_labels, read_run_strata, recall_by_stratum

HEADER = "t_start_sim_s,t_end_sim_s,trojan_family,trojan_variant,strength\n"


def _labels(tmp_path, text: str, name: str = "run"):
    d = tmp_path / name
    d.mkdir()
    (d / "intervals.csv").write_text(text)
    return read_event_labels(d)


def test_recall_and_ttd_are_given_per_family(tmp_path):
    labels = _labels(tmp_path, HEADER + "10,30,compute,steady,0.8\n100,120,io,pulsed,0.2\n")
    run = RunIntervals(
        "r", truth=[[10, 30], [100, 120]], pred=[[12, 31]], pred_emit_s=[14.0], scored_end_s=200
    )
    out = recall_by_stratum([run], [labels])
    assert out["trojan_family"] == {
        "compute": {"n": 1, "recall": 1.0, "ttd_median_s": 4.0},
        "io": {"n": 1, "recall": 0.0, "ttd_median_s": None},
    }
    assert out["trojan_variant"]["steady"]["recall"] == 1.0
    assert out["strength_band"]["<0.3"]["recall"] == 0.0
    assert out["strength_band"][">=0.6"]["recall"] == 1.0


def test_labels_follow_the_interval_not_the_file_order(tmp_path):
    labels = _labels(tmp_path, HEADER + "100,120,io,pulsed,0.2\n10,30,compute,steady,0.8\n")
    run = RunIntervals("r", truth=[[10, 30], [100, 120]], pred=[[10, 30]])
    assert recall_by_stratum([run], [labels])["trojan_family"]["compute"]["recall"] == 1.0


def test_strength_band_edges_are_closed_below(tmp_path):
    labels = _labels(tmp_path, HEADER + "10,20,cv,steady,0.3\n40,50,cv,steady,0.6\n")
    run = RunIntervals("r", truth=[[10, 20], [40, 50]], pred=[])
    bands = recall_by_stratum([run], [labels])["strength_band"]
    assert list(bands) == ["0.3-0.6", ">=0.6"]  # weakest first


def test_truth_without_label_columns_counts_as_unknown(tmp_path):
    labels = _labels(tmp_path, "t_start_sim_s,t_end_sim_s\n10,20\n")
    run = RunIntervals("r", truth=[[10, 20]], pred=[[10, 20]])
    out = recall_by_stratum([run], [labels])
    assert out["trojan_family"] == {"unknown": {"n": 1, "recall": 1.0, "ttd_median_s": 0.0}}
    assert out["strength_band"]["unknown"]["n"] == 1


def test_a_malformed_label_is_an_error_not_an_unknown_event(tmp_path):
    with pytest.raises(ValueError, match=r"row 1, column 'strength'"):
        _labels(tmp_path, HEADER + "10,20,cv,steady,nan\n")


def test_a_run_without_truth_adds_no_events(tmp_path):
    labels = _labels(tmp_path, HEADER)
    run = RunIntervals("r", truth=np.zeros((0, 2)), pred=[[5, 9]], scored_end_s=100)
    assert recall_by_stratum([run], [labels])["trojan_family"] == {}


@settings(max_examples=60, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["compute", "io"]),
            st.floats(0.1, 1.0),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_strata_recalls_pool_back_to_the_event_recall(tmp_path_factory, events):
    """Weighted by their counts, the strata recalls are exactly the pooled event recall."""
    rows, truth, pred = [], [], []
    for k, (fam, s, found) in enumerate(events):
        a = 100.0 * k
        rows.append(f"{a},{a + 20},{fam},steady,{s}\n")
        truth.append([a, a + 20])
        if found:
            pred.append([a + 2, a + 22])
    labels = _labels(tmp_path_factory.mktemp("p"), HEADER + "".join(rows))
    run = RunIntervals("r", truth=truth, pred=np.asarray(pred).reshape(-1, 2))
    pooled = score_runs([run]).event_recall
    for key in ("trojan_family", "strength_band"):
        strata = recall_by_stratum([run], [labels])[key].values()
        total = sum(v["n"] for v in strata)
        assert sum(v["n"] * v["recall"] for v in strata) / total == pytest.approx(pooled, abs=1e-12)


# --- false alarms by what the device was doing ------------------------------------------------


def _benign_run(run_id: str, hours: float, n_false: int) -> RunIntervals:
    """A run without truth, `hours` long, with `n_false` one-second predictions (all false)."""
    pred = np.array([[10.0 * k, 10.0 * k + 1] for k in range(n_false)]).reshape(-1, 2)
    return RunIntervals(run_id, truth=np.zeros((0, 2)), pred=pred, scored_end_s=3600.0 * hours)


def test_false_alarms_are_counted_per_workload_and_power_mode():
    runs = [_benign_run("a", 1.0, 1), _benign_run("b", 1.0, 3), _benign_run("c", 0.5, 0)]
    labels = [
        {"workload": "cv_pipeline", "power_mode": "MAXN"},
        {"workload": "cv_pipeline", "power_mode": "15W"},
        {"workload": "memory_bound", "power_mode": "15W"},
    ]
    got = far_by_stratum(runs, labels)
    assert got["workload"]["cv_pipeline"] == {
        "runs": 2,
        "benign_hours": pytest.approx(2.0),
        "false_alarms": 4,
        "far_per_hour": pytest.approx(2.0),
    }
    assert got["workload"]["memory_bound"]["far_per_hour"] == 0.0
    assert got["power_mode"]["15W"]["false_alarms"] == 3
    assert got["power_mode"]["15W"]["benign_hours"] == pytest.approx(1.5)


def test_a_run_without_a_known_duration_has_no_far():
    run = RunIntervals("r", truth=np.zeros((0, 2)), pred=[[5, 9]])
    got = far_by_stratum([run], [{"workload": "x"}], keys=("workload",))
    assert got["workload"]["x"]["far_per_hour"] is None


def test_far_strata_need_one_label_per_run():
    with pytest.raises(ValueError, match="must have one entry per run"):
        far_by_stratum([_benign_run("a", 1.0, 0)], [])


@settings(max_examples=60, deadline=None)
@given(
    runs=st.lists(
        st.tuples(st.sampled_from(["w1", "w2", "w3"]), st.floats(0.1, 3.0), st.integers(0, 6)),
        min_size=1,
        max_size=8,
    )
)
def test_strata_false_alarms_and_benign_hours_add_up_to_the_pooled_ones(runs):
    made = [_benign_run(f"r{k}", h, n) for k, (_, h, n) in enumerate(runs)]
    labels = [{"workload": w} for w, _, _ in runs]
    pooled = score_runs(made)
    strata = far_by_stratum(made, labels, keys=("workload",))["workload"].values()
    assert sum(v["false_alarms"] for v in strata) == pooled.n_false_alarms
    assert sum(v["benign_hours"] for v in strata) == pytest.approx(pooled.benign_hours)
    assert sum(v["runs"] for v in strata) == len(made)


def test_run_strata_come_from_the_runs_own_meta_json(tiny_data):
    import json

    run = sorted((tiny_data / "runs").iterdir())[0]
    spec = json.loads((run / "meta.json").read_text())["spec"]
    assert read_run_strata(run) == {
        "workload": spec["workload"]["family"],
        "power_mode": spec["regime"]["power_mode"],
    }


def test_a_run_without_meta_json_is_unknown(tmp_path):
    assert read_run_strata(tmp_path) == {"workload": "unknown", "power_mode": "unknown"}


def test_a_malformed_meta_json_is_an_error_naming_it(tmp_path):
    (tmp_path / "meta.json").write_text('{"schema_version": 1}')
    with pytest.raises(ValueError, match="meta.json"):
        read_run_strata(tmp_path)
