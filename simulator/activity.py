"""Software activity of a fleet: per-sample `Demand` of each device's workload plus its trojan.

`ActivityModel` draws every device's event lists (workload phases, bursts, spikes; activations and
trojan pulses) once at construction and synthesises samples in fixed internal blocks of `BLOCK`
samples. Each block's noise comes from a generator keyed by (run seed, block index), and the AR(1)
state is carried from block to block, so any chunking of `demand` gives bitwise the same samples.
Blocks are made in order and only the few that a call needs are kept: an hour-long fleet never
holds whole-run arrays.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import fields

import numpy as np

from simulator import trojans, workloads
from simulator.config import RunSpec
from simulator.demand import Demand
from simulator.schedules import Activation, activation_intervals

__all__ = ["BLOCK", "ActivityModel"]

#: Samples per internal block: the unit of noise generation and of AR(1) state hand-over.
BLOCK = 1024
_NOISE_STREAM = zlib.crc32(b"simulator.activity.noise")
#: Innovations per sample: 7 workload channels and the trojan's modulation.
_N_INNOV = 8
_UNIT = math.sqrt(12.0)  # U(-0.5, 0.5) * sqrt(12) has unit variance


class _Segments:
    """Half-open sample-index segments [start, end) of D devices, each carrying K values.

    Sorted by start with a bounded length, so the segments touching a range are found by binary
    search; `sum` and `any` rasterise them over a range with a difference array and a cumsum.
    """

    def __init__(
        self,
        dev: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        values: np.ndarray | None = None,
        max_len: int | None = None,
    ) -> None:
        if values is None:
            values = np.ones((start.size, 1), np.float32)
        if max_len is not None and start.size:  # split long segments so lookups stay local
            pieces = np.maximum(1, -(-(end - start) // max_len))  # (E,)
            idx = np.repeat(np.arange(start.size), pieces)
            k = np.arange(idx.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
            dev, new_start = dev[idx], start[idx] + k * max_len
            end, values, start = np.minimum(new_start + max_len, end[idx]), values[idx], new_start
        order = np.argsort(start, kind="stable")
        self.dev = dev[order].astype(np.intp)
        self.start = start[order].astype(np.int64)
        self.end = end[order].astype(np.int64)
        self.values = np.ascontiguousarray(values[order].T, np.float32)  # (K, E)
        self.max_len = int((self.end - self.start).max()) if self.start.size else 0

    def _select(self, b0: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo = np.searchsorted(self.start, b0 - self.max_len, "left")
        hi = np.searchsorted(self.start, b0 + n, "left")
        sel = np.arange(lo, hi)[self.end[lo:hi] > b0]
        s = np.maximum(self.start[sel] - b0, 0)
        e = np.minimum(self.end[sel] - b0, n)
        return sel, s, e

    def sum(self, b0: int, n: int, d: int) -> np.ndarray:
        """Sum of the values of the segments covering samples b0..b0+n-1: (K, D, n) float32."""
        sel, s, e = self._select(b0, n)
        diff = np.zeros((self.values.shape[0], d, n + 1), np.float32)  # (K, D, n + 1)
        v = self.values[:, sel]  # (K, S)
        np.add.at(diff, (slice(None), self.dev[sel], s), v)
        np.add.at(diff, (slice(None), self.dev[sel], e), -v)
        return np.cumsum(diff[:, :, :n], axis=-1, dtype=np.float32)

    def any(self, b0: int, n: int, d: int) -> np.ndarray:
        """Whether any segment covers each of samples b0..b0+n-1: (D, n) bool."""
        sel, s, e = self._select(b0, n)
        diff = np.zeros((d, n + 1), np.int32)  # (D, n + 1)
        np.add.at(diff, (self.dev[sel], s), 1)
        np.add.at(diff, (self.dev[sel], e), -1)
        return np.cumsum(diff[:, :n], axis=-1) > 0


def _table(per_device: list[tuple[np.ndarray, ...]], max_len: int | None = None) -> _Segments:
    """Stack per-device (start, end[, values]) lists into one `_Segments`."""
    dev = np.concatenate([np.full(p[0].size, i) for i, p in enumerate(per_device)])
    start, end = (np.concatenate([p[j] for p in per_device]) for j in (0, 1))
    values = np.concatenate([p[2] for p in per_device]) if len(per_device[0]) > 2 else None
    return _Segments(dev, start, end, values, max_len)


class ActivityModel:
    """Per-sample software demand of D devices (workload + trojan), synthesised in chunks.

    specs: one `RunSpec` per device, all with the same `hz`. Sample i is at t = i / hz. `intervals`
    holds each device's ground-truth activations; the trojan's demand is driven from exactly those.
    `demand` calls must go forward: each `start` at or after the block the previous call ended in
    (contiguous calls always are); `start == 0` restarts from the beginning.
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
                "The 'specs' parameter of ActivityModel must share one hz. "
                f"Got rates {rates} instead."
            )
        self.specs = tuple(specs)
        self.hz = rates[0]
        self.horizon = max(s.n_samples for s in specs)
        self.intervals: tuple[tuple[Activation, ...], ...] = tuple(
            activation_intervals(s) for s in specs
        )
        d = len(specs)
        self._d = d
        wls = [workloads.device_workload(s, self.horizon) for s in specs]

        def col(name: str) -> np.ndarray:  # (7, D, 1)
            return np.stack([getattr(w, name) for w in wls], axis=1)[:, :, None]

        self._base, self._sens = col("base"), col("sensitivity")
        self._noise_sd, self._spike_amp = col("noise_sd"), col("spike_amp")
        self._spike = np.array(
            [[w.spike_period, w.spike_width, w.spike_phase] for w in wls], np.int64
        )  # (D, 3)
        self._ar_init = np.stack([w.ar_init for w in wls], axis=0)  # (D, 7)
        self._phases = _table(
            [(w.phase_start, w.phase_end, w.phase_level[:, None]) for w in wls], BLOCK
        )
        self._bursts = _table([(w.burst_start, w.burst_end, w.burst_amp) for w in wls])
        self._active = _table(
            [
                (
                    np.array([round(a.t_start_s * self.hz) for a in iv], np.int64),
                    np.array([round(a.t_end_s * self.hz) for a in iv], np.int64),
                )
                for iv in self.intervals
            ]
        )
        self._trojan_on = _table(
            [trojans.on_segments(s, iv) for s, iv in zip(specs, self.intervals, strict=True)]
        )
        self._trojan_amp = np.stack([trojans.amplitude(s.trojan) for s in specs], axis=1)[
            :, :, None
        ]  # (7, D, 1)
        self._phi = workloads.ar_coefficients(self.hz)  # (7,)
        self._keys = [
            np.random.SeedSequence([s.seed, _NOISE_STREAM]).generate_state(2, np.uint64)
            for s in specs
        ]
        self._reset()

    def _reset(self) -> None:
        self._next_block = 0
        self._ar_state = self._ar_init.T.copy()  # (7, D)
        self._blocks: dict[int, Demand] = {}

    def demand(self, start: int, n: int) -> Demand:
        """Demand of samples start..start+n-1 of every device: each field float32 (D, n)."""
        self._check_range(start, n)
        if n == 0:
            return Demand.zeros(self._d, 0)
        first, last = start // BLOCK, (start + n - 1) // BLOCK
        if start == 0 and self._next_block > 0 and 0 not in self._blocks:
            self._reset()
        if first < min(self._blocks, default=self._next_block):
            raise ValueError(
                "The 'start' parameter of ActivityModel.demand must not go back before the block "
                f"of the previous call (sample {min(self._blocks, default=0) * BLOCK}) unless it "
                f"is 0. Got {start} instead."
            )
        while self._next_block <= last:
            k = self._next_block
            block = self._make_block(k)
            if k >= first:
                self._blocks[k] = block
            self._next_block += 1
        for k in [k for k in self._blocks if k < first]:
            del self._blocks[k]
        parts = [
            (self._blocks[k], max(start - k * BLOCK, 0), min(start + n - k * BLOCK, BLOCK))
            for k in range(first, last + 1)
        ]
        return Demand(
            **{
                f.name: np.concatenate([getattr(b, f.name)[:, a:z] for b, a, z in parts], axis=1)
                for f in fields(Demand)
            }
        )

    def active(self, start: int, n: int) -> np.ndarray:
        """(D, n) bool: whether sample time start..start+n-1 lies inside one of `intervals`."""
        self._check_range(start, n)
        return self._active.any(start, n, self._d)

    def _check_range(self, start: int, n: int) -> None:
        if start < 0 or n < 0 or start + n > self.horizon:
            raise ValueError(
                "The 'start' and 'n' parameters of ActivityModel must satisfy "
                f"0 <= start, 0 <= n, start + n <= {self.horizon}. Got start={start}, n={n} "
                "instead."
            )

    def _make_block(self, k: int) -> Demand:
        """Samples k*BLOCK .. (k+1)*BLOCK-1 of every device; advances the AR(1) state."""
        d, b0 = self._d, k * BLOCK
        innov = np.empty((d, _N_INNOV, BLOCK), np.float32)  # (D, 8, B)
        for i, key in enumerate(self._keys):
            rng = np.random.Generator(np.random.Philox(key=key, counter=k << 64))
            rng.random(out=innov[i], dtype=np.float32)
        innov -= 0.5
        innov *= _UNIT
        noise = np.empty((7, d, BLOCK), np.float32)  # (7, D, B)
        for c in range(7):
            noise[c], self._ar_state[c] = workloads.ar1(
                innov[:, c], float(self._phi[c]), self._ar_state[c]
            )
        level = self._phases.sum(b0, BLOCK, d)[0]  # (D, B)
        bursts = self._bursts.sum(b0, BLOCK, d)  # (7, D, B)
        idx = np.arange(b0, b0 + BLOCK)  # (B,)
        period, width, phase = (self._spike[:, j : j + 1] for j in range(3))  # (D, 1) each
        spike_on = (idx - phase) % period < width  # (D, B)
        w = workloads.compose(
            self._base, self._sens, level, self._spike_amp, spike_on, bursts, self._noise_sd, noise
        )
        tro = trojans.compose(self._trojan_amp, self._trojan_on.any(b0, BLOCK, d), innov[:, 7])
        return Demand(*w) + Demand(*tro)
