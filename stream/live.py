"""Run the detector on a live source of telemetry chunks (a simulated fleet, wired in by cli.py).

`step(n)` must return the next n samples of every device as columns (D, n), including `t_sim_s`,
the feature allow-list and the masks; anything else in it (labels included) is ignored.
With `rss_every_s`, the process's resident memory is sampled every that many simulated seconds
(and once at the end) into `LiveResult.rss`, so a long soak can show that memory stays flat.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from stream.accounting import Accounting
from stream.adapt import DelayedRecalibrator
from stream.console import LiveView
from stream.detector import Detector, DeviceInfo
from stream.metrics import IntervalReport, RunIntervals, score_runs
from stream.onnx_session import ModelSet
from stream.sources import live_arrays

__all__ = ["LiveResult", "rss_mb", "run_live"]

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
    rss: list[tuple[float, float]] = field(default_factory=list)  # (sim time s, RSS MiB)


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc), or the peak RSS elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


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
    rss_every_s: float | None = None,
) -> LiveResult:
    """Stream `duration_s` seconds from `step` through a Detector; score against `truth` if given.

    speed None runs as fast as possible; 1.0 is real time, 10.0 ten times faster.
    rss_every_s: sample the resident memory every that many simulated seconds (None: never).
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"The 'speed' parameter of run_live must be > 0. Got {speed!r} instead.")
    if rss_every_s is not None and not rss_every_s > 0:
        raise ValueError(
            f"The 'rss_every_s' parameter of run_live must be > 0. Got {rss_every_s!r} instead."
        )
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
    rss: list[tuple[float, float]] = []
    next_rss = 0.0
    while done < total:
        n = min(chunk, total - done)
        cols = step(n)
        t, raw, masks = live_arrays(cols, (len(devices), n))  # (D, n), (D, n, F), (D, n, K)
        for j in range(n):
            emit(det.ingest(rows, t[:, j], raw[:, j], masks[:, j]))
        done += n
        t_now = float(np.nanmax(t[:, -1], initial=t_now))
        if view is not None:
            view.tick(t_now, det.runtime.decisions.open_alerts())
        if rss_every_s is not None and done / hz >= next_rss:
            rss.append((done / hz, rss_mb()))
            next_rss += rss_every_s
        if speed is not None:
            due = done / hz / speed - (time.perf_counter() - start)
            if due > 0:
                time.sleep(due)
    emit(det.finish())
    wall = time.perf_counter() - start
    if rss_every_s is not None and (not rss or rss[-1][0] < done / hz):
        rss.append((done / hz, rss_mb()))
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
        found, det.runtime.accounting, det.provider, report, wall, duration_s, len(devices), rss
    )
