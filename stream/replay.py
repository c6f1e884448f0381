"""Replay recorded runs through the runtime (as fast as possible or paced), then score them.

Several runs replay together as devices of one fleet, so windows ready at the same tick are scored
in one batch. Scores per window can be recorded for evaluation and parity checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stream.accounting import Accounting
from stream.adapt import DelayedRecalibrator
from stream.decide import DecisionConfig
from stream.detector import Detector, DeviceInfo
from stream.metrics import IntervalReport, RunIntervals, score_runs
from stream.onnx_session import ModelSet
from stream.runtime import WindowRecord
from stream.sources import ReplayRun, load_replay, start_at, ticks

__all__ = ["WindowLog", "ReplayResult", "replay_runs", "truth_labeller", "score_replay"]


@dataclass
class WindowLog:
    """Per-run window scores: end times, fusion context rows and fused scores."""

    t_end_s: list[np.ndarray] = field(default_factory=list)
    ctx: list[np.ndarray] = field(default_factory=list)
    score: list[np.ndarray] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.t_end_s:
            return np.zeros(0), np.zeros((0, 8), np.float32), np.zeros(0, np.float32)
        return np.concatenate(self.t_end_s), np.concatenate(self.ctx), np.concatenate(self.score)


@dataclass
class ReplayResult:
    runs: list[ReplayRun]
    detections: dict[str, list[dict]]
    first_window_t: dict[str, float | None]
    accounting: Accounting
    provider: str
    windows: dict[str, WindowLog] | None
    wall_s: float
    static_reasons: dict[str, str | None]


def truth_labeller(runs: Sequence[ReplayRun]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Delayed-feedback labels: a window is positive when its end time lies inside a truth interval."""

    def label(rows: np.ndarray, t_end: np.ndarray) -> np.ndarray:
        out = np.zeros(rows.size, bool)
        for i, (d, t) in enumerate(zip(rows.tolist(), t_end.tolist(), strict=True)):
            truth = runs[d].truth
            if truth is not None and truth.size:
                out[i] = bool(((truth[:, 0] <= t) & (t < truth[:, 1])).any())
        return out

    return label


def replay_runs(
    run_dirs: Sequence[Path],
    models: ModelSet,
    *,
    binaries: Mapping[str, Path] | None = None,
    speed: float | None = None,
    decision: DecisionConfig | None = None,
    adapt: bool = True,
    feedback_delay_s: float | None = None,
    record_windows: bool = False,
    on_detection: Callable[[dict], None] | None = None,
    start_s: Mapping[str, float] | None = None,
) -> ReplayResult:
    """Replay `run_dirs` as one fleet. speed None = as fast as possible; 1.0 = real time.

    `start_s` maps run ids to a later start: those devices stream from that time on
    (`stream.sources.start_at`), e.g. to replay a run without its warm-up.
    """
    if speed is not None and not speed > 0:
        raise ValueError(
            f"The 'speed' parameter of replay_runs must be > 0. Got {speed!r} instead."
        )
    hz = models.manifest.hz
    runs = [load_replay(Path(d), hz) for d in run_dirs]
    if start_s:
        runs = [start_at(r, start_s[r.run_id]) if r.run_id in start_s else r for r in runs]
    binaries = binaries or {}
    devices = [
        DeviceInfo(r.run_id, binaries.get(r.binary_id) if r.binary_id else None) for r in runs
    ]
    logs = {r.run_id: WindowLog() for r in runs} if record_windows else None

    def on_windows(rec: WindowRecord) -> None:
        assert logs is not None
        for i, d in enumerate(rec.rows.tolist()):
            log = logs[runs[d].run_id]
            log.t_end_s.append(rec.t_end_s[i : i + 1])
            log.ctx.append(rec.ctx[i : i + 1])
            log.score.append(rec.score[i : i + 1])

    transform = None
    if feedback_delay_s is not None:
        transform = DelayedRecalibrator(feedback_delay_s, truth_labeller(runs))
    det = Detector(
        models,
        devices,
        decision=decision,
        adapt=adapt,
        score_transform=transform,
        on_windows=on_windows if record_windows else None,
    )
    found: dict[str, list[dict]] = {r.run_id: [] for r in runs}

    def emit(records: list[dict]) -> None:
        for rec in records:
            found[rec["run_id"]].append(rec)
            if on_detection is not None:
                on_detection(rec)

    start = time.perf_counter()
    t0 = min(float(r.t_sim_s[0]) for r in runs)
    for tick in ticks(runs):
        if speed is not None:
            due = (float(tick.t.min()) - t0) / speed - (time.perf_counter() - start)
            if due > 0:
                time.sleep(due)
        emit(det.ingest(tick.rows, tick.t, tick.raw, tick.masks))
    emit(det.finish())
    wall = time.perf_counter() - start
    first = det.runtime.first_window_t
    acc = det.runtime.accounting
    # Samples folded away by resampling to the model rate are counted, not lost silently.
    folded = sum(r.n_samples_in - r.t_sim_s.size for r in runs)
    if folded > 0:
        acc.samples_in += folded
        acc.drop("resampled_to_model_rate", folded)
    return ReplayResult(
        runs=runs,
        detections=found,
        first_window_t={
            r.run_id: None if np.isnan(first[i]) else float(first[i]) for i, r in enumerate(runs)
        },
        accounting=acc,
        provider=det.provider,
        windows=logs,
        wall_s=wall,
        static_reasons={
            r.run_id: (None if res is None else res.reason) if res is not None else "no binary"
            for r, res in zip(runs, det.static_results, strict=True)
        },
    )


def score_replay(result: ReplayResult) -> IntervalReport:
    """Interval metrics of a replay against each run's intervals.csv (runs without one skipped).

    Scored time of a run starts at its first full window (DESIGN.md section 6).
    """
    items = []
    for r in result.runs:
        if r.truth is None:
            continue
        dets = result.detections[r.run_id]
        pred = np.array([[d["t_start_s"], d["t_end_s"]] for d in dets]).reshape(-1, 2)
        emit = np.array([d["t_emit_s"] for d in dets], np.float64)
        start = result.first_window_t[r.run_id]
        end = float(r.t_sim_s[0]) + r.duration_s
        items.append(
            RunIntervals(
                run_id=r.run_id,
                truth=r.truth,
                pred=pred,
                pred_emit_s=emit,
                scored_start_s=end if start is None else start,
                scored_end_s=end,
            )
        )
    if not items:
        raise ValueError("None of the replayed runs has an intervals.csv to score against.")
    return score_runs(items)
