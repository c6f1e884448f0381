"""Deterministic mutators for reliability tests and fuzz benchmarks: hostile ELF files, bad CSVs.

`mutate_elf(data, rng)` damages a valid ELF the way hostile or broken files are damaged (byte
flips, truncation, header and table corruption, garbage); `malformed_telemetry(df, rng)` breaks a
valid telemetry frame in one of the ways DESIGN.md section 8 lists. Both return `(kind, result)`
so that a report can count outcomes per kind. Randomness only through the `rng` passed in.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS

__all__ = ["ELF_MUTATIONS", "CSV_MUTATIONS", "mutate_elf", "malformed_telemetry"]

_HUGE = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 2**63 - 1, 2**64 - 1)


def _flip(data: bytearray, rng: np.random.Generator) -> None:
    for i in rng.integers(0, len(data), size=int(rng.integers(1, 64))):
        data[int(i)] ^= int(rng.integers(1, 256))


def _header_field(data: bytearray, rng: np.random.Generator) -> None:
    """Overwrite one ELF64 header field (type, machine, entry, table offsets, counts) with an edge value."""
    fields = [(16, "H"), (18, "H"), (24, "Q"), (32, "Q"), (40, "Q"), (52, "H"), (54, "H")]
    fields += [(56, "H"), (58, "H"), (60, "H"), (62, "H")]
    off, fmt = fields[int(rng.integers(len(fields)))]
    value = _HUGE[int(rng.integers(len(_HUGE)))] & (0xFFFF if fmt == "H" else 2**64 - 1)
    if off + struct.calcsize(fmt) <= len(data):
        struct.pack_into("<" + fmt, data, off, value)


def _table(data: bytearray, rng: np.random.Generator, which: str) -> None:
    """Scribble over the program (or section) header table: offsets, sizes, types."""
    if len(data) < 64:
        return
    if which == "ph":
        off, size, n = (
            struct.unpack_from("<Q", data, 32)[0],
            56,
            struct.unpack_from("<H", data, 56)[0],
        )
    else:
        off, size, n = (
            struct.unpack_from("<Q", data, 40)[0],
            64,
            struct.unpack_from("<H", data, 60)[0],
        )
    if n == 0 or off + n * size > len(data):
        _flip(data, rng)
        return
    for _ in range(int(rng.integers(1, 8))):
        entry = off + int(rng.integers(n)) * size
        pos = entry + 8 * int(rng.integers(size // 8))
        struct.pack_into("<Q", data, pos, _HUGE[int(rng.integers(len(_HUGE)))])


def mutate_elf(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One damaged copy of the ELF `data`; the kind is one of ELF_MUTATIONS."""
    kind = ELF_MUTATIONS[int(rng.integers(len(ELF_MUTATIONS)))]
    out = bytearray(data)
    if kind == "byte_flips":
        _flip(out, rng)
    elif kind == "truncate":
        out = out[: int(rng.integers(0, len(out)))]
    elif kind == "header_field":
        for _ in range(int(rng.integers(1, 4))):
            _header_field(out, rng)
    elif kind == "program_headers":
        _table(out, rng, "ph")
    elif kind == "section_headers":
        _table(out, rng, "sh")
    elif kind == "zero_block":
        a = int(rng.integers(0, len(out)))
        b = min(len(out), a + int(rng.integers(1, 4096)))
        out[a:b] = bytes(b - a)
    elif kind == "garbage_tail":
        out += rng.bytes(int(rng.integers(1, 65536)))
    elif kind == "random_bytes":
        out = bytearray(b"\x7fELF" + rng.bytes(int(rng.integers(0, 8192))))
    return kind, bytes(out)


ELF_MUTATIONS = (
    "byte_flips",
    "truncate",
    "header_field",
    "program_headers",
    "section_headers",
    "zero_block",
    "garbage_tail",
    "random_bytes",
)

CSV_MUTATIONS = (
    "drop_column",
    "text_cell",
    "empty_cell",
    "nan_cell",
    "inf_cell",
    "nan_time",
    "duplicate_time",
    "shuffle_rows",
    "swap_two_rows",
    "rate_jump",
    "bad_mask",
    "header_only",
    "huge_values",
    "ragged_row",
    "binary_garbage",
)


def malformed_telemetry(df: pl.DataFrame, rng: np.random.Generator) -> tuple[str, bytes]:
    """CSV bytes of `df` broken one way (kind in CSV_MUTATIONS). `df` holds t_sim_s, features, masks."""
    kind = CSV_MUTATIONS[int(rng.integers(len(CSV_MUTATIONS)))]
    n = df.height
    row = int(rng.integers(1, n))  # never the first row, so every time defect is visible
    col = str(rng.choice(FEATURE_COLUMNS))
    s = df.with_columns(pl.all().cast(pl.Utf8))
    if kind == "drop_column":
        s = s.drop(str(rng.choice(("t_sim_s",) + FEATURE_COLUMNS)))
    elif kind in ("text_cell", "empty_cell", "nan_cell", "inf_cell", "nan_time"):
        value = {"text_cell": "abc", "empty_cell": "", "nan_cell": "nan", "inf_cell": "-inf"}
        target = "t_sim_s" if kind == "nan_time" else col
        s = s.with_columns(
            pl.when(pl.int_range(n) == row)
            .then(pl.lit(value.get(kind, "NaN")))
            .otherwise(pl.col(target))
            .alias(target)
        )
    elif kind == "duplicate_time":
        t = df["t_sim_s"].to_numpy().copy()
        t[row] = t[row - 1]
        s = s.with_columns(pl.Series("t_sim_s", t).cast(pl.Utf8))
    elif kind == "shuffle_rows":
        s = s[rng.permutation(n).tolist()]
    elif kind == "swap_two_rows":
        order = np.arange(n)
        order[[row - 1, row]] = order[[row, row - 1]]
        s = s[order.tolist()]
    elif kind == "rate_jump":
        t = df["t_sim_s"].to_numpy().copy()
        t[row:] += float(rng.uniform(20, 1000)) * np.median(np.diff(t))
        s = s.with_columns(pl.Series("t_sim_s", t).cast(pl.Utf8))
    elif kind == "bad_mask":
        mask = str(rng.choice(MASK_COLUMNS))
        s = s.with_columns(
            pl.when(pl.int_range(n) == row).then(pl.lit("2")).otherwise(pl.col(mask)).alias(mask)
        )
    elif kind == "header_only":
        s = s.head(0)
    elif kind == "huge_values":
        s = s.with_columns(
            pl.when(pl.int_range(n) == row).then(pl.lit("1e308")).otherwise(pl.col(col)).alias(col)
        )
    text = s.write_csv().encode()
    if kind == "ragged_row":
        lines = text.splitlines()
        lines[row] = lines[row] + b",1,2,3"
        text = b"\n".join(lines) + b"\n"
    elif kind == "binary_garbage":
        cut = int(rng.integers(0, len(text)))
        text = text[:cut] + rng.bytes(int(rng.integers(1, 256))) + text[cut:]
    return kind, text
