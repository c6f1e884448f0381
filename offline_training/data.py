"""Load a split's windowed NPZ tensors and the binaries index of a benchmark directory.

Windows are read as written by `offline_training.windows` (the runtime's own windowing); nothing
here re-cuts or re-normalises them. A missing or corrupt file raises `DataError` naming it.
Static features are read through `stream.binary_worker.read_many` (isolated, time-limited), so a
binary LIEF cannot read becomes "unavailable", never a crash.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.windowing import Normalisation, WindowSpec

__all__ = [
    "DataError",
    "WindowSet",
    "SplitData",
    "Binaries",
    "PARTS",
    "available_splits",
    "load_split",
    "load_binaries",
    "read_split_runs",
]

PARTS = ("train", "val", "test")
_KEYS = ("X", "M", "y_soft", "run_id", "binary_id", "t_end_s", "feature_names", "mask_names")
_KEYS += ("window", "stride", "hz", "norm_scale", "norm_up_tau_s", "norm_down_tau_s", "norm_clip")
#: Absent in windows written before the spread adaptation existed (it is then off).
_OPTIONAL_KEYS = ("norm_spread_tau_s", "norm_spread_ref", "norm_spread_warm_s")


class DataError(ValueError):
    """A benchmark directory that training refuses; the message names the file and the defect."""


@dataclass(frozen=True)
class WindowSet:
    """One part of a split: windows, masks, soft labels and where each window comes from."""

    X: np.ndarray  # (N, W, F) float32, standardised
    M: np.ndarray  # (N, W, K) uint8
    y_soft: np.ndarray  # (N,) float32, overlap fraction with activity
    run_id: np.ndarray  # (N,) str
    binary_id: np.ndarray  # (N,) str
    t_end_s: np.ndarray  # (N,) float64

    def __len__(self) -> int:
        return int(self.y_soft.shape[0])

    @property
    def y(self) -> np.ndarray:
        """Hard labels, y_soft >= 0.5 (DESIGN.md 6)."""
        return (self.y_soft >= 0.5).astype(np.int64)

    def take(self, idx: np.ndarray) -> WindowSet:
        """The windows at `idx` (a copy)."""
        return WindowSet(*(a[idx] for a in self._arrays()))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.X, self.M, self.y_soft, self.run_id, self.binary_id, self.t_end_s)


@dataclass(frozen=True)
class SplitData:
    """A split's three parts plus the window spec and normalisation they were cut with."""

    name: str
    parts: dict[str, WindowSet]
    spec: WindowSpec
    norm: Normalisation

    @property
    def train(self) -> WindowSet:
        return self.parts["train"]

    @property
    def val(self) -> WindowSet:
        return self.parts["val"]

    @property
    def test(self) -> WindowSet:
        return self.parts["test"]


@dataclass(frozen=True)
class Binaries:
    """The binaries index: id, absolute path, capability label (1 = not benign) and the source
    program each binary was built from (its own id when the index has no `source` column)."""

    binary_id: np.ndarray  # (B,) str
    path: tuple[Path, ...]
    label: np.ndarray  # (B,) int64
    source: np.ndarray | None = None  # (B,) str; None: every binary is its own program

    def index(self) -> dict[str, int]:
        return {b: i for i, b in enumerate(self.binary_id.tolist())}


