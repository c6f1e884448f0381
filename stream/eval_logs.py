"""Window logs for evaluation: replay runs through the runtime once and keep what scoring needs.

Runs replay as one fleet (in chunks, so a progress bar can follow), with online adaptation on and
labels never entering. Devices are independent in the runtime, so a run's scores do not depend on
which other runs share its fleet. Per run we keep the logged window end times, fusion context rows
and fused scores, the causal baseline inputs at the same times, the total-power trace for plots,
the truth and the scored span (from the first full window to the end of the run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.baselines import _POWER, stride_means, zscore_power
from stream.decide import DecisionConfig
from stream.onnx_session import ModelSet
from stream.replay import replay_runs
from stream.sources import ReplayRun, load_replay

__all__ = ["RunLog", "collect_logs", "train_features", "overlap_fraction"]

Progress = Callable[[int], None]


@dataclass(frozen=True)
class RunLog:
    """One replayed run, reduced to what evaluation needs; window arrays are (n,) or (n, ...)."""

    run_id: str
    t_end_s: np.ndarray  # (n,) window end (emission) times
    ctx: np.ndarray  # (n, len(FUSION_INPUTS)) fusion context rows
    fused: np.ndarray  # (n,) the runtime's score
    feats: np.ndarray  # (n, F) transformed features, mean over the last stride
    zscore: np.ndarray  # (n,) z-score baseline in (0, 1)
    t_sim_s: np.ndarray  # (T,) sample times at the model rate
    power_mw: np.ndarray  # (T,) p_sys5v_mw, for timelines
    truth: np.ndarray  # (k, 2) truth intervals
    scored_start_s: float
    scored_end_s: float


def overlap_fraction(starts: np.ndarray, ends: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Fraction of each [start, end) covered by truth intervals (disjoint), (n,)."""
    cover = np.zeros(np.shape(starts), np.float64)
    for a, b in np.asarray(truth).reshape(-1, 2):
        cover += np.clip(np.minimum(ends, b) - np.maximum(starts, a), 0.0, None)
    return cover / np.maximum(ends - starts, 1e-12)


def _log(run: ReplayRun, arrays, first_t: float | None, stride: int) -> RunLog:
    t_end, ctx, score = arrays
    end = float(run.t_sim_s[0]) + run.duration_s
    return RunLog(
        run_id=run.run_id,
        t_end_s=np.asarray(t_end, np.float64),
        ctx=np.asarray(ctx, np.float32),
        fused=np.asarray(score, np.float64),
        feats=stride_means(run, t_end, stride),
        zscore=zscore_power(run, t_end, stride),
        t_sim_s=run.t_sim_s,
        power_mw=np.asarray(run.raw[:, _POWER], np.float64),
        truth=run.truth if run.truth is not None else np.zeros((0, 2)),
        scored_start_s=end if first_t is None else min(first_t, end),
        scored_end_s=end,
    )


def collect_logs(
    run_dirs: Sequence[Path],
    models: ModelSet,
    *,
    binaries: Mapping[str, Path] | None = None,
    decision: DecisionConfig | None = None,
    chunk: int = 16,
    progress: Progress | None = None,
    start_s: Mapping[str, float] | None = None,
) -> tuple[dict[str, RunLog], str]:
    """Replay `run_dirs` (chunks of `chunk` runs) and return logs by run id, and the provider.

    `start_s` starts the named runs later (see `stream.replay.replay_runs`).
    """
    if chunk < 1:
        raise ValueError(
            f"The 'chunk' parameter of collect_logs must be >= 1. Got {chunk!r} instead."
        )
    stride = models.manifest.stride
    logs: dict[str, RunLog] = {}
    provider = "n/a"
    for i in range(0, len(run_dirs), chunk):
        part = list(run_dirs[i : i + chunk])
        res = replay_runs(
            part,
            models,
            binaries=binaries,
            decision=decision,
            adapt=True,
            record_windows=True,
            start_s=start_s,
        )
        provider = res.provider
        assert res.windows is not None
        for run in res.runs:
            if run.truth is None:
                raise ValueError(f"{run.run_id}: no intervals.csv; evaluation needs the truth.")
            logs[run.run_id] = _log(
                run, res.windows[run.run_id].arrays(), res.first_window_t[run.run_id], stride
            )
        if progress is not None:
            progress(len(part))
    return logs, provider


def train_features(
    run_dirs: Sequence[Path], hz: float, stride: int, progress: Progress | None = None
) -> dict[str, np.ndarray]:
    """Stride means of training runs on the stride grid, by run id (for baseline scaling only)."""
    out: dict[str, np.ndarray] = {}
    for d in run_dirs:
        run = load_replay(Path(d), hz)
        out[run.run_id] = stride_means(run, run.t_sim_s[stride - 1 :: stride], stride)
        if progress is not None:
            progress(1)
    return out
