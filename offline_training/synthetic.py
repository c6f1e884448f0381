"""Synthetic-workload training windows: domain randomisation, read from files.

`python cli.py train --synthetic-runs N` first has the simulator write N clones of the split's
training runs with randomised benign workloads into `<data>/synthetic/<split>/` (the reasons and the
rules are in `simulator/augment.py`). This module only reads that directory, checks it was written
for this very request by the simulator version that wrote the benchmark's runs, and cuts its runs with the split's own window spec and normalisation, so the
dynamic expert sees them exactly as it sees real training runs. Validation and test parts are never
touched: thresholds, temperature, gate and early stopping still see only the benchmark's real runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from offline_training.data import DataError, SplitData, WindowSet
from offline_training.labels import recent_labels
from offline_training.windows import load_run, run_windows
from stream.schema import SYNTHETIC_DIR, SYNTHETIC_STAMP
from stream.windowing import Normalisation

__all__ = ["synthetic_train_windows", "with_synthetic"]


def _simulator_version(data_dir: Path, data: SplitData) -> str | None:
    """The simulator version of the split's first training run, from its meta.json (None: unknown)."""
    first = sorted(set(data.train.run_id.tolist()))[:1]
    try:
        meta = json.loads((Path(data_dir) / "runs" / first[0] / "meta.json").read_text())
        return str(meta["simulator_version"])
    except (IndexError, OSError, ValueError, KeyError, TypeError):
        return None


def _request(
    root: Path, data: SplitData, n_runs: int, seed: int, version: str | None, trojan_share: float
) -> list[str]:
    stamp = root / SYNTHETIC_STAMP
    hint = (
        f"write them with `python cli.py train --split {data.name} --synthetic-runs {n_runs} "
        f"--seed {seed}" + (f" --synthetic-trojans {trojan_share:g}`" if trojan_share else "`")
    )
    if not stamp.is_file():
        raise DataError(f"{stamp}: missing; {hint}.")
    try:
        req = json.loads(stamp.read_text())
        got = (req["split"], req["n_runs"], req["seed"], req["source_runs"])
        share = float(req.get("trojan_share", 0.0))
        run_ids = [str(r) for r in req["run_ids"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"{stamp}: not a synthetic-runs stamp; {hint}.") from None
    want = (data.name, n_runs, seed, sorted(set(data.train.run_id.tolist())))
    if got != want:
        raise DataError(
            f"{stamp}: written for split {got[0]!r}, {got[1]} runs, seed {got[2]} and "
            f"{len(got[3])} training runs, not for this training; {hint}."
        )
    if share != trojan_share:
        raise DataError(
            f"{stamp}: written with a synthetic-trojan share of {share:g}, not {trojan_share:g}; "
            f"{hint}."
        )
    if version is not None and req.get("simulator_version") != version:
        raise DataError(
            f"{stamp}: written by simulator {req.get('simulator_version')}, the benchmark's runs "
            f"by {version}; {hint}."
        )
    return run_ids


def synthetic_train_windows(
    data_dir: Path,
    data: SplitData,
    n_runs: int,
    seed: int,
    label_recent_s: float | None,
    trojan_share: float = 0.0,
) -> WindowSet:
    """Windows of the split's `n_runs` synthetic runs (seed `seed`, `trojan_share` of them with
    randomised payload mixes), labelled like the real ones."""
    root = Path(data_dir) / SYNTHETIC_DIR / data.name
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("X", "M", "y", "run", "bin", "t")}
    unit = Normalisation.unit()
    version = _simulator_version(data_dir, data)
    for rid in _request(root, data, n_runs, seed, version, trojan_share):
        run = load_run(root / "runs" / rid, unit)
        X, M, y_soft, t_end = run_windows(run, data.norm, data.spec)
        ws = WindowSet(
            X, M, y_soft, np.full(len(t_end), run.run_id), np.full(len(t_end), run.binary_id), t_end
        )
        if label_recent_s is not None:
            y_soft = recent_labels(ws, {run.run_id: run.truth}, label_recent_s, data.spec.hz)
        for k, v in zip(parts, (X, M, y_soft, ws.run_id, ws.binary_id, t_end), strict=True):
            parts[k].append(v)
    if not parts["X"]:
        raise DataError(f"{root / SYNTHETIC_STAMP}: names no runs.")
    return WindowSet(*(np.concatenate(v) for v in parts.values()))


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