def available_splits(data_dir: Path) -> list[str]:
    """Names of splits with a processed/<split>/ directory, sorted."""
    root = Path(data_dir) / "processed"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _load_part(path: Path) -> tuple[WindowSet, WindowSpec, Normalisation]:
    if not path.is_file():
        raise DataError(f"{path}: missing; write the benchmark with `python cli.py simulate`.")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _KEYS if k not in z.files]
            if missing:
                raise DataError(f"{path}: corrupt windows file, missing keys {missing}.")
            d = {k: z[k] for k in (*_KEYS, *_OPTIONAL_KEYS) if k in z.files}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: corrupt windows file (not a readable .npz archive).") from None
    if tuple(d["feature_names"].tolist()) != FEATURE_COLUMNS:
        raise DataError(f"{path}: feature_names differ from stream.schema.FEATURE_COLUMNS.")
    if tuple(d["mask_names"].tolist()) != MASK_COLUMNS:
        raise DataError(f"{path}: mask_names differ from stream.schema.MASK_COLUMNS.")
    X, M, n = d["X"], d["M"], d["y_soft"].shape[0]
    W = int(d["window"])
    if X.shape[1:] != (W, len(FEATURE_COLUMNS)) or M.shape[1:] != (W, len(MASK_COLUMNS)):
        raise DataError(f"{path}: X/M shapes {X.shape}/{M.shape} do not match window {W}.")
    if not all(a.shape[0] == n for a in (X, M, d["run_id"], d["binary_id"], d["t_end_s"])):
        raise DataError(f"{path}: arrays have different numbers of windows.")
    if not np.isfinite(X).all():
        raise DataError(f"{path}: X holds NaN or inf.")
    hz = float(d["hz"])
    spec = WindowSpec(hz=hz, window_s=W / hz, stride_s=int(d["stride"]) / hz)
    norm = Normalisation(
        tuple(float(s) for s in d["norm_scale"]),
        float(d["norm_up_tau_s"]),
        float(d["norm_down_tau_s"]),
        float(d["norm_clip"]),
        float(d["norm_spread_tau_s"]) if "norm_spread_tau_s" in d else 0.0,
        tuple(float(v) for v in d["norm_spread_ref"])
        if "norm_spread_ref" in d and d["norm_spread_ref"].size
        else None,
        float(d["norm_spread_warm_s"]) if "norm_spread_warm_s" in d else 0.0,
    )
    ws = WindowSet(
        X=np.ascontiguousarray(X, np.float32),
        M=np.ascontiguousarray(M, np.uint8),
        y_soft=np.clip(d["y_soft"].astype(np.float32), 0.0, 1.0),
        run_id=d["run_id"].astype(str),
        binary_id=d["binary_id"].astype(str),
        t_end_s=d["t_end_s"].astype(np.float64),
    )
    return ws, spec, norm


def load_split(data_dir: Path, split: str) -> SplitData:
    """Read processed/<split>/windows_{train,val,test}.npz; all three must agree on spec and scale."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data directory does not exist.")
    names = available_splits(data_dir)
    if split not in names:
        raise DataError(
            f"The 'split' parameter of train must be one of {names}. Got {split!r} instead."
        )
    parts, specs, norms = {}, [], []
    for part in PARTS:
        ws, spec, norm = _load_part(data_dir / "processed" / split / f"windows_{part}.npz")
        parts[part] = ws
        specs.append(spec)
        norms.append(norm)
    if len(set(specs)) != 1 or len(set(norms)) != 1:
        raise DataError(f"{data_dir / 'processed' / split}: parts disagree on window or scale.")
    for part in ("train", "val"):
        if len(parts[part]) == 0:
            raise DataError(f"{data_dir / 'processed' / split}/windows_{part}.npz: no windows.")
    return SplitData(split, parts, specs[0], norms[0])


def load_binaries(data_dir: Path) -> Binaries:
    """Read binaries/binaries.csv (DESIGN.md 3.2); paths are resolved against binaries/."""
    csv = Path(data_dir) / "binaries" / "binaries.csv"
    if not csv.is_file():
        raise DataError(f"{csv}: missing; the static expert needs the binaries index.")
    try:
        df = pl.read_csv(csv, infer_schema_length=0)
    except Exception as exc:  # polars raises several types on malformed CSV
        raise DataError(f"{csv}: unreadable ({type(exc).__name__}).") from None
    need = {"binary_id", "binary_path", "capability"}
    if not need <= set(df.columns):
        raise DataError(f"{csv}: missing columns {sorted(need - set(df.columns))}.")
    paths = tuple(
        (csv.parent / p) if not Path(p).is_absolute() else Path(p)
        for p in df["binary_path"].to_list()
    )
    label = (df["capability"].to_numpy().astype(str) != "benign").astype(np.int64)
    ids = df["binary_id"].to_numpy().astype(str)
    source = None
    if "source" in df.columns:
        named = df["source"].fill_null("").str.strip_chars().to_numpy().astype(str)
        source = np.where(named == "", ids, named)
    return Binaries(ids, paths, label, source)


def read_split_runs(data_dir: Path, split: str) -> dict[str, list[str]] | None:
    """Run ids per part from splits/<split>.json, or None when the manifest is absent."""
    path = Path(data_dir) / "splits" / f"{split}.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        return {part: [str(r) for r in raw[part]] for part in PARTS}
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: corrupt split manifest ({type(exc).__name__}).") from None
