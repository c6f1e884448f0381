"""Benchmark of interval scoring (`cli.py bench-score`): N runs x H hours of intervals, timed.

Synthetic but shaped like the benchmark: per run, activations of 10-30 s every 80-280 s (truth),
predictions that find ~70 % of them late by 0-8 s and overrun by up to 10 s, plus ~3 false alarms
per hour. The intervals are written as the two CSV files `cli.py score` reads (with `run_id`,
`duration_s` and `t_emit_s`), then timed stage by stage: reading both files, joining runs, pooled
metrics, and bootstrap CIs (1,000 resamples). Wall time is reported, never asserted in tests.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from stream.intervals_io import read_pred, read_truth, write_intervals_csv
from stream.metrics import RunIntervals, bootstrap_ci, score_runs
from stream.scoring import join_runs

__all__ = ["synthetic_runs", "write_synthetic", "bench_scoring"]


def synthetic_runs(n_runs: int, hours: float, seed: int = 0) -> list[RunIntervals]:
    """Seeded truth and predictions for `n_runs` runs of `hours` each (module docstring)."""
    if n_runs < 1 or not hours > 0:
        raise ValueError(
            f"The 'n_runs' and 'hours' parameters of synthetic_runs must be >= 1 and > 0. "
            f"Got {n_runs!r} and {hours!r} instead."
        )
    rng = np.random.default_rng(seed)
    duration = 3600.0 * hours
    k = int(duration / 80.0) + 1  # enough gaps to pass the end
    gaps = rng.uniform(80.0, 280.0, (n_runs, k))
    ons = rng.uniform(10.0, 30.0, (n_runs, k))
    starts = np.cumsum(gaps + ons, axis=1) - ons  # (R, k)
    runs = []
    for r in range(n_runs):
        keep = starts[r] + ons[r] < duration
        truth = np.stack([starts[r][keep], starts[r][keep] + ons[r][keep]], axis=1)
        found = rng.random(len(truth)) < 0.7
        late = rng.uniform(0.0, 8.0, found.sum())
        hits = np.stack(
            [truth[found, 0] + late, truth[found, 1] + rng.uniform(0.0, 10.0, found.sum())], axis=1
        )
        n_fa = rng.poisson(3.0 * hours)
        fa_start = rng.uniform(0.0, duration - 20.0, n_fa)
        fas = np.stack([fa_start, fa_start + rng.uniform(2.0, 15.0, n_fa)], axis=1)
        pred = np.concatenate([hits, fas])
        pred = pred[np.argsort(pred[:, 0])]
        runs.append(
            RunIntervals(
                run_id=f"run_{r:05d}",
                truth=truth,
                pred=pred,
                pred_emit_s=pred[:, 0] + 1.0,
                scored_start_s=0.0,
                scored_end_s=duration,
            )
        )
    return runs


def write_synthetic(runs: list[RunIntervals], out_dir: Path) -> tuple[Path, Path]:
    """Write TRUTH (with duration_s) and PRED (with t_emit_s) CSVs for all runs; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_path, pred_path = out_dir / "truth.csv", out_dir / "pred.csv"
    write_intervals_csv(
        truth_path,
        {r.run_id: r.truth for r in runs},
        duration_s={r.run_id: float(r.scored_end_s) for r in runs},
    )
    write_intervals_csv(
        pred_path,
        {r.run_id: r.pred for r in runs},
        emit_s={r.run_id: r.pred_emit_s for r in runs},
    )
    return truth_path, pred_path


def bench_scoring(
    out_dir: Path, n_runs: int = 1000, hours: float = 1.0, seed: int = 0, n_resamples: int = 1000
) -> dict[str, object]:
    """Time reading, joining, scoring and bootstrapping N runs x H hours; figures as a dict."""
    runs = synthetic_runs(n_runs, hours, seed)
    truth_path, pred_path = write_synthetic(runs, out_dir)
    timings = {}
    t0 = time.perf_counter()
    truth, pred = read_truth(truth_path), read_pred(pred_path)
    timings["read_files_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    joined = join_runs(truth, pred)
    timings["join_runs_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    report = score_runs(joined)
    timings["score_s"] = time.perf_counter() - t2
    timings["score_command_s"] = time.perf_counter() - t0  # what `cli.py score` does
    t3 = time.perf_counter()
    bootstrap_ci(joined, n_resamples=n_resamples, seed=seed)
    timings["bootstrap_s"] = time.perf_counter() - t3
    in_memory = score_runs(runs)
    return {
        "schema": "fusionstream.bench_score/1",
        "config": {"n_runs": n_runs, "hours": hours, "seed": seed, "n_resamples": n_resamples},
        "n_true": report.n_true,
        "n_pred": report.n_pred,
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "goal": {
            "target": "score 1,000 runs x 1 hour in under 10 s",
            "measured_s": round(timings["score_command_s"], 4),
            "met": bool(timings["score_command_s"] < 10.0)
            if n_runs >= 1000 and hours >= 1
            else None,
        },
        "files_equal_in_memory": report.to_dict() == in_memory.to_dict(),
        "report": report.to_dict(),
    }
