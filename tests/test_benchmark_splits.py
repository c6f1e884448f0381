"""Benchmark planning and run-level splits (no simulation needed)."""

import numpy as np
import pytest

from simulator.benchmark import DEFAULT_PRESET, PRESETS, plan_runs
from simulator.corpus import load_corpus
from simulator.schedules import activation_intervals
from simulator.splits import SPLIT_NAMES


@pytest.fixture(scope="module")
def plan(default_plan):
    cfg, corpus, specs, splits, skipped = default_plan
    assert skipped == {}
    return cfg, corpus, specs, splits


def test_default_benchmark_has_long_runs_of_both_kinds(plan):
    _, _, specs, _ = plan
    long = [s for s in specs if s.duration_s >= 1800]
    assert any(s.capability == "benign" for s in long)
    assert any(s.capability != "benign" for s in long)


def test_every_capability_workload_and_power_mode_occurs(plan):
    _, _, specs, _ = plan
    assert {s.capability for s in specs} == {"benign", "compute", "mempressure", "cv", "io"}
    assert len({s.workload.family for s in specs}) == 5
    assert len({s.regime.power_mode for s in specs}) == 3


def test_benign_binaries_never_activate_and_trojan_runs_include_dormant(plan):
    _, _, specs, _ = plan
    assert all(activation_intervals(s) == () for s in specs if s.capability == "benign")
    trojan = [s for s in specs if s.capability != "benign"]
    assert any(s.schedule.kind == "dormant" for s in trojan)
    assert sum(bool(activation_intervals(s)) for s in trojan) > len(trojan) / 2


def test_no_two_runs_share_an_activation_schedule(plan):
    _, _, specs, _ = plan
    schedules = [
        tuple((a.t_start_s, a.t_end_s) for a in activation_intervals(s))
        for s in specs
        if activation_intervals(s)
    ]
    assert len(set(schedules)) == len(schedules)


def test_planning_is_deterministic_and_seeded(plan):
    cfg, corpus, specs, _ = plan
    assert plan_runs(cfg, corpus) == specs
    other = plan_runs(cfg.model_copy(update={"seed": cfg.seed + 1}), corpus)
    assert other != specs


def test_all_six_splits_exist_and_no_run_is_in_two_parts(plan):
    _, _, specs, splits = plan
    assert set(splits) == set(SPLIT_NAMES)
    ids = {s.run_id for s in specs}
    for sp in splits.values():
        parts = [set(sp.train), set(sp.val), set(sp.test)]
        assert all(parts), sp.name
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]), sp.name
        assert set().union(*parts) <= ids


def test_unseen_splits_hold_out_what_they_say(plan):
    _, _, specs, splits = plan
    by_id = {s.run_id: s for s in specs}
    wl = splits["unseen_workload"]
    held = {by_id[r].workload.family for r in wl.test}
    assert len(held) == 1
    assert held.isdisjoint(by_id[r].workload.family for r in wl.train + wl.val)
    tr = splits["unseen_trojan"]
    fam = {by_id[r].capability for r in tr.test} - {"benign"}
    assert len(fam) == 1
    assert fam.isdisjoint(by_id[r].capability for r in tr.train + tr.val)
    assert any(by_id[r].capability == "benign" for r in tr.test)
    rg = splits["unseen_regime"]
    mode = {by_id[r].regime.power_mode for r in rg.test}
    assert len(mode) == 1
    assert mode.isdisjoint(by_id[r].regime.power_mode for r in rg.train + rg.val)


def test_binary_disjoint_shares_no_binary_and_no_source(plan):
    _, corpus, specs, splits = plan
    by_id = {s.run_id: s for s in specs}
    source = {r.binary_id: r.source for r in corpus}
    sp = splits["binary_disjoint"]
    bins = [{by_id[r].binary_id for r in part} for part in (sp.train, sp.val, sp.test)]
    srcs = [{source[b] for b in part} for part in bins]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not bins[a] & bins[b]
            assert not srcs[a] & srcs[b]
    assert {by_id[r].capability for r in sp.test} == {
        "benign",
        "compute",
        "mempressure",
        "cv",
        "io",
    }


def test_contaminated_warmup_test_runs_really_have_warmup_activity(plan):
    cfg, _, specs, splits = plan
    by_id = {s.run_id: s for s in specs}
    sp = splits["contaminated_warmup"]
    trojan_test = [r for r in sp.test if by_id[r].capability != "benign"]
    assert len(trojan_test) >= 5
    for r in trojan_test:
        assert any(a.t_start_s < cfg.warmup_s for a in activation_intervals(by_id[r]))
    for r in sp.train + sp.val:
        assert not any(a.t_start_s < cfg.warmup_s for a in activation_intervals(by_id[r]))


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, ranks)
    ranks = (sums / counts)[inv]  # average ranks for ties
    n1 = y.sum()
    n0 = len(y) - n1
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def test_time_since_start_predicts_nothing():
    """The research code's shortcut: a classifier given only time since start and run duration
    must score at chance on held-out runs (window ROC-AUC <= 0.55)."""
    cfg = PRESETS[DEFAULT_PRESET].model_copy(update={"n_runs": 600, "seed": 99})
    specs = plan_runs(cfg, load_corpus())
    rows = []
    for i, s in enumerate(specs):
        acts = activation_intervals(s)
        ends = np.arange(20.0, s.duration_s, 4.0)
        y = np.zeros(ends.size, bool)
        for a in acts:  # label: window [end-20, end) at least half active
            cover = np.clip(
                np.minimum(ends, a.t_end_s) - np.maximum(ends - 20, a.t_start_s), 0, None
            )
            y |= cover >= 10.0
        rows.append((i % 2, ends, np.full(ends.size, s.duration_s), y))

    def part(k):
        sel = [r for r in rows if r[0] == k]
        return (
            np.concatenate([r[1] for r in sel]),
            np.concatenate([r[2] for r in sel]),
            np.concatenate([r[3] for r in sel]),
        )

    t_tr, d_tr, y_tr = part(0)
    t_te, d_te, y_te = part(1)
    # A flexible classifier: label rate per (time bin, duration bin), fitted on half the runs.
    tb = np.linspace(0, 2400, 25)
    db = np.quantile(d_tr, np.linspace(0, 1, 6))

    def cell(t, d):
        return np.clip(np.digitize(t, tb), 0, 25) * 10 + np.clip(np.digitize(d, db), 0, 9)

    c_tr, c_te = cell(t_tr, d_tr), cell(t_te, d_te)
    rate = np.bincount(c_tr, y_tr, minlength=300) / np.maximum(np.bincount(c_tr, minlength=300), 1)
    assert y_te.mean() > 0.05
    assert _auc(y_te, rate[c_te]) <= 0.55
    assert _auc(y_te, t_te) <= 0.55 and _auc(y_te, -t_te) <= 0.55
