"""Device-instance variation: the part-to-part spread of one physical board, drawn from `device_seed`.

Two boards of the same model differ in heat-sink contact, thermal mass, fan strength, sensor
offsets, silicon leakage and clock phases. Every parameter is a multiplier or offset around the
nominal values used by `thermal`, `power`, `fan`, `perf` and `sensors`, one column per device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["SENSOR_CLOCKS", "InstanceParams", "draw_instances"]

#: Refresh period (s) of each group of sensors read together, in the order used by
#: `InstanceParams.sensor_*`: cpu+gpu temperatures, aux+ttp temperatures, board temperature,
#: power monitor A (cpu, gpu, soc rails), power monitor B (cv, vddrq, sys5v rails and input).
SENSOR_CLOCKS = (0.1, 0.25, 1.0, 0.12, 0.12)
_INSTANCE_TAG = 0x1A57


@dataclass(frozen=True)
class InstanceParams:
    """Per-device parameters; arrays are (D,) or (k, D) with devices on the last axis.

    r_scale, tau_scale: junction (cpu, gpu, aux) thermal resistance and time-constant multipliers.
    sink_scale: heat-sink time-constant multiplier; air_scale: sink-to-air conductance multiplier.
    board_scale: board time-constant multiplier; fan_gain: fan speed (and airflow) multiplier.
    dyn_scale, leak_scale: dynamic and leakage power multipliers per unit (cpu, gpu, soc).
    temp_bias_c: offsets of the six temperature sensors; power_gain: gain error of six rails.
    sensor_period_scale, sensor_phase: refresh clock spread and phase (fraction of the period).
    ipc_scale, branch_scale, sys_base_mw: perf and board-level spread.
    """

    r_scale: np.ndarray  # (3, D)
    tau_scale: np.ndarray  # (3, D)
    sink_scale: np.ndarray  # (D,)
    air_scale: np.ndarray  # (D,)
    board_scale: np.ndarray  # (D,)
    fan_gain: np.ndarray  # (D,)
    dyn_scale: np.ndarray  # (3, D)
    leak_scale: np.ndarray  # (3, D)
    temp_bias_c: np.ndarray  # (6, D)
    power_gain: np.ndarray  # (6, D)
    sensor_period_scale: np.ndarray  # (5, D)
    sensor_phase: np.ndarray  # (5, D)
    ipc_scale: np.ndarray  # (D,)
    branch_scale: np.ndarray  # (D,)
    sys_base_mw: np.ndarray  # (D,)

    def as_dict(self, i: int) -> dict[str, float | list[float]]:
        """Device i's parameters as plain numbers (for a run's meta.json)."""
        out: dict[str, float | list[float]] = {}
        for f in fields(self):
            v = getattr(self, f.name)[..., i]
            out[f.name] = [round(float(x), 6) for x in v] if v.ndim else round(float(v), 6)
        return out


def draw_instances(device_seeds: Sequence[int]) -> InstanceParams:
    """Draw the instance parameters of each device from its seed (same seed, same board)."""
    cols = [_draw_one(np.random.default_rng([int(s), _INSTANCE_TAG])) for s in device_seeds]
    return InstanceParams(
        **{f.name: np.stack([c[f.name] for c in cols], axis=-1) for f in fields(InstanceParams)}
    )


def _draw_one(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def spread(size: int | tuple[int, ...] | None, rel: float) -> np.ndarray:
        return np.asarray(np.exp(rng.normal(0.0, rel, size)))

    n_clocks = len(SENSOR_CLOCKS)
    return {
        "r_scale": spread(3, 0.10),
        "tau_scale": spread(3, 0.10),
        "sink_scale": spread(None, 0.08),
        "air_scale": spread(None, 0.10),
        "board_scale": spread(None, 0.10),
        "fan_gain": spread(None, 0.05),
        "dyn_scale": spread(3, 0.05),
        "leak_scale": spread(3, 0.25),
        "temp_bias_c": rng.normal(0.0, 0.6, 6),
        "power_gain": spread(6, 0.01),
        "sensor_period_scale": spread(n_clocks, 0.02),
        "sensor_phase": rng.uniform(0.0, 1.0, n_clocks),
        "ipc_scale": spread(None, 0.05),
        "branch_scale": spread(None, 0.10),
        "sys_base_mw": np.asarray(rng.normal(2200.0, 150.0)),
    }
