"""Read a telemetry.csv for batch use (replay, evaluate, train): allow-listed columns, validated.

Only the time column, identity columns, the feature allow-list and the masks are read, so label
columns that files from other tools may carry can never reach a score. Any defect stops with a
`TelemetryError` naming the file, the 1-based data row and the column.

Rates: any constant rate is accepted (replay resamples causally to the model's rate), and so is
jitter. A sampling interval more than `MAX_RATE_CHANGE` times longer or shorter than the run's
median interval (a long gap, or a switch to a very different rate) is refused: windows and causal
baselines cut across it would mix time scales silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS

__all__ = ["MAX_RATE_CHANGE", "Telemetry", "TelemetryError", "read_telemetry"]

#: Largest accepted ratio between one sampling interval and the run's median interval.
MAX_RATE_CHANGE = 10.0


class TelemetryError(ValueError):
    """A telemetry file that batch tools refuse; the message names file, row and column."""


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One run's samples: times (T,), features (T, F) raw, masks (T, K) uint8."""

    path: Path
    run_id: str
    binary_id: str
    t_sim_s: np.ndarray
    features: np.ndarray
    masks: np.ndarray
    masks_present: bool

    @property
    def hz(self) -> float:
        """Sample rate from the timestamps (median spacing)."""
        if self.t_sim_s.size < 2:
            raise TelemetryError(f"{self.path}: fewer than 2 samples, no sample rate")
        return float(1.0 / np.median(np.diff(self.t_sim_s)))


def read_telemetry(path: Path) -> Telemetry:
    """Read and validate one telemetry.csv.

    Missing mask columns are a documented fallback: every sample counts as fresh
    (`masks_present` False). Missing feature or time columns, non-numeric or non-finite cells,
    masks other than 0/1, timestamps that do not strictly increase and sampling intervals more
    than MAX_RATE_CHANGE times off the median are errors.
    """
    path = Path(path)
    if not path.is_file():
        raise TelemetryError(f"{path}: no such telemetry file")
    try:
        header = pl.read_csv(path, n_rows=0).columns
    except pl.exceptions.PolarsError as exc:
        raise TelemetryError(f"{path}: not a readable CSV ({_first_line(exc)})") from None
    required = ("t_sim_s",) + FEATURE_COLUMNS
    missing = [c for c in required if c not in header]
    if missing:
        raise TelemetryError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}")
    masks_present = all(c in header for c in MASK_COLUMNS)
    wanted = list(required) + [c for c in ("run_id", "binary_id") if c in header]
    if masks_present:
        wanted += list(MASK_COLUMNS)
    try:
        df = pl.read_csv(
            path,
            columns=wanted,
            infer_schema_length=0,  # read as text; conversion below reports the offending cell
        )
    except pl.exceptions.PolarsError as exc:
        raise TelemetryError(f"{path}: not a readable CSV ({_first_line(exc)})") from None
    if df.height == 0:
        raise TelemetryError(f"{path}: no samples")
    df = df.with_columns(
        [pl.col(c).cast(pl.Float64, strict=False).alias(f"__{c}") for c in required]
        + (
            [pl.col(c).cast(pl.Float64, strict=False).alias(f"__{c}") for c in MASK_COLUMNS]
            if masks_present
            else []
        )
    )
    cols = list(required) + (list(MASK_COLUMNS) if masks_present else [])
    for c in cols:
        conv = df.get_column(f"__{c}")
        raw = df.get_column(c)
        bad = conv.is_null()
        if bad.any():
            row = int(bad.arg_true()[0]) + 1
            raise TelemetryError(
                f"{path}: row {row}, column '{c}': not a number ({raw[row - 1]!r})"
            )
    t = df.get_column("__t_sim_s").to_numpy()
    feats = np.column_stack([df.get_column(f"__{c}").to_numpy() for c in FEATURE_COLUMNS])
    for j, c in enumerate(("t_sim_s",) + FEATURE_COLUMNS):
        v = t if j == 0 else feats[:, j - 1]
        bad = ~np.isfinite(v)
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise TelemetryError(f"{path}: row {row}, column '{c}': {v[row - 1]} is not finite")
    step = np.diff(t)
    if (step <= 0).any():
        row = int(np.flatnonzero(step <= 0)[0]) + 2
        kind = "duplicated" if step[row - 2] == 0 else "out-of-order"
        raise TelemetryError(f"{path}: row {row}, column 't_sim_s': {kind} timestamp {t[row - 1]}")
    _check_rate(path, step)
    if masks_present:
        mk = np.column_stack([df.get_column(f"__{c}").to_numpy() for c in MASK_COLUMNS])
        bad_mask = ~np.isin(mk, (0.0, 1.0))
        if bad_mask.any():
            r, k = np.argwhere(bad_mask)[0]
            raise TelemetryError(
                f"{path}: row {r + 1}, column '{MASK_COLUMNS[k]}': mask must be 0 or 1, "
                f"got {mk[r, k]}"
            )
        masks = mk.astype(np.uint8)
    else:
        masks = np.ones((df.height, len(MASK_COLUMNS)), np.uint8)
    run_id = str(df.get_column("run_id")[0]) if "run_id" in df.columns else path.parent.name
    binary_id = str(df.get_column("binary_id")[0]) if "binary_id" in df.columns else ""
    return Telemetry(path, run_id, binary_id, t, feats, masks, masks_present)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_rate(path: Path, step: np.ndarray) -> None:
    """Refuse an interval more than MAX_RATE_CHANGE times off the median (step > 0, (T-1,))."""
    if step.size == 0:
        return
    median = float(np.median(step))
    ratio = np.maximum(step / median, median / step)  # (T-1,)
    bad = ratio > MAX_RATE_CHANGE
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TelemetryError(
            f"{path}: row {i + 2}, column 't_sim_s': sampling interval {step[i]:g} s is "
            f"{ratio[i]:.0f}x off the run's median {median:g} s (a gap or rate change beyond "
            f"{MAX_RATE_CHANGE:g}x; batch tools refuse it)"
        )
