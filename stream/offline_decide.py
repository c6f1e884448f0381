"""Offline decisions: recorded window scores -> intervals, exactly as `DecisionStage` would emit them.

Evaluation re-decides the same recorded scores under many hysteresis settings; feeding each setting
through `DecisionStage` window by window would cost a Python call per window and setting. This
module computes the identical intervals in numpy over every run at once (a test checks equality
with `DecisionStage` on random score streams):

- "keep" windows have score >= off; consecutive keep windows of a run are linked unless the
  decision stage would have closed the interval between them (an off window more than
  `merge_gap_s` after the last keep window, or a keep window whose gap minus the stride exceeds it);
- an interval starts at the first window of a linked chain with score >= on and ends with the chain;
- it is raised at the first keep window where it has lasted `min_duration_s` or whose score
  reaches `raise_threshold` (else discarded);
- start and end move back by `backdate_s` (clipped at 0); the emission time never moves.

Only `min_duration_s`, `raise_threshold` and `backdate_s` act after the chains, so `chains` is
computed once per (on, off, merge gap) and `finish` is cheap per (min duration, raise, backdate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.decide import DecisionConfig

__all__ = ["Chains", "OfflineIntervals", "chains", "finish", "decide_offline"]

_EPS = 1e-9  # the decision stage's tolerance on time comparisons


@dataclass(frozen=True)
class Chains:
    """Candidate intervals before min duration and backdating.

    `run`, `t_first`, `t_last` are per interval (I,); `keep_t` and `keep_interval` list the keep
    windows inside intervals (their times and interval index), in time order.
    """

    run: np.ndarray  # (I,) int64
    t_first: np.ndarray  # (I,) float64
    t_last: np.ndarray  # (I,) float64
    keep_t: np.ndarray  # (J,) float64
    keep_interval: np.ndarray  # (J,) int64
    keep_score: np.ndarray  # (J,) float64


@dataclass(frozen=True)
class OfflineIntervals:
    """Raised intervals of all runs: run index, [start, end) and emission time, each (I,)."""

    run: np.ndarray
    start: np.ndarray
    end: np.ndarray
    emit: np.ndarray


def chains(
    t: np.ndarray,
    score: np.ndarray,
    run: np.ndarray,
    on: float,
    off: float,
    merge_gap_s: float,
    stride_s: float,
) -> Chains:
    """Intervals of all runs for one (on, off, gap); rows sorted by run, then time, (N,)."""
    ia = np.flatnonzero(score >= off)  # keep windows, (A,)
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
    if ia.size == 0:
        return Chains(empty_i, empty_f, empty_f, empty_f, empty_i, empty_f)
    nxt, cur = ia[1:], ia[:-1]
    prev = nxt - 1  # the window just before the next keep window
    d_keep = t[nxt] - t[cur] - stride_s
    d_off = np.where(prev != cur, t[prev] - t[cur], -np.inf)
    link = (run[nxt] == run[cur]) & (d_keep <= merge_gap_s + _EPS) & (d_off <= merge_gap_s + _EPS)
    chain = np.r_[0, np.cumsum(~link)]  # (A,) chain id of each keep window
    n_chain = int(chain[-1]) + 1
    is_on = score[ia] >= on
    first_on = np.full(n_chain, ia.size, np.int64)  # position in ia of the first "on" per chain
    pos = np.arange(ia.size)
    np.minimum.at(first_on, chain[is_on], pos[is_on])
    inside = pos >= first_on[chain]  # keep windows from the chain's first "on" onwards
    started = np.flatnonzero(first_on < ia.size)  # chains that open an interval
    interval_of_chain = np.full(n_chain, -1, np.int64)
    interval_of_chain[started] = np.arange(started.size)
    last = np.r_[np.flatnonzero(np.diff(chain)), ia.size - 1]  # last keep window per chain
    return Chains(
        run=run[ia[first_on[started]]].astype(np.int64),
        t_first=t[ia[first_on[started]]].astype(np.float64),
        t_last=t[ia[last[started]]].astype(np.float64),
        keep_t=t[ia[inside]].astype(np.float64),
        keep_interval=interval_of_chain[chain[inside]],
        keep_score=score[ia[inside]].astype(np.float64),
    )


def finish(
    c: Chains,
    min_duration_s: float,
    backdate_s: float,
    stride_s: float,
    raise_threshold: float | None = None,
) -> OfflineIntervals:
    """Raise (or discard) each chain's interval and backdate it."""
    lasted = c.keep_t - c.t_first[c.keep_interval] + stride_s  # (J,)
    ok = lasted >= min_duration_s - _EPS
    if raise_threshold is not None:
        ok |= c.keep_score >= raise_threshold
    emit = np.full(c.run.size, np.inf)
    np.minimum.at(emit, c.keep_interval[ok], c.keep_t[ok])  # times increase within an interval
    raised = np.isfinite(emit)
    return OfflineIntervals(
        run=c.run[raised],
        start=np.maximum(0.0, c.t_first[raised] - backdate_s),
        end=np.maximum(0.0, c.t_last[raised] + stride_s - backdate_s),
        emit=emit[raised],
    )


def decide_offline(
    t: np.ndarray, score: np.ndarray, run: np.ndarray, cfg: DecisionConfig
) -> OfflineIntervals:
    """All raised intervals for one decision config (rows sorted by run, then time)."""
    c = chains(t, score, run, cfg.on_threshold, cfg.off_threshold, cfg.merge_gap_s, cfg.stride_s)
    return finish(c, cfg.min_duration_s, cfg.backdate_s, cfg.stride_s, cfg.raise_threshold)
