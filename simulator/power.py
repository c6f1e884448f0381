"""Power rails: dynamic power ~ V^2 f util plus temperature-driven leakage, and INA-style sensing.

Rails: CPU, GPU, SOC (EMC controller and fabric), CV (DLA/PVA), VDDRQ (DRAM) and SYS5V, the
board's 5 V input that carries everything through the module regulators plus the carrier board
(network/storage PHYs driven by io, the fan). Formulas work on arrays of any matching shape so
the feedback loop and the vectorised reporting use exactly the same numbers. Units: W and MHz.
The INA3221-style monitors average over a ~2.5 s boxcar; the running sum is kept in integers
(1/16 mW) so that it is exact and chunk invariant.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "CDYN_W_PER_MHZ",
    "LEAK_W",
    "IDLE_W",
    "unit_coefficients",
    "unit_power",
    "cv_power",
    "dram_power",
    "sys5v_power",
    "converter_efficiency",
    "InaAverager",
]

#: Switched capacitance per domain (cpu, gpu, soc-per-emc-MHz) in W per MHz at V = 1 V.
CDYN_W_PER_MHZ = np.array([[3.6e-3], [10.0e-3], [0.9e-3]])
#: Leakage at 25 °C and V = 1 V (W), doubling every LEAK_DOUBLING_C.
LEAK_W = np.array([[0.30], [0.40], [0.25]])
LEAK_DOUBLING_C = 22.0
LEAK_K = np.log(2.0) / LEAK_DOUBLING_C
#: Always-on floor of the cpu, gpu and soc rails (W).
IDLE_W = np.array([[0.35], [0.10], [1.10]])
CV_IDLE_W, CV_FULL_W = 0.08, 3.2
DRAM_BG_W, DRAM_CLK_W_PER_MHZ, DRAM_W_PER_MHZ = 0.30, 0.25e-3, 0.9e-3
#: Module regulator efficiency (rails -> SYS5V), carrier-board io and fan power.
MODULE_EFFICIENCY = 0.90
IO_FULL_W = 2.8
FAN_FULL_W = 1.2
#: INA averaging window (s) and the fixed-point scale of its running sum.
INA_WINDOW_S = 2.5
_INA_SCALE = 16.0


def unit_coefficients(
    dyn_scale: np.ndarray, leak_scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-device dynamic (W/MHz) and leakage (W, referred to 0 °C) coefficients, each (3, D)."""
    return CDYN_W_PER_MHZ * dyn_scale, LEAK_W * leak_scale * np.exp(-LEAK_K * 25.0)


def unit_power(v2, work_mhz, temp_c, cdyn, cleak):
    """Dynamic + leakage power (W) of the cpu, gpu and soc domains, stacked on axis 0.

    v2: squared voltage of the current level; work_mhz = min(f, demand * f_max), the busy share
    of the clock (util * f); temp_c: junction temperature; cdyn, cleak from `unit_coefficients`.
    """
    return v2 * (cdyn * work_mhz + cleak * np.exp(LEAK_K * temp_c))


def cv_power(cv_demand: np.ndarray) -> np.ndarray:
    """CV accelerators run at a fixed clock: power linear in load (W)."""
    return CV_IDLE_W + (CV_FULL_W - CV_IDLE_W) * cv_demand


def dram_power(f_emc_mhz: np.ndarray, emc_work_mhz: np.ndarray) -> np.ndarray:
    """VDDRQ: background + clock-proportional + traffic-proportional DRAM power (W)."""
    return DRAM_BG_W + DRAM_CLK_W_PER_MHZ * f_emc_mhz + DRAM_W_PER_MHZ * emc_work_mhz


def sys5v_power(module_w, sys_base_w, io, fan_pwm):
    """Board 5 V input: module rails through their regulators, plus carrier board, io and fan (W)."""
    return (
        module_w / MODULE_EFFICIENCY + sys_base_w + IO_FULL_W * io + FAN_FULL_W * (fan_pwm / 255.0)
    )


def converter_efficiency(v_in: np.ndarray) -> np.ndarray:
    """Input DC/DC efficiency: best near 12 V, lower at 5 V and 24 V."""
    return 0.95 - 0.0035 * np.abs(np.asarray(v_in, np.float64) - 12.0)


class InaAverager:
    """Boxcar average over the last `INA_WINDOW_S` of each rail, exact across chunk boundaries."""

    def __init__(self, k: int, d: int, hz: float) -> None:
        self.n = max(1, int(round(INA_WINDOW_S * hz)))
        self.tail = None  # (k, d, n) int64 last samples; None until the first chunk

    def step(self, p_w: Sequence[np.ndarray]) -> np.ndarray:
        """p_w: k rails (D, n) of raw power in W -> boxcar mean (k, D, n) float32 in mW."""
        k, (d, n) = len(p_w), p_w[0].shape
        ext = np.empty((k, d, self.n + n), np.int64)  # fixed point, 1/16 mW
        for j, p in enumerate(p_w):
            ext[j, :, self.n :] = p * np.float32(1000.0 * _INA_SCALE)  # truncates: exact integers
        ext[..., : self.n] = ext[..., self.n : self.n + 1] if self.tail is None else self.tail
        self.tail = ext[..., -self.n :].copy()
        np.cumsum(ext, axis=-1, out=ext)
        s = (ext[..., self.n :] - ext[..., :n]).astype(np.float32)  # sum of the last N samples
        s *= np.float32(1.0 / (self.n * _INA_SCALE))
        return s
