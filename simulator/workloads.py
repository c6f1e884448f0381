"""Benign workload families: what a device's own application asks of CPU, GPU, memory, CV and IO.

A workload is a per-device mean load (family profile x intensity x a small device variation) shaped
by four processes: a Markov switch between 2-3 phase levels every few minutes, periodic batch spikes
(camera-rate families), random benign bursts in random channels (including the channels trojans
use: the confounders of a naive detector) and sample-level AR(1) noise. This module holds the
profiles, draws one device's event lists and composes samples from them; rasterising the events,
the noise source and chunking live in `simulator/activity.py`.

Internally channel 1 is the busiest core's excess over the mean CPU load ("gap"), so that
cpu_peak = cpu + gap >= cpu by construction; every other channel is the `Demand` field itself.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from simulator.config import SYNTHETIC_WORKLOAD, WORKLOAD_FAMILIES, RunSpec

__all__ = [
    "CHANNELS",
    "NOISE_REF",
    "TAU_S",
    "WorkloadProfile",
    "PROFILES",
    "DeviceWorkload",
    "noise_std",
    "synthetic_profile",
    "profile_of",
    "device_workload",
    "compose",
]

#: Demand fields in the order of every (7, ...) array here and in `simulator/trojans.py`.
CHANNELS = ("cpu", "cpu_peak", "gpu", "emc", "cv", "mem", "io")
_C = len(CHANNELS)
#: Reference sample-level noise std per internal channel (cpu, gap, gpu, emc, cv, mem, io).
NOISE_REF = np.array([0.03, 0.04, 0.04, 0.03, 0.03, 0.02, 0.03])
#: Correlation time of the AR(1) noise per internal channel, seconds (the noise itself is drawn by
#: `simulator/activity.py`).
TAU_S = np.array([0.6, 0.4, 1.0, 0.8, 1.0, 3.0, 0.4])
_STREAM = zlib.crc32(b"simulator.workloads")
_BURST_MAX_S = 60.0
_PHASE_MIN_DWELL_S = 10.0
_BATCH_PHASES = 32
_BATCH_BURSTS = 256


@dataclass(frozen=True, slots=True)
class WorkloadProfile:
    """A workload family. Tuples of 7 follow the internal channels (cpu, gap, gpu, emc, cv, mem, io).

    base: mean load at intensity 1. noise: factor on `NOISE_REF`. phase_levels: load multipliers the
    Markov switch moves between; phase_sensitivity: how strongly each channel follows them.
    bursts: (weight, amplitude) templates, scaled by U(0.5, 1.5) per burst; durations log-normal
    around burst_median_s, or Pareto(burst_pareto) above it (heavy-tailed), capped at 60 s.
    spike_*: periodic batch spikes (period and width ranges in seconds, drawn per device).
    """

    base: tuple[float, ...]
    noise: tuple[float, ...]
    phase_levels: tuple[float, ...]
    phase_sensitivity: tuple[float, ...]
    phase_dwell_s: float
    burst_rate_hz: float
    burst_median_s: float
    bursts: tuple[tuple[float, tuple[float, ...]], ...]
    burst_pareto: float | None = None
    spike_period_s: tuple[float, float] | None = None
    spike_width_s: tuple[float, float] = (0.0, 0.0)
    spike_amp: tuple[float, ...] = (0.0,) * 7


#           cpu   gap   gpu   emc   cv    mem   io
_CPU_BURST = (0.20, 0.15, 0.00, 0.03, 0.00, 0.02, 0.00)
_MEM_BURST = (0.05, 0.03, 0.00, 0.14, 0.00, 0.14, 0.00)
_IO_BURST = (0.06, 0.08, 0.00, 0.02, 0.00, 0.02, 0.28)
_CV_BURST = (0.03, 0.02, 0.08, 0.04, 0.20, 0.00, 0.00)
_GPU_BURST = (0.04, 0.02, 0.25, 0.10, 0.00, 0.04, 0.00)
_GPU_STALL = (0.00, 0.00, -0.25, -0.10, 0.00, 0.00, 0.00)


def _mix(base: tuple[float, ...], k: float) -> tuple[float, ...]:
    """A burst of the workload's own work: every channel it uses scaled by k (more of the same)."""
    return tuple(round(k * b, 4) for b in base)


