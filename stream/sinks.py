"""Sinks for detections: JSON Lines, intervals CSV (ground-truth column names), a live console."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

from stream.decide import Detection

__all__ = ["detection_record", "JsonlSink", "write_intervals_csv", "PRED_COLUMNS"]

PRED_COLUMNS = (
    "run_id",
    "t_start_sim_s",
    "t_end_sim_s",
    "t_emit_s",
    "peak_score",
    "mean_score",
    "p_dynamic_at_peak",
    "p_static_at_peak",
)


def detection_record(det: Detection, run_id: str) -> dict:
    """One closed interval as the JSON Lines object of DESIGN.md 3.6."""
    p_dyn, p_sta = (det.experts_at_peak + (float("nan"), float("nan")))[:2]
    return {
        "run_id": run_id,
        "t_start_s": round(det.t_start_s, 3),
        "t_end_s": round(det.t_end_s, 3),
        "t_emit_s": round(det.t_emit_s, 3),
        "peak_score": round(det.peak_score, 6),
        "mean_score": round(det.mean_score, 6),
        "p_dynamic_at_peak": None if np.isnan(p_dyn) else round(p_dyn, 6),
        "p_static_at_peak": None if np.isnan(p_sta) else round(p_sta, 6),
    }


class JsonlSink:
    """Appends one JSON object per detection to a file or stream, flushed as it happens."""

    def __init__(self, out: Path | str | IO[str]) -> None:
        self._own = isinstance(out, (str, Path))
        self._fh: IO[str]
        if isinstance(out, (str, Path)):
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(out, "w")  # noqa: SIM115
        else:
            self._fh = out

    def write(self, record: dict) -> None:
        self._fh.write(json.dumps(record, sort_keys=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._own:
            self._fh.close()


def write_intervals_csv(records: Sequence[dict], path: Path) -> None:
    """Predicted intervals with the ground-truth column names, for `cli.py score`."""
    import polars as pl

    rows = [
        {
            "run_id": r["run_id"],
            "t_start_sim_s": r["t_start_s"],
            "t_end_sim_s": r["t_end_s"],
            "t_emit_s": r["t_emit_s"],
            "peak_score": r["peak_score"],
            "mean_score": r["mean_score"],
            "p_dynamic_at_peak": r["p_dynamic_at_peak"],
            "p_static_at_peak": r["p_static_at_peak"],
        }
        for r in records
    ]
    schema = {c: (pl.Utf8 if c == "run_id" else pl.Float64) for c in PRED_COLUMNS}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, schema=schema).write_csv(path)
