"""Decision stage: per-window scores -> detection intervals, with hysteresis, vectorised over devices.

An interval opens when a device's score reaches `on_threshold`, stays open while windows keep
reaching `off_threshold` (gaps up to `merge_gap_s` are bridged), is raised (emitted as an alert, at
`t_emit_s`) once it has lasted `min_duration_s` or as soon as one of its windows reaches
`raise_threshold` (a confident window need not wait: the fast path that keeps time to detect short
for strong activity while weak evidence still has to persist), and is closed when no window has
reached `off_threshold` for longer than `merge_gap_s`. Intervals that close before being raised are
discarded and counted. Because a window ending at t summarises the past `window_s`, reported start
and end are moved back by `backdate_s` (chosen on validation); `t_emit_s` is never moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["DecisionConfig", "Detection", "DecisionStage"]


@dataclass(frozen=True, slots=True)
class DecisionConfig:
    """Hysteresis settings; all times in seconds."""

    on_threshold: float = 0.5
    off_threshold: float = 0.4
    min_duration_s: float = 2.0
    merge_gap_s: float = 5.0
    backdate_s: float = 0.0
    stride_s: float = 1.0
    raise_threshold: float | None = None  # None: only min_duration_s raises

    def __post_init__(self) -> None:
        if not 0.0 <= self.off_threshold <= self.on_threshold <= 1.0:
            raise ValueError(
                "The 'off_threshold' parameter of DecisionConfig must be in [0, on_threshold] "
                f"and on_threshold in [0, 1]. Got {self.off_threshold!r}, "
                f"{self.on_threshold!r} instead."
            )
        if self.raise_threshold is not None and not (
            self.on_threshold <= self.raise_threshold <= 1.0
        ):
            raise ValueError(
                "The 'raise_threshold' parameter of DecisionConfig must be None or in "
                f"[on_threshold, 1]. Got {self.raise_threshold!r} instead."
            )
        for name in ("min_duration_s", "merge_gap_s", "backdate_s"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"The '{name}' parameter of DecisionConfig must be >= 0. "
                    f"Got {getattr(self, name)!r} instead."
                )
        if self.stride_s <= 0:
            raise ValueError(
                f"The 'stride_s' parameter of DecisionConfig must be > 0. "
                f"Got {self.stride_s!r} instead."
            )


@dataclass(frozen=True, slots=True)
class Detection:
    """A closed detection interval (DESIGN.md 3.6)."""

    device: int
    t_start_s: float
    t_end_s: float
    t_emit_s: float
    peak_score: float
    mean_score: float
    experts_at_peak: tuple[float, ...] = field(default=())


class DecisionStage:
    """Hysteresis decisions for D devices; `update` returns intervals that closed at this step."""

    def __init__(self, n_devices: int, cfg: DecisionConfig, n_experts: int = 0) -> None:
        self.cfg = cfg
        D = n_devices
        self.active = np.zeros(D, bool)
        self.raised = np.zeros(D, bool)
        self.t_first = np.zeros(D)
        self.t_last_on = np.zeros(D)
        self.t_emit = np.zeros(D)
        self.peak = np.zeros(D)
        self.total = np.zeros(D)
        self.count = np.zeros(D, np.int64)
        self.experts = np.zeros((D, n_experts))
        self.discarded = 0

    def update(
        self,
        rows: np.ndarray,
        t: np.ndarray,
        score: np.ndarray,
        experts: np.ndarray | None = None,
    ) -> list[Detection]:
        """Feed one window score per device in `rows` (B,), at times t (B,). Returns closed ones."""
        cfg = self.cfg
        # Off-time so far: an "on" window ends the gap before it, an "off" window extends it.
        gap = t - self.t_last_on[rows] - np.where(score >= cfg.off_threshold, cfg.stride_s, 0.0)
        closed = self._finish(rows[self.active[rows] & (gap > cfg.merge_gap_s + 1e-9)])
        active = self.active[rows]
        start = ~active & (score >= cfg.on_threshold)
        on = (active & (score >= cfg.off_threshold)) | start
        r_start = rows[start]
        self.active[r_start] = True
        self.raised[r_start] = False
        self.t_first[r_start] = t[start]
        self.peak[r_start] = -1.0
        self.total[r_start] = 0.0
        self.count[r_start] = 0
        r_on = rows[on]
        s_on = score[on]
        self.t_last_on[r_on] = t[on]
        self.total[r_on] += s_on
        self.count[r_on] += 1
        better = s_on > self.peak[r_on]
        self.peak[r_on[better]] = s_on[better]
        if experts is not None and self.experts.shape[1]:
            self.experts[r_on[better]] = experts[on][better]
        lasted = self.t_last_on[rows] - self.t_first[rows] + cfg.stride_s
        ready = lasted >= cfg.min_duration_s - 1e-9
        if cfg.raise_threshold is not None:
            ready |= on & (score >= cfg.raise_threshold)
        rise = self.active[rows] & ~self.raised[rows] & ready
        self.raised[rows[rise]] = True
        self.t_emit[rows[rise]] = t[rise]
        return closed

    def flush(self, rows: np.ndarray | None = None) -> list[Detection]:
        """Close every open interval (end of stream); unraised ones are discarded."""
        rows = np.flatnonzero(self.active) if rows is None else rows[self.active[rows]]
        return self._finish(rows)

    def _finish(self, rows: np.ndarray) -> list[Detection]:
        out = []
        b, s = self.cfg.backdate_s, self.cfg.stride_s
        for d in rows.tolist():
            if self.raised[d]:
                out.append(
                    Detection(
                        device=d,
                        t_start_s=max(0.0, float(self.t_first[d]) - b),
                        t_end_s=max(0.0, float(self.t_last_on[d]) + s - b),
                        t_emit_s=float(self.t_emit[d]),
                        peak_score=float(self.peak[d]),
                        mean_score=float(self.total[d] / max(self.count[d], 1)),
                        experts_at_peak=tuple(float(v) for v in self.experts[d]),
                    )
                )
            else:
                self.discarded += 1
        self.active[rows] = False
        self.raised[rows] = False
        return out

    def open_alerts(self) -> np.ndarray:
        """Devices with a raised, still open interval."""
        return np.flatnonzero(self.active & self.raised)