def _half(template: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(0.5 * a for a in template)


# Bursts are mostly more (or, for stalls, less) of the workload's own work, in its own channel mix:
# a naive threshold on power or utilisation alarms on them, a detector that reads the mix need not.
# A minority are off-mix spikes in single resources, at half amplitude: the hard confounders.
PROFILES: dict[str, WorkloadProfile] = {
    "periodic_inference": WorkloadProfile(
        base=(0.30, 0.25, 0.42, 0.32, 0.10, 0.25, 0.10),
        noise=(1.0, 1.0, 1.2, 1.0, 0.9, 1.0, 1.0),
        phase_levels=(0.7, 1.0, 1.25),
        phase_sensitivity=(1.0, 0.5, 1.0, 0.8, 0.5, 0.6, 0.5),
        phase_dwell_s=180.0,
        burst_rate_hz=1 / 45,
        burst_median_s=2.0,
        bursts=(
            (0.85, _mix((0.30, 0.25, 0.42, 0.32, 0.10, 0.25, 0.10), 0.6)),
            (0.15, _half(_CPU_BURST)),
        ),
        spike_period_s=(2.0, 5.0),
        spike_width_s=(0.3, 0.8),
        spike_amp=(0.12, 0.05, 0.30, 0.12, 0.00, 0.05, 0.00),
    ),
    "gpu_streaming": WorkloadProfile(
        base=(0.22, 0.20, 0.80, 0.50, 0.12, 0.30, 0.08),
        noise=(0.9, 0.9, 1.1, 1.1, 0.9, 1.0, 0.8),
        phase_levels=(0.8, 1.0, 1.12),
        phase_sensitivity=(0.8, 0.5, 1.0, 1.0, 0.6, 0.6, 0.5),
        phase_dwell_s=240.0,
        burst_rate_hz=1 / 60,
        burst_median_s=3.0,
        bursts=(
            (0.45, _mix((0.22, 0.20, 0.80, 0.50, 0.12, 0.30, 0.08), 0.4)),
            (0.4, _mix((0.22, 0.20, 0.80, 0.50, 0.12, 0.30, 0.08), -0.35)),
            (0.15, _half(_CV_BURST)),
        ),
    ),
    "memory_bound": WorkloadProfile(
        base=(0.40, 0.22, 0.18, 0.70, 0.08, 0.60, 0.10),
        noise=(1.1, 1.0, 0.9, 1.2, 0.8, 1.2, 0.9),
        phase_levels=(0.75, 1.0, 1.2),
        phase_sensitivity=(0.8, 0.5, 0.5, 1.0, 0.4, 1.0, 0.5),
        phase_dwell_s=150.0,
        burst_rate_hz=1 / 40,
        burst_median_s=2.5,
        bursts=(
            (0.85, _mix((0.40, 0.22, 0.18, 0.70, 0.08, 0.60, 0.10), 0.5)),
            (0.15, _half(_IO_BURST)),
        ),
    ),
    "bursty_network": WorkloadProfile(
        base=(0.34, 0.30, 0.15, 0.28, 0.08, 0.25, 0.35),
        noise=(1.1, 1.2, 0.8, 0.9, 0.8, 0.9, 1.25),
        phase_levels=(0.6, 1.0, 1.3),
        phase_sensitivity=(1.0, 0.5, 0.4, 0.6, 0.3, 0.5, 1.0),
        phase_dwell_s=120.0,
        burst_rate_hz=1 / 12,
        burst_median_s=0.8,
        burst_pareto=1.3,
        bursts=(
            (0.85, _mix((0.34, 0.30, 0.15, 0.28, 0.08, 0.25, 0.35), 0.6)),
            (0.15, _half(_MEM_BURST)),
        ),
    ),
    "cv_pipeline": WorkloadProfile(
        base=(0.35, 0.25, 0.45, 0.40, 0.55, 0.32, 0.12),
        noise=(1.0, 1.0, 1.0, 1.0, 1.25, 1.0, 1.0),
        phase_levels=(0.7, 1.0, 1.2),
        phase_sensitivity=(1.0, 0.5, 0.8, 0.8, 1.0, 0.6, 0.5),
        phase_dwell_s=200.0,
        burst_rate_hz=1 / 50,
        burst_median_s=2.0,
        bursts=(
            (0.85, _mix((0.35, 0.25, 0.45, 0.40, 0.55, 0.32, 0.12), 0.45)),
            (0.15, _half(_IO_BURST)),
        ),
        spike_period_s=(1.0, 3.0),
        spike_width_s=(0.2, 0.5),
        spike_amp=(0.05, 0.03, 0.10, 0.05, 0.20, 0.03, 0.00),
    ),
}
assert tuple(PROFILES) == WORKLOAD_FAMILIES

_CONFOUNDERS = (_CPU_BURST, _MEM_BURST, _IO_BURST, _CV_BURST, _GPU_BURST)


def synthetic_profile(seed: int) -> WorkloadProfile:
    """A randomised benign workload, deterministic for `seed`: training-time domain randomisation.

    A generic prior, not a copy of any family: every engine's mean load is drawn independently from
    idle to heavy (CPU always somewhat busy), then phases, bursts of the profile's own mix (up, and
    sometimes down), a minority of half-amplitude single-resource confounders and, for half of the
    profiles, camera-rate spikes of the own mix. A detector trained on many such mixes learns that
    "more of the same work" is benign whatever the mix, which is what an unseen workload needs.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM, 3]))
    lo = np.array([0.10, 0.10, 0.0, 0.0, 0.0, 0.0, 0.0])
    hi = np.array([0.50, 0.35, 0.8, 0.8, 0.8, 0.8, 0.5])
    base = tuple(round(float(v), 3) for v in rng.uniform(lo, hi))
    levels = [float(rng.uniform(0.55, 0.85)), 1.0, float(rng.uniform(1.1, 1.35))]
    if rng.random() < 0.3:
        levels.pop(1)
    bursts = [(0.85, _mix(base, float(rng.uniform(0.35, 0.65))))]
    if rng.random() < 0.3:
        bursts = [(0.45, bursts[0][1]), (0.4, _mix(base, -float(rng.uniform(0.2, 0.4))))]
    bursts.append((0.15, _half(_CONFOUNDERS[int(rng.integers(len(_CONFOUNDERS)))])))
    spikes = rng.random() < 0.5
    period = float(rng.uniform(1.0, 4.0))
    return WorkloadProfile(
        base=base,
        noise=tuple(round(float(v), 3) for v in rng.uniform(0.8, 1.25, _C)),
        phase_levels=tuple(round(v, 3) for v in levels),
        phase_sensitivity=tuple(round(float(v), 3) for v in rng.uniform(0.3, 1.0, _C)),
        phase_dwell_s=float(rng.uniform(90.0, 300.0)),
        burst_rate_hz=1.0 / float(rng.uniform(10.0, 60.0)),
        burst_median_s=float(rng.uniform(0.8, 3.0)),
        burst_pareto=float(rng.uniform(1.2, 2.0)) if rng.random() < 0.3 else None,
        bursts=tuple(bursts),
        spike_period_s=(period, period + float(rng.uniform(0.5, 2.0))) if spikes else None,
        spike_width_s=(0.2, 0.6),
        spike_amp=_mix(base, float(rng.uniform(0.1, 0.5))) if spikes else (0.0,) * _C,
    )


def profile_of(spec: RunSpec) -> WorkloadProfile:
    """The run's workload profile: its family's, or its own randomised one (`synthetic_profile`)."""
    if spec.workload.family == SYNTHETIC_WORKLOAD:
        return synthetic_profile(spec.seed)
    return PROFILES[spec.workload.family]


def noise_std(family: str) -> np.ndarray:
    """Sample-level (AR(1) marginal) noise std of a family, per `Demand` field in `CHANNELS` order."""
    sd = NOISE_REF * np.asarray(PROFILES[family].noise)  # (7,) internal channels
    out = sd.copy()
    out[1] = math.hypot(sd[0], sd[1])  # cpu_peak = cpu + gap: independent noises add
    return out


@dataclass(frozen=True, slots=True)
class DeviceWorkload:
    """One device's workload: per-channel parameters (7,) and event lists in sample indices.

    Phase segments tile [0, horizon) with a load multiplier each; bursts are [start, end) with an
    amplitude vector each; spikes are on while (i - spike_phase) % spike_period < spike_width.
    """

    base: np.ndarray
    noise_sd: np.ndarray
    sensitivity: np.ndarray
    phase_start: np.ndarray
    phase_end: np.ndarray
    phase_level: np.ndarray
    burst_start: np.ndarray
    burst_end: np.ndarray
    burst_amp: np.ndarray
    spike_period: int
    spike_width: int
    spike_phase: int
    spike_amp: np.ndarray


def device_workload(spec: RunSpec, horizon: int) -> DeviceWorkload:
    """Draw one device's workload parameters and events up to sample `horizon`, from `spec.seed`.

    Events are drawn in fixed-size batches from their own streams, so those before any sample are
    the same whatever the horizon: a run does not change with the fleet it is simulated in.
    """
    prof = profile_of(spec)
    hz = spec.hz
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, _STREAM, 0]))
    scale = 0.4 + 0.6 * spec.workload.intensity
    base = np.asarray(prof.base) * scale * rng.uniform(0.9, 1.1, _C)
    noise_sd = NOISE_REF * np.asarray(prof.noise)
    if prof.spike_period_s is None:
        period, width, phase = 1, 0, 0
    else:
        period = max(2, round(rng.uniform(*prof.spike_period_s) * hz))
        width = min(period - 1, max(1, round(rng.uniform(*prof.spike_width_s) * hz)))
        phase = int(rng.integers(0, period))
    ps, pe, pl = _phases(prof, spec.seed, hz, horizon)
    bs, be, ba = _bursts(prof, spec.seed, hz, horizon)
    f32 = np.float32
    return DeviceWorkload(
        base=base.astype(f32),
        noise_sd=noise_sd.astype(f32),
        sensitivity=np.asarray(prof.phase_sensitivity, f32),
        phase_start=ps,
        phase_end=pe,
        phase_level=pl.astype(f32),
        burst_start=bs,
        burst_end=be,
        burst_amp=ba.astype(f32),
        spike_period=period,
        spike_width=width,
        spike_phase=phase,
        spike_amp=(np.asarray(prof.spike_amp) * scale).astype(f32),
    )


def _phases(
    prof: WorkloadProfile, seed: int, hz: float, horizon: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Markov switch: each dwell is 10 s + exponential, the next level uniform among the others.

    The first dwell is memoryless from t = 0 and the first level uniform, so phases are stationary.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM, 1]))
    n_lv = len(prof.phase_levels)
    level = int(rng.integers(0, n_lv))
    t, starts, levels = 0.0, [], []
    mean_extra = prof.phase_dwell_s - _PHASE_MIN_DWELL_S
    while not starts or t * hz < horizon:
        dwell = _PHASE_MIN_DWELL_S + rng.exponential(mean_extra, _BATCH_PHASES)  # (P,)
        steps = rng.integers(1, n_lv, _BATCH_PHASES)  # (P,)
        lv = (level + np.concatenate([[0], np.cumsum(steps[:-1])])) % n_lv
        starts.append(t + np.concatenate([[0.0], np.cumsum(dwell[:-1])]))
        levels.append(lv)
        t += float(dwell.sum())
        level = int((lv[-1] + steps[-1]) % n_lv)
    s = np.round(np.concatenate(starts) * hz).astype(np.int64)
    e = np.append(s[1:], np.iinfo(np.int64).max)
    keep = (s < horizon) & (e > s)
    s, e = s[keep], np.minimum(e[keep], horizon)
    return s, e, np.asarray(prof.phase_levels)[np.concatenate(levels)[keep]]


def _bursts(
    prof: WorkloadProfile, seed: int, hz: float, horizon: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bursts separated by exponential quiet gaps; per burst a template (by weight), a gain in
    U(0.5, 1.5) and a duration. Bursts of one device never overlap, so a sample is in at most one.
    The process starts a minute before t = 0, so the first burst is not tied to the start."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM, 2]))
    weights = np.asarray([w for w, _ in prof.bursts])
    templates = np.asarray([a for _, a in prof.bursts])  # (T, 7)
    t, onsets, durs, amps = -_BURST_MAX_S, [], [], []
    while t * hz < horizon:
        gaps = rng.exponential(1.0 / prof.burst_rate_hz, _BATCH_BURSTS)  # (N,)
        kind = rng.choice(len(weights), _BATCH_BURSTS, p=weights / weights.sum())  # (N,)
        gain = rng.uniform(0.5, 1.5, _BATCH_BURSTS)  # (N,)
        if prof.burst_pareto is None:
            dur = prof.burst_median_s * np.exp(0.8 * rng.standard_normal(_BATCH_BURSTS))
        else:
            dur = prof.burst_median_s * (1.0 + rng.pareto(prof.burst_pareto, _BATCH_BURSTS))
        dur = np.minimum(dur, _BURST_MAX_S)
        ends = t + np.cumsum(gaps + dur)  # (N,)
        onsets.append(ends - dur)
        durs.append(dur)
        amps.append(templates[kind] * gain[:, None])
        t = float(ends[-1])
    on = np.concatenate(onsets)
    s = np.round(on * hz).astype(np.int64)
    e = np.round((on + np.concatenate(durs)) * hz).astype(np.int64)
    keep = (s < horizon) & (e > 0) & (e > s)
    return np.maximum(s[keep], 0), np.minimum(e[keep], horizon), np.concatenate(amps)[keep]


def compose(
    base: np.ndarray,
    sensitivity: np.ndarray,
    level: np.ndarray,
    spike_amp: np.ndarray,
    spike_on: np.ndarray,
    bursts: np.ndarray,
    noise_sd: np.ndarray,
    noise: np.ndarray,
) -> np.ndarray:
    """Workload demand per `Demand` field, (7, D, n) float32 in [0, 1] with cpu_peak >= cpu.

    base, sensitivity, spike_amp, noise_sd: (7, D, 1); level, spike_on: (D, n);
    bursts: (7, D, n); noise: (7, D, n) unit-variance AR(1), overwritten.
    """
    w = sensitivity * (level - np.float32(1.0))[None]  # (7, D, n)
    w += np.float32(1.0)
    w *= base
    w += spike_amp * spike_on[None]
    w += bursts
    noise *= noise_sd
    w += noise
    np.clip(w, 0.0, 1.0, out=w)
    w[1] += w[0]  # cpu_peak = cpu + gap
    np.minimum(w[1], 1.0, out=w[1])
    return w
