"""Run the detector on a live source of telemetry chunks (a simulated fleet, wired in by cli.py).

`step(n)` must return the next n samples of every device as columns (D, n), including `t_sim_s`,
the feature allow-list and the masks; anything else in it (labels included) is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stream.accounting import Accounting
from stream.adapt import DelayedRecalibrator
from stream.console import LiveView
from stream.detector import Detector, DeviceInfo
from stream.metrics import IntervalReport, RunIntervals, score_runs
from stream.onnx_session import ModelSet
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS

__all__ = ["LiveResult", "run_live"]

Step = Callable[[int], dict[str, np.ndarray]]


@dataclass
class LiveResult:
    detections: list[dict]
    accounting: Accounting
    provider: str
    report: IntervalReport | None
    wall_s: float
    sim_s: float
    n_devices: int


def run_live(
    step: Step,
    devices: Sequence[DeviceInfo],
    models: ModelSet,
    *,
    duration_s: float,
    speed: float | None = None,
    truth: Sequence[np.ndarray] | None = None,
    view: LiveView | None = None,
    feedback_delay_s: float | None = None,
    adapt: bool = True,
    on_detection: Callable[[dict], None] | None = None,
) -> LiveResult:
    """Stream `duration_s` seconds from `step` through a Detector; score against `truth` if given.

    speed None runs as fast as possible; 1.0 is real time, 10.0 ten times faster.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"The 'speed' parameter of run_live must be > 0. Got {speed!r} instead.")
    hz = models.manifest.hz
    chunk = max(1, int(round(hz)))
    transform = None
    if feedback_delay_s is not None:
        if truth is None:
            raise ValueError("--feedback-delay needs a source with ground truth.")

        def label(rows: np.ndarray, t_end: np.ndarray) -> np.ndarray:
            out = np.zeros(rows.size, bool)
            for i, (d, t) in enumerate(zip(rows.tolist(), t_end.tolist(), strict=True)):
                tr = truth[d]
                out[i] = bool(tr.size and ((tr[:, 0] <= t) & (t < tr[:, 1])).any())
            return out

        transform = DelayedRecalibrator(feedback_delay_s, label)
    det = Detector(
        models,
        devices,
        adapt=adapt,
        score_transform=transform,
        on_windows=view.on_windows if view is not None else None,
    )
    found: list[dict] = []

    def emit(records: list[dict]) -> None:
        for r in records:
            found.append(r)
            if view is not None:
                view.on_detection(r)
            if on_detection is not None:
                on_detection(r)

    rows = np.arange(len(devices))
    total = int(round(duration_s * hz))
    done = 0
    start = time.perf_counter()
    t_now = 0.0
    while done < total:
        n = min(chunk, total - done)
        cols = step(n)
        t = cols["t_sim_s"]  # (D, n)
        raw = np.stack([cols[c] for c in FEATURE_COLUMNS], axis=-1)  # (D, n, F)
        masks = np.stack([cols[c] for c in MASK_COLUMNS], axis=-1).astype(np.uint8)  # (D, n, K)
        for j in range(n):
            emit(det.ingest(rows, t[:, j], raw[:, j], masks[:, j]))
        done += n
        t_now = float(t[0, -1])
        if view is not None:
            view.tick(t_now, det.runtime.decisions.open_alerts())
        if speed is not None:
            due = done / hz / speed - (time.perf_counter() - start)
            if due > 0:
                time.sleep(due)
    emit(det.finish())
    wall = time.perf_counter() - start
    report = None
    if truth is not None:
        items = []
        first = det.runtime.first_window_t
        for d, dev in enumerate(devices):
            mine = [r for r in found if r["run_id"] == dev.device_id]
            pred = np.array([[r["t_start_s"], r["t_end_s"]] for r in mine]).reshape(-1, 2)
            items.append(
                RunIntervals(
                    run_id=dev.device_id,
                    truth=np.asarray(truth[d]).reshape(-1, 2),
                    pred=pred,
                    pred_emit_s=np.array([r["t_emit_s"] for r in mine], np.float64),
                    scored_start_s=duration_s if np.isnan(first[d]) else float(first[d]),
                    scored_end_s=duration_s,
                )
            )
        report = score_runs(items)
    return LiveResult(
        found, det.runtime.accounting, det.provider, report, wall, duration_s, len(devices)
    )
