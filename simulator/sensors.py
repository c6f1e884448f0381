"""Sensor-side randomness and sampling: noise streams, episodes, refresh clocks, sample-and-hold.

Everything here is vectorised over devices and time and *chunk invariant*: stepping a chunk of any
size gives bitwise the same values as stepping the whole run at once, because every random number
is tied to an absolute sample index (one sequential generator per device, drawn sample-major) and
every carried state is exact (integers, or values passed through unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.special import ndtri

__all__ = [
    "NOISE_WORDS",
    "NoiseBlock",
    "NoiseSource",
    "EpisodeProcess",
    "RefreshClock",
    "SampleHold",
    "quantise",
]

#: 64-bit words of randomness per device and sample (4 uint16 slots each).
NOISE_WORDS = 10
#: Inverse normal CDF at the 65,536 uint16 mid-quantiles: a uint16 maps to a N(0, 1) draw.
_NORMAL_TABLE = ndtri((np.arange(65536, dtype=np.float64) + 0.5) / 65536.0).astype(np.float32)


class NoiseBlock:
    """The random draws of one chunk as uint16 slots, slot-major (S, D, n), with typed views.

    A uint32 draw j is built from u16 slots 2j (high half) and 2j+1 (low half).
    """

    __slots__ = ("_u16",)

    def __init__(self, slots: np.ndarray) -> None:
        self._u16 = slots  # (S, D, n) uint16

    def normal(self, slot: int) -> np.ndarray:
        """Standard normal draws (16-bit resolution), float32 (D, n)."""
        return _NORMAL_TABLE.take(self._u16[slot])

    def uniform(self, slot: int) -> np.ndarray:
        """Uniform draws in (0, 1) with 16-bit resolution, float32 (D, n)."""
        u = self._u16[slot].astype(np.float32)
        u += np.float32(0.5)
        u *= np.float32(2.0**-16)
        return u

    def u32(self, slot: int) -> np.ndarray:
        """Raw uint32 draws (for rare-event decisions that need fine probabilities), (D, n)."""
        hi = self._u16[2 * slot].astype(np.uint32)
        hi <<= 16
        hi |= self._u16[2 * slot + 1]
        return hi


class NoiseSource:
    """One sequential generator per device, keyed by (seed, tag), drawn sample-major.

    Each sample consumes exactly `NOISE_WORDS` 64-bit words, so the draws for absolute sample i
    are the same whatever the chunking: this is what makes the simulator chunk invariant.
    """

    def __init__(self, seeds: Sequence[int], tag: int) -> None:
        self._gens = [np.random.SFC64(np.random.SeedSequence([int(s), tag])) for s in seeds]

    def draw(self, n: int) -> NoiseBlock:
        slots = np.empty((4 * NOISE_WORDS, len(self._gens), n), np.uint16)  # (S, D, n)
        for d, gen in enumerate(self._gens):
            slots[:, d, :] = gen.random_raw(n * NOISE_WORDS).view(np.uint16).reshape(n, -1).T
        return NoiseBlock(slots)


class EpisodeProcess:
    """Randomly starting episodes of random length; returns the summed amplitude of active ones.

    An episode starts at a sample with probability `rate_hz / hz` and lasts a log-uniform duration
    in `duration_s`. Pending episode ends are kept as a short list, and amplitudes are integers,
    so the running level carried across chunks is exact whatever the episode length.
    """

    def __init__(self, d: int, hz: float, rate_hz: float, duration_s: tuple[float, float]) -> None:
        self.p32 = np.uint32(min(2**32 - 1, round(rate_hz / hz * 2**32)))
        self.lo, self.hi = np.log(duration_s[0] * hz), np.log(duration_s[1] * hz)
        self.level = np.zeros(d, np.int64)  # running sum at the end of the last chunk
        self.end_dev = np.zeros(0, np.int64)  # pending ends: device, absolute sample, amplitude
        self.end_at = np.zeros(0, np.int64)
        self.end_amp = np.zeros(0, np.int64)

    def step(
        self,
        i0: int,
        u_start: np.ndarray,
        u_len: np.ndarray,
        amp: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Summed amplitude of active episodes, int64 (D, n), for samples i0..i0+n-1.

        u_start: uint32 (D, n) start draws; u_len: uniform (D, n) length draws; amp maps the
        (device, sample) indices of new starts to integer amplitudes (default 1).
        """
        d, n = u_start.shape
        delta = np.zeros((d, n), np.int64)
        dev, idx = np.nonzero(u_start < self.p32)
        if dev.size:
            length = np.maximum(np.exp(self.lo + (self.hi - self.lo) * u_len[dev, idx]), 1.0)
            a = np.ones(dev.size, np.int64) if amp is None else amp(dev, idx).astype(np.int64)
            np.add.at(delta, (dev, idx), a)
            self.end_dev = np.concatenate([self.end_dev, dev])
            self.end_at = np.concatenate([self.end_at, i0 + idx + length.astype(np.int64)])
            self.end_amp = np.concatenate([self.end_amp, a])
        due = self.end_at < i0 + n
        if due.any():
            np.add.at(delta, (self.end_dev[due], self.end_at[due] - i0), -self.end_amp[due])
            keep = ~due
            self.end_dev, self.end_at = self.end_dev[keep], self.end_at[keep]
            self.end_amp = self.end_amp[keep]
        level = np.cumsum(delta, axis=1)
        level += self.level[:, None]
        if n:
            self.level = level[:, -1].copy()
        return level


