"""Windows and causal normalisation: the one implementation shared by training and serving.

Per device, each sample's allow-listed features go through a fixed transform (log1p for counters),
a causal baseline that only ever looks back, and a per-feature scale fitted on training runs:

    z_t = clip((f(x_t) - b_t) / scale / d_t, -clip, clip)

`d_t` (optional, `spread_tau_s > 0`) is the device's own sustained variability: an exponential mean
`m_t` of |scaled residual| over ~`spread_tau_s`, divided by `spread_ref` (its 90th percentile over
training runs) and floored at 1, so only a channel that is unusually busy on this device all the
time is shrunk. A workload that keeps the CV engine busy then stops looking like a CV trojan while a
trojan's 10-90 s activations barely move m_t. m_t starts at `spread_ref` (d_t = 1). With
`spread_warm_s > 0` the start is a warm start: `spread_ref` counts as `spread_warm_s` seconds of
observations and m_t is their running mean with the device's own |residual| until the mean spans
`spread_tau_s`, after which it is the exponential mean. A device learns its own spread in about a
minute instead of several `spread_tau_s` (measured: a held-out CV-heavy workload scored 67 % of its
first-minute benign windows above 0.5 with the plain start).

`b_t` is an asymmetric tracker of the device's quiet level: it falls quickly (`down_tau_s`) and rises
slowly (`up_tau_s`), so it settles on the low, benign level even when a trojan is active during
warm-up, and it never uses a sample after t. Windows hold the last W normalised samples and their
freshness masks (binary, never normalised) and are emitted every `stride` samples, aligned to the
absolute sample count so that offline (whole run) and online (sample by sample) windows coincide.

The same `CausalNormaliser.step` runs in both paths, on float64 state with + - * / only, so offline
and online results are bitwise equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.schema import FEATURE_COLUMNS, LOG_FEATURES, MASK_COLUMNS

__all__ = [
    "WindowSpec",
    "Normalisation",
    "CausalNormaliser",
    "transform_features",
    "baseline_residuals",
    "fit_scale",
    "fit_spread_ref",
    "scaled_run",
    "emission_indices",
    "window_run",
    "OnlineWindower",
]

_LOG_INDEX = np.array([FEATURE_COLUMNS.index(c) for c in LOG_FEATURES], dtype=np.intp)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Window length and stride in seconds at the model's sample rate `hz`."""

    hz: float = 10.0
    window_s: float = 20.0
    stride_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("hz", "window_s", "stride_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(
                    f"The '{name}' parameter of WindowSpec must be > 0. Got {value!r} instead."
                )
        if self.stride > self.window:
            raise ValueError(
                f"The 'stride_s' parameter of WindowSpec must be <= window_s. "
                f"Got {self.stride_s!r} instead."
            )

    @property
    def window(self) -> int:
        """W, samples per window."""
        return max(1, int(round(self.window_s * self.hz)))

    @property
    def stride(self) -> int:
        """Samples between emissions."""
        return max(1, int(round(self.stride_s * self.hz)))


