"""Split manifests `splits/<name>.json` (DESIGN.md 3.3): the one definition that the simulator
writes and that training and evaluation read.

Splits are run-level: a run in two parts of a split is refused when the manifest is built or read,
so no evaluation can silently test on a training run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "DEV_MARKER",
    "SPLIT_NAMES",
    "SplitManifest",
    "available_splits",
    "data_fingerprint",
    "dev_fold_names",
    "read_split_file",
]

SPLIT_NAMES = (
    "random",
    "unseen_workload",
    "unseen_trojan",
    "unseen_regime",
    "binary_disjoint",
    "contaminated_warmup",
)
#: A development fold of split S holding out value V is named f"{S}{DEV_MARKER}{V}"
#: (simulator.splits.dev_folds); "S.dev" names all of S's folds at once.
DEV_MARKER = ".dev-"


class SplitManifest(BaseModel):
    """splits/<name>.json: run ids per part, the seed and the rule that made them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    train: list[str] = Field(min_length=1)
    val: list[str] = Field(min_length=1)
    test: list[str] = Field(min_length=1)
    seed: int
    rule: str

    @model_validator(mode="after")
    def _disjoint(self) -> SplitManifest:
        train, val, test = set(self.train), set(self.val), set(self.test)
        overlap = (train | val) & test or train & val
        if overlap:
            raise ValueError(f"run {sorted(overlap)[0]!r} is in two parts of the split")
        return self


def read_split_file(path: Path) -> SplitManifest:
    """Read and validate one manifest; errors name the file and the field, as ValueError."""
    try:
        return SplitManifest.model_validate(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read split manifest ({exc}).") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "file"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ValueError(f"{path}: invalid split manifest, field '{loc}': {msg}.") from None


def available_splits(data: Path) -> list[str]:
    """Split names with a manifest under data/splits, canonical ones first; development folds
    (`DEV_MARKER`) are left out, so that 'all' means the benchmark's splits."""
    names = sorted(p.stem for p in (Path(data) / "splits").glob("*.json"))
    names = [n for n in names if DEV_MARKER not in n]
    return [n for n in SPLIT_NAMES if n in names] + [n for n in names if n not in SPLIT_NAMES]


def dev_fold_names(data: Path, split: str) -> list[str]:
    """The development folds of `split` with a manifest under data/splits, sorted."""
    return sorted(p.stem for p in (Path(data) / "splits").glob(f"{split}{DEV_MARKER}*.json"))


def data_fingerprint(data: Path, split: str) -> str | None:
    """sha256 of what models trained on `split` learned from: its manifest and the meta.json of
    its training and validation runs (seed, spec, simulator version), in this benchmark.

    Two benchmarks written by the same simulator version and configuration give the same value;
    any other benchmark (another seed, size or simulator version) gives another, so `evaluate`
    can tell models trained here from models whose training runs it cannot see. None when the
    split or one of its runs' meta.json is missing.
    """
    data = Path(data)
    try:
        spec = read_split_file(data / "splits" / f"{split}.json")
        h = hashlib.sha256(spec.model_dump_json().encode())
        for run_id in sorted({*spec.train, *spec.val}):
            h.update(run_id.encode() + b"\0")
            h.update((data / "runs" / run_id / "meta.json").read_bytes())
    except (ValueError, OSError):
        return None
    return h.hexdigest()
