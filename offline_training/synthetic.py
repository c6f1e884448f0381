"""Synthetic-workload training windows (domain randomisation; `simulator.augment` says why).

`synthetic_train_windows` clones the split's training runs with randomised benign workloads,
simulates them once into `<data>/synthetic/<split>/` (reused while the request is unchanged), and
cuts them with the split's own window spec and normalisation, so the dynamic expert sees them
exactly as it sees real training runs. Validation and test parts are never touched: thresholds,
temperature, gate and early stopping still see only the benchmark's real runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from offline_training.data import DataError, SplitData, WindowSet
from offline_training.labels import recent_labels
from offline_training.windows import load_run, run_windows
from simulator.augment import synthetic_specs
from simulator.config import RunSpec
from simulator.dataset import write_runs
from stream.windowing import Normalisation

__all__ = ["synthetic_train_windows", "with_synthetic"]


def _source_specs(data_dir: Path, run_ids: list[str]) -> list[RunSpec]:
    out = []
    for r in run_ids:
        path = Path(data_dir) / "runs" / r / "meta.json"
        try:
            out.append(RunSpec.model_validate(json.loads(path.read_text())["spec"]))
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{path}: cannot read the run's spec ({exc.__class__.__name__}).") from None
    return out


def synthetic_train_windows(
    data_dir: Path,
    data: SplitData,
    n_runs: int,
    seed: int,
    label_recent_s: float | None,
    warmup_s: float = 60.0,
    on_run: Callable[[int, int], None] | None = None,
) -> WindowSet:
    """Windows of `n_runs` synthetic-workload clones of `data`'s training runs (module docstring)."""
    train_ids = sorted(set(data.train.run_id.tolist()))
    specs = synthetic_specs(_source_specs(data_dir, train_ids), n_runs, seed)
    root = Path(data_dir) / "synthetic" / data.name
    request = json.dumps([s.model_dump(mode="json") for s in specs], sort_keys=True)
    stamp = root / "specs.json"
    if not (stamp.is_file() and stamp.read_text() == request):
        shutil.rmtree(root, ignore_errors=True)
        done = 0

        def tick(_meta) -> None:
            nonlocal done
            done += 1
            if on_run is not None:
                on_run(done, len(specs))

        write_runs(specs, root / "runs", warmup_s, on_run=tick)
        stamp.write_text(request)
    parts = {k: [] for k in ("X", "M", "y", "run", "bin", "t")}
    unit = Normalisation.unit()
    for spec in specs:
        run = load_run(root / "runs" / spec.run_id, unit)
        X, M, y_soft, t_end = run_windows(run, data.norm, data.spec)
        ws = WindowSet(
            X,
            M,
            y_soft,
            np.full(len(t_end), spec.run_id),
            np.full(len(t_end), spec.binary_id),
            t_end,
        )
        if label_recent_s is not None:
            y_soft = recent_labels(ws, {spec.run_id: run.truth}, label_recent_s, data.spec.hz)
        for k, v in zip(parts, (X, M, y_soft, ws.run_id, ws.binary_id, t_end), strict=True):
            parts[k].append(v)
    return WindowSet(
        *(np.concatenate(v) if v else np.zeros(0) for v in parts.values())  # type: ignore[arg-type]
    )


def with_synthetic(data: SplitData, extra: WindowSet) -> SplitData:
    """`data` with `extra` appended to its training part."""
    t = data.train
    train = WindowSet(
        np.concatenate([t.X, extra.X]),
        np.concatenate([t.M, extra.M]),
        np.concatenate([t.y_soft, extra.y_soft.astype(t.y_soft.dtype)]),
        np.concatenate([t.run_id, extra.run_id]),
        np.concatenate([t.binary_id, extra.binary_id]),
        np.concatenate([t.t_end_s, extra.t_end_s]),
    )
    return SplitData(data.name, {**data.parts, "train": train}, data.spec, data.norm)
