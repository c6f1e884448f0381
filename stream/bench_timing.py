"""Timing helpers of the benchmark: percentiles, interleaved repeated calls, per-stage clocks.

`StageClock` wraps one Runtime's components while installed, so the production code path runs
unchanged and only the instance under test is measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

import stream.runtime as runtime_module
from stream.runtime import Runtime

__all__ = ["STAGES", "percentiles_ms", "time_calls", "StageClock"]

STAGES = ("ingest", "window", "normalise", "experts", "fusion", "decision")


def percentiles_ms(seconds: np.ndarray | list[float]) -> dict[str, float | None]:
    """p50, p99 and mean in milliseconds (None for an empty sample)."""
    s = np.asarray(seconds, np.float64)
    if s.size == 0:
        return {"p50_ms": None, "p99_ms": None, "mean_ms": None}
    p50, p99 = np.percentile(s, [50, 99]) * 1e3
    return {"p50_ms": float(p50), "p99_ms": float(p99), "mean_ms": float(s.mean() * 1e3)}


def time_calls(
    *fns: Callable[[], object],
    min_reps: int,
    min_time_s: float,
    max_time_s: float,
    warmup: int = 3,
) -> np.ndarray:
    """Seconds per call, (len(fns), reps). After `warmup` rounds the functions are called in turn,
    so they share the machine's load, for at least min_reps rounds and min_time_s seconds, and at
    most max_time_s seconds."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    out: list[list[float]] = []
    clock = time.perf_counter
    start = clock()
    while True:
        row = []
        for fn in fns:
            t0 = clock()
            fn()
            row.append(clock() - t0)
        out.append(row)
        spent = clock() - start
        if (len(out) >= min_reps and spent >= min_time_s) or spent >= max_time_s:
            return np.array(out).T


class StageClock:
    """Seconds spent per stage inside one Runtime, by wrapping its components while installed.

    The production code path runs unchanged; only the instance under test (and, while installed,
    `stream.runtime.fusion_context`) is wrapped. "ingest" is the rest of the tick: validation,
    accounting, feature transform and mask handling, plus the wrappers' own small overhead.
    """

    def __init__(self) -> None:
        self.spent = dict.fromkeys(STAGES, 0.0)

    def reset(self) -> None:
        for k in self.spent:
            self.spent[k] = 0.0

    def _wrap(self, stage: str, fn: Callable) -> Callable:
        spent, clock = self.spent, time.perf_counter

        def timed(*args, **kwargs):
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[stage] += clock() - t0

        return timed

    @contextmanager
    def installed(self, rt: Runtime) -> Iterator[StageClock]:
        targets: list[tuple[object, str, str]] = [
            (rt.normaliser, "step", "normalise"),
            (rt.normaliser, "scale_step", "normalise"),
            (rt.windower, "push", "window"),
            (rt.windower, "windows", "window"),
            (rt, "dynamic", "experts"),
            (rt, "gate", "fusion"),
            (runtime_module, "fusion_context", "fusion"),
            (rt.decisions, "update", "decision"),
        ]
        if rt.drift is not None:
            targets.append((rt.drift, "update", "decision"))
        if rt.score_transform is not None:
            targets.append((rt, "score_transform", "decision"))
        saved = []
        for obj, name, stage in targets:
            own = name in getattr(obj, "__dict__", {})
            saved.append((obj, name, getattr(obj, name), own))
            setattr(obj, name, self._wrap(stage, getattr(obj, name)))
        try:
            yield self
        finally:
            for obj, name, original, own in reversed(saved):
                if own:
                    setattr(obj, name, original)
                else:
                    delattr(obj, name)
