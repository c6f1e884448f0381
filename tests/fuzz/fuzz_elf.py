"""ELF fuzz benchmark (not a test): N mutated corpus binaries through `read_static`.

Counts, per kind of damage, how many files gave features and how many a reason (and which), how
many parses hit the time limit (a contained hang), how many calls returned later than the limit
plus a grace period (an uncontained hang) and how many raised in the parent (a crash). Goal: 0
crashes and 0 uncontained hangs. Writes one JSON object to stdout (and to --json).

    python -m tests.fuzz.fuzz_elf --n 10000 --workers 2 --json fuzz_elf.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from simulator.corpus import binary_file, load_corpus
from stream.binary_worker import read_static
from tests.fuzz.mutate import mutate_elf

GRACE_S = 10.0


def _one(path: Path, timeout_s: float) -> tuple[str, float]:
    start = time.perf_counter()
    try:
        res = read_static(path, timeout_s=timeout_s, memory_mb=512)
        outcome = "features" if res.available else f"reason: {res.reason}"
    except Exception as exc:  # a crash of the parent: exactly what this benchmark looks for
        outcome = f"CRASH {type(exc).__name__}: {exc}"
    return outcome, time.perf_counter() - start


def fuzz(
    n: int,
    seed: int,
    workers: int,
    timeout_s: float,
    batch: int = 250,
    on_batch: Callable[[dict], None] | None = None,
) -> dict:
    """Fuzz `n` files; `on_batch` gets the summary so far after every batch (partial results)."""
    corpus = [binary_file(r).read_bytes() for r in load_corpus()]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    per_kind: dict[str, Counter] = {}
    reasons: Counter = Counter()
    crashes: list[str] = []
    slow = 0
    longest = 0.0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(workers) as pool:
        for lo in range(0, n, batch):
            kinds, paths = [], []
            for i in range(lo, min(n, lo + batch)):
                kind, data = mutate_elf(corpus[i % len(corpus)], rng)
                path = Path(tmp) / f"m{i - lo}.elf"
                path.write_bytes(data)
                kinds.append(kind)
                paths.append(path)
            for kind, (outcome, wall) in zip(
                kinds, pool.map(lambda p: _one(p, timeout_s), paths), strict=True
            ):
                longest = max(longest, wall)
                slow += wall > timeout_s + GRACE_S
                counts = per_kind.setdefault(kind, Counter())
                if outcome.startswith("CRASH"):
                    crashes.append(f"{kind}: {outcome}")
                    counts["crash"] += 1
                elif outcome == "features":
                    counts["features"] += 1
                else:
                    counts["reason"] += 1
                    reasons[outcome.removeprefix("reason: ")] += 1
            print(
                f"{min(n, lo + batch)}/{n} files, {time.perf_counter() - start:.0f} s", flush=True
            )
            if on_batch is not None:
                done = min(n, lo + batch)
                on_batch(
                    _summary(
                        done, seed, timeout_s, start, crashes, slow, longest, per_kind, reasons
                    )
                )
    return _summary(n, seed, timeout_s, start, crashes, slow, longest, per_kind, reasons)


def _summary(n, seed, timeout_s, start, crashes, slow, longest, per_kind, reasons) -> dict:
    timeouts = sum(v for r, v in reasons.items() if r.startswith("timeout"))
    return {
        "n_files": n,
        "seed": seed,
        "timeout_s": timeout_s,
        "wall_s": round(time.perf_counter() - start, 1),
        "parent_crashes": len(crashes),
        "uncontained_hangs": slow,
        "contained_timeouts": timeouts,
        "longest_call_s": round(longest, 2),
        "per_kind": {k: dict(v) for k, v in sorted(per_kind.items())},
        "reasons": dict(reasons.most_common()),
        "crash_examples": crashes[:10],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    def save(summary: dict) -> None:
        if args.json:
            args.json.write_text(json.dumps(summary, indent=1) + "\n")

    result = fuzz(args.n, args.seed, args.workers, args.timeout, on_batch=save)
    save(result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
