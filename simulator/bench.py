"""Simulator throughput: samples per second in memory, and end to end with CSV writing.

A benchmark, never a test. `python cli.py bench-simulator` prints and writes these figures.
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from simulator.benchmark import DEFAULT_PRESET, PRESETS, plan_runs
from simulator.corpus import load_corpus
from simulator.device import keep_freed_memory
from simulator.fleet import Fleet, simulate_runs
from simulator.writer import write_run

__all__ = ["bench_simulator"]


def bench_simulator(
    n_devices: int = 256,
    seconds: float = 600.0,
    hz: float = 10.0,
    chunk_s: float = 60.0,
    csv_devices: int = 32,
    csv_seconds: float = 600.0,
) -> dict:
    """Measure Fleet.step for n_devices x seconds, and simulate+write runs to CSV in a temp dir."""
    keep_freed_memory()
    cfg = PRESETS[DEFAULT_PRESET].model_copy(
        update={
            "n_runs": n_devices,
            "short_s": (seconds, seconds),
            "long_s": (seconds, seconds),
            "hz": hz,
        }
    )
    specs = plan_runs(cfg, load_corpus())
    n = int(round(seconds * hz))
    chunk = max(1, int(round(chunk_s * hz)))
    fleet = Fleet(specs)
    fleet.step(min(chunk, n))  # warm-up: noise banks, allocator
    fleet = Fleet(specs)
    t0, c0 = time.perf_counter(), time.process_time()
    done = 0
    while done < n:
        k = min(chunk, n - done)
        fleet.step(k)
        done += k
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    in_memory = n_devices * n / wall

    csv_specs = specs[:csv_devices]
    csv_specs = [s.model_copy(update={"duration_s": csv_seconds}) for s in csv_specs]
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        fleet = Fleet(csv_specs)
        rows = 0
        for i, cols, intervals in simulate_runs(fleet, chunk=chunk):
            write_run(
                Path(tmp) / csv_specs[i].run_id,
                csv_specs[i],
                cols,
                intervals,
                power_mode=fleet.device.power_mode[i],
                jetson_clocks=fleet.device.jetson_clocks[i],
                warmup_s=cfg.warmup_s,
                instance=fleet.device.instance.as_dict(i),
            )
            rows += cols["t_sim_s"].size
        csv_wall = time.perf_counter() - t1
        csv_bytes = sum(p.stat().st_size for p in Path(tmp).rglob("*.csv"))
    return {
        "devices": n_devices,
        "hz": hz,
        "seconds": seconds,
        "chunk_samples": chunk,
        "in_memory_samples_per_s": round(in_memory),
        "in_memory_wall_s": round(wall, 3),
        "in_memory_cpu_s": round(cpu, 3),
        "end_to_end_csv": {
            "devices": len(csv_specs),
            "seconds": csv_seconds,
            "samples": rows,
            "wall_s": round(csv_wall, 3),
            "samples_per_s": round(rows / csv_wall),
            "csv_mb": round(csv_bytes / 2**20, 1),
        },
        "per_sample_python_loop_reference_samples_per_s": 5700,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    }
