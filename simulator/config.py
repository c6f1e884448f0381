"""Typed, frozen specifications of one simulated run: device, regime, workload, trojan, schedule.

A `RunSpec` is everything the simulator needs to produce a run deterministically; it is written into
the run's `meta.json`. The benchmark planner (`simulator/benchmark.py`) draws these specs from a seed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "WORKLOAD_FAMILIES",
    "SYNTHETIC_TROJAN",
    "SYNTHETIC_WORKLOAD",
    "TROJAN_VARIANTS",
    "POWER_MODES",
    "Frozen",
    "WorkloadSpec",
    "TrojanSpec",
    "ScheduleSpec",
    "RegimeSpec",
    "RunSpec",
]

WORKLOAD_FAMILIES = (
    "periodic_inference",
    "gpu_streaming",
    "memory_bound",
    "bursty_network",
    "cv_pipeline",
)
#: A randomised benign profile drawn from the run's seed (`simulator.workloads.synthetic_profile`):
#: never drawn by a benchmark, only by training-time augmentation (`simulator.augment`).
SYNTHETIC_WORKLOAD = "synthetic"
WorkloadFamily = Literal[
    "periodic_inference",
    "gpu_streaming",
    "memory_bound",
    "bursty_network",
    "cv_pipeline",
    "synthetic",
]
#: A payload whose channel mix is drawn from the run's seed (`simulator.trojans.synthetic_weights`):
#: never drawn by a benchmark, only by training-time augmentation (`simulator.augment`).
SYNTHETIC_TROJAN = "synthetic"
TrojanFamily = Literal["compute", "mempressure", "cv", "io", "synthetic"]
#: Every family has a steady variant and a low-duty pulsed one.
TROJAN_VARIANTS = ("steady", "pulsed")
TrojanVariant = Literal["steady", "pulsed"]
POWER_MODES = ("MAXN", "30W", "15W")
PowerMode = Literal["MAXN", "30W", "15W"]


class Frozen(BaseModel):
    """Base for every config: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkloadSpec(Frozen):
    """The benign application the device runs; `intensity` scales its mean load."""

    family: WorkloadFamily
    intensity: float = Field(ge=0.1, le=1.0)


class TrojanSpec(Frozen):
    """The payload hidden in the binary. `strength` runs from weak (near invisible) to strong."""

    family: TrojanFamily
    variant: TrojanVariant
    strength: float = Field(gt=0.0, le=1.0)


class ScheduleSpec(Frozen):
    """When the trojan activates.

    periodic: on for `on_s`, every `period_s` (jittered by `jitter` as a fraction of the period).
    random: on-durations and off-gaps drawn from log-uniform ranges.
    dormant: never activates (a trojan binary whose trigger never fires).
    Both active kinds are stationary: the process starts before t = 0 at a random phase, so the
    first onset inside the run is random and activation never depends on time since start.
    """

    kind: Literal["periodic", "random", "dormant"]
    period_s: float | None = Field(default=None, gt=0)
    on_s: float | None = Field(default=None, gt=0)
    jitter: float = Field(default=0.0, ge=0.0, le=0.5)
    on_range_s: tuple[float, float] | None = None
    gap_range_s: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _complete(self) -> ScheduleSpec:
        if self.kind == "periodic" and (self.period_s is None or self.on_s is None):
            raise ValueError("a periodic schedule needs period_s and on_s")
        if self.kind == "periodic" and self.on_s >= self.period_s:  # type: ignore[operator]
            raise ValueError("a periodic schedule needs on_s < period_s")
        if self.kind == "random" and (self.on_range_s is None or self.gap_range_s is None):
            raise ValueError("a random schedule needs on_range_s and gap_range_s")
        return self


class RegimeSpec(Frozen):
    """Operating conditions: power mode caps, ambient temperature, supply voltage."""

    power_mode: PowerMode
    ambient_c: float = Field(ge=-10.0, le=60.0)
    input_voltage_v: float = Field(ge=5.0, le=24.0)
    jetson_clocks: bool = False


class RunSpec(Frozen):
    """One run: a device instance running one binary under one regime for `duration_s`."""

    run_id: str
    binary_id: str
    capability: Literal["benign", "compute", "mempressure", "cv", "io"]
    workload: WorkloadSpec
    trojan: TrojanSpec | None = None
    schedule: ScheduleSpec | None = None
    regime: RegimeSpec
    device_seed: int = Field(ge=0)
    seed: int = Field(ge=0)
    duration_s: float = Field(gt=0)
    hz: float = Field(gt=0)
    t0_unix_s: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z

    @model_validator(mode="after")
    def _capability_matches(self) -> RunSpec:
        if self.capability == "benign" and self.trojan is not None:
            raise ValueError("a benign binary carries no trojan")
        if self.capability != "benign":
            if self.trojan is None or self.schedule is None:
                raise ValueError("a trojan binary needs a trojan and a schedule")
            if self.trojan.family not in (self.capability, SYNTHETIC_TROJAN):
                raise ValueError("the trojan family must equal the binary's capability")
        return self

    @property
    def n_samples(self) -> int:
        return int(round(self.duration_s * self.hz))
