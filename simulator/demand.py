"""The contract between software activity and hardware physics: per-sample resource demand.

Workloads and trojans (`simulator/workloads.py`, `simulator/trojans.py`) say what the software asks
for; the device model (`simulator/device.py`) turns that into frequencies, utilisation, power,
temperatures and counters. Every field is float32 of shape (D, n): D devices, n samples.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

__all__ = ["Demand"]


@dataclass(frozen=True, slots=True)
class Demand:
    """Work requested per sample, as a fraction of each unit's capacity at its top frequency.

    cpu: mean CPU load over cores, [0, 1].      cpu_peak: busiest core's load, [cpu, 1].
    gpu: GPU load, [0, 1].                      emc: memory-bandwidth load, [0, 1].
    cv: vision/DLA accelerator load, [0, 1].    mem: working-set pressure beyond cache, [0, 1]
                                                (drives cache/LLC misses and page faults).
    io: network/storage activity, [0, 1] (drives context switches, SYS5V rail, wake-ups).
    """

    cpu: np.ndarray
    cpu_peak: np.ndarray
    gpu: np.ndarray
    emc: np.ndarray
    cv: np.ndarray
    mem: np.ndarray
    io: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.cpu.shape  # type: ignore[return-value]

    def __add__(self, other: Demand) -> Demand:
        """Sum two demands (benign workload + trojan), clipped to [0, 1]; cpu_peak >= cpu."""
        out = {
            f.name: np.clip(getattr(self, f.name) + getattr(other, f.name), 0.0, 1.0)
            for f in fields(self)
        }
        out["cpu_peak"] = np.maximum(out["cpu_peak"], out["cpu"])
        return Demand(**{k: v.astype(np.float32, copy=False) for k, v in out.items()})

    @staticmethod
    def zeros(d: int, n: int) -> Demand:
        return Demand(*(np.zeros((d, n), np.float32) for _ in range(7)))
