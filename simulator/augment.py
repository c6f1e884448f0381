"""Training-time domain randomisation: extra runs whose benign workload is a randomised profile.

A detector trained on five workload families learns their mixes; a held-out workload whose own
bursts and phase changes load an engine only trojans loaded in training then looks like a trojan.
`synthetic_specs` clones training runs (binary, trojan, schedule kind, regime, device instance,
duration) and gives each a fresh seed and a `synthetic` workload, a profile drawn from that seed
(`simulator.workloads.synthetic_profile`). Everything but the workload comes from the training runs
it clones, so a split's held-out condition (a trojan family, a power mode, a binary) never enters.
`write_synthetic` writes them as ordinary run directories under `<data>/synthetic/<split>/`; training
reads them from there like any other run (`offline_training.synthetic`), never from the simulator.

Optionally (`trojan_share`) the payload side is randomised too: that share of the trojan clones
carry a `synthetic` payload, a mix over the engines drawn from the clone's seed
(`simulator.trojans.synthetic_weights`), with the source's variant, strength and schedule. A detector
that has only seen three families learns their mixes; random mixes teach "extra load on any engine
combination, switched on and off", which is what an unseen family needs. The generator is generic
(independent weights per engine), not a copy of any family, but it does span the space the real
families live in: a held-out family's mix is near some random mixes, and results using it say so.
"""

from __future__ import annotations

import json
import shutil
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from simulator.config import SYNTHETIC_TROJAN, SYNTHETIC_WORKLOAD, RunSpec, WorkloadSpec
from simulator.dataset import write_runs
from simulator.meta import SIMULATOR_VERSION, RunMeta, read_run_spec
from stream.schema import SYNTHETIC_DIR, SYNTHETIC_STAMP
from stream.splits import read_split_file

__all__ = ["SYNTHETIC_PREFIX", "synthetic_specs", "synthetic_dir", "write_synthetic"]

#: Run ids of synthetic runs: `syn_0001`, ... (never a benchmark run id).
SYNTHETIC_PREFIX = "syn_"
_STREAM = zlib.crc32(b"simulator.augment")


def synthetic_specs(
    sources: Sequence[RunSpec],
    n: int,
    seed: int,
    max_duration_s: float | None = 420.0,
    trojan_share: float = 0.0,
) -> list[RunSpec]:
    """`n` synthetic-workload clones of runs drawn (with replacement) from `sources`.

    Deterministic for (`sources` as a set, `n`, `seed`, `trojan_share`). Durations are capped at
    `max_duration_s` (None: kept) so that augmentation adds many workloads rather than a few long
    runs. A `trojan_share` of the clones whose source carries a trojan get a `synthetic` payload
    instead (a mix drawn from the clone's seed, `simulator.trojans.synthetic_weights`; variant,
    strength and schedule stay the source's); 0 leaves every clone exactly as before.
    """
    if n < 0:
        raise ValueError(f"The 'n' parameter of synthetic_specs must be >= 0. Got {n} instead.")
    if not 0.0 <= trojan_share <= 1.0:
        raise ValueError(
            "The 'trojan_share' parameter of synthetic_specs must be in [0, 1]. "
            f"Got {trojan_share!r} instead."
        )
    if n and not sources:
        raise ValueError("The 'sources' parameter of synthetic_specs must hold at least one run.")
    ordered = sorted(sources, key=lambda s: s.run_id)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM]))
    pick = rng.integers(0, len(ordered), n) if n else np.zeros(0, np.int64)
    seeds = rng.integers(0, 2**31 - 1, n)
    intensity = rng.uniform(0.1, 1.0, n)
    # Its own stream, so that trojan_share = 0 draws exactly the clones it always drew.
    mixed = (
        np.random.default_rng(np.random.SeedSequence([seed, _STREAM, 1])).random(n) < trojan_share
    )
    out = []
    for k in range(n):
        src = ordered[int(pick[k])]
        duration = src.duration_s if max_duration_s is None else min(src.duration_s, max_duration_s)
        update = {
            "run_id": f"{SYNTHETIC_PREFIX}{k + 1:04d}",
            "workload": WorkloadSpec(
                family=SYNTHETIC_WORKLOAD, intensity=round(float(intensity[k]), 3)
            ),
            "seed": int(seeds[k]),
            "duration_s": float(duration),
        }
        if mixed[k] and src.trojan is not None:
            update["trojan"] = src.trojan.model_copy(update={"family": SYNTHETIC_TROJAN})
        out.append(src.model_copy(update=update))
    return out


def synthetic_dir(data_dir: Path, split: str) -> Path:
    """Where `write_synthetic` puts a split's synthetic runs: `<data>/synthetic/<split>/`."""
    return Path(data_dir) / SYNTHETIC_DIR / split


def write_synthetic(
    data_dir: Path,
    split: str,
    n: int,
    seed: int,
    *,
    trojan_share: float = 0.0,
    warmup_s: float = 60.0,
    on_run: Callable[[int, int], None] | None = None,
) -> Path:
    """Simulate `n` synthetic clones of split `split`'s training runs into `synthetic_dir`.

    Reads `splits/<split>.json` and each training run's meta.json. A directory already written for
    the same request (split, simulator version, n, seed, trojan share, training runs, specs) is
    reused as it is; any other is replaced.
    Returns the directory.
    """
    data_dir = Path(data_dir)
    manifest = read_split_file(data_dir / "splits" / f"{split}.json")
    sources = [read_run_spec(data_dir / "runs" / r / "meta.json") for r in manifest.train]
    specs = synthetic_specs(sources, n, seed, trojan_share=trojan_share)
    request = {
        "split": split,
        "simulator_version": SIMULATOR_VERSION,
        "n_runs": n,
        "seed": seed,
        "trojan_share": trojan_share,
        "source_runs": sorted(manifest.train),
        "run_ids": [s.run_id for s in specs],
        "specs": [s.model_dump(mode="json") for s in specs],
    }
    out = synthetic_dir(data_dir, split)
    stamp = out / SYNTHETIC_STAMP
    if stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == request:
                return out
        except ValueError:
            pass
    shutil.rmtree(out, ignore_errors=True)
    done = 0

    def tick(_meta: RunMeta) -> None:
        nonlocal done
        done += 1
        if on_run is not None:
            on_run(done, len(specs))

    write_runs(specs, out / "runs", warmup_s, on_run=tick)
    stamp.write_text(json.dumps(request, indent=1, sort_keys=True) + "\n")
    return out
