"""Run-level split manifests: random, unseen_workload, unseen_trojan, unseen_regime,
binary_disjoint and contaminated_warmup.

No run is ever cut across parts. Validation runs come from the training distribution (never from the
held-out condition), so thresholds tuned on them say nothing about the test condition in advance.

Development folds (`dev_folds`) reproduce a held-out split's shift without its test runs: inside
the split's own train + val runs, each other value of the held-out key (each other workload,
trojan family or power mode) is held out in turn. A method developed and tuned on these folds has
met the shift it will be judged on, yet has never seen a test run of the split.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from simulator.config import RunSpec
from simulator.corpus import BinaryRecord
from simulator.schedules import activation_intervals
from stream.splits import DEV_MARKER, SPLIT_NAMES, SplitManifest, read_split_file

__all__ = [
    "DEV_MARKER",
    "HELD_OUT_KEYS",
    "SPLIT_NAMES",
    "SplitManifest",
    "dev_folds",
    "make_splits",
    "write_splits",
    "read_split",
]

HELD_OUT = {
    "unseen_workload": "cv_pipeline",
    "unseen_trojan": "mempressure",
    "unseen_regime": "15W",
}
#: What each held-out split holds out, per run; benign runs of unseen_trojan have no family.
HELD_OUT_KEYS: dict[str, Callable[[RunSpec], str]] = {
    "unseen_workload": lambda s: s.workload.family,
    "unseen_trojan": lambda s: s.capability if s.trojan else "benign",
    "unseen_regime": lambda s: s.regime.power_mode,
}
#: Splits whose held-out part keeps a share of benign runs (their key has no benign value).
KEEP_BENIGN = ("unseen_trojan",)


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *name.encode()]))


def _fractions(ids: list[str], rng: np.random.Generator, f_val: float, f_test: float):
    ids = list(ids)
    rng.shuffle(ids)
    n = len(ids)
    n_test = int(round(f_test * n))
    n_val = int(round(f_val * n))
    return ids[n_test + n_val :], ids[n_test : n_test + n_val], ids[:n_test]


def _held_out(
    name: str,
    specs: Sequence[RunSpec],
    seed: int,
    key: Callable[[RunSpec], str],
    preferred: str,
    keep_benign: bool = False,
) -> SplitManifest:
    """Test = runs whose key equals the held-out value; val = 20 % of the rest; train = the rest."""
    rng = _rng(seed, name)
    values = sorted({key(s) for s in specs} - ({"benign"} if keep_benign else set()))
    held = preferred if preferred in values else str(rng.choice(values))
    test = [s.run_id for s in specs if key(s) == held]
    rest = [s.run_id for s in specs if key(s) != held]
    rule = f"test: {name.removeprefix('unseen_')} == {held}"
    if keep_benign:
        # Benign runs have no trojan family: a share of them joins the test part to measure FAR.
        benign = [s.run_id for s in specs if s.capability == "benign"]
        _, _, benign_test = _fractions(benign, rng, 0.0, 0.25)
        test += benign_test
        rest = [r for r in rest if r not in set(benign_test)]
        rule += " plus 25 % of benign runs"
    train, val, _ = _fractions(rest, rng, 0.25, 0.0)
    return SplitManifest(
        name=name,
        train=sorted(train),
        val=sorted(val),
        test=sorted(test),
        seed=seed,
        rule=rule + "; val: 25 % of the remaining runs at random; train: the rest",
    )


def _binary_disjoint(specs: Sequence[RunSpec], corpus: Sequence[BinaryRecord], seed: int):
    """Whole source programs (all their builds) go to one part, per capability: unseen binaries."""
    rng = _rng(seed, "binary_disjoint")
    source = {r.binary_id: r.source for r in corpus}
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for cap in sorted({s.capability for s in specs}):
        runs = [s for s in specs if s.capability == cap]
        srcs = sorted({source[s.binary_id] for s in runs})
        rng.shuffle(srcs)
        counts = {src: sum(source[s.binary_id] == src for s in runs) for src in srcs}
        assign: dict[str, str] = {}
        order = ["test", "val"] if len(srcs) >= 3 else ["test"]
        for part, src in zip(order, srcs, strict=False):
            assign[src] = part
        filled = {"train": 0, "val": 0, "test": 0}
        for src, part in assign.items():
            filled[part] += counts[src]
        target = {"train": 0.6, "val": 0.2, "test": 0.2}
        total = sum(counts.values())
        for src in srcs:
            if src in assign:
                continue
            part = min(filled, key=lambda p: filled[p] / total - target[p])
            assign[src] = part
            filled[part] += counts[src]
        for s in runs:
            parts[assign[source[s.binary_id]]].append(s.run_id)
    return SplitManifest(
        name="binary_disjoint",
        train=sorted(parts["train"]),
        val=sorted(parts["val"]),
        test=sorted(parts["test"]),
        seed=seed,
        rule="per capability, whole source programs (every build of one C source) go to one part "
        "(~60/20/20 by runs): no binary and no source program in two parts",
    )


def _contaminated(specs: Sequence[RunSpec], seed: int, warmup_s: float) -> SplitManifest:
    rng = _rng(seed, "contaminated_warmup")
    dirty = [
        s.run_id for s in specs if any(a.t_start_s < warmup_s for a in activation_intervals(s))
    ]
    clean = [s.run_id for s in specs if s.run_id not in set(dirty)]
    benign = [s.run_id for s in specs if s.capability == "benign"]
    _, _, benign_test = _fractions(benign, rng, 0.0, 0.25)
    test = dirty + benign_test
    rest = [r for r in clean if r not in set(benign_test)]
    train, val, _ = _fractions(rest, rng, 0.25, 0.0)
    return SplitManifest(
        name="contaminated_warmup",
        train=sorted(train),
        val=sorted(val),
        test=sorted(test),
        seed=seed,
        rule=f"test: every run with trojan activity inside the first {warmup_s:g} s (warm-up) plus "
        "25 % of benign runs; val: 25 % of the remaining runs; train: the rest",
    )


def make_splits(
    specs: Sequence[RunSpec], corpus: Sequence[BinaryRecord], seed: int, warmup_s: float
) -> tuple[dict[str, SplitManifest], dict[str, str]]:
    """The six split manifests of a benchmark; deterministic for `seed`.

    A split whose rule leaves a part empty (a benchmark too small for it) is left out; the
    returned `skipped` dict says which and why.
    """
    ids = [s.run_id for s in specs]

    def random_split() -> SplitManifest:
        train, val, test = _fractions(ids, _rng(seed, "random"), 0.2, 0.2)
        return SplitManifest(
            name="random",
            train=sorted(train),
            val=sorted(val),
            test=sorted(test),
            seed=seed,
            rule="runs shuffled, 60/20/20",
        )

    builders: dict[str, Callable[[], SplitManifest]] = {
        "random": random_split,
        **{
            name: (
                lambda name=name: _held_out(
                    name,
                    specs,
                    seed,
                    HELD_OUT_KEYS[name],
                    HELD_OUT[name],
                    keep_benign=name in KEEP_BENIGN,
                )
            )
            for name in HELD_OUT
        },
        "binary_disjoint": lambda: _binary_disjoint(specs, corpus, seed),
        "contaminated_warmup": lambda: _contaminated(specs, seed, warmup_s),
    }
    out: dict[str, SplitManifest] = {}
    skipped: dict[str, str] = {}
    for name, build in builders.items():
        try:
            out[name] = build()
        except (ValidationError, ValueError, KeyError) as exc:
            skipped[name] = f"too few runs for its rule ({type(exc).__name__})"
    return out, skipped


def dev_folds(
    split: SplitManifest, specs: Sequence[RunSpec]
) -> tuple[dict[str, SplitManifest], dict[str, str]]:
    """Leave-one-value-out development folds inside a held-out split's train + val runs.

    For each value V of the split's key among those runs (benign excepted), the fold
    "<split>.dev-V" tests on the pool's runs with key V (plus 25 % of the pool's benign runs where
    the split keeps benign runs in its test part), validates on 25 % of the rest and trains on the
    remainder. The split's own test runs are in no fold. `specs` must cover the pool's runs;
    deterministic for the split's seed. Returns the folds and, like `make_splits`, the folds left
    out because a part would be empty, with the reason.

    Example: unseen_workload (test: cv_pipeline) gives unseen_workload.dev-bursty_network, ...,
    one fold per other workload.
    """
    if split.name not in HELD_OUT_KEYS:
        raise ValueError(
            f"Development folds exist for held-out splits only ({', '.join(HELD_OUT_KEYS)}). "
            f"Got {split.name!r} instead."
        )
    by_id = {s.run_id: s for s in specs}
    pool = split.train + split.val
    missing = [r for r in pool if r not in by_id]
    if missing:
        raise ValueError(f"No run spec (meta.json) for run {missing[0]!r} of split {split.name!r}.")
    pool_specs = [by_id[r] for r in sorted(pool)]
    key = HELD_OUT_KEYS[split.name]
    out: dict[str, SplitManifest] = {}
    skipped: dict[str, str] = {}
    for value in sorted({key(s) for s in pool_specs} - {"benign"}):
        name = f"{split.name}{DEV_MARKER}{value}"
        try:
            fold = _held_out(name, pool_specs, split.seed, key, value, split.name in KEEP_BENIGN)
        except (ValidationError, ValueError) as exc:
            skipped[name] = f"too few runs for its rule ({type(exc).__name__})"
            continue
        what = split.name.removeprefix("unseen_")  # "workload", "trojan", "regime"
        rule = fold.rule.replace(f"{name.removeprefix('unseen_')} ==", f"{what} ==")
        out[name] = fold.model_copy(
            update={"rule": f"development fold of {split.name} (its train + val runs only): {rule}"}
        )
    return out, skipped


def write_splits(splits: dict[str, SplitManifest], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, manifest in splits.items():
        (out_dir / f"{name}.json").write_text(json.dumps(manifest.model_dump(), indent=2) + "\n")


def read_split(path: Path) -> SplitManifest:
    """Read and validate splits/<name>.json (unknown keys refused); errors name the file."""
    return read_split_file(path)
