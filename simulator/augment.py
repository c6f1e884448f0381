"""Training-time domain randomisation: extra runs whose benign workload is a randomised profile.

A detector trained on five workload families learns their mixes; a held-out workload whose own
bursts and phase changes load an engine only trojans loaded in training then looks like a trojan.
`synthetic_specs` clones training runs (binary, trojan, schedule kind, regime, device instance,
duration) and gives each a fresh seed and a `synthetic` workload, a profile drawn from that seed
(`simulator.workloads.synthetic_profile`). Everything but the workload comes from the training runs
it clones, so a split's held-out condition (a trojan family, a power mode, a binary) never enters.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from simulator.config import SYNTHETIC_WORKLOAD, RunSpec, WorkloadSpec

__all__ = ["SYNTHETIC_PREFIX", "synthetic_specs"]

#: Run ids of synthetic runs: `syn_0001`, ... (never a benchmark run id).
SYNTHETIC_PREFIX = "syn_"
_STREAM = zlib.crc32(b"simulator.augment")


def synthetic_specs(
    sources: Sequence[RunSpec], n: int, seed: int, max_duration_s: float | None = 420.0
) -> list[RunSpec]:
    """`n` synthetic-workload clones of runs drawn (with replacement) from `sources`.

    Deterministic for (`sources` as a set, `n`, `seed`). Durations are capped at `max_duration_s`
    (None: kept) so that augmentation adds many workloads rather than a few long runs.
    """
    if n < 0:
        raise ValueError(f"The 'n' parameter of synthetic_specs must be >= 0. Got {n} instead.")
    if n and not sources:
        raise ValueError("The 'sources' parameter of synthetic_specs must hold at least one run.")
    ordered = sorted(sources, key=lambda s: s.run_id)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM]))
    pick = rng.integers(0, len(ordered), n) if n else np.zeros(0, np.int64)
    seeds = rng.integers(0, 2**31 - 1, n)
    intensity = rng.uniform(0.1, 1.0, n)
    out = []
    for k in range(n):
        src = ordered[int(pick[k])]
        duration = src.duration_s if max_duration_s is None else min(src.duration_s, max_duration_s)
        out.append(
            src.model_copy(
                update={
                    "run_id": f"{SYNTHETIC_PREFIX}{k + 1:04d}",
                    "workload": WorkloadSpec(
                        family=SYNTHETIC_WORKLOAD, intensity=round(float(intensity[k]), 3)
                    ),
                    "seed": int(seeds[k]),
                    "duration_s": float(duration),
                }
            )
        )
    return out
