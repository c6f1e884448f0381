"""A live console view of a running detector (rich): devices, current scores, open alerts."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from stream.runtime import WindowRecord

__all__ = ["LiveView"]


class LiveView:
    """Keeps the latest score per device and redraws at most `fps` times per second."""

    def __init__(
        self,
        device_ids: Sequence[str],
        *,
        console: Console | None = None,
        top: int = 12,
        fps: float = 4.0,
        enabled: bool = True,
    ) -> None:
        self.device_ids = list(device_ids)
        self.score = np.full(len(device_ids), np.nan)
        self.t_last = np.full(len(device_ids), np.nan)
        self.recent: deque[dict] = deque(maxlen=8)
        self.console = console or Console(stderr=True)
        self.top = top
        self.period = 1.0 / fps
        self.enabled = enabled and self.console.is_terminal
        self._live: Live | None = None
        self._last_draw = 0.0
        self.t_sim = 0.0
        self.open_alerts: np.ndarray = np.zeros(0, np.intp)
        self.windows = 0

    def __enter__(self) -> LiveView:
        if self.enabled:
            self._live = Live(self._render(), console=self.console, auto_refresh=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.__exit__(*exc)

    def on_windows(self, rec: WindowRecord) -> None:
        self.score[rec.rows] = rec.score
        self.t_last[rec.rows] = rec.t_end_s
        self.windows += rec.rows.size

    def on_detection(self, record: dict) -> None:
        self.recent.appendleft(record)
        if not self.enabled:
            self.console.print(
                f"detection {record['run_id']}: [{record['t_start_s']:.1f}, {record['t_end_s']:.1f}) s"
                f" raised at {record['t_emit_s']:.1f} s, peak {record['peak_score']:.2f}"
            )

    def tick(self, t_sim: float, open_alerts: np.ndarray) -> None:
        self.t_sim = t_sim
        self.open_alerts = open_alerts
        now = time.perf_counter()
        if self._live is not None and now - self._last_draw >= self.period:
            self._last_draw = now
            self._live.update(self._render(), refresh=True)

    def _render(self) -> Group:
        table = Table(title=f"fusionstream  t = {self.t_sim:7.1f} s  windows {self.windows}")
        table.add_column("device")
        table.add_column("score", justify="right")
        table.add_column("alert")
        order = np.argsort(-np.nan_to_num(self.score, nan=-1.0))[: self.top]
        alerts = set(self.open_alerts.tolist())
        for d in order.tolist():
            s = self.score[d]
            table.add_row(
                self.device_ids[d],
                "-" if np.isnan(s) else f"{s:.3f}",
                "[bold red]OPEN[/]" if d in alerts else "",
            )
        recent = Table(title=f"open alerts {len(alerts)}; last detections")
        for col in ("device", "start", "end", "raised", "peak"):
            recent.add_column(col)
        for r in self.recent:
            recent.add_row(
                r["run_id"],
                f"{r['t_start_s']:.1f}",
                f"{r['t_end_s']:.1f}",
                f"{r['t_emit_s']:.1f}",
                f"{r['peak_score']:.2f}",
            )
        return Group(table, recent)