class RefreshClock:
    """Which samples see a new reading of a sensor group refreshed every `period_s` (with jitter).

    The group refreshes at phase + m * period; the sample clock reads it with a jitter of up to
    `jitter_frac` of the device's own period (kept below half a sample so read times stay ordered;
    never a fleet-wide cap, so a run's readings do not depend on the runs beside it). A sample is
    fresh when at least one refresh happened since the previous read.
    """

    def __init__(self, period_s: np.ndarray, phase_s: np.ndarray, hz: float, jitter_frac: float):
        self.inv_period = 1.0 / np.asarray(period_s, np.float64)[:, None]  # (D, 1)
        self.phase = np.asarray(phase_s, np.float64)[:, None]  # (D, 1)
        self.dt = 1.0 / hz
        self.jitter = np.minimum(0.45 * self.dt, jitter_frac * np.asarray(period_s, np.float64))[
            :, None
        ]
        self.count = np.full(len(self.phase), -np.inf)  # forces fresh at sample 0

    def step(self, i0: int, u: np.ndarray) -> np.ndarray:
        """i0: absolute index of the first sample; u: uniform jitter (D, n) -> fresh bool (D, n)."""
        n = u.shape[1]
        t = (i0 + np.arange(n)) * self.dt - self.phase  # (D, n)
        t += (u - np.float32(0.5)) * (2.0 * self.jitter).astype(np.float32)
        t *= self.inv_period
        count = np.floor(t, out=t)
        fresh = np.empty(count.shape, bool)
        np.not_equal(count[:, :1], self.count[:, None], out=fresh[:, :1])
        np.not_equal(count[:, 1:], count[:, :-1], out=fresh[:, 1:])
        if n:
            self.count = count[:, -1].copy()
        return fresh


class SampleHold:
    """Sample-and-hold: stale samples repeat the last fresh value exactly (carried across chunks).

    Sensors read together share one freshness pattern, so the stale positions and the fresh
    position each one repeats are found once per group; each sensor is then one copy and one
    gather-scatter over its stale samples. Column 0 of the working rows is the value carried from
    the previous chunk (always "fresh"), so runs never cross rows or chunks.
    """

    def __init__(self, shape: tuple[int, int], dtype: type = np.float32) -> None:
        self.last = np.zeros(shape, dtype)  # (K, D)

    def step(
        self, values: Sequence[np.ndarray], fresh: np.ndarray, group: Sequence[int]
    ) -> list[np.ndarray]:
        """values: K arrays (D, n); fresh bool (G, D, n); group[k] = fresh row of sensor k.

        Returns K held arrays (D, n).
        """
        g_n, d, n = fresh.shape
        f = np.empty((d, n + 1), bool)
        f[:, 0] = True
        stale_src = []
        for g in range(g_n):
            f[:, 1:] = fresh[g]
            pos = np.flatnonzero(f)
            src = np.repeat(pos, np.diff(pos, append=d * (n + 1)))  # last fresh position
            stale = np.flatnonzero(~f)
            stale_src.append((stale, src[stale]))
        out = []
        for j, g in enumerate(group):
            ext = np.empty((d, n + 1), self.last.dtype)
            ext[:, 0] = self.last[j]
            ext[:, 1:] = values[j]
            flat = ext.reshape(-1)
            stale, src = stale_src[g]
            flat[stale] = flat[src]
            held = ext[:, 1:]
            self.last[j] = held[:, -1]
            out.append(held)
        return out


def quantise(x: np.ndarray, step: float) -> np.ndarray:
    """Round to a multiple of `step` (sensor resolution)."""
    if step == 1.0:
        return np.rint(x)
    return np.rint(x * (1.0 / step)) * step
