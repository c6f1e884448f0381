"""Operating regime: power-mode caps and budgets, the ambient trajectory, input-voltage effects.

The ambient is the regime's set point plus a slow drift and benign events (a door opening cools
the room, sun load or a closed enclosure warms it), all low-pass filtered like room air. Events
and drift come from the run's `seed`, never from the activity, so they are pure confounders.
The input voltage sags with the current drawn through the supply lead, sets the input
converter's efficiency (its loss heats the board) and, below a threshold, lowers the power
budget like the module's input over-current protection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from simulator.sensors import EpisodeProcess, NoiseBlock

__all__ = [
    "ModeLimits",
    "POWER_MODE_LIMITS",
    "mode_tops",
    "power_budget_w",
    "input_voltage",
    "Ambient",
]


@dataclass(frozen=True)
class ModeLimits:
    """Highest allowed level index per domain (cpu, gpu, emc) and the module power budget (W)."""

    top: tuple[int, int, int]
    budget_w: float


POWER_MODE_LIMITS = {
    "MAXN": ModeLimits((6, 4, 5), 60.0),
    "30W": ModeLimits((5, 3, 5), 30.0),
    "15W": ModeLimits((3, 1, 3), 15.0),
}
UNDERVOLTAGE_V = 9.0
UNDERVOLTAGE_BUDGET_W = 22.0
#: Resistance of the supply lead and connector (ohm).
SOURCE_OHM = 0.04

#: Ambient events: start rate (per s), duration range (s), and three kinds (amplitude ranges, °C).
EVENT_RATE_HZ = 1.0 / 1200.0
EVENT_DURATION_S = (30.0, 1800.0)
EVENT_KINDS_C = ((-6.0, -2.0), (3.0, 8.0), (2.0, 5.0))  # door open, sun load, enclosure heat
AIR_TAU_S = 90.0
DRIFT_AMPLITUDE_C = (0.2, 1.0)
DRIFT_PERIOD_S = (2400.0, 7200.0)
_REGIME_TAG = 0x5E61


def mode_tops(modes: Sequence[str]) -> np.ndarray:
    """Top level index per domain and device, (3, D) int."""
    return np.array([POWER_MODE_LIMITS[m].top for m in modes]).T


def power_budget_w(modes: Sequence[str], v_in: np.ndarray) -> np.ndarray:
    """Module power budget (D,) in W, reduced on a weak (low-voltage) supply."""
    budget = np.array([POWER_MODE_LIMITS[m].budget_w for m in modes])
    return np.where(
        np.asarray(v_in) < UNDERVOLTAGE_V, np.minimum(budget, UNDERVOLTAGE_BUDGET_W), budget
    )


def input_voltage(v_nom: np.ndarray, p_in_w: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Voltage at the board input (D, n): nominal minus the lead's IR drop, plus 5 mV noise."""
    v = v_nom[:, None] - SOURCE_OHM * p_in_w / v_nom[:, None] + 0.005 * z
    return np.rint(v * 1000.0) * 1e-3


class Ambient:
    """Ambient temperature per device and sample, chunk invariant."""

    def __init__(self, base_c: np.ndarray, seeds: Sequence[int], hz: float) -> None:
        self.base = np.asarray(base_c, np.float64)  # (D,)
        self.dt = 1.0 / hz
        rngs = [np.random.default_rng([int(s), _REGIME_TAG]) for s in seeds]
        self.drift_amp = np.array([r.uniform(*DRIFT_AMPLITUDE_C) for r in rngs])
        self.drift_w = 2 * np.pi / np.array([r.uniform(*DRIFT_PERIOD_S) for r in rngs])
        self.drift_phase = np.array([r.uniform(0, 2 * np.pi) for r in rngs])
        self.events = EpisodeProcess(len(self.base), hz, EVENT_RATE_HZ, EVENT_DURATION_S)
        self.a = np.exp(-self.dt / AIR_TAU_S)
        self.zi: np.ndarray | None = None

    def step(self, i0: int, noise: NoiseBlock, s_start: int, s_len: int, s_amp: int) -> np.ndarray:
        """Ambient (D, n) in °C for samples i0..i0+n-1."""
        u_amp = noise.uniform(s_amp)
        offset_mc = self.events.step(
            i0,
            noise.u32(s_start),
            noise.uniform(s_len),
            lambda d, i: _event_amplitude_mc(u_amp[d, i]),
        )
        t = (i0 + np.arange(offset_mc.shape[1])) * self.dt
        drift = self.drift_amp[:, None] * np.sin(
            self.drift_w[:, None] * t + self.drift_phase[:, None]
        )
        target = offset_mc * 1e-3 + drift  # (D, n)
        if self.zi is None:
            self.zi = target[:, :1] * self.a
        lagged, self.zi = lfilter([1.0 - self.a], [1.0, -self.a], target, axis=1, zi=self.zi)
        return self.base[:, None] + lagged


def _event_amplitude_mc(u: np.ndarray) -> np.ndarray:
    """Map uniform draws to an event kind (a third each) and its amplitude in milli-°C."""
    kind = np.minimum((u * 3).astype(np.int64), 2)
    frac = u * 3 - kind
    lo = np.array([k[0] for k in EVENT_KINDS_C])[kind]
    hi = np.array([k[1] for k in EVENT_KINDS_C])[kind]
    return np.rint((lo + (hi - lo) * frac) * 1000.0).astype(np.int64)
