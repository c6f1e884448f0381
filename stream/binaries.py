"""Binary index: binary_id -> ELF path, read from a binaries.csv (ours or another tool's)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

__all__ = ["read_binary_index"]


def read_binary_index(csv_path: Path) -> dict[str, Path]:
    """Map binary_id to its file (binary_path relative to the CSV's folder). Missing file -> {}."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        return {}
    df = pl.read_csv(csv_path, infer_schema_length=0)
    if not {"binary_id", "binary_path"} <= set(df.columns):
        raise ValueError(f"{csv_path}: needs columns 'binary_id' and 'binary_path'")
    return {
        str(b): (csv_path.parent / str(p))
        for b, p in zip(df["binary_id"], df["binary_path"], strict=True)
    }
