"""Write one run directory: telemetry.csv (seed-schema columns), meta.json, intervals.csv.

Ground truth goes only to intervals.csv and meta.json, never into telemetry.csv.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from simulator.config import RunSpec
from simulator.meta import RunMeta
from simulator.schedules import Activation
from stream.schema import (
    FREQ_COLUMNS,
    MASK_COLUMNS,
    PERF_COLUMNS,
    POWER_COLUMNS,
    TELEMETRY_COLUMNS,
)

__all__ = ["INTERVAL_COLUMNS", "INT_COLUMNS", "as_recorded", "telemetry_frame", "write_run"]

INTERVAL_COLUMNS = ("t_start_sim_s", "t_end_sim_s", "trojan_family", "trojan_variant", "strength")
#: Columns recorded as integers (counts, masks, states, %, MHz, mW); the rest keep 3 decimals.
INT_COLUMNS = frozenset(
    PERF_COLUMNS
    + MASK_COLUMNS
    + FREQ_COLUMNS
    + POWER_COLUMNS
    + ("fan_pwm", "fan_rpm", "hysteresis_state", "cpu_util_max", "gpu_util", "emc_util", "cv_util")
)


def as_recorded(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Round simulated columns exactly as telemetry.csv stores them (live == recorded values)."""
    out = {}
    for c, v in cols.items():
        if c in INT_COLUMNS:
            out[c] = np.rint(v).astype(np.int64)
        elif np.issubdtype(np.asarray(v).dtype, np.floating):
            out[c] = np.round(np.asarray(v, dtype=np.float64), 3)
        else:
            out[c] = v
    return out


def telemetry_frame(
    spec: RunSpec, cols: dict[str, np.ndarray], power_mode: str, jetson_clocks: bool
) -> pl.DataFrame:
    """Columns (n,) of one run -> a DataFrame with exactly TELEMETRY_COLUMNS, in order."""
    n = cols["t_sim_s"].shape[0]
    rec = as_recorded(cols)
    data: dict[str, object] = {}
    for c in TELEMETRY_COLUMNS:
        if c == "run_id":
            data[c] = pl.repeat(spec.run_id, n, eager=True)
        elif c == "binary_id":
            data[c] = pl.repeat(spec.binary_id, n, eager=True)
        elif c == "power_mode":
            data[c] = pl.repeat(power_mode, n, eager=True)
        elif c == "jetson_clocks":
            data[c] = np.full(n, int(jetson_clocks), np.int64)
        else:
            data[c] = rec[c]
    return pl.DataFrame(data)


def _intervals_frame(intervals: Sequence[Activation]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "t_start_sim_s": [round(a.t_start_s, 6) for a in intervals],
            "t_end_sim_s": [round(a.t_end_s, 6) for a in intervals],
            "trojan_family": [a.family for a in intervals],
            "trojan_variant": [a.variant for a in intervals],
            "strength": [round(a.strength, 4) for a in intervals],
        },
        schema={
            "t_start_sim_s": pl.Float64,
            "t_end_sim_s": pl.Float64,
            "trojan_family": pl.Utf8,
            "trojan_variant": pl.Utf8,
            "strength": pl.Float64,
        },
    )


def write_run(
    run_dir: Path,
    spec: RunSpec,
    cols: dict[str, np.ndarray],
    intervals: Sequence[Activation],
    *,
    power_mode: str,
    jetson_clocks: bool,
    warmup_s: float,
    instance: dict[str, float],
) -> RunMeta:
    """Write telemetry.csv, meta.json and intervals.csv into run_dir; return the meta."""
    run_dir.mkdir(parents=True, exist_ok=True)
    telemetry_frame(spec, cols, power_mode, jetson_clocks).write_csv(
        run_dir / "telemetry.csv", float_precision=3
    )
    _intervals_frame(intervals).write_csv(run_dir / "intervals.csv", float_precision=6)
    meta = RunMeta(
        run_id=spec.run_id,
        binary_id=spec.binary_id,
        hz=spec.hz,
        duration_s=spec.n_samples / spec.hz,
        n_samples=spec.n_samples,
        seed=spec.seed,
        warmup_s=warmup_s,
        n_activations=len(intervals),
        spec=spec,
        instance=instance,
    )
    (run_dir / "meta.json").write_text(
        json.dumps(meta.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    )
    return meta
