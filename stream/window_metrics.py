"""Window-level PR-AUC, ROC-AUC and ECE, with bootstrap CIs that resample runs (DESIGN.md 6).

Labels are ``y_soft >= 0.5`` (the window overlaps activity for at least half its length); scores
are probabilities in [0, 1]. Every metric takes optional non-negative sample weights so the
bootstrap can re-weight windows by how often their run was drawn, without copying data.

- ROC-AUC: area under the ROC curve with ties credited 1/2, i.e. the Mann-Whitney U statistic
  divided by ``n_pos * n_neg``. None when a class is absent.
- PR-AUC: average precision, ``sum_k (R_k - R_{k-1}) P_k`` over distinct score thresholds (the
  step-wise, non-interpolated estimator; the trapezoid over PR points is optimistic). None without
  positives.
- ECE: 15 equal-width bins on [0, 1] (the last bin closed), ``sum_b w_b |mean(y)_b - mean(p)_b|``
  with ``w_b`` the bin's share of windows. None for no windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from stream.metrics import resample_run_counts

__all__ = [
    "ECE_BINS",
    "WINDOW_METRICS",
    "WindowReport",
    "roc_auc",
    "pr_auc",
    "expected_calibration_error",
    "score_windows",
    "bootstrap_window_ci",
]

ECE_BINS = 15
WINDOW_METRICS = ("pr_auc", "roc_auc", "ece")


@dataclass(frozen=True)
class WindowReport:
    """Window-level metrics with percentile-bootstrap confidence intervals (None: undefined)."""

    n_windows: int
    n_positive: int
    n_runs: int
    pr_auc: float | None
    roc_auc: float | None
    ece: float | None
    ci: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    n_resamples: int = 0
    confidence: float = 0.95

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict."""
        return asdict(self)


def _check(
    y_true: np.ndarray, y_score: np.ndarray, sample_weight: np.ndarray | None, owner: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y_true).reshape(-1)
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(
            f"The 'y_score' parameter of {owner} must match y_true's shape {y.shape}. "
            f"Got {s.shape} instead."
        )
    if not np.isin(y, (0, 1)).all():
        raise ValueError(
            f"The 'y_true' parameter of {owner} must be binary. Got other values instead."
        )
    if not np.isfinite(s).all():
        raise ValueError(
            f"The 'y_score' parameter of {owner} must be finite. Got NaN or inf instead."
        )
    w = np.ones(s.shape) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if w.shape != s.shape or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError(
            f"The 'sample_weight' parameter of {owner} must be finite, >= 0 and shaped {s.shape}. "
            "Got something else instead."
        )
    return y.astype(np.float64), s, w


