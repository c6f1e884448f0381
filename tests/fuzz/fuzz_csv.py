"""Telemetry fuzz benchmark (not a test): N malformed telemetry CSVs through the batch and live paths.

Batch: `read_telemetry` and `load_replay` (the replay path, resampling included) must either read
the file or raise `TelemetryError`; anything else is a crash. Live: the frame's cells (read as
text, as a live source could hand them over) go through `live_arrays` and `Detector.ingest`
sample by sample; any exception or unbalanced accounting is a failure. Files polars cannot split
into columns at all are only a batch case. Goal: 0 crashes. One JSON object to stdout/--json.

    python -m tests.fuzz.fuzz_csv --n 1000 --json fuzz_csv.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

from stream.detector import Detector, DeviceInfo
from stream.onnx_session import load_models
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.sources import live_arrays, load_replay
from stream.telemetry_io import TelemetryError, read_telemetry
from tests.fuzz.mutate import malformed_telemetry

ROOT = Path(__file__).resolve().parents[2]


def base_frame(rng: np.random.Generator, n: int = 120) -> pl.DataFrame:
    """A valid 10 Hz frame: times, features in plausible ranges, masks mostly fresh."""
    cols = {"t_sim_s": np.round(np.arange(n) / 10.0, 3)}
    cols |= {c: np.round(rng.uniform(0.0, 1000.0, n), 3) for c in FEATURE_COLUMNS}
    cols |= {c: (rng.random(n) < 0.9).astype(np.int64) for c in MASK_COLUMNS}
    return pl.DataFrame(cols)


def _batch(path: Path, run_dir: Path, hz: float) -> str:
    try:
        read_telemetry(path)
        load_replay(run_dir, hz)
        return "read"
    except TelemetryError:
        return "refused"
    except Exception as exc:  # a crash of the batch path
        return f"CRASH {type(exc).__name__}: {str(exc)[:120]}"


def _live(path: Path, models) -> str:
    try:
        df = pl.read_csv(path, infer_schema_length=0)
    except Exception:
        return "not a frame"
    try:
        n = df.height
        cols = {c: df[c].to_numpy().astype(object).reshape(1, -1) for c in df.columns}
        t, raw, masks = live_arrays(cols, (1, n))
        det = Detector(models, [DeviceInfo("dev")])
        rows = np.zeros(1, np.intp)
        for j in range(n):
            det.ingest(rows, t[:, j], raw[:, j], masks[:, j])
        det.finish()
        acc = det.runtime.accounting
        if not (acc.balanced and acc.samples_in == n):
            return "UNBALANCED"
        return "scored" if acc.windows_scored else "ingested"
    except Exception as exc:  # a crash of the live path
        return f"CRASH {type(exc).__name__}: {str(exc)[:120]}"


def fuzz(n: int, seed: int) -> dict:
    models = load_models(ROOT / "exported_models", "cpu")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    batch: dict[str, Counter] = {}
    live: dict[str, Counter] = {}
    crashes: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run_fuzz"
        run_dir.mkdir()
        path = run_dir / "telemetry.csv"
        for i in range(n):
            kind, text = malformed_telemetry(base_frame(rng), rng)
            path.write_bytes(text)
            b, lv = _batch(path, run_dir, models.manifest.hz), _live(path, models)
            batch.setdefault(kind, Counter())[b.split(":")[0]] += 1
            live.setdefault(kind, Counter())[lv.split(":")[0]] += 1
            crashes += [f"{kind}: {o}" for o in (b, lv) if o.startswith(("CRASH", "UNBALANCED"))]
            if (i + 1) % 100 == 0:
                print(f"{i + 1}/{n} files, {time.perf_counter() - start:.0f} s", flush=True)
    return {
        "n_files": n,
        "seed": seed,
        "wall_s": round(time.perf_counter() - start, 1),
        "batch_crashes": sum(c.get("CRASH", 0) for c in batch.values()),
        "live_crashes": sum(c.get("CRASH", 0) + c.get("UNBALANCED", 0) for c in live.values()),
        "batch": {k: dict(v) for k, v in sorted(batch.items())},
        "live": {k: dict(v) for k, v in sorted(live.items())},
        "crash_examples": crashes[:10],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    result = fuzz(args.n, args.seed)
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