@dataclass(frozen=True, slots=True)
class Normalisation:
    """Causal-baseline settings and the per-feature scale fitted on training runs."""

    scale: tuple[float, ...]
    up_tau_s: float = 300.0
    down_tau_s: float = 10.0
    clip: float = 10.0
    spread_tau_s: float = 0.0  # 0: no per-device spread adaptation
    spread_ref: tuple[float, ...] | None = None
    spread_warm_s: float = 0.0  # 0: m_t starts at spread_ref at the constant rate

    def __post_init__(self) -> None:
        if not (np.isfinite(self.spread_warm_s) and self.spread_warm_s >= 0):
            raise ValueError(
                f"The 'spread_warm_s' parameter of Normalisation must be finite and >= 0. "
                f"Got {self.spread_warm_s!r} instead."
            )
        if self.spread_tau_s > 0 and (
            self.spread_ref is None
            or len(self.spread_ref) != len(FEATURE_COLUMNS)
            or not all(np.isfinite(v) and v > 0 for v in self.spread_ref)
        ):
            raise ValueError(
                f"The 'spread_ref' parameter of Normalisation must hold {len(FEATURE_COLUMNS)} "
                f"finite values > 0 when spread_tau_s > 0. Got {self.spread_ref!r} instead."
            )
        if len(self.scale) != len(FEATURE_COLUMNS):
            raise ValueError(
                f"The 'scale' parameter of Normalisation must have {len(FEATURE_COLUMNS)} "
                f"entries. Got {len(self.scale)} instead."
            )
        if not all(np.isfinite(s) and s > 0 for s in self.scale):
            raise ValueError(
                f"The 'scale' parameter of Normalisation must be finite and > 0. "
                f"Got {self.scale!r} instead."
            )

    @staticmethod
    def unit() -> Normalisation:
        """Scale 1 everywhere: the residuals themselves (used before a scale is fitted)."""
        return Normalisation(scale=(1.0,) * len(FEATURE_COLUMNS))


def transform_features(raw: np.ndarray) -> np.ndarray:
    """Fixed per-feature transform, (..., F) -> (..., F) float64: log1p of counters (clipped at 0)."""
    out = np.array(raw, dtype=np.float64, copy=True)
    out[..., _LOG_INDEX] = np.log1p(np.maximum(out[..., _LOG_INDEX], 0.0))
    return out


