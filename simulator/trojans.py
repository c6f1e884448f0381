"""Trojan payloads: the demand an active trojan adds, by family, variant and strength.

Families load their own channels (`WEIGHTS`): compute (mining: every core, a little memory),
mempressure (memory hammer: bandwidth and working set), cv (accelerator abuse: CV and GPU) and
io (exfiltration beacons: network, with the CPU to drive it); training-time augmentation adds
`synthetic` payloads whose mix is drawn from the run's seed (`synthetic_weights`). Amplitudes are calibrated in units of
the benign sample-level noise: `GAIN * strength ** EXPONENT` reference noise stds in a main channel,
so strength 0.6 adds about 5 stds and strength 0.1 about 0.35 (below the noise: hard cases exist).
The variant decides when the payload runs inside an activation: `steady` throughout, `pulsed` on
for 0.5-2 s every 4-10 s (duty 10-30 %). Activations come only from `schedules.activation_intervals`.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from simulator.config import SYNTHETIC_TROJAN, RunSpec, TrojanSpec
from simulator.schedules import Activation
from simulator.workloads import NOISE_REF

__all__ = [
    "WEIGHTS",
    "GAIN",
    "EXPONENT",
    "MODULATION",
    "MODULATION_TAU_S",
    "PULSE_PERIOD_S",
    "PULSE_DUTY",
    "PULSE_ON_S",
    "NOISE_REF_DEMAND",
    "amplitude",
    "synthetic_weights",
    "weights_of",
    "on_segments",
    "compose",
]

#: Channel weights per family, in `workloads.CHANNELS` order (cpu, cpu_peak, gpu, emc, cv, mem, io).
WEIGHTS: dict[str, tuple[float, ...]] = {
    "compute": (1.0, 1.0, 0.0, 0.25, 0.0, 0.1, 0.0),
    "mempressure": (0.3, 0.3, 0.0, 1.0, 0.0, 1.0, 0.0),
    "cv": (0.15, 0.15, 0.5, 0.3, 1.0, 0.0, 0.0),
    "io": (0.25, 0.3, 0.0, 0.0, 0.0, 0.1, 1.0),
}
GAIN = 28.0
EXPONENT = 2.0
#: Relative sample-level fluctuation (std) of an active payload's load, and its correlation time.
MODULATION = 0.1
MODULATION_TAU_S = 0.5
PULSE_PERIOD_S = (4.0, 10.0)
PULSE_DUTY = (0.1, 0.3)
PULSE_ON_S = (0.5, 2.0)
#: Reference benign noise std per `Demand` field (cpu_peak = cpu + gap adds two noises).
NOISE_REF_DEMAND = np.concatenate([NOISE_REF[:1], [math.hypot(*NOISE_REF[:2])], NOISE_REF[2:]])
_STREAM = zlib.crc32(b"simulator.trojans")


def synthetic_weights(seed: int) -> np.ndarray:
    """A randomised payload mix, (7,) in `WEIGHTS` order, deterministic for `seed`.

    Training-time domain randomisation on the payload side, as generic as the synthetic workloads:
    each engine (cpu, gpu, emc, cv, mem, io) gets an independent weight, squared uniform so most
    mixes lean on one or two engines; the largest is 1 (the family scale of `WEIGHTS`), and the
    peak core load moves with the mean one. No weight is copied from a family.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM, 7]))
    cpu, gpu, emc, cv, mem, io = rng.uniform(0.0, 1.0, 6) ** 2
    w = np.array([cpu, cpu, gpu, emc, cv, mem, io])
    return w / w.max()


def weights_of(trojan: TrojanSpec, seed: int) -> np.ndarray:
    """The payload's channel weights: its family's, or the run's own randomised mix."""
    if trojan.family == SYNTHETIC_TROJAN:
        return synthetic_weights(seed)
    return np.asarray(WEIGHTS[trojan.family])


def amplitude(trojan: TrojanSpec | None, seed: int = 0) -> np.ndarray:
    """Demand added per field while the payload runs, (7,) float32; zeros without a trojan.

    `seed` (the run's) only matters for a `synthetic` payload, whose mix it draws.
    """
    if trojan is None:
        return np.zeros(len(NOISE_REF_DEMAND), np.float32)
    w = weights_of(trojan, seed)
    return (GAIN * trojan.strength**EXPONENT * w * NOISE_REF_DEMAND).astype(np.float32)


def on_segments(spec: RunSpec, intervals: tuple[Activation, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Sample-index segments [start, end) during which the payload runs: all inside `intervals`.

    steady: the activations themselves. pulsed: one pulse period (4-10 s) and duty (10-30 %) per
    run, a random phase per activation, pulses clipped to the activation.
    """
    hz = spec.hz
    i0 = np.array([round(a.t_start_s * hz) for a in intervals], np.int64)  # (A,)
    i1 = np.array([round(a.t_end_s * hz) for a in intervals], np.int64)  # (A,)
    if spec.trojan is None or spec.trojan.variant == "steady" or i0.size == 0:
        return i0, i1
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, _STREAM]))
    period_s = rng.uniform(*PULSE_PERIOD_S)
    on_s = np.clip(rng.uniform(*PULSE_DUTY) * period_s, *PULSE_ON_S)
    period = max(2, round(period_s * hz))
    width = min(period - 1, max(1, round(on_s * hz)))
    phase = rng.integers(0, period, i0.size)  # (A,)
    n_pulse = (i1 - i0 + phase) // period + 1  # (A,) pulses starting before each end
    act = np.repeat(np.arange(i0.size), n_pulse)  # (P,)
    k = np.arange(act.size) - np.repeat(np.cumsum(n_pulse) - n_pulse, n_pulse)  # (P,)
    s = i0[act] - phase[act] + k * period
    e = np.minimum(s + width, i1[act])
    s = np.maximum(s, i0[act])
    keep = e > s
    return s[keep], e[keep]


def compose(amp: np.ndarray, on: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Trojan demand per field, (7, D, n) float32: exactly zero wherever `on` is False.

    amp: (7, D, 1) from `amplitude`; on: (D, n) bool; noise: (D, n) unit-variance noise that makes
    the payload's load fluctuate by `MODULATION` (it stays positive: |noise| < 10 always).
    """
    level = on * (np.float32(1.0) + np.float32(MODULATION) * noise)  # (D, n)
    return (amp * level[None]).astype(np.float32, copy=False)
