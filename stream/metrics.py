"""Interval-level detection metrics on half-open interval lists (DESIGN.md section 6).

Truth and predictions are ``[start, end)`` intervals in seconds, per run, as numpy arrays of shape
``(n, 2)``. Everything is computed in continuous time on those lists, never on per-sample arrays,
and pooled over runs so that a silent benign run counts as correct instead of as F1 = 0.

Conventions (the edge cases a report must not hide):

- Matching is one-to-one within a run; a pair is eligible when IoU >= ``min_iou`` (up to a relative
  floating-point slack of 1e-12, so IoU exactly 0.1 is eligible). The assignment is optimal: the
  most matched pairs, ties broken by the largest total IoU. It is solved per connected cluster of
  overlapping intervals, so each assignment problem is tiny.
- Event precision = matched / predictions, recall = matched / truths, F1 = 2PR / (P + R), pooled
  counts. With no truths recall is 1.0 (nothing to miss). With no predictions precision is 1.0 when
  there are no truths either, else 0.0. F1 is 0.0 when P + R = 0.
- A false alarm is a prediction with zero overlap with every truth interval of its run (not IoU).
  False alarms per hour = false alarms inside the scored span / benign hours, both pooled; the
  benign time of a run is its scored span ``[scored_start_s, scored_end_s)`` minus the truth time
  inside it. Predictions with no positive-length part inside the span are not counted as false
  alarms (they still count as predictions for precision). When any run's span is unknown, or no
  benign time was scored, ``far_per_hour`` is None and ``far_reason`` says why.
- Time to detect per matched truth: ``max(0, t_emit - truth start)``; a prediction without an emission
  time (``pred_emit_s`` None or NaN) uses its start, which flatters, and sets ``ttd_from_start``.
  Median and p90 use numpy's linear quantile; None when nothing matched. ``miss_rate = 1 - recall``.
- Range-based precision/recall (Tatbul et al. 2018, alpha = 0, flat bias, cardinality factor 1):
  recall is the mean over all truth intervals, pooled across runs, of the fraction of each covered
  by the union of its run's predictions; precision the same with the roles swapped. Empty cases as
  for event metrics.
- Event metrics use every interval of a run; only false alarms and benign time are restricted to the
  scored span (a truth that ends before the first scored window is an honest miss).
- A zero-length interval ``[t, t)`` is the empty set: it overlaps nothing, is never matched and is
  covered to a fraction of 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "RunIntervals",
    "IntervalReport",
    "RunStats",
    "DEFAULT_MIN_IOU",
    "BOOTSTRAP_METRICS",
    "interval_iou",
    "match_intervals",
    "run_stats",
    "pool_stats",
    "score_runs",
    "resample_run_counts",
    "bootstrap_ci",
    "paired_bootstrap_ci",
]

DEFAULT_MIN_IOU = 0.1
_IOU_SLACK = 1e-12
_EMPTY2 = np.empty((0, 2), dtype=np.float64)

#: Report fields a bootstrap can give a confidence interval for.
BOOTSTRAP_METRICS = (
    "event_precision",
    "event_recall",
    "event_f1",
    "far_per_hour",
    "ttd_median_s",
    "ttd_p90_s",
    "miss_rate",
    "range_precision",
    "range_recall",
)


def _as_intervals(value: object, name: str) -> np.ndarray:
    """Coerce to a finite float64 ``(n, 2)`` array with end >= start, or raise ValueError."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        return _EMPTY2.copy()
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"The '{name}' parameter of RunIntervals must be an (n, 2) array. "
            f"Got shape {arr.shape} instead."
        )
    if not np.isfinite(arr).all():
        raise ValueError(
            f"The '{name}' parameter of RunIntervals must hold finite times. Got NaN or inf instead."
        )
    bad = np.flatnonzero(arr[:, 1] < arr[:, 0])
    if bad.size:
        k = int(bad[0])
        raise ValueError(
            f"The '{name}' parameter of RunIntervals must have end >= start. "
            f"Got [{arr[k, 0]!r}, {arr[k, 1]!r}) at index {k} instead."
        )
    return arr