class CausalNormaliser:
    """Asymmetric causal baseline per device and feature; `step` is the only update rule.

    Invalid values (NaN/inf, or `valid` False) neither move the baseline nor produce garbage: the
    residual of an invalid value is 0 (the baseline itself), i.e. a masked fallback.
    """

    def __init__(self, n_devices: int, hz: float, norm: Normalisation) -> None:
        self.norm = norm
        self._a_up = 1.0 - np.exp(-1.0 / (norm.up_tau_s * hz))
        self._a_down = 1.0 - np.exp(-1.0 / (norm.down_tau_s * hz))
        self._inv_scale = 1.0 / np.asarray(norm.scale, dtype=np.float64)
        self.baseline = np.zeros((n_devices, len(FEATURE_COLUMNS)), dtype=np.float64)
        self.started = np.zeros((n_devices, len(FEATURE_COLUMNS)), dtype=bool)
        self._adaptive = norm.spread_tau_s > 0
        self._a_spread = 1.0 - np.exp(-1.0 / (norm.spread_tau_s * hz)) if self._adaptive else 0.0
        ref = norm.spread_ref if self._adaptive else (1.0,) * len(FEATURE_COLUMNS)
        self._inv_ref = 1.0 / np.asarray(ref, dtype=np.float64)
        self.spread = np.tile(np.asarray(ref, dtype=np.float64), (n_devices, 1))  # (D, F) m_t
        self.spread_n = np.zeros(n_devices, dtype=np.float64)  # samples seen by m_t, per device
        self._warm = self._adaptive and norm.spread_warm_s > 0
        self._warm_n = norm.spread_warm_s * hz

    def step(self, x: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Feed transformed features x (B, F) for devices `rows`; return residuals (B, F) float64.

        Residuals are unscaled (x - b_t, with b_t updated by x_t first); `scale_residuals` turns
        them into model inputs.
        """
        b = self.baseline[rows]  # (B, F)
        started = self.started[rows]
        ok = np.isfinite(x)
        if ok.all() and started.all():  # the common case, same arithmetic with fewer passes
            diff = x - b
            b = b + np.where(diff < 0.0, self._a_down, self._a_up) * diff
            self.baseline[rows] = b
            return x - b
        first = ok & ~started
        b = np.where(first, x, b)
        diff = np.where(ok, x - b, 0.0)
        rate = np.where(diff < 0.0, self._a_down, self._a_up)
        b = b + rate * diff
        self.baseline[rows] = b
        self.started[rows] = started | ok
        return np.where(ok, x - b, 0.0)

    def reset(self, rows: np.ndarray) -> None:
        """Forget the baseline of devices `rows`: it re-initialises at their next valid sample."""
        self.started[rows] = False

    def scale_residuals(self, r: np.ndarray) -> np.ndarray:
        """(…, F) residuals -> float32, fixed scale and clip only (no per-device spread)."""
        c = self.norm.clip
        return np.clip(r * self._inv_scale, -c, c).astype(np.float32)

    def scale_step(self, r: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Residuals r (B, F) of devices `rows` at one sample -> float32 model inputs (B, F).

        Updates the devices' spread m_t first (module docstring); without spread adaptation this
        is `scale_residuals`.
        """
        c = self.norm.clip
        z = np.clip(r * self._inv_scale, -c, c)
        if not self._adaptive:
            return z.astype(np.float32)
        m = self.spread[rows]
        if self._warm:
            n = self.spread_n[rows]
            rate = np.maximum(self._a_spread, 1.0 / (self._warm_n + n + 1.0))[:, None]
            self.spread_n[rows] = n + 1.0
            m = m + rate * (np.abs(z) - m)
        else:
            m = m + self._a_spread * (np.abs(z) - m)
        self.spread[rows] = m
        return (z / np.maximum(1.0, m * self._inv_ref)).astype(np.float32)


def baseline_residuals(raw: np.ndarray, hz: float, norm: Normalisation) -> np.ndarray:
    """Offline residuals of one run, (T, F) raw -> (T, F) float64, via `CausalNormaliser.step`."""
    x = transform_features(raw)
    normaliser = CausalNormaliser(1, hz, norm)
    out = np.empty_like(x)
    for t in range(x.shape[0]):  # a recurrence: each step needs the previous baseline
        out[t] = normaliser.step(x[t : t + 1])[0]
    return out


def scaled_run(residuals: np.ndarray, hz: float, norm: Normalisation) -> np.ndarray:
    """Offline model inputs of one run, (T, F) residuals -> (T, F) float32, via `scale_step`."""
    scaler = CausalNormaliser(1, hz, norm)
    if norm.spread_tau_s <= 0:
        return scaler.scale_residuals(residuals)
    out = np.empty(residuals.shape, np.float32)
    for t in range(residuals.shape[0]):  # a recurrence, like the baseline
        out[t] = scaler.scale_step(residuals[t : t + 1])[0]
    return out


def fit_spread_ref(
    residuals: list[np.ndarray], hz: float, norm: Normalisation, q: float = 0.9
) -> tuple[float, ...]:
    """Per-feature `spread_ref`: the q-quantile of m_t over training runs (norm's scale and tau).

    m_t is traced with the adaptation inert (reference +inf), starting from the first sample's
    |scaled residual|.
    """
    if norm.spread_tau_s <= 0:
        raise ValueError("The 'norm' parameter of fit_spread_ref needs spread_tau_s > 0.")
    a = 1.0 - np.exp(-1.0 / (norm.spread_tau_s * hz))
    inv, c = 1.0 / np.asarray(norm.scale, np.float64), norm.clip
    traces = []
    for r in residuals:
        z = np.abs(np.clip(np.asarray(r, np.float64) * inv, -c, c))
        if z.shape[0] == 0:
            continue
        m = np.empty_like(z)
        cur = z[0].copy()
        for t in range(z.shape[0]):
            cur += a * (z[t] - cur)
            m[t] = cur
        traces.append(m)
    if not traces:
        raise ValueError("The 'residuals' parameter of fit_spread_ref must hold samples. Got none.")
    ref = np.quantile(np.concatenate(traces), q, axis=0)
    return tuple(float(max(v, 1e-3)) for v in ref)


def fit_scale(residuals: list[np.ndarray], floor: float = 1e-3) -> tuple[float, ...]:
    """Per-feature scale from training residuals: a robust spread (1.4826 MAD), floored.

    Falls back to the standard deviation where the MAD is 0 (mostly-constant features).
    """
    r = np.concatenate([np.asarray(a, dtype=np.float64) for a in residuals], axis=0)
    r = r[np.isfinite(r).all(axis=1)]
    if r.shape[0] == 0:
        raise ValueError("The 'residuals' parameter of fit_scale must hold finite rows. Got none.")
    med = np.median(r, axis=0)
    mad = 1.4826 * np.median(np.abs(r - med), axis=0)
    std = r.std(axis=0)
    scale = np.where(mad > floor, mad, np.maximum(std, floor))
    return tuple(float(s) for s in scale)


def emission_indices(n_samples: int, spec: WindowSpec) -> np.ndarray:
    """Sample indices i at which a window ending at i is emitted: i >= W-1 and (i+1) % stride == 0."""
    first = spec.window - 1
    start = first + (-(first + 1)) % spec.stride
    return np.arange(start, n_samples, spec.stride, dtype=np.int64)


def window_run(
    z: np.ndarray, masks: np.ndarray, spec: WindowSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut one run's normalised samples into windows.

    z: (T, F) float32, masks: (T, K) uint8 -> X (N, W, F), M (N, W, K), end index (N,).
    Every window only holds samples at or before its end index.
    """
    ends = emission_indices(z.shape[0], spec)
    W = spec.window
    if ends.size == 0:
        return (
            np.zeros((0, W, z.shape[1]), np.float32),
            np.zeros((0, W, masks.shape[1]), np.uint8),
            ends,
        )
    zv = np.lib.stride_tricks.sliding_window_view(z, W, axis=0)  # (T-W+1, F, W)
    mv = np.lib.stride_tricks.sliding_window_view(masks, W, axis=0)
    starts = ends - (W - 1)
    X = np.ascontiguousarray(zv[starts].transpose(0, 2, 1), dtype=np.float32)
    M = np.ascontiguousarray(mv[starts].transpose(0, 2, 1), dtype=np.uint8)
    return X, M, ends


class OnlineWindower:
    """Per-device ring buffers of the last W normalised samples and masks, vectorised over devices.

    `push` takes one sample per device for a subset of devices (rows) and returns which of them
    completed a window at this sample. Memory per device: W * (4F + K) bytes.
    """

    def __init__(self, n_devices: int, spec: WindowSpec, n_features: int, n_masks: int) -> None:
        self.spec = spec
        W = spec.window
        self.values = np.zeros((n_devices, W, n_features), np.float32)  # (D, W, F)
        self.masks = np.zeros((n_devices, W, n_masks), np.uint8)  # (D, W, K)
        self.count = np.zeros(n_devices, np.int64)  # samples seen per device

    def push(self, rows: np.ndarray, z: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Append z (B, F) and m (B, K) to devices `rows` (B,); return rows that emit now."""
        W = self.spec.window
        pos = self.count[rows] % W
        self.values[rows, pos] = z
        self.masks[rows, pos] = m
        self.count[rows] += 1
        n = self.count[rows]
        ready = (n >= W) & (n % self.spec.stride == 0)
        return rows[ready]

    def windows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chronological windows of devices `rows`: (B, W, F) float32 and (B, W, K) uint8."""
        W = self.spec.window
        start = self.count[rows] % W  # ring position of the oldest sample, (B,)
        if start.size and (start == start[0]).all():  # devices in step: two slices, no gather
            s = int(start[0])
            v, m = self.values[rows], self.masks[rows]
            return (
                np.concatenate([v[:, s:], v[:, :s]], axis=1),
                np.concatenate([m[:, s:], m[:, :s]], axis=1),
            )
        order = (start[:, None] + np.arange(W)[None, :]) % W  # oldest first, (B, W)
        r = rows[:, None]
        return self.values[r, order], self.masks[r, order]


MASK_INDEX = {name: i for i, name in enumerate(MASK_COLUMNS)}
