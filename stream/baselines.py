"""Baseline detectors scored at the runtime's own window times, so every detector is decided alike.

Each baseline gives one score in [0, 1] per logged window (high = active trojan), computed causally
from the run's past only:

- `zscore_power`: z-score of total power (`p_sys5v_mw`, mean over the last stride) against the
  running mean and std of every earlier sample of the same run, mapped monotonically into (0, 1);
- `hst_scores`: river `HalfSpaceTrees` per run on the allow-listed features (the runtime's
  feature transform, mean over the last stride, i.e. 1 Hz at the default stride), scaled by
  limits taken from the split's training runs, `score_one` then `learn_one` in arrival order;
- `expert_scores`: dynamic only, static only, constant gate (mean) and product of experts, read
  from the fusion context rows the runtime logged, plus the full fusion itself.

Only the expert-based scores are probabilities; z-score and HST scores are monotone anomaly scores
(their ECE is reported but measures nothing calibrated).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from river import anomaly

from stream.schema import FEATURE_COLUMNS, FUSION_INPUTS
from stream.sources import ReplayRun
from stream.windowing import transform_features

__all__ = [
    "DETECTORS",
    "DESCRIPTIONS",
    "stride_means",
    "zscore_power",
    "feature_limits",
    "hst_scores",
    "expert_scores",
]

#: Every detector evaluated, the full system last.
DETECTORS = (
    "zscore_power",
    "halfspacetrees",
    "dynamic_only",
    "static_only",
    "constant_gate",
    "product_of_experts",
    "fusion",
)

DESCRIPTIONS = {
    "zscore_power": "per-run causal z-score of total power p_sys5v_mw",
    "halfspacetrees": "river HalfSpaceTrees per run on the allow-listed features (1 Hz)",
    "dynamic_only": "dynamic expert p alone",
    "static_only": "static expert p alone (0.5 when the binary is unreadable)",
    "constant_gate": "mean of dynamic and static p",
    "product_of_experts": "normalised product p_d p_s / (p_d p_s + (1-p_d)(1-p_s))",
    "fusion": "full system: the fusion gate's score as the runtime emits it",
}

_POWER = FEATURE_COLUMNS.index("p_sys5v_mw")
_P_DYN = FUSION_INPUTS.index("p_dynamic")
_P_STAT = FUSION_INPUTS.index("p_static")


def _sample_index(run: ReplayRun, t_end: np.ndarray) -> np.ndarray:
    """Index of each window's last sample (the sample at its end time), (n,)."""
    i = np.searchsorted(run.t_sim_s, t_end - 1e-9)
    return np.clip(i, 0, run.t_sim_s.size - 1)


def stride_means(run: ReplayRun, t_end: np.ndarray, stride: int) -> np.ndarray:
    """Mean of the transformed features over the `stride` samples ending at each window, (n, F)."""
    x = transform_features(run.raw)  # (T, F)
    x = np.where(np.isfinite(x), x, 0.0)
    c = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])  # (T+1, F)
    hi = _sample_index(run, t_end) + 1
    lo = np.maximum(hi - stride, 0)
    return (c[hi] - c[lo]) / np.maximum(hi - lo, 1)[:, None]


def zscore_power(run: ReplayRun, t_end: np.ndarray, stride: int) -> np.ndarray:
    """Causal z-score of total power per window, mapped into (0, 1) by 0.5 + z / (2 (1 + |z|))."""
    p = np.asarray(run.raw[:, _POWER], np.float64)
    p = np.where(np.isfinite(p), p, np.nan)
    p = np.where(np.isnan(p), np.nanmean(p) if np.isfinite(p).any() else 0.0, p)
    c1 = np.r_[0.0, np.cumsum(p)]
    c2 = np.r_[0.0, np.cumsum(p * p)]
    hi = _sample_index(run, t_end) + 1
    lo = np.maximum(hi - stride, 0)
    x = (c1[hi] - c1[lo]) / np.maximum(hi - lo, 1)  # (n,) current mean power
    n_past = lo  # samples strictly before the current stride
    mean = c1[lo] / np.maximum(n_past, 1)
    var = np.maximum(c2[lo] / np.maximum(n_past, 1) - mean * mean, 0.0)
    z = np.where(n_past >= 2, (x - mean) / (np.sqrt(var) + 1e-6), 0.0)
    return 0.5 + z / (2.0 * (1.0 + np.abs(z)))


def feature_limits(
    feats: Sequence[np.ndarray], q: tuple[float, float] = (0.01, 0.99)
) -> np.ndarray:
    """Per-feature (low, high) quantiles of training runs' stride means (each (n, F)), (F, 2)."""
    x = np.vstack(list(feats)) if len(feats) else np.zeros((0, len(FEATURE_COLUMNS)))
    if x.shape[0] == 0:
        return np.tile([0.0, 1.0], (len(FEATURE_COLUMNS), 1))
    lim = np.quantile(x, q, axis=0).T  # (F, 2)
    lim[:, 1] = np.maximum(lim[:, 1], lim[:, 0] + 1e-6)
    return lim


def hst_scores(
    feats: np.ndarray,
    limits: np.ndarray,
    run_id: str,
    *,
    n_trees: int = 10,
    height: int = 8,
    window_size: int = 60,
    seed: int = 0,
) -> np.ndarray:
    """HalfSpaceTrees anomaly score per window of one run (score_one, then learn_one), (n,).

    `feats` are the run's stride means in arrival order (n, F); the seed mixes `seed` and run id.
    """
    x = np.clip((feats - limits[:, 0]) / (limits[:, 1] - limits[:, 0]), 0.0, 1.0)  # (n, F)
    run_seed = int(np.random.SeedSequence([seed, zlib.crc32(run_id.encode())]).generate_state(1)[0])
    model = anomaly.HalfSpaceTrees(
        n_trees=n_trees, height=height, window_size=window_size, seed=run_seed
    )
    out = np.empty(x.shape[0])
    for i, row in enumerate(x.tolist()):
        sample = dict(zip(FEATURE_COLUMNS, row, strict=True))
        out[i] = model.score_one(sample)
        model.learn_one(sample)
    return np.clip(out, 0.0, 1.0)


def expert_scores(ctx: np.ndarray, fused: np.ndarray) -> dict[str, np.ndarray]:
    """Expert-based detectors from logged fusion context rows (n, len(FUSION_INPUTS))."""
    p_d = np.clip(ctx[:, _P_DYN].astype(np.float64), 0.0, 1.0)
    p_s = np.clip(ctx[:, _P_STAT].astype(np.float64), 0.0, 1.0)
    num = p_d * p_s
    den = num + (1.0 - p_d) * (1.0 - p_s)
    return {
        "dynamic_only": p_d,
        "static_only": p_s,
        "constant_gate": 0.5 * (p_d + p_s),
        "product_of_experts": np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.5),
        "fusion": np.clip(np.asarray(fused, np.float64), 0.0, 1.0),
    }