@dataclass(frozen=True)
class RunIntervals:
    """Truth and predicted intervals of one run, plus the span of time that was scored.

    ``pred_emit_s`` holds when each prediction was first emitted (NaN or None: unknown, its start is
    used). ``scored_end_s`` None means the duration is unknown (no false alarms per hour);
    ``scored_start_s`` None means 0.
    """

    run_id: str
    truth: np.ndarray  # (n, 2) float64
    pred: np.ndarray  # (m, 2) float64
    pred_emit_s: np.ndarray | None = None  # (m,) float64, NaN = unknown
    scored_start_s: float | None = None
    scored_end_s: float | None = None

    def __post_init__(self) -> None:
        truth = _as_intervals(self.truth, "truth")
        pred = _as_intervals(self.pred, "pred")
        object.__setattr__(self, "truth", truth)
        object.__setattr__(self, "pred", pred)
        if self.pred_emit_s is not None:
            emit = np.asarray(self.pred_emit_s, dtype=np.float64).reshape(-1)
            if emit.shape != (len(pred),):
                raise ValueError(
                    f"The 'pred_emit_s' parameter of RunIntervals must have shape ({len(pred)},). "
                    f"Got {emit.shape} instead."
                )
            if np.isinf(emit).any():
                raise ValueError(
                    "The 'pred_emit_s' parameter of RunIntervals must be finite or NaN. "
                    "Got inf instead."
                )
            object.__setattr__(self, "pred_emit_s", emit)
        for name in ("scored_start_s", "scored_end_s"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(
                    f"The '{name}' parameter of RunIntervals must be finite. Got {v!r} instead."
                )
        if self.scored_end_s is not None and self.scored_end_s < (self.scored_start_s or 0.0):
            raise ValueError(
                "The 'scored_end_s' parameter of RunIntervals must be >= scored_start_s. "
                f"Got {self.scored_end_s!r} < {self.scored_start_s or 0.0!r} instead."
            )


@dataclass(frozen=True)
class IntervalReport:
    """Pooled interval-level metrics of a set of runs; see the module docstring for conventions."""

    event_precision: float
    event_recall: float
    event_f1: float
    far_per_hour: float | None
    far_reason: str | None
    ttd_median_s: float | None
    ttd_p90_s: float | None
    miss_rate: float
    range_precision: float
    range_recall: float
    n_true: int
    n_pred: int
    n_matched: int
    n_false_alarms: int
    benign_hours: float | None
    n_runs: int
    ttd_from_start: bool
    min_iou: float

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict (Python floats, ints, bools, None)."""
        return asdict(self)


@dataclass(frozen=True)
class RunStats:
    """Per-run sufficient statistics; pooling them with run weights gives any (re)sampled report.

    Arrays are indexed by run ``(R,)`` or by matched event ``(E,)``.
    """

    run_ids: tuple[str, ...]
    n_true: np.ndarray  # (R,) int64
    n_pred: np.ndarray  # (R,) int64
    n_matched: np.ndarray  # (R,) int64
    n_false_alarms: np.ndarray  # (R,) int64, inside the scored span
    benign_s: np.ndarray  # (R,) float64, NaN where the span is unknown
    range_recall_sum: np.ndarray  # (R,) sum over truths of covered fraction
    range_precision_sum: np.ndarray  # (R,) sum over predictions of covered fraction
    ttd_s: np.ndarray  # (E,) time to detect per matched truth
    ttd_run: np.ndarray  # (E,) run index of each matched truth
    ttd_from_start: np.ndarray  # (E,) bool, emission time unknown for the matched prediction
    min_iou: float


# ---------------------------------------------------------------------------------------------
# Vectorised building blocks over many runs at once.


def _sweep(
    run: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cluster each run's intervals into chains of positive overlap.

    Returns the cluster label of each input ``(n,)`` and each cluster's run, start and end
    ``(K,)``. Touching intervals ([0, 10) and [10, 20)) fall in separate clusters. Two intervals
    with positive overlap always share a cluster. Exact: no time offsets, only comparisons.
    """
    n = start.size
    if n == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e, np.empty(0), np.empty(0)
    order = np.lexsort((start, run))  # by run, then start
    r, s, e = run[order], start[order], end[order]
    # Running max of end within each run, done exactly on integer ranks keyed by run.
    end_sorted = np.sort(end)
    rank = np.searchsorted(end_sorted, e)  # end_sorted[rank] == e
    key = r.astype(np.int64) * n + rank
    run_max_rank = np.maximum.accumulate(key) - r.astype(np.int64) * n
    new = np.ones(n, dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (s[1:] >= end_sorted[run_max_rank[:-1]])
    label_sorted = np.cumsum(new) - 1
    labels = np.empty(n, dtype=np.int64)
    labels[order] = label_sorted
    firsts = np.flatnonzero(new)
    return labels, r[firsts].astype(np.int64), s[firsts], np.maximum.reduceat(e, firsts)


def _pairs_by_label(
    lab_a: np.ndarray, lab_b: np.ndarray, n_labels: int
) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs ``(i, j)`` with ``lab_a[i] == lab_b[j]``, vectorised."""
    if lab_a.size == 0 or lab_b.size == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e
    oa = np.argsort(lab_a, kind="stable")
    ob = np.argsort(lab_b, kind="stable")
    cnt_b = np.bincount(lab_b, minlength=n_labels)
    first_b = np.cumsum(cnt_b) - cnt_b
    la = lab_a[oa]
    reps = cnt_b[la]  # partners of each a, in sorted order
    ia = np.repeat(oa, reps)
    block_start = np.repeat(np.cumsum(reps) - reps, reps)
    local = np.arange(ia.size) - block_start
    ib = ob[np.repeat(first_b[la], reps) + local]
    return ia, ib


def _overlap_pairs(
    run_a: np.ndarray, a: np.ndarray, run_b: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs (same run, same overlap cluster), their overlap and their cluster."""
    labels, *_ = _sweep(
        np.concatenate([run_a, run_b]),
        np.concatenate([a[:, 0], b[:, 0]]),
        np.concatenate([a[:, 1], b[:, 1]]),
    )
    la, lb = labels[: len(a)], labels[len(a) :]
    n_labels = int(labels.max()) + 1 if labels.size else 0
    i, j = _pairs_by_label(la, lb, n_labels)
    inter = np.minimum(a[i, 1], b[j, 1]) - np.maximum(a[i, 0], b[j, 0])
    return i, j, np.maximum(inter, 0.0), la[i]


def _covered_length(
    run_a: np.ndarray, a: np.ndarray, run_b: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """Length of each interval of ``a`` covered by the union of its run's intervals in ``b``."""
    _, seg_run, seg_s, seg_e = _sweep(run_b, b[:, 0], b[:, 1])
    segs = np.stack([seg_s, seg_e], axis=1) if seg_s.size else _EMPTY2
    i, _, inter, _ = _overlap_pairs(run_a, a, seg_run, segs)  # segments are disjoint
    return np.bincount(i, weights=inter, minlength=len(a)).astype(np.float64)


def _optimal_matching(
    i: np.ndarray, j: np.ndarray, iou: np.ndarray, cluster: np.ndarray, n_a: int, n_b: int
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-cardinality, then maximum-IoU one-to-one matching over eligible pairs.

    Isolated pairs (both ends of degree 1) are matched directly; every other cluster is solved with
    ``linear_sum_assignment`` on weights ``M + IoU`` with ``M > min(n, m)``, so one more pair always
    outweighs any IoU gain.
    """
    deg_a = np.bincount(i, minlength=n_a)
    deg_b = np.bincount(j, minlength=n_b)
    simple = (deg_a[i] == 1) & (deg_b[j] == 1)
    out_i, out_j = [i[simple]], [j[simple]]
    rest = np.flatnonzero(~simple)
    if rest.size:
        rest = rest[np.argsort(cluster[rest], kind="stable")]
        bounds = np.flatnonzero(np.diff(cluster[rest])) + 1
        for group in np.split(rest, bounds):
            ua, ia = np.unique(i[group], return_inverse=True)
            ub, ib = np.unique(j[group], return_inverse=True)
            weight = np.zeros((ua.size, ub.size))
            weight[ia, ib] = min(ua.size, ub.size) + 1.0 + iou[group]
            rows, cols = linear_sum_assignment(weight, maximize=True)
            keep = weight[rows, cols] > 0
            out_i.append(ua[rows[keep]])
            out_j.append(ub[cols[keep]])
    mi, mj = np.concatenate(out_i), np.concatenate(out_j)
    order = np.argsort(mi, kind="stable")
    return mi[order], mj[order]


def _check_min_iou(min_iou: float, owner: str) -> None:
    if not (0.0 < min_iou <= 1.0):
        raise ValueError(
            f"The 'min_iou' parameter of {owner} must be in (0, 1]. Got {min_iou!r} instead."
        )


def _eligible_matching(
    run_t: np.ndarray, truth: np.ndarray, run_p: np.ndarray, pred: np.ndarray, min_iou: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal matching over many runs, plus which predictions overlap any truth at all."""
    i, j, inter, cluster = _overlap_pairs(run_t, truth, run_p, pred)
    union = (truth[i, 1] - truth[i, 0]) + (pred[j, 1] - pred[j, 0]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    elig = (inter > 0) & (iou >= min_iou * (1.0 - _IOU_SLACK))
    mi, mj = _optimal_matching(i[elig], j[elig], iou[elig], cluster[elig], len(truth), len(pred))
    overlapped = np.zeros(len(pred), dtype=bool)
    overlapped[j[inter > 0]] = True  # (M,)
    return mi, mj, overlapped


# ---------------------------------------------------------------------------------------------
# Public API.


def interval_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense IoU matrix ``(n, m)`` of two small interval lists (0 where the union is empty)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    inter = np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0])
    inter = np.maximum(inter, 0.0)  # (n, m)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_intervals(
    truth: np.ndarray, pred: np.ndarray, min_iou: float = DEFAULT_MIN_IOU
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of one run: index arrays ``(truth_idx, pred_idx)``, by truth."""
    _check_min_iou(min_iou, "match_intervals")
    run = RunIntervals("run", truth, pred)
    zt = np.zeros(len(run.truth), dtype=np.int64)
    zp = np.zeros(len(run.pred), dtype=np.int64)
    mi, mj, _ = _eligible_matching(zt, run.truth, zp, run.pred, min_iou)
    return mi, mj


def run_stats(runs: Sequence[RunIntervals], min_iou: float = DEFAULT_MIN_IOU) -> RunStats:
    """Per-run counts, benign time, coverage sums and matched-event TTDs, all runs in one pass."""
    _check_min_iou(min_iou, "run_stats")
    n_runs = len(runs)
    nt = np.array([len(r.truth) for r in runs], dtype=np.int64)  # (R,)
    npr = np.array([len(r.pred) for r in runs], dtype=np.int64)  # (R,)
    run_t = np.repeat(np.arange(n_runs), nt)  # (N,)
    run_p = np.repeat(np.arange(n_runs), npr)  # (M,)
    truth = np.concatenate([r.truth for r in runs]) if n_runs else _EMPTY2  # (N, 2)
    pred = np.concatenate([r.pred for r in runs]) if n_runs else _EMPTY2  # (M, 2)
    emit = np.concatenate(
        [r.pred_emit_s if r.pred_emit_s is not None else np.full(len(r.pred), np.nan) for r in runs]
        or [np.empty(0)]
    )  # (M,)
    span_s = np.array([r.scored_start_s or 0.0 for r in runs], dtype=np.float64)  # (R,)
    span_e = np.array(
        [np.nan if r.scored_end_s is None else r.scored_end_s for r in runs], dtype=np.float64
    )  # (R,)

    mi, mj, overlapped = _eligible_matching(run_t, truth, run_p, pred, min_iou)
    from_start = np.isnan(emit[mj])
    t_emit = np.where(from_start, pred[mj, 0], emit[mj])
    ttd = np.maximum(0.0, t_emit - truth[mi, 0])

    # False alarms: no overlap with any truth, and a positive-length part inside the scored span.
    known = ~np.isnan(span_e)
    clip_len = np.minimum(pred[:, 1], span_e[run_p]) - np.maximum(pred[:, 0], span_s[run_p])
    in_span = np.where(known[run_p], clip_len > 0, True)
    n_fa = np.bincount(run_p[~overlapped & in_span], minlength=n_runs)

    # Benign time: scored span minus the union of truth clipped to it.
    tk = known[run_t]
    lo = np.maximum(truth[tk, 0], span_s[run_t[tk]])
    hi = np.maximum(lo, np.minimum(truth[tk, 1], span_e[run_t[tk]]))
    _, seg_run, seg_s, seg_e = _sweep(run_t[tk], lo, hi)
    truth_in_span = np.bincount(seg_run, weights=seg_e - seg_s, minlength=n_runs).astype(float)
    benign = np.where(known, span_e - span_s - truth_in_span, np.nan)

    len_t = truth[:, 1] - truth[:, 0]
    len_p = pred[:, 1] - pred[:, 0]
    cov_t = _covered_length(run_t, truth, run_p, pred)
    cov_p = _covered_length(run_p, pred, run_t, truth)
    frac_t = np.divide(cov_t, len_t, out=np.zeros_like(cov_t), where=len_t > 0)
    frac_p = np.divide(cov_p, len_p, out=np.zeros_like(cov_p), where=len_p > 0)

    return RunStats(
        run_ids=tuple(r.run_id for r in runs),
        n_true=nt,
        n_pred=npr,
        n_matched=np.bincount(run_t[mi], minlength=n_runs),
        n_false_alarms=n_fa,
        benign_s=benign,
        range_recall_sum=np.bincount(run_t, weights=frac_t, minlength=n_runs).astype(float),
        range_precision_sum=np.bincount(run_p, weights=frac_p, minlength=n_runs).astype(float),
        ttd_s=ttd,
        ttd_run=run_t[mi],
        ttd_from_start=from_start,
        min_iou=float(min_iou),
    )


def _ratio(num: np.ndarray, den: np.ndarray, empty: np.ndarray | float) -> np.ndarray:
    """``num / den`` where ``den > 0``, else ``empty``."""
    out = np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)
    return np.where(den > 0, out, empty)


def _repeated_quantile(values: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """``np.quantile(np.repeat(values, counts_b), q)`` for each row b of ``counts`` ``(B, E)``.

    ``values`` must be sorted. NaN where a row's total count is 0.
    """
    total = counts.sum(axis=1)  # (B,)
    if values.size == 0:
        return np.full(counts.shape[0], np.nan)
    cum = np.cumsum(counts, axis=1)  # (B, E)
    h = (np.maximum(total, 1) - 1) * q  # (B,)
    lo, hi = np.floor(h), np.ceil(h)
    k_lo = np.minimum((cum <= lo[:, None]).sum(axis=1), values.size - 1)
    k_hi = np.minimum((cum <= hi[:, None]).sum(axis=1), values.size - 1)
    out = values[k_lo] + (h - lo) * (values[k_hi] - values[k_lo])
    return np.where(total > 0, out, np.nan)


def _pooled_metrics(stats: RunStats, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric for each row of run weights ``(B, R)``; undefined values are NaN."""
    w = weights.astype(np.float64)  # (B, R)
    n_true = w @ stats.n_true
    n_pred = w @ stats.n_pred
    n_match = w @ stats.n_matched
    precision = _ratio(n_match, n_pred, np.where(n_true > 0, 0.0, 1.0))
    recall = _ratio(n_match, n_true, 1.0)
    f1 = _ratio(2 * precision * recall, precision + recall, 0.0)
    r_prec = _ratio(w @ stats.range_precision_sum, n_pred, np.where(n_true > 0, 0.0, 1.0))
    r_rec = _ratio(w @ stats.range_recall_sum, n_true, 1.0)

    unknown = (w[:, np.isnan(stats.benign_s)] > 0).any(axis=1)  # (B,)
    benign_h = w @ np.nan_to_num(stats.benign_s) / 3600.0
    n_fa = w @ stats.n_false_alarms
    far = np.where(unknown | (benign_h <= 0), np.nan, _ratio(n_fa, benign_h, np.nan))

    order = np.argsort(stats.ttd_s, kind="stable")
    ev_counts = weights[:, stats.ttd_run[order]]  # (B, E)
    ttd_sorted = stats.ttd_s[order]
    return {
        "event_precision": precision,
        "event_recall": recall,
        "event_f1": f1,
        "far_per_hour": far,
        "ttd_median_s": _repeated_quantile(ttd_sorted, ev_counts, 0.5),
        "ttd_p90_s": _repeated_quantile(ttd_sorted, ev_counts, 0.9),
        "miss_rate": 1.0 - recall,
        "range_precision": r_prec,
        "range_recall": r_rec,
        "n_true": n_true,
        "n_pred": n_pred,
        "n_matched": n_match,
        "n_false_alarms": n_fa,
        "benign_hours": np.where(unknown, np.nan, benign_h),
    }


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def pool_stats(stats: RunStats, weights: np.ndarray | None = None) -> IntervalReport:
    """Pool per-run statistics into a report; ``weights`` ``(R,)`` counts each run that many times.

    Weight k on a run scores exactly as if the run were listed k times (how bootstrap resamples
    are pooled without copying runs).
    """
    n_runs = len(stats.run_ids)
    w = np.ones(n_runs, dtype=np.int64) if weights is None else np.asarray(weights)
    if w.shape != (n_runs,) or (w < 0).any():
        raise ValueError(
            f"The 'weights' parameter of pool_stats must be ({n_runs},) and >= 0. "
            f"Got shape {w.shape} instead."
        )
    m = {k: v[0] for k, v in _pooled_metrics(stats, w[None, :]).items()}
    unknown = [
        rid
        for rid, b, k in zip(stats.run_ids, stats.benign_s, w, strict=True)
        if np.isnan(b) and k > 0
    ]
    reason = None
    if w.sum() == 0:
        reason = "no runs were scored"
    elif unknown:
        reason = (
            f"duration unknown for {len(unknown)} of {n_runs} runs (e.g. {unknown[0]!r}); "
            "give a duration (meta.json, a duration_s column or --duration-s)"
        )
    elif math.isnan(m["far_per_hour"]):
        reason = "no benign time was scored (truth covers the whole scored span)"
    return IntervalReport(
        event_precision=float(m["event_precision"]),
        event_recall=float(m["event_recall"]),
        event_f1=float(m["event_f1"]),
        far_per_hour=_opt(m["far_per_hour"]),
        far_reason=reason,
        ttd_median_s=_opt(m["ttd_median_s"]),
        ttd_p90_s=_opt(m["ttd_p90_s"]),
        miss_rate=float(m["miss_rate"]),
        range_precision=float(m["range_precision"]),
        range_recall=float(m["range_recall"]),
        n_true=int(m["n_true"]),
        n_pred=int(m["n_pred"]),
        n_matched=int(m["n_matched"]),
        n_false_alarms=int(m["n_false_alarms"]),
        benign_hours=_opt(m["benign_hours"]),
        n_runs=int(w.sum()),
        ttd_from_start=bool((stats.ttd_from_start & (w[stats.ttd_run] > 0)).any()),
        min_iou=stats.min_iou,
    )


def score_runs(runs: Sequence[RunIntervals], min_iou: float = DEFAULT_MIN_IOU) -> IntervalReport:
    """Score runs pooled: event P/R/F1, FAR/h, TTD median/p90, miss rate, range P/R."""
    _check_min_iou(min_iou, "score_runs")
    return pool_stats(run_stats(runs, min_iou))


def resample_run_counts(n_runs: int, n_resamples: int, seed: int) -> np.ndarray:
    """How often each run is drawn in each bootstrap resample, ``(n_resamples, n_runs)`` int64.

    Runs are drawn with replacement, ``n_runs`` per resample, from ``default_rng(seed)``.
    """
    if n_runs < 1:
        raise ValueError(
            f"The 'n_runs' parameter of resample_run_counts must be >= 1. Got {n_runs!r} instead."
        )
    if n_resamples < 1:
        raise ValueError(
            "The 'n_resamples' parameter of resample_run_counts must be >= 1. "
            f"Got {n_resamples!r} instead."
        )
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_runs, size=(n_resamples, n_runs))  # (B, R)
    flat = draws + (np.arange(n_resamples) * n_runs)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n_runs).reshape(n_resamples, n_runs)


def bootstrap_ci(
    runs: Sequence[RunIntervals] | RunStats,
    n_resamples: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] = BOOTSTRAP_METRICS,
    confidence: float = 0.95,
    min_iou: float = DEFAULT_MIN_IOU,
) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap CIs by resampling runs with replacement and re-pooling.

    Resamples where a metric is undefined (e.g. no matched event for TTD) are left out of that
    metric's percentiles; a metric undefined in every resample gets None.
    """
    unknown = sorted(set(metrics) - set(BOOTSTRAP_METRICS))
    if unknown:
        raise ValueError(
            f"The 'metrics' parameter of bootstrap_ci must be among {BOOTSTRAP_METRICS}. "
            f"Got {unknown} instead."
        )
    if not (0.0 < confidence < 1.0):
        raise ValueError(
            f"The 'confidence' parameter of bootstrap_ci must be in (0, 1). Got {confidence!r} instead."
        )
    stats = runs if isinstance(runs, RunStats) else run_stats(runs, min_iou)
    counts = resample_run_counts(len(stats.run_ids), n_resamples, seed)  # (B, R)
    values = _pooled_metrics(stats, counts)
    tail = 100.0 * (1.0 - confidence) / 2.0
    out: dict[str, tuple[float, float] | None] = {}
    for name in metrics:
        v = values[name]
        v = v[~np.isnan(v)]
        out[name] = (
            (float(np.percentile(v, tail)), float(np.percentile(v, 100.0 - tail)))
            if v.size
            else None
        )
    return out


def paired_bootstrap_ci(
    a: Sequence[RunIntervals],
    b: Sequence[RunIntervals],
    metric: str = "event_f1",
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    min_iou: float = DEFAULT_MIN_IOU,
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of ``metric(b) - metric(a)`` for two detections of the *same* runs.

    Each resample draws runs once and re-pools both sides with the same draw, so the run-to-run
    spread that both sides share cancels (a paired comparison). None when the difference is
    undefined in every resample.
    """
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(
            f"The 'metric' parameter of paired_bootstrap_ci must be one of {BOOTSTRAP_METRICS}. "
            f"Got {metric!r} instead."
        )
    if [r.run_id for r in a] != [r.run_id for r in b]:
        raise ValueError(
            "paired_bootstrap_ci needs the same runs, in the same order, on both sides."
        )
    if not (0.0 < confidence < 1.0):
        raise ValueError(
            f"The 'confidence' parameter of paired_bootstrap_ci must be in (0, 1). "
            f"Got {confidence!r} instead."
        )
    sa, sb = run_stats(a, min_iou), run_stats(b, min_iou)
    counts = resample_run_counts(len(sa.run_ids), n_resamples, seed)  # (B, R)
    d = _pooled_metrics(sb, counts)[metric] - _pooled_metrics(sa, counts)[metric]
    d = d[~np.isnan(d)]
    if not d.size:
        return None
    tail = 100.0 * (1.0 - confidence) / 2.0
    return float(np.percentile(d, tail)), float(np.percentile(d, 100.0 - tail))
