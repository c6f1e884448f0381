"""Score prediction files against truth files: the library behind ``cli.py score``.

Runs are joined by ``run_id``:

- a run only in TRUTH has no predictions (a silent benign run is correct);
- a run only in PRED is scored as a run without truth (its predictions are false alarms), with the
  fallback duration if one is given;
- a side that names no run id (a plain file without ``run_id``) joins the other side's single run,
  and is an error when the other side holds several; an empty such prediction file means "no
  detections" for every run;
- two sides that both name runs but share none are an error (almost surely mismatched files).

A run's scored span is ``[0, duration)``, the duration coming from its meta.json or a ``duration_s``
column of TRUTH, else from the ``duration_s`` argument (a fallback, never an override). Without a
duration, false alarms per hour are reported as unknown with the reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from stream.intervals_io import IntervalFileError, IntervalSet, read_pred, read_truth
from stream.metrics import DEFAULT_MIN_IOU, IntervalReport, RunIntervals, score_runs

__all__ = ["join_runs", "score_files", "format_report"]


def _single_key(side: IntervalSet, other: IntervalSet, side_name: str) -> dict[str, str]:
    """Rename map that gives an unnamed single-run side the other side's run id."""
    if len(other.run_ids) != 1:
        raise IntervalFileError(
            f"{side.source}: names no run_id, but {other.source} holds {len(other.run_ids)} runs; "
            f"add a run_id column to {side_name}"
        )
    return {run: other.run_ids[0] for run in side.run_ids}


def join_runs(
    truth: IntervalSet, pred: IntervalSet, duration_s: float | None = None
) -> list[RunIntervals]:
    """Pair truth and prediction runs by run id (rules in the module docstring), truth order first."""
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(
            f"The 'duration_s' parameter of join_runs must be > 0. Got {duration_s!r} instead."
        )
    pred_runs = dict(pred.intervals)
    pred_emit = dict(pred.emit_s)
    truth_runs = dict(truth.intervals)
    durations = dict(truth.duration_s)
    if not pred.has_run_ids and sum(len(v) for v in pred_runs.values()) == 0:
        pred_runs, pred_emit = {}, {}
    elif not pred.has_run_ids:
        rename = _single_key(pred, truth, "PRED")
        pred_runs = {rename[k]: v for k, v in pred_runs.items()}
        pred_emit = {rename[k]: v for k, v in pred_emit.items()}
    elif not truth.has_run_ids:
        rename = _single_key(truth, pred, "TRUTH")
        truth_runs = {rename[k]: v for k, v in truth_runs.items()}
        durations = {rename[k]: v for k, v in durations.items()}
    elif truth_runs and pred_runs and not set(truth_runs) & set(pred_runs):
        raise IntervalFileError(
            f"{pred.source}: no run_id in common with {truth.source} "
            f"(e.g. {next(iter(pred_runs))!r} vs {next(iter(truth_runs))!r})"
        )
    out = []
    for run in list(truth_runs) + [r for r in pred_runs if r not in truth_runs]:
        p = pred_runs.get(run, np.empty((0, 2)))
        end = durations.get(run, duration_s)
        out.append(
            RunIntervals(
                run_id=run,
                truth=truth_runs.get(run, np.empty((0, 2))),
                pred=p,
                pred_emit_s=pred_emit.get(run, np.full(len(p), np.nan)),
                scored_start_s=0.0,
                scored_end_s=end,
            )
        )
    return out


def score_files(
    truth: Path | str,
    pred: Path | str,
    duration_s: float | None = None,
    min_iou: float = DEFAULT_MIN_IOU,
) -> IntervalReport:
    """Read TRUTH and PRED (files or run directories), join them by run and score them pooled."""
    return score_runs(join_runs(read_truth(truth), read_pred(pred), duration_s), min_iou)


def _fmt(value: float | None, unit: str = "", digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def format_report(report: IntervalReport) -> str:
    """A short human-readable summary of a report (the JSON form is ``report.to_dict()``)."""
    far = (
        f"{_fmt(report.far_per_hour)} /h over {_fmt(report.benign_hours, ' benign h', 2)}"
        if report.far_per_hour is not None
        else f"n/a ({report.far_reason})"
    )
    ttd_note = "  [from interval starts: no t_emit_s, flatters]" if report.ttd_from_start else ""
    return "\n".join(
        [
            f"runs {report.n_runs}  truth events {report.n_true}  predictions {report.n_pred}  "
            f"matched {report.n_matched} (IoU >= {report.min_iou:g})",
            f"event precision {_fmt(report.event_precision)}  recall {_fmt(report.event_recall)}  "
            f"F1 {_fmt(report.event_f1)}",
            f"false alarms {report.n_false_alarms}: {far}",
            f"time to detect median {_fmt(report.ttd_median_s, ' s', 2)}  "
            f"p90 {_fmt(report.ttd_p90_s, ' s', 2)}  miss rate {_fmt(report.miss_rate)}{ttd_note}",
            f"range precision {_fmt(report.range_precision)}  recall {_fmt(report.range_recall)}",
        ]
    )
