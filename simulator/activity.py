"""Software activity of a fleet: per-sample `Demand` of each device's workload plus its trojan.

`ActivityModel` draws every device's event lists (workload phases, bursts and spikes; activations
and trojan pulses) once at construction. A sample's demand is then a pure function of its index:
events are rasterised with exact integer difference arrays, and the sample-level AR(1) noise is read
from a shared bank at per-device offsets. So any chunking, in any order, gives bitwise the same
samples, and an hour-long fleet never holds whole-run arrays.

The noise bank is one long circular AR(1) realisation per channel (2**20 samples, from a fixed
seed, per sample rate). Each device reads the sum of two windows of it at its own random offsets,
divided by sqrt(2): still a unit-variance AR(1) with the same correlation time, and no two devices
share the same noise.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from simulator import trojans, workloads
from simulator.config import RunSpec
from simulator.demand import Demand
from simulator.schedules import Activation, activation_intervals

__all__ = ["ActivityModel"]

#: Largest number of samples synthesised at once; longer requests are cut into such pieces.
CHUNK = 2048
#: Samples per bank channel: 2**20 is 29 h at 10 Hz.
_BANK_LEN = 1 << 20
_BANK_SEED = zlib.crc32(b"simulator.activity.bank")
_OFFSET_STREAM = zlib.crc32(b"simulator.activity.offsets")
#: Bank channels: the 7 workload channels, then the trojan payload's own fluctuation.
_TAU_S = np.append(workloads.TAU_S, trojans.MODULATION_TAU_S)
#: Segments longer than this are split, so that the segments touching a range stay few.
_SPLIT = 4096


@functools.lru_cache(maxsize=4)
def _noise_bank(hz: float) -> np.ndarray:
    """(8, _BANK_LEN + CHUNK) float32 unit-variance AR(1) series, circular, padded by wrapping.

    The recursion runs twice around the innovations and keeps the second lap, so the series
    continues smoothly from its last sample to its first (the first lap fades as phi**2**20).
    """
    rng = np.random.default_rng(np.random.SeedSequence([_BANK_SEED]))
    eps = rng.standard_normal((_TAU_S.size, _BANK_LEN))  # (8, L)
    bank = np.empty((_TAU_S.size, _BANK_LEN + CHUNK), np.float32)
    for c, tau in enumerate(_TAU_S):
        x = _ar1(np.tile(eps[c], 2), math.exp(-1.0 / (tau * hz)))[_BANK_LEN:]  # (L,)
        bank[c, :_BANK_LEN] = x
        bank[c, _BANK_LEN:] = x[:CHUNK]
    bank.setflags(write=False)
    return bank


def _ar1(eps: np.ndarray, phi: float) -> np.ndarray:
    """x[t] = phi x[t-1] + sqrt(1 - phi^2) eps[t] from x[-1] = 0, vectorised over sub-blocks.

    Inside a sub-block of m samples x[k] = phi^k (x0 + g sum_j<=k phi^-j eps[j]), with m short
    enough that phi^-m <= e^10 keeps float64 exact to ~1e-12; a scalar loop carries the state
    across sub-blocks.
    """
    n, g = eps.size, math.sqrt(1.0 - phi * phi)
    m = max(1, min(n, int(10.0 / -math.log(phi))))
    e = np.zeros(-(-n // m) * m)
    e[:n] = eps
    e = e.reshape(-1, m)  # (S, m)
    pw = phi ** np.arange(m)  # (m,)
    local = pw * np.cumsum(g * e / pw, axis=1)  # (S, m) each sub-block from a zero state
    carry = np.empty(e.shape[0])  # (S,) state just before each sub-block
    s, decay = 0.0, phi**m
    for j, last in enumerate(local[:, -1].tolist()):
        carry[j] = s
        s = last + decay * s
    return (local + (phi * pw) * carry[:, None]).ravel()[:n]


class _Segments:
    """Half-open sample-index segments [start, end) of D devices, each with a positive int label.

    Segments of one device must not overlap. Sorted by start with a bounded length, so the segments
    touching a range are found by binary search; `label` rasterises them over a range with an
    integer difference array, exactly and independently of where the range starts.
    """

    def __init__(self, dev: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        label = np.arange(1, start.size + 1)  # (E,) 0 means "no segment"
        pieces = np.maximum(1, -(-(end - start) // _SPLIT))  # (E,)
        idx = np.repeat(np.arange(start.size), pieces)  # (S,)
        k = np.arange(idx.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)  # (S,)
        s = start[idx] + k * _SPLIT
        e = np.minimum(s + _SPLIT, end[idx])
        order = np.argsort(s, kind="stable")
        self.dev = dev[idx][order].astype(np.intp)
        self.start = s[order].astype(np.int64)
        self.end = e[order].astype(np.int64)
        self.label = label[idx][order].astype(np.int32)

    def label_at(self, b0: int, n: int, d: int) -> np.ndarray:
        """(D, n) int32: label of the segment covering each of samples b0..b0+n-1, 0 if none."""
        lo = np.searchsorted(self.start, b0 - _SPLIT, "left")
        hi = np.searchsorted(self.start, b0 + n, "left")
        sel = np.arange(lo, hi)[self.end[lo:hi] > b0]
        diff = np.zeros((d, n + 1), np.int32)  # (D, n + 1)
        np.add.at(diff, (self.dev[sel], np.maximum(self.start[sel] - b0, 0)), self.label[sel])
        np.add.at(diff, (self.dev[sel], np.minimum(self.end[sel] - b0, n)), -self.label[sel])
        return np.cumsum(diff[:, :n], axis=-1, dtype=np.int32)


def _segments(per_device: Sequence[tuple[np.ndarray, np.ndarray]]) -> _Segments:
    """Stack per-device (start, end) arrays into one `_Segments`; labels run in that order."""
    dev = np.concatenate([np.full(s.size, i, np.intp) for i, (s, _) in enumerate(per_device)])
    start = np.concatenate([np.asarray(s, np.int64) for s, _ in per_device])
    end = np.concatenate([np.asarray(e, np.int64) for _, e in per_device])
    return _Segments(dev, start, end)


class ActivityModel:
    """Per-sample software demand of D devices (workload + trojan), synthesised in any chunks.

    specs: one `RunSpec` per device, all with the same `hz`. Sample i is at t = i / hz, for
    0 <= i < max n_samples. `intervals` holds each device's ground-truth activations, and the trojan
    demand is driven from exactly those: zero outside them. Calls are independent: any `start`.
    """

    def __init__(self, specs: Sequence[RunSpec]) -> None:
        specs = list(specs)
        if not specs:
            raise ValueError(
                "The 'specs' parameter of ActivityModel must hold at least one RunSpec. "
                "Got an empty sequence instead."
            )
        rates = sorted({s.hz for s in specs})
        if len(rates) > 1:
            raise ValueError(
                f"The 'specs' parameter of ActivityModel must share one hz. Got {rates} instead."
            )
        self.specs = tuple(specs)
        self.hz = rates[0]
        self.horizon = max(s.n_samples for s in specs)
        self.intervals: tuple[tuple[Activation, ...], ...] = tuple(
            activation_intervals(s) for s in specs
        )
        self._d = len(specs)
        wls = [workloads.device_workload(s, self.horizon) for s in specs]

        def stack(name: str) -> np.ndarray:  # (7, D, 1)
            return np.stack([getattr(w, name) for w in wls], axis=1)[:, :, None]

        self._base, self._sens = stack("base"), stack("sensitivity")
        self._noise_sd, self._spike_amp = stack("noise_sd"), stack("spike_amp")
        self._spike = np.array(
            [[w.spike_period, w.spike_width, w.spike_phase] for w in wls], np.int64
        ).T[:, :, None]  # (3, D, 1)
        self._phases = _segments([(w.phase_start, w.phase_end) for w in wls])
        self._phase_level = np.concatenate(
            [[np.float32(1.0)], *(w.phase_level for w in wls)]
        ).astype(np.float32)  # (1 + P,) by label
        self._bursts = _segments([(w.burst_start, w.burst_end) for w in wls])
        self._burst_amp = np.concatenate(
            [np.zeros((1, 7), np.float32), *(w.burst_amp for w in wls)]
        ).T.copy()  # (7, 1 + B) by label
        self._active = _segments([_to_samples(iv, self.hz) for iv in self.intervals])
        self._trojan_on = _segments(
            [trojans.on_segments(s, iv) for s, iv in zip(specs, self.intervals, strict=True)]
        )
        self._trojan_amp = np.stack([trojans.amplitude(s.trojan, s.seed) for s in specs], axis=1)[
            :, :, None
        ]  # (7, D, 1)
        self._offsets = np.stack(
            [
                np.random.default_rng(np.random.SeedSequence([s.seed, _OFFSET_STREAM])).integers(
                    0, _BANK_LEN, (2, _TAU_S.size)
                )
                for s in specs
            ],
            axis=-1,
        )  # (2, 8, D)
        self._bank = _noise_bank(self.hz)

    def demand(self, start: int, n: int) -> Demand:
        """Demand of samples start..start+n-1 of every device: each field float32 (D, n)."""
        self._check_range(start, n)
        if n <= CHUNK:
            return self._demand(start, n)
        out = Demand(*(np.empty((self._d, n), np.float32) for _ in range(7)))
        for a in range(0, n, CHUNK):
            part = self._demand(start + a, min(CHUNK, n - a))
            for dst, src in zip(_fields(out), _fields(part), strict=True):
                dst[:, a : a + src.shape[1]] = src
        return out

    def active(self, start: int, n: int) -> np.ndarray:
        """(D, n) bool: whether sample time start..start+n-1 lies inside one of `intervals`."""
        self._check_range(start, n)
        return self._active.label_at(start, n, self._d) > 0

    def _check_range(self, start: int, n: int) -> None:
        if start < 0 or n < 0 or start + n > self.horizon:
            raise ValueError(
                "The 'start' and 'n' parameters of ActivityModel must satisfy 0 <= start, 0 <= n "
                f"and start + n <= {self.horizon}. Got start={start}, n={n} instead."
            )

    def _noise(self, b0: int, n: int) -> np.ndarray:
        """(8, D, n) float32 unit-variance AR(1) noise of samples b0..b0+n-1."""
        out = np.empty((_TAU_S.size, self._d, n), np.float32)
        first = (self._offsets + b0) % _BANK_LEN  # (2, 8, D)
        for c in range(_TAU_S.size):
            win = sliding_window_view(self._bank[c], n)  # (L + CHUNK - n + 1, n) view
            np.add(win[first[0, c]], win[first[1, c]], out=out[c])
        out *= np.float32(1.0 / math.sqrt(2.0))
        return out

    def _demand(self, b0: int, n: int) -> Demand:
        """Samples b0..b0+n-1 (n <= CHUNK): workload + trojan, added by `Demand.__add__`."""
        d = self._d
        noise = self._noise(b0, n)  # (8, D, n)
        level = self._phase_level[self._phases.label_at(b0, n, d)]  # (D, n)
        bursts = self._burst_amp[:, self._bursts.label_at(b0, n, d)]  # (7, D, n)
        period, width, phase = self._spike  # (D, 1) each
        spike_on = (np.arange(b0, b0 + n) - phase) % period < width  # (D, n)
        w = workloads.compose(
            self._base, self._sens, level, self._spike_amp, spike_on, bursts, self._noise_sd,
            noise[:7],
        )  # fmt: skip
        on = self._trojan_on.label_at(b0, n, d) > 0  # (D, n)
        tro = trojans.compose(self._trojan_amp, on, noise[7])
        return Demand(*w) + Demand(*tro)


def _to_samples(intervals: tuple[Activation, ...], hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Activation times back to sample indices (they lie on the grid, so this is exact)."""
    s = np.array([round(a.t_start_s * hz) for a in intervals], np.int64)
    e = np.array([round(a.t_end_s * hz) for a in intervals], np.int64)
    return s, e


def _fields(dm: Demand) -> tuple[np.ndarray, ...]:
    return (dm.cpu, dm.cpu_peak, dm.gpu, dm.emc, dm.cv, dm.mem, dm.io)