def _curve(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative weighted true and false positives at each distinct threshold, high to low."""
    order = np.argsort(-s, kind="stable")
    return _curve_sorted(y[order], s[order], w[order])


def _last_of_ties(s_sorted: np.ndarray) -> np.ndarray:
    """Index of the last element of each run of equal scores in a sorted array."""
    return np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]


def _curve_sorted(
    y: np.ndarray, s: np.ndarray, w: np.ndarray, ends: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    ends = _last_of_ties(s) if ends is None else ends
    tps = np.cumsum(w * y)[ends]
    fps = np.cumsum(w * (1.0 - y))[ends]
    return tps, fps


def _auc_from_curve(tps: np.ndarray, fps: np.ndarray) -> float | None:
    if tps.size == 0 or tps[-1] <= 0 or fps[-1] <= 0:
        return None
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def _ap_from_curve(tps: np.ndarray, fps: np.ndarray) -> float | None:
    if tps.size == 0 or tps[-1] <= 0:
        return None
    precision = tps / np.maximum(tps + fps, np.finfo(float).tiny)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(
    y_true: np.ndarray, y_score: np.ndarray, sample_weight: np.ndarray | None = None
) -> float | None:
    """Area under the ROC curve, ties credited 1/2; None when a class is absent."""
    return _auc_from_curve(*_curve(*_check(y_true, y_score, sample_weight, "roc_auc")))


def pr_auc(
    y_true: np.ndarray, y_score: np.ndarray, sample_weight: np.ndarray | None = None
) -> float | None:
    """Average precision (step-wise area under the PR curve); None without positives."""
    return _ap_from_curve(*_curve(*_check(y_true, y_score, sample_weight, "pr_auc")))


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    return np.minimum((p * n_bins).astype(np.int64), n_bins - 1)


def _ece_binned(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, b: np.ndarray, n_bins: int
) -> float | None:
    total = w.sum()
    if total <= 0:
        return None
    yb = np.bincount(b, weights=w * y, minlength=n_bins)
    pb = np.bincount(b, weights=w * p, minlength=n_bins)
    return float(np.abs(yb - pb).sum() / total)  # sum_b (wb/W) |yb/wb - pb/wb|


def expected_calibration_error(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    n_bins: int = ECE_BINS,
    sample_weight: np.ndarray | None = None,
) -> float | None:
    """ECE over ``n_bins`` equal-width bins on [0, 1]; None for no windows."""
    if n_bins < 1:
        raise ValueError(
            f"The 'n_bins' parameter of expected_calibration_error must be >= 1. Got {n_bins!r} instead."
        )
    y, p, w = _check(y_true, y_prob, sample_weight, "expected_calibration_error")
    if ((p < 0) | (p > 1)).any():
        raise ValueError(
            "The 'y_prob' parameter of expected_calibration_error must be in [0, 1]. "
            f"Got values in [{p.min()!r}, {p.max()!r}] instead."
        )
    return _ece_binned(y, p, w, _bin_index(p, n_bins), n_bins)


def bootstrap_window_ci(
    y_true: np.ndarray,
    y_score: np.ndarray,
    run_id: Sequence[str] | np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    n_bins: int = ECE_BINS,
) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap CIs of PR-AUC, ROC-AUC and ECE, resampling runs with replacement.

    Resamples where a metric is undefined (e.g. no positive window drawn) are left out of that
    metric's percentiles; a metric undefined in every resample gets None.
    """
    if not (0.0 < confidence < 1.0):
        raise ValueError(
            "The 'confidence' parameter of bootstrap_window_ci must be in (0, 1). "
            f"Got {confidence!r} instead."
        )
    y, s, _ = _check(y_true, y_score, None, "bootstrap_window_ci")
    if ((s < 0) | (s > 1)).any():
        raise ValueError(
            "The 'y_score' parameter of bootstrap_window_ci must be in [0, 1]. "
            f"Got values in [{s.min()!r}, {s.max()!r}] instead."
        )
    runs = np.asarray(run_id).reshape(-1)
    if runs.shape != s.shape:
        raise ValueError(
            f"The 'run_id' parameter of bootstrap_window_ci must have shape {s.shape}. "
            f"Got {runs.shape} instead."
        )
    _, run_idx = np.unique(runs, return_inverse=True)  # (N,)
    n_runs = int(run_idx.max()) + 1 if run_idx.size else 0
    if n_runs == 0:
        return dict.fromkeys(WINDOW_METRICS)
    counts = resample_run_counts(n_runs, n_resamples, seed)  # (B, R)
    order = np.argsort(-s, kind="stable")
    ys, ss, rs = y[order], s[order], run_idx[order]
    ends = _last_of_ties(ss)
    bins = _bin_index(s, n_bins)
    values = np.full((n_resamples, len(WINDOW_METRICS)), np.nan)
    for b in range(n_resamples):
        w_sorted = counts[b, rs].astype(np.float64)  # (N,)
        tps, fps = _curve_sorted(ys, ss, w_sorted, ends)
        ap, auc = _ap_from_curve(tps, fps), _auc_from_curve(tps, fps)
        ece = _ece_binned(y, s, counts[b, run_idx].astype(np.float64), bins, n_bins)
        values[b] = [np.nan if v is None else v for v in (ap, auc, ece)]
    tail = 100.0 * (1.0 - confidence) / 2.0
    out: dict[str, tuple[float, float] | None] = {}
    for k, name in enumerate(WINDOW_METRICS):
        v = values[~np.isnan(values[:, k]), k]
        out[name] = (
            (float(np.percentile(v, tail)), float(np.percentile(v, 100.0 - tail)))
            if v.size
            else None
        )
    return out


def score_windows(
    y_soft: np.ndarray,
    y_score: np.ndarray,
    run_id: Sequence[str] | np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> WindowReport:
    """PR-AUC, ROC-AUC and ECE of window scores against ``y_soft >= 0.5``, with run-bootstrap CIs.

    ``n_resamples=0`` skips the bootstrap.
    """
    soft = np.asarray(y_soft, dtype=np.float64).reshape(-1)
    y = (soft >= 0.5).astype(np.int64)
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    runs = np.asarray(run_id).reshape(-1)
    ece = expected_calibration_error(y, s)  # validates shapes and the [0, 1] range first
    ci = (
        bootstrap_window_ci(y, s, runs, n_resamples, seed, confidence)
        if n_resamples > 0 and s.size
        else {}
    )
    return WindowReport(
        n_windows=int(s.size),
        n_positive=int(y.sum()),
        n_runs=int(np.unique(runs).size),
        pr_auc=pr_auc(y, s),
        roc_auc=roc_auc(y, s),
        ece=ece,
        ci=ci,
        n_resamples=int(n_resamples),
        confidence=float(confidence),
    )
