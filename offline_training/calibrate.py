"""Post-hoc calibration and validation choices: temperature by NLL, provisional decision thresholds.

Both are fitted on predictions the model did not train on (validation windows or out-of-fold
binaries). The temperature is stored inside the exported graph; the decision settings go into the
manifest and are re-chosen later by `evaluate` with the full interval-level protocol.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ensemble_prob", "soft_nll", "fit_temperature", "hysteresis", "choose_decision"]

_T_GRID = np.exp(np.linspace(np.log(0.2), np.log(20.0), 121))


def ensemble_prob(logits: np.ndarray, offset: float, temperature: float) -> np.ndarray:
    """(N, E) raw member logits -> (N,) mean calibrated probability (as in the exported graph)."""
    z = (np.asarray(logits, np.float64) + offset) / temperature
    return (1.0 / (1.0 + np.exp(-z))).mean(axis=1)


def soft_nll(p: np.ndarray, y_soft: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities against soft labels."""
    q = np.clip(p, 1e-7, 1.0 - 1e-7)
    return float(-(y_soft * np.log(q) + (1.0 - y_soft) * np.log(1.0 - q)).mean())


def fit_temperature(logits: np.ndarray, y_soft: np.ndarray, offset: float = 0.0) -> float:
    """Temperature T > 0 minimising the NLL of the calibrated ensemble mean; deterministic.

    A log-spaced grid on [0.2, 20] and then a golden-section refinement around its best point.
    """
    y = np.asarray(y_soft, np.float64)
    if y.size == 0:
        return 1.0
    losses = [soft_nll(ensemble_prob(logits, offset, t), y) for t in _T_GRID]
    k = int(np.argmin(losses))
    lo, hi = np.log(_T_GRID[max(k - 1, 0)]), np.log(_T_GRID[min(k + 1, len(_T_GRID) - 1)])
    g = (np.sqrt(5.0) - 1.0) / 2.0
    f = lambda a: soft_nll(ensemble_prob(logits, offset, float(np.exp(a))), y)  # noqa: E731
    for _ in range(40):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if f(a) <= f(b):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2.0))


def hysteresis(score: np.ndarray, run_id: np.ndarray, on: float, off: float) -> np.ndarray:
    """Per-run hysteresis over time-ordered windows: switch on at >= on, off below off. (N,) bool."""
    state = np.zeros(score.shape, bool)
    active = False
    for i in range(score.shape[0]):  # a recurrence; validation sets are small
        if i > 0 and run_id[i] != run_id[i - 1]:
            active = False
        active = score[i] >= on if not active else score[i] >= off
        state[i] = active
    return state


def choose_decision(
    score: np.ndarray,
    y_soft: np.ndarray,
    run_id: np.ndarray,
    t_end_s: np.ndarray,
    min_duration_s: float,
    merge_gap_s: float,
) -> dict[str, float]:
    """On/off thresholds maximising window-level F1 of the hysteresis output on validation.

    A provisional choice on windows (y_soft >= 0.5); `min_duration_s` and `merge_gap_s` are passed
    through from the config.
    """
    order = np.lexsort((t_end_s, run_id))
    s, y, r = score[order], (y_soft[order] >= 0.5), run_id[order]
    best = (-1.0, 0.5, 0.5)
    for on in np.round(np.arange(0.2, 0.951, 0.05), 2):
        for drop in (0.0, 0.1, 0.2):
            off = float(max(0.05, on - drop))
            pred = hysteresis(s, r, float(on), off)
            tp = float((pred & y).sum())
            denom = float(pred.sum() + y.sum())
            f1 = 2.0 * tp / denom if denom > 0 else 0.0
            if f1 > best[0] + 1e-12:
                best = (f1, float(on), off)
    return {
        "on_threshold": best[1],
        "off_threshold": best[2],
        "min_duration_s": float(min_duration_s),
        "merge_gap_s": float(merge_gap_s),
    }
