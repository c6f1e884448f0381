"""DVFS: frequency step tables, a demand-following governor with time-based slew, and the caps.

Three clock domains (CPU, GPU, EMC) are handled as one stacked axis of length 3. Levels live in
one flat table (`FLAT_FREQ_MHZ`) so a single gather turns a (3, D) level array into frequencies.
The caps combine the power mode, `jetson_clocks` (which pins the governor at the cap) and the
thermal / soft-power throttle, which steps a cap down above its trip point and back up below its
recovery point (a hysteresis band, so it never chatters).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

__all__ = [
    "CPU_FREQS_MHZ",
    "GPU_FREQS_MHZ",
    "EMC_FREQS_MHZ",
    "FLAT_FREQ_MHZ",
    "FLAT_V2",
    "OFFSETS",
    "F_MAX_MHZ",
    "DemandFilter",
    "governor_levels",
    "Dvfs",
]

CPU_FREQS_MHZ = np.array([345.6, 652.8, 960.0, 1267.2, 1574.4, 1881.6, 2201.6])
GPU_FREQS_MHZ = np.array([318.75, 510.0, 714.0, 918.0, 1100.0])
EMC_FREQS_MHZ = np.array([800.0, 1066.0, 1333.0, 1600.0, 1866.0, 2133.0])
_TABLES = (CPU_FREQS_MHZ, GPU_FREQS_MHZ, EMC_FREQS_MHZ)
_VOLTS = (np.linspace(0.60, 1.00, 7), np.linspace(0.60, 1.00, 5), np.linspace(0.75, 1.00, 6))

#: Flat index of level 0 of each domain; flat level = OFFSETS[u] + level.
OFFSETS = np.array([0, 7, 12])
FLAT_FREQ_MHZ = np.concatenate(_TABLES)
FLAT_V2 = np.concatenate(_VOLTS) ** 2
F_MAX_MHZ = np.array([t[-1] for t in _TABLES])
_N_LEVELS = np.array([len(t) for t in _TABLES])

#: The governor aims for about 80 % busy at the chosen frequency.
HEADROOM = 1.25
#: Governor load-tracking time constants (s) and slew (s per step, up / down) per domain.
FILTER_TAU_S = (0.25, 0.4, 1.0)
SLEW_UP_S = (0.2, 0.3, 0.5)
SLEW_DOWN_S = (0.1, 0.15, 0.25)
#: Throttle trip and recovery temperatures (°C) of the zone that governs each domain.
TRIP_C = np.array([[88.0], [88.0], [95.0]])
RECOVERY_C = np.array([[82.0], [82.0], [89.0]])
#: Throttle stepping: down at most every DOWN_S while hot, up at most every UP_S while cool.
THROTTLE_DOWN_S = 1.0
THROTTLE_UP_S = 3.0
#: Soft power cap acts on CPU and GPU only; it releases below this fraction of the budget.
_CAP_DOMAINS = np.array([[True], [True], [False]])
SOFT_CAP_RELEASE = 0.9


class DemandFilter:
    """The governor's load estimate: a first-order low-pass of the demand, carried across chunks."""

    def __init__(self, d: int, hz: float) -> None:
        self.a = np.exp(-1.0 / (hz * np.array(FILTER_TAU_S)))  # (3,)
        self.zi: list[np.ndarray | None] = [None, None, None]

    def step(self, demand3: np.ndarray) -> np.ndarray:
        """Time-major demand (n, 3, D) -> filtered load (n, 3, D), float64."""
        out = np.empty(demand3.shape)
        for u in range(3):
            x = demand3[:, u].astype(np.float64)  # (n, D)
            zi = self.zi[u] if self.zi[u] is not None else x[:1] * self.a[u]
            out[:, u], self.zi[u] = lfilter([1.0 - self.a[u]], [1.0, -self.a[u]], x, axis=0, zi=zi)
        return out


def governor_levels(load3: np.ndarray) -> np.ndarray:
    """Flat target level for a filtered load (n, 3, D): the lowest step with ~20 % headroom."""
    out = np.empty(load3.shape)
    for u, table in enumerate(_TABLES):
        lvl = np.searchsorted(table, load3[:, u] * (F_MAX_MHZ[u] * HEADROOM))
        out[:, u] = np.minimum(lvl, _N_LEVELS[u] - 1) + OFFSETS[u]
    return out


class Dvfs:
    """Per-device DVFS state: slewed level position, throttle cap and its step timer.

    `slew` runs every sample; `control` runs at the thermal governor's polling ticks.
    """

    def __init__(self, mode_top: np.ndarray, pinned: np.ndarray, hz: float) -> None:
        """mode_top: (3, D) highest level index allowed by the power mode; pinned: (D,) bool."""
        dt = 1.0 / hz
        self.cap_max = (mode_top + OFFSETS[:, None]).astype(np.float64)  # (3, D) flat
        self.cap_min = np.broadcast_to(OFFSETS[:, None].astype(np.float64), self.cap_max.shape)
        self.cap = self.cap_max.copy()
        self.pinned = pinned
        self.lf = self.cap_min.copy()  # (3, D) flat level position
        self.r_up = (dt / np.array(SLEW_UP_S))[:, None]
        self.r_dn = (-dt / np.array(SLEW_DOWN_S))[:, None]
        self.timer = np.zeros(self.cap.shape)

    def start(self, target: np.ndarray) -> None:
        """Start at the capped target of the first sample (as if already running)."""
        self.lf = np.minimum(np.where(self.pinned, self.cap_max, target), self.cap)

    def slew(self, target: np.ndarray) -> np.ndarray:
        """Move toward min(target, cap) by at most one slew budget; return flat levels (3, D)."""
        step = np.minimum(target, self.cap)
        step -= self.lf
        np.minimum(step, self.r_up, out=step)
        np.maximum(step, self.r_dn, out=step)
        self.lf += step
        return (self.lf + 0.5).astype(np.intp)

    def control(self, temps3: np.ndarray, p_avg: np.ndarray, budget: np.ndarray, dt: float):
        """Throttle tick: temps3 (3, D) zone temperatures, p_avg/budget (D,) module power in W."""
        self.timer += dt
        hot = temps3 > TRIP_C
        hot |= _CAP_DOMAINS & (p_avg > budget)
        cool = temps3 < RECOVERY_C
        cool &= p_avg < SOFT_CAP_RELEASE * budget
        down = hot & (self.timer >= THROTTLE_DOWN_S) & (self.cap > self.cap_min)
        up = cool & (self.timer >= THROTTLE_UP_S) & (self.cap < self.cap_max)
        self.cap += up
        self.cap -= down
        self.timer[down | up] = 0.0


def pinned_targets(target: np.ndarray, pinned: np.ndarray, cap_max: np.ndarray) -> np.ndarray:
    """jetson_clocks: the governor asks for the top allowed level whatever the load (n, 3, D)."""
    return np.where(pinned, cap_max, target) if pinned.any() else target
