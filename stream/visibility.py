"""How visible each truth event is in the telemetry: its onset against the run's own benign moments.

A trojan's strength is what the simulator was asked for; how much of it reaches the sensors depends
on the workload, the regime and the clocks around it. A strength-0.5 payload added to a device whose
workload steps its own load up and down every minute can be invisible, and then no detector should
be blamed for missing it. This module labels every event with a realised difficulty, measured with
hindsight and the truth (a diagnostic for reports, never a detector input):

1. every sample's features go through the runtime's fixed transform (`transform_features`);
2. at every sample t, the step contrast d(t) = mean of the next `half_s` seconds minus mean of the
   previous `half_s` seconds, one value per feature;
3. benign positions are those whose 2 x `half_s` span stays `guard_s` away from every truth event;
   features are whitened by the benign positions' covariance (shrunk by `shrink` towards its mean
   variance), so steps along the directions the workload itself moves in count little, and the
   contrast c(t) is the Mahalanobis norm of d(t);
4. an event's contrast is the largest c(t) for t within `onset_s` = (before, after) its start; its
   `exceedance` is the fraction of the run's benign stretches of that length whose largest
   contrast is at least as large (the same statistic, so pure noise gives uniform exceedances).

An event in band "hidden" (exceedance >= 1e-2) steps no more than one benign moment in a hundred on
this same device; "faint" (1e-3 to 1e-2) no more than one in a thousand; "clear" beyond that. At
one stretch per sample, one in a thousand is still about 36 benign stretches per hour at 10 Hz, in
clusters of a few seconds: roughly the false-alarm budget of a 2/h detector, so "hidden" and
"faint" events are the ones a detector can find only from something other than the size of the
onset step (its channel mix seen before, its pulses, its duration). The covariance and the benign
reference use the whole run, the future included: an upper bound on what a step detector with
perfect knowledge of the device could see, not something a causal runtime can compute. The events
are left out of the covariance fit, which makes them look slightly more visible than benign moments
of the same size (on pure noise, about 1 in 6 random moments lands in the top 10 %), so "hidden"
is a conservative label.

Example:
    tel = read_telemetry(run_dir / "telemetry.csv")
    vis = onset_visibility(tel.t_sim_s, tel.features, truth)   # truth (k, 2) seconds
    vis.band.tolist()                                          # ['clear', 'hidden', ...]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stream.telemetry_io import read_telemetry
from stream.windowing import transform_features

__all__ = [
    "VISIBILITY_BANDS",
    "Visibility",
    "onset_visibility",
    "visibility_band",
    "read_event_visibility",
    "with_visibility",
]

#: Bands by benign exceedance [lo, hi), hardest first.
VISIBILITY_BANDS: tuple[tuple[str, float, float], ...] = (
    ("hidden", 1e-2, math.inf),
    ("faint", 1e-3, 1e-2),
    ("clear", 0.0, 1e-3),
)
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Visibility:
    """Per event (truth order): onset contrast, benign exceedance and band; benign positions used."""

    contrast: np.ndarray
    exceedance: np.ndarray
    band: np.ndarray
    n_benign: int


def visibility_band(exceedance: float) -> str:
    """The `VISIBILITY_BANDS` name of one exceedance; "unknown" for NaN."""
    if not math.isfinite(exceedance):
        return UNKNOWN
    return next(name for name, lo, hi in VISIBILITY_BANDS if lo <= exceedance < hi)


def _step_contrast(x: np.ndarray, k: int) -> np.ndarray:
    """(n - 2k + 1, F): mean of x[t:t+k] minus mean of x[t-k:t], for t = k .. n - k."""
    cs = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    t = np.arange(k, len(x) - k + 1)
    return ((cs[t + k] - cs[t]) - (cs[t] - cs[t - k])) / k


def onset_visibility(
    t_sim_s: np.ndarray,
    features: np.ndarray,
    truth: np.ndarray,
    *,
    half_s: float = 5.0,
    onset_s: tuple[float, float] = (1.0, 2.0),
    guard_s: float = 10.0,
    shrink: float = 0.1,
    min_benign_s: float = 60.0,
) -> Visibility:
    """Onset contrast and benign exceedance of each row of `truth` (k, 2), in seconds.

    `features` (n, F) raw telemetry features at times `t_sim_s` (n,), uniformly sampled. An event
    whose onset has no full contrast position (it starts within `half_s` of either end of the run),
    or a run with fewer than `min_benign_s` seconds of benign positions, gets NaN and "unknown".
    """
    t = np.asarray(t_sim_s, np.float64)
    truth = np.asarray(truth, np.float64).reshape(-1, 2)
    nan = np.full(len(truth), np.nan)
    unknown = np.full(len(truth), UNKNOWN, dtype=object)
    if len(t) < 2:
        return Visibility(nan, nan.copy(), unknown, 0)
    hz = 1.0 / float(np.median(np.diff(t)))
    k = max(1, int(round(half_s * hz)))
    if len(t) < 2 * k + 1:
        return Visibility(nan, nan.copy(), unknown, 0)
    d = _step_contrast(transform_features(features), k)
    tp = t[k : len(t) - k + 1]  # the time at which each contrast position steps
    benign = np.ones(len(tp), bool)
    for a, b in truth:
        benign &= (tp + half_s <= a - guard_s) | (tp - half_s >= b + guard_s)
    n_benign = int(benign.sum())
    if n_benign < max(min_benign_s * hz, 3):
        return Visibility(nan, nan.copy(), unknown, n_benign)
    ref = d[benign]
    scale = ref.std(axis=0)
    keep = scale > 1e-12
    z = (d[:, keep] - ref[:, keep].mean(axis=0)) / scale[keep]
    cov = np.cov(z[benign], rowvar=False).reshape(int(keep.sum()), -1)
    cov = (1.0 - shrink) * cov + shrink * np.eye(len(cov)) * np.trace(cov) / max(len(cov), 1)
    white = np.linalg.cholesky(np.linalg.inv(cov))
    c = np.linalg.norm(z @ white, axis=1)
    # An event's contrast is a max over its onset range, so the benign reference is the same max
    # over every benign stretch of that length (a max compared with single values looks visible).
    lo, hi = int(round(onset_s[0] * hz)), int(round(onset_s[1] * hz))
    if len(c) <= lo + hi:
        return Visibility(nan, nan.copy(), unknown, n_benign)
    cmax = sliding_window_view(c, lo + hi + 1).max(axis=1)  # cmax[j] covers c[j : j + lo + hi + 1]
    ok = sliding_window_view(benign, lo + hi + 1).all(axis=1)
    ref_sorted = np.sort(cmax[ok])
    if len(ref_sorted) == 0:
        return Visibility(nan, nan.copy(), unknown, n_benign)
    contrast, exceed = nan.copy(), nan.copy()
    for i, (a, _) in enumerate(truth):
        j = int(np.argmin(np.abs(tp - a))) - lo  # the stretch from a - onset_s[0] to a + onset_s[1]
        if 0 <= j < len(cmax) and abs(tp[j + lo] - a) <= 0.5 / hz:
            contrast[i] = float(cmax[j])
            above = len(ref_sorted) - np.searchsorted(ref_sorted, contrast[i], side="left")
            exceed[i] = above / len(ref_sorted)
    band = np.array([visibility_band(float(e)) for e in exceed], dtype=object)
    return Visibility(contrast, exceed, band, n_benign)


def read_event_visibility(run_dir: Path, truth: np.ndarray) -> Visibility:
    """`onset_visibility` of `truth` (k, 2) in the run's telemetry.csv, read by the strict reader."""
    tel = read_telemetry(Path(run_dir) / "telemetry.csv")
    return onset_visibility(tel.t_sim_s, tel.features, truth)


def with_visibility(labels: Mapping[str, np.ndarray], run_dir: Path) -> dict[str, np.ndarray]:
    """`labels` of one run (`stream.strata.read_event_labels`) plus a "visibility" band per event,
    and "visibility_exceedance", both in the order of `labels["t"]`."""
    vis = read_event_visibility(run_dir, np.asarray(labels["t"], np.float64).reshape(-1, 2))
    return {**labels, "visibility": vis.band, "visibility_exceedance": vis.exceedance}
