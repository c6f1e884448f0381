"""Benchmark presets and the run planner: a seed and a binary corpus -> a list of RunSpecs.

Every factor is drawn independently of every other: the binary (and so the capability), the
workload, the regime, the device instance, the run duration, the trojan variant and strength. So
long runs are not all benign, workloads do not predict trojans, and no schedule is shared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from simulator.config import (
    POWER_MODES,
    TROJAN_VARIANTS,
    WORKLOAD_FAMILIES,
    Frozen,
    RegimeSpec,
    RunSpec,
    ScheduleSpec,
    TrojanSpec,
    WorkloadSpec,
)
from simulator.corpus import BinaryRecord

__all__ = ["BenchmarkConfig", "DEFAULT_PRESET", "PRESETS", "plan_runs"]


class BenchmarkConfig(Frozen):
    """How a benchmark is drawn. Durations in seconds; `p_long` of runs last `long_s`."""

    name: str = "fusionbench-v3"
    n_runs: int = Field(default=480, ge=1)
    seed: int = Field(default=2026, ge=0)
    hz: float = Field(default=10.0, gt=0)
    short_s: tuple[float, float] = (180.0, 420.0)
    long_s: tuple[float, float] = (1800.0, 2400.0)
    p_long: float = Field(default=0.12, ge=0, le=1)
    p_benign: float = Field(default=0.4, ge=0, le=1)
    p_dormant: float = Field(default=0.12, ge=0, le=1)
    p_periodic: float = Field(default=0.45, ge=0, le=1)
    strength: tuple[float, float] = (0.1, 1.0)
    #: Share of trojans drawn from the weak end, [strength[0], weak_below): near invisible.
    p_weak: float = Field(default=0.2, ge=0, le=1)
    weak_below: float = Field(default=0.3, gt=0, le=1)
    ambient_c: tuple[float, float] = (12.0, 40.0)
    input_voltage_v: tuple[float, ...] = (9.0, 12.0, 19.0)
    p_jetson_clocks: float = Field(default=0.1, ge=0, le=1)
    n_device_instances: int = Field(default=24, ge=1)
    warmup_s: float = Field(default=60.0, ge=0)


#: The preset `simulate --out` and `train` write when none is named.
DEFAULT_PRESET = "fusionbench-v3"

PRESETS: dict[str, BenchmarkConfig] = {
    # The default benchmark: ~67 hours of telemetry from 480 runs, 12 % of them 30-40 min long.
    # (v2 had 160 runs: the dynamic expert overfit its ~100 training runs, validation ROC-AUC
    # 0.744 on unseen_workload against 0.864 with the 3x larger training set of v3.)
    DEFAULT_PRESET: BenchmarkConfig(),
    # A few minutes of data for tests and smoke runs.
    "tiny": BenchmarkConfig(
        name="tiny", n_runs=16, short_s=(90.0, 150.0), long_s=(240.0, 300.0), p_long=0.2
    ),
}


def _strength(rng: np.random.Generator, cfg: BenchmarkConfig) -> float:
    lo, hi = cfg.strength
    cut = min(max(cfg.weak_below, lo), hi)
    if rng.random() < cfg.p_weak:
        return float(rng.uniform(lo, cut))
    return float(rng.uniform(cut, hi))


def _schedule(rng: np.random.Generator, cfg: BenchmarkConfig) -> ScheduleSpec:
    u = rng.random()
    if u < cfg.p_dormant:
        return ScheduleSpec(kind="dormant")
    if u < cfg.p_dormant + (1 - cfg.p_dormant) * cfg.p_periodic:
        period = float(rng.uniform(60.0, 300.0))
        on = float(rng.uniform(10.0, min(60.0, 0.5 * period)))
        return ScheduleSpec(
            kind="periodic",
            period_s=round(period, 1),
            on_s=round(on, 1),
            jitter=round(float(rng.uniform(0.0, 0.2)), 3),
        )
    lo_on = float(rng.uniform(10.0, 30.0))
    lo_gap = float(rng.uniform(30.0, 90.0))
    return ScheduleSpec(
        kind="random",
        on_range_s=(round(lo_on, 1), round(float(rng.uniform(lo_on + 10, 90.0)), 1)),
        gap_range_s=(round(lo_gap, 1), round(float(rng.uniform(lo_gap + 30, 300.0)), 1)),
    )


def plan_runs(cfg: BenchmarkConfig, corpus: Sequence[BinaryRecord]) -> list[RunSpec]:
    """Draw `cfg.n_runs` run specs; deterministic for `cfg.seed`.

    Binaries are cycled per capability in a seeded order so every binary is used about equally.
    """
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xB3]))
    by_cap: dict[str, list[BinaryRecord]] = {}
    for rec in sorted(corpus, key=lambda r: r.binary_id):
        by_cap.setdefault(rec.capability, []).append(rec)
    if "benign" not in by_cap or len(by_cap) < 2:
        raise ValueError("The 'corpus' parameter of plan_runs needs benign and trojan binaries.")
    trojan_caps = sorted(c for c in by_cap if c != "benign")
    for recs in by_cap.values():
        rng.shuffle(recs)  # type: ignore[arg-type]
    cursor = dict.fromkeys(by_cap, 0)
    device_seeds = rng.integers(0, 2**31 - 1, size=cfg.n_device_instances)
    specs: list[RunSpec] = []
    for i in range(cfg.n_runs):
        cap = (
            "benign"
            if rng.random() < cfg.p_benign
            else trojan_caps[int(rng.integers(len(trojan_caps)))]
        )
        rec = by_cap[cap][cursor[cap] % len(by_cap[cap])]
        cursor[cap] += 1
        lo, hi = cfg.long_s if rng.random() < cfg.p_long else cfg.short_s
        duration = float(np.round(rng.uniform(lo, hi)))
        trojan = schedule = None
        if cap != "benign":
            trojan = TrojanSpec(
                family=cap,  # type: ignore[arg-type]
                variant=TROJAN_VARIANTS[int(rng.integers(len(TROJAN_VARIANTS)))],  # type: ignore[arg-type]
                strength=round(float(_strength(rng, cfg)), 3),
            )
            schedule = _schedule(rng, cfg)
        specs.append(
            RunSpec(
                run_id=f"run_{i + 1:04d}",
                binary_id=rec.binary_id,
                capability=cap,  # type: ignore[arg-type]
                workload=WorkloadSpec(
                    family=WORKLOAD_FAMILIES[int(rng.integers(len(WORKLOAD_FAMILIES)))],  # type: ignore[arg-type]
                    intensity=round(float(rng.uniform(0.3, 1.0)), 3),
                ),
                trojan=trojan,
                schedule=schedule,
                regime=RegimeSpec(
                    power_mode=POWER_MODES[int(rng.integers(len(POWER_MODES)))],  # type: ignore[arg-type]
                    ambient_c=round(float(rng.uniform(*cfg.ambient_c)), 1),
                    input_voltage_v=float(rng.choice(cfg.input_voltage_v)),
                    jetson_clocks=bool(rng.random() < cfg.p_jetson_clocks),
                ),
                device_seed=int(device_seeds[int(rng.integers(cfg.n_device_instances))]),
                seed=int(rng.integers(0, 2**31 - 1)),
                duration_s=duration,
                hz=cfg.hz,
            )
        )
    return specs
