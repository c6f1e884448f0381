"""Column names, feature allow-list and small interfaces shared by every package.

This is the one leaf module that `simulator/`, `offline_training/` and `stream/` all import, so the
telemetry schema (DESIGN.md section 3.1) is written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "TIME_COLUMNS",
    "IDENTITY_COLUMNS",
    "REGIME_COLUMNS",
    "UTIL_COLUMNS",
    "FREQ_COLUMNS",
    "TEMP_COLUMNS",
    "FAN_COLUMNS",
    "POWER_COLUMNS",
    "PERF_COUNTERS",
    "PERF_COLUMNS",
    "MASK_COLUMNS",
    "TELEMETRY_COLUMNS",
    "SIGNAL_COLUMNS",
    "FEATURE_COLUMNS",
    "LOG_FEATURES",
    "MASK_GROUPS",
    "LABEL_COLUMNS",
    "TROJAN_FAMILIES",
    "CAPABILITIES",
    "Interval",
    "WindowBatch",
    "ExpertOutput",
    "FUSION_INPUTS",
    "SYNTHETIC_DIR",
    "SYNTHETIC_STAMP",
]

TIME_COLUMNS = ("t_unix_s", "t_sim_s")
IDENTITY_COLUMNS = ("run_id", "binary_id")
REGIME_COLUMNS = ("power_mode", "ambient_c", "input_voltage_v", "jetson_clocks")
UTIL_COLUMNS = ("cpu_util_avg", "cpu_util_max", "gpu_util", "emc_util", "cv_util")
FREQ_COLUMNS = ("cpu_freq_mhz", "gpu_freq_mhz", "emc_freq_mhz")
TEMP_COLUMNS = (
    "temp_cpu_c",
    "temp_gpu_c",
    "temp_aux_c",
    "temp_ttp_c",
    "temp_board_c",
    "fan_est_temp_c",
)
FAN_COLUMNS = ("fan_pwm", "fan_rpm", "hysteresis_state")
POWER_COLUMNS = ("p_sys5v_mw", "p_cpu_mw", "p_gpu_mw", "p_soc_mw", "p_cv_mw", "p_vddrq_mw")
PERF_COUNTERS = (
    "cycles",
    "instructions",
    "cache_misses",
    "context_switches",
    "page_faults",
    "llc_load_misses",
    "branch_misses",
)
PERF_COLUMNS = tuple(f"delta_{c}" for c in PERF_COUNTERS)

TEMP_MASKS = (
    "mask_temp_cpu",
    "mask_temp_gpu",
    "mask_temp_aux",
    "mask_temp_ttp",
    "mask_temp_board",
    "mask_fan_est_temp",
)
POWER_MASKS = (
    "mask_power_cpu",
    "mask_power_gpu",
    "mask_power_soc",
    "mask_power_cv",
    "mask_power_vddrq",
    "mask_power_sys5v",
    "mask_power_in",
)
PERF_MASKS = tuple(f"mask_perf_{c}" for c in PERF_COUNTERS)
MASK_COLUMNS = TEMP_MASKS + POWER_MASKS + PERF_MASKS

#: Every column of a telemetry.csv written here, in order (DESIGN.md 3.1).
TELEMETRY_COLUMNS = (
    TIME_COLUMNS
    + IDENTITY_COLUMNS
    + REGIME_COLUMNS
    + UTIL_COLUMNS
    + FREQ_COLUMNS
    + TEMP_COLUMNS
    + FAN_COLUMNS
    + POWER_COLUMNS
    + PERF_COLUMNS
    + MASK_COLUMNS
)

#: Physical signals the simulator produces per sample (everything but time, identity and regime).
SIGNAL_COLUMNS = (
    UTIL_COLUMNS + FREQ_COLUMNS + TEMP_COLUMNS + FAN_COLUMNS + POWER_COLUMNS + PERF_COLUMNS
)

#: The allow-list of model features. Nothing outside it can reach a score: regime columns are
#: context a real device does not measure, and label columns never enter.
FEATURE_COLUMNS = (
    UTIL_COLUMNS
    + FREQ_COLUMNS
    + TEMP_COLUMNS
    + ("fan_pwm", "fan_rpm")
    + POWER_COLUMNS
    + PERF_COLUMNS
)

#: Features whose scale spans decades: the windowing takes log1p of them before normalising.
LOG_FEATURES = PERF_COLUMNS

#: Sensor groups summarised by the fusion gate as "fresh fraction over the window".
MASK_GROUPS: dict[str, tuple[str, ...]] = {
    "temp": TEMP_MASKS,
    "power": POWER_MASKS,
    "perf": PERF_MASKS,
}

#: Ground-truth columns that files from other tools may carry; never read as features.
LABEL_COLUMNS = (
    "trojan_active",
    "trojan_family",
    "trojan_variant",
    "mode",
)

TROJAN_FAMILIES = ("compute", "mempressure", "cv", "io")
CAPABILITIES = ("benign",) + TROJAN_FAMILIES
Capability = Literal["benign", "compute", "mempressure", "cv", "io"]


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open interval ``[t_start_s, t_end_s)`` of simulation time, in seconds."""

    t_start_s: float
    t_end_s: float

    def __post_init__(self) -> None:
        if not (self.t_end_s >= self.t_start_s):
            raise ValueError(
                f"The 't_end_s' parameter of Interval must be >= t_start_s. "
                f"Got {self.t_end_s!r} < {self.t_start_s!r} instead."
            )

    @property
    def duration_s(self) -> float:
        return self.t_end_s - self.t_start_s


@dataclass(frozen=True, slots=True)
class WindowBatch:
    """Ready windows from many devices, scored together in one call per expert.

    values: float32 (B, W, F) standardised features; masks: uint8 (B, W, K) freshness, 0/1.
    """

    device_ids: tuple[str, ...]
    t_end_s: np.ndarray  # (B,) float64, emission time of each window
    values: np.ndarray  # (B, W, F) float32
    masks: np.ndarray  # (B, W, K) uint8

    def __len__(self) -> int:
        return len(self.device_ids)


@dataclass(frozen=True, slots=True)
class ExpertOutput:
    """An expert's verdict per window: probability ``p`` and uncertainty ``u``, both in [0, 1]."""

    p: np.ndarray  # (B,) float32
    u: np.ndarray  # (B,) float32


#: Inputs of the fusion gate, in order: expert outputs, static availability, whether the static
#: expert trained on this very binary (its score is then in-sample, and it is served that way) and
#: mask context (fresh fraction per sensor group over the window).
FUSION_INPUTS = (
    "p_dynamic",
    "u_dynamic",
    "p_static",
    "u_static",
    "static_available",
    "static_seen",
    "fresh_temp",
    "fresh_power",
    "fresh_perf",
)

#: Synthetic-workload training runs of a split live in `<data>/SYNTHETIC_DIR/<split>/runs/`, beside
#: SYNTHETIC_STAMP, the request they answer (written by the simulator, checked by training).
SYNTHETIC_DIR = "synthetic"
SYNTHETIC_STAMP = "synthetic.json"
