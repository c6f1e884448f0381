"""Write a benchmark to disk: runs/, binaries/, splits/ (DESIGN.md 3.1-3.3).

Runs are simulated in fleets of similar duration (vectorised over devices) and written one directory
each. Windows (processed/) are built afterwards from the written files by offline_training, with the
runtime's own windowing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from simulator.benchmark import BenchmarkConfig, plan_runs
from simulator.config import RunSpec
from simulator.corpus import BinaryRecord, binary_file, load_corpus
from simulator.fleet import Fleet, simulate_runs
from simulator.meta import RunMeta
from simulator.splits import make_splits, write_splits
from simulator.writer import write_run

__all__ = ["write_binaries", "write_benchmark", "write_runs"]


def write_binaries(corpus: Sequence[BinaryRecord], out_dir: Path) -> Path:
    """Copy the ELF corpus to out_dir/binaries and write binaries.csv (paths relative to it)."""
    bdir = out_dir / "binaries"
    bdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for rec in corpus:
        dest = bdir / f"{rec.binary_id}.elf"
        shutil.copyfile(binary_file(rec), dest)
        rows.append(
            {
                "binary_id": rec.binary_id,
                "binary_path": dest.name,
                "sha256": rec.sha256,
                "capability": rec.capability,
                "source": rec.source,
                "arch": rec.arch,
            }
        )
    csv = bdir / "binaries.csv"
    pl.DataFrame(rows).sort("binary_id").write_csv(csv)
    return csv


def _fleets(specs: Sequence[RunSpec], max_devices: int) -> list[list[RunSpec]]:
    ordered = sorted(specs, key=lambda s: (s.n_samples, s.run_id))
    return [ordered[i : i + max_devices] for i in range(0, len(ordered), max_devices)]


def write_benchmark(
    cfg: BenchmarkConfig,
    out_dir: Path,
    *,
    on_run: Callable[[RunMeta], None] | None = None,
    max_devices: int = 32,
) -> list[RunMeta]:
    """Simulate every run of `cfg` and write runs/, binaries/ and splits/ under out_dir."""
    corpus = load_corpus()
    specs = plan_runs(cfg, corpus)
    write_binaries(corpus, out_dir)
    metas = write_runs(
        specs, out_dir / "runs", cfg.warmup_s, on_run=on_run, max_devices=max_devices
    )
    splits, skipped = make_splits(specs, corpus, cfg.seed, cfg.warmup_s)
    write_splits(splits, out_dir / "splits")
    if skipped:
        (out_dir / "splits" / "skipped.json").write_text(json.dumps(skipped, indent=2) + "\n")
    (out_dir / "benchmark.json").write_text(cfg.model_dump_json(indent=2) + "\n")
    return metas


def write_runs(
    specs: Sequence[RunSpec],
    runs_dir: Path,
    warmup_s: float,
    *,
    on_run: Callable[[RunMeta], None] | None = None,
    max_devices: int = 32,
) -> list[RunMeta]:
    """Simulate `specs` in fleets and write one `runs_dir/<run_id>/` each; metas sorted by run id."""
    metas: list[RunMeta] = []
    for group in _fleets(specs, max_devices):
        fleet = Fleet(group)
        for i, cols, intervals in simulate_runs(fleet):
            spec = group[i]
            meta = write_run(
                runs_dir / spec.run_id,
                spec,
                cols,
                intervals,
                power_mode=fleet.device.power_mode[i],
                jetson_clocks=fleet.device.jetson_clocks[i],
                warmup_s=warmup_s,
                instance=fleet.device.instance.as_dict(i),
            )
            metas.append(meta)
            if on_run is not None:
                on_run(meta)
    return sorted(metas, key=lambda m: m.run_id)
