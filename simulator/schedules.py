"""Trojan activation schedules: the ground-truth list of intervals during which a trojan is active.

The interval list is the one source of truth: it is written to `intervals.csv` and it is what drives
the trojan's demand in `simulator/activity.py`. Both active kinds are stationary: the on/off process
starts well before t = 0 in its equilibrium state (periodic: uniform phase; random: the equilibrium
of the alternating renewal process), so P(active at t) does not depend on the time since start.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from simulator.config import RunSpec, ScheduleSpec

__all__ = ["Activation", "activation_intervals"]

#: Seed-stream key of the schedule's generator, so that it never shares draws with other parts.
_STREAM = zlib.crc32(b"simulator.schedules")
#: Cycles drawn per batch; fixed so that the intervals of a run do not depend on its duration.
_BATCH = 64
#: Warm-up before t = 0, in periods or mean on/off cycles.
_WARMUP_CYCLES = 3.0
#: Smallest off-gap kept between two jittered periodic activations, in seconds (capped at half the
#: nominal gap), so that jitter can shorten an activation but never merges two of them.
_MIN_GAP_S = 1.0


@dataclass(frozen=True, slots=True)
class Activation:
    """One ground-truth activation, half-open [t_start_s, t_end_s) in seconds of simulation time."""

    t_start_s: float
    t_end_s: float
    family: str
    variant: str
    strength: float


def activation_intervals(spec: RunSpec) -> tuple[Activation, ...]:
    """The run's activations: sorted, non-overlapping, on the sample grid, inside [0, duration_s).

    Empty for benign runs and dormant schedules. Deterministic from `spec.seed`. Start and end are
    multiples of 1 / hz; the end never passes the last whole sample period inside `duration_s`.
    """
    if spec.trojan is None or spec.schedule is None or spec.schedule.kind == "dormant":
        return ()
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, _STREAM]))
    if spec.schedule.kind == "periodic":
        starts, ends = _periodic(spec.schedule, spec.duration_s, rng)
    else:
        starts, ends = _random(spec.schedule, spec.duration_s, rng)
    i0, i1 = _to_grid(starts, ends, spec.duration_s, spec.hz)
    tro = spec.trojan
    return tuple(
        Activation(a / spec.hz, b / spec.hz, tro.family, tro.variant, tro.strength)
        for a, b in zip(i0.tolist(), i1.tolist(), strict=True)
    )


def _periodic(
    sched: ScheduleSpec, horizon_s: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """On for `on_s` at onsets phase + k * period + jitter; the uniform phase makes it stationary.

    Each onset moves by up to +-jitter/2 periods, so consecutive onsets are (1 +- jitter) periods
    apart. An activation that would run into the next one is cut `_MIN_GAP_S` before it.
    """
    period, on = float(sched.period_s), float(sched.on_s)  # type: ignore[arg-type]
    phase = rng.uniform(0.0, period)
    k = np.arange(-_WARMUP_CYCLES, math.ceil(horizon_s / period) + 2)  # (K,)
    onsets = phase + k * period + sched.jitter * period * rng.uniform(-0.5, 0.5, k.size)
    gap = min(_MIN_GAP_S, 0.5 * (period - on))
    ends = np.minimum(onsets + on, np.append(onsets[1:] - gap, np.inf))
    return onsets, ends


def _random(
    sched: ScheduleSpec, horizon_s: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Alternating log-uniform on-durations and off-gaps, started in equilibrium before t = 0.

    In equilibrium the process is on with probability E[on] / (E[on] + E[off]), and the time left in
    the current state is U * L with L length-biased; for a log-uniform law on [a, b] the
    length-biased law is uniform on [a, b].
    """
    on_lo, on_hi = _check_range("on_range_s", sched.on_range_s)
    off_lo, off_hi = _check_range("gap_range_s", sched.gap_range_s)
    mean_on, mean_off = _loguniform_mean(on_lo, on_hi), _loguniform_mean(off_lo, off_hi)
    t = -_WARMUP_CYCLES * (mean_on + mean_off)
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    if rng.random() < mean_on / (mean_on + mean_off):
        left = rng.uniform(on_lo, on_hi) * rng.random()
        starts.append(np.array([t]))
        ends.append(np.array([t + left]))
        t += left + _loguniform(rng, off_lo, off_hi, 1)[0]
    else:
        t += rng.uniform(off_lo, off_hi) * rng.random()
    while t < horizon_s:
        on_d = _loguniform(rng, on_lo, on_hi, _BATCH)  # (B,)
        off_d = _loguniform(rng, off_lo, off_hi, _BATCH)  # (B,)
        cycle_end = t + np.cumsum(on_d + off_d)
        s = cycle_end - on_d - off_d
        starts.append(s)
        ends.append(s + on_d)
        t = float(cycle_end[-1])
    return np.concatenate(starts), np.concatenate(ends)


def _to_grid(
    starts: np.ndarray, ends: np.ndarray, duration_s: float, hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """Round to sample indices, clip to the run, drop empty intervals and merge touching ones."""
    n_max = math.floor(duration_s * hz + 1e-9)
    i0 = np.clip(np.round(starts * hz), 0, n_max).astype(np.int64)
    i1 = np.clip(np.round(ends * hz), 0, n_max).astype(np.int64)
    keep = i1 > i0
    i0, i1 = i0[keep], i1[keep]
    if i0.size > 1:  # rounding can make a very short gap vanish: merge rather than overlap
        new = np.concatenate([[True], i0[1:] > i1[:-1]])  # (K,) first of each merged run
        i1 = np.maximum.reduceat(i1, np.flatnonzero(new))
        i0 = i0[new]
    return i0, i1


def _check_range(name: str, rng_s: tuple[float, float] | None) -> tuple[float, float]:
    if rng_s is None or not (0.0 < rng_s[0] <= rng_s[1] and math.isfinite(rng_s[1])):
        raise ValueError(
            f"The '{name}' parameter of ScheduleSpec must be (low, high) with 0 < low <= high. "
            f"Got {rng_s!r} instead."
        )
    return float(rng_s[0]), float(rng_s[1])


def _loguniform_mean(lo: float, hi: float) -> float:
    return lo if hi == lo else (hi - lo) / math.log(hi / lo)


def _loguniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(math.log(lo), math.log(hi), n))
