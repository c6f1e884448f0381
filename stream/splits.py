"""Split manifests `splits/<name>.json` (DESIGN.md 3.3): the one definition that the simulator
writes and that training and evaluation read.

Splits are run-level: a run in two parts of a split is refused when the manifest is built or read,
so no evaluation can silently test on a training run.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "DEV_MARKER",
    "SPLIT_NAMES",
    "SplitManifest",
    "available_splits",
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
