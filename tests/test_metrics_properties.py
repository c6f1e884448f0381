"""Property tests of the interval metrics on random interval sets (hypothesis)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.metrics import RunIntervals, interval_iou, match_intervals, score_runs

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)
RATIOS = ("event_precision", "event_recall", "event_f1", "range_precision", "range_recall")


@st.composite
def intervals(draw, max_n: int = 6, horizon: int = 200) -> np.ndarray:
    """Positive-length integer-grid intervals, possibly overlapping, in [0, horizon + 40)."""
    n = draw(st.integers(0, max_n))
    starts = draw(st.lists(st.integers(0, horizon), min_size=n, max_size=n))
    lengths = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
    return np.array([[s, s + d] for s, d in zip(starts, lengths, strict=True)], float).reshape(
        -1, 2
    )


@st.composite
def disjoint_intervals(draw, horizon: int = 300) -> np.ndarray:
    """Intervals with gaps of at least one grid step (what a binary array can express)."""
    n = draw(st.integers(1, 5))
    gaps = draw(st.lists(st.integers(1, 30), min_size=n, max_size=n))
    lengths = draw(st.lists(st.integers(1, 30), min_size=n, max_size=n))
    out, t = [], 0
    for g, d in zip(gaps, lengths, strict=True):
        out.append([t + g, t + g + d])
        t += g + d
    return np.array(out, float)


def one_run(truth, pred, emit=None, end=300.0, run_id="r", start=0.0) -> RunIntervals:
    return RunIntervals(run_id, truth, pred, emit, start, end)


def report_values(rep) -> dict:
    d = rep.to_dict()
    return {k: v for k, v in d.items() if k not in ("far_reason", "n_runs")}


@SETTINGS
@given(intervals(), intervals())
def test_ratios_lie_in_the_unit_interval(truth, pred):
    rep = score_runs([one_run(truth, pred)])
    for name in RATIOS:
        assert 0.0 <= getattr(rep, name) <= 1.0, name
    assert rep.n_matched <= min(rep.n_true, rep.n_pred)


@SETTINGS
@given(intervals())
def test_perfect_prediction_scores_one(truth):
    rep = score_runs([one_run(truth, truth.copy(), emit=truth[:, 0].copy())])
    for name in RATIOS:
        assert getattr(rep, name) == 1.0, name
    assert rep.n_false_alarms == 0
    if len(truth):
        assert rep.ttd_median_s == 0.0


@SETTINGS
@given(intervals())
def test_empty_prediction_gives_zero_recall(truth):
    rep = score_runs([one_run(truth, np.empty((0, 2)))])
    assert rep.n_pred == 0 and rep.n_false_alarms == 0
    if len(truth):
        assert rep.event_recall == 0.0 and rep.range_recall == 0.0 and rep.miss_rate == 1.0


@SETTINGS
@given(intervals(), intervals(), st.integers(-5000, 5000), st.sampled_from([0.0, 0.5, 0.25]))
def test_shifting_both_sets_changes_nothing(truth, pred, shift_int, shift_frac):
    shift = shift_int + shift_frac
    emit = pred[:, 0] + 3.0
    base = score_runs([one_run(truth, pred, emit)])
    moved = score_runs(
        [one_run(truth + shift, pred + shift, emit + shift, end=300.0 + shift, start=shift)]
    )
    a, b = report_values(base), report_values(moved)
    assert a.keys() == b.keys()
    for k in a:
        assert b[k] == pytest.approx(a[k]), k


@SETTINGS
@given(st.lists(st.tuples(intervals(max_n=4), intervals(max_n=4)), min_size=1, max_size=4))
def test_splitting_far_apart_pieces_into_runs_scores_like_one_run(pieces):
    block = 1000.0  # pieces live in [k * block, k * block + 240), far apart
    split = [
        one_run(t + k * block, p + k * block, end=(k + 1) * block, start=k * block, run_id=f"r{k}")
        for k, (t, p) in enumerate(pieces)
    ]
    pooled = one_run(
        np.concatenate([r.truth for r in split]),
        np.concatenate([r.pred for r in split]),
        end=len(pieces) * block,
    )
    a, b = report_values(score_runs(split)), report_values(score_runs([pooled]))
    for k in a:
        assert b[k] == pytest.approx(a[k]), k


def brute_force_best(truth: np.ndarray, pred: np.ndarray, min_iou: float) -> tuple[int, float]:
    """Most eligible pairs, then largest total IoU, by enumerating every injective assignment."""
    iou = interval_iou(truth, pred)
    n, m = iou.shape
    best = (0, 0.0)
    if n == 0 or m == 0:
        return best
    small, large = (n, m) if n <= m else (m, n)
    mat = iou if n <= m else iou.T
    for cols in itertools.permutations(range(large), small):
        vals = mat[np.arange(small), list(cols)]
        ok = vals >= min_iou
        cand = (int(ok.sum()), float(vals[ok].sum()))
        if cand[0] > best[0] or (cand[0] == best[0] and cand[1] > best[1] + 1e-12):
            best = cand
    return best


@settings(max_examples=200, deadline=None, derandomize=True)
@given(intervals(max_n=5, horizon=60), intervals(max_n=5, horizon=60), st.sampled_from([0.1, 0.3]))
def test_matching_is_optimal_against_brute_force(truth, pred, min_iou):
    mi, mj = match_intervals(truth, pred, min_iou=min_iou)
    iou = interval_iou(truth, pred)[mi, mj]
    assert len(set(mi.tolist())) == len(mi) and len(set(mj.tolist())) == len(mj)
    assert (iou >= min_iou).all()
    count, total = brute_force_best(truth, pred, min_iou)
    assert len(mi) == count
    assert iou.sum() == pytest.approx(total)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(disjoint_intervals(), disjoint_intervals())
def test_range_metrics_agree_with_the_prts_reference(truth, pred):
    prts = pytest.importorskip("prts")
    length = int(max(truth.max(), pred.max())) + 5

    def binary(iv: np.ndarray) -> np.ndarray:
        arr = np.zeros(length, dtype=np.int64)
        for s, e in iv.astype(int):
            arr[s:e] = 1  # grid cell k stands for [k, k + 1)
        return arr

    real, predicted = binary(truth), binary(pred)
    rep = score_runs([one_run(truth, pred, end=float(length))])
    ref_p = prts.ts_precision(real, predicted, alpha=0.0, cardinality="one", bias="flat")
    ref_r = prts.ts_recall(real, predicted, alpha=0.0, cardinality="one", bias="flat")
    assert rep.range_precision == pytest.approx(ref_p)
    assert rep.range_recall == pytest.approx(ref_r)
