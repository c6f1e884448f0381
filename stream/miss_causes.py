"""Why each missed event was missed: the score, the decision stage, or the matching.

A pooled recall says how many events a detector missed, not where in the pipeline it lost them,
and the remedy differs: a score that never crossed the on threshold needs a better model, a
crossing the minimum duration threw away is the decision stage's trade against false alarms, and
a raised interval that did not match is a timing or merging problem. For each truth event of a
frozen decision config (the decision stage is `stream.offline_decide`, so the same intervals the
runtime raises):

- ``detected``: matched one-to-one (IoU >= min_iou), as in the pooled metrics;
- ``raised_unmatched``: a raised interval overlaps the event in time, but the matching gave it to
  no one (IoU below min_iou) or to another event;
- ``too_short``: no raised interval overlaps it, but a candidate interval does (the score crossed
  the on threshold there) that the minimum duration discarded before the fast raise, if any, fired;
- ``below_on``: nothing overlaps it: the score stayed below the on threshold throughout.

Candidate and raised intervals are compared with the event after backdating, exactly as raised.

Example (one run; the on threshold is crossed for 2 s inside the second event only):
    causes = miss_causes(t, score, run, [truth], cfg)   # cfg.min_duration_s = 5
    causes[0].tolist()                                  # ['detected', 'too_short']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stream.decide import DecisionConfig
from stream.metrics import DEFAULT_MIN_IOU, match_intervals
from stream.offline_decide import chains, finish
from stream.strata import stratum_order

__all__ = ["MISS_CAUSES", "miss_causes", "count_causes"]

MISS_CAUSES = ("detected", "raised_unmatched", "too_short", "below_on")


def _overlaps(truth: np.ndarray, iv: np.ndarray) -> np.ndarray:
    """(k,) whether each truth row [a, b) shares positive time with any row of iv (m, 2)."""
    if len(truth) == 0 or len(iv) == 0:
        return np.zeros(len(truth), bool)
    inter = np.minimum(truth[:, None, 1], iv[None, :, 1]) - np.maximum(
        truth[:, None, 0], iv[None, :, 0]
    )
    return (inter > 0).any(axis=1)


def miss_causes(
    t_end_s: np.ndarray,
    score: np.ndarray,
    run: np.ndarray,
    truth: Sequence[np.ndarray],
    cfg: DecisionConfig,
    min_iou: float = DEFAULT_MIN_IOU,
) -> list[np.ndarray]:
    """Per run, the cause (a `MISS_CAUSES` name) of each of its truth events, in truth order.

    `t_end_s`, `score`, `run` are the windows of all runs sorted by run, then time, (N,); `run`
    indexes `truth` (one (k, 2) array per run).
    """
    t_end_s, score = np.asarray(t_end_s, np.float64), np.asarray(score, np.float64)
    run = np.asarray(run, np.int64)
    if not (t_end_s.shape == score.shape == run.shape):
        raise ValueError(
            "The 't_end_s', 'score' and 'run' parameters of miss_causes must have the same shape. "
            f"Got {t_end_s.shape}, {score.shape}, {run.shape} instead."
        )
    c = chains(
        t_end_s, score, run, cfg.on_threshold, cfg.off_threshold, cfg.merge_gap_s, cfg.stride_s
    )
    raised = finish(c, cfg.min_duration_s, cfg.backdate_s, cfg.stride_s, cfg.raise_threshold)
    cand = np.stack(
        [
            np.maximum(0.0, c.t_first - cfg.backdate_s),
            np.maximum(0.0, c.t_last + cfg.stride_s - cfg.backdate_s),
        ],
        axis=1,
    )
    out: list[np.ndarray] = []
    for k, tr in enumerate(truth):
        tr = np.asarray(tr, np.float64).reshape(-1, 2)
        pred = np.stack([raised.start[raised.run == k], raised.end[raised.run == k]], axis=1)
        cause = np.full(len(tr), "below_on", dtype=object)
        cause[_overlaps(tr, cand[c.run == k])] = "too_short"
        cause[_overlaps(tr, pred)] = "raised_unmatched"
        mi, _ = match_intervals(tr, pred, min_iou)
        cause[mi] = "detected"
        out.append(cause)
    return out


def count_causes(
    causes: Sequence[np.ndarray], groups: Sequence[np.ndarray] | None = None
) -> dict[str, object]:
    """Counts per cause over all events, and per group value when `groups` labels every event.

    -> {"all": {cause: n}, "by_group": {value: {cause: n}}} (by_group absent without groups).
    """
    every = np.concatenate([np.asarray(c, dtype=object) for c in causes]) if causes else []
    res: dict[str, object] = {"all": {m: int(np.sum(every == m)) for m in MISS_CAUSES}}
    if groups is not None:
        g = np.concatenate([np.asarray(x, dtype=object) for x in groups]) if groups else []
        if len(g) != len(every):
            raise ValueError(
                "The 'groups' parameter of count_causes must label every event "
                f"({len(every)}). Got {len(g)} labels instead."
            )
        res["by_group"] = {
            v: {m: int(np.sum((every == m) & (g == v))) for m in MISS_CAUSES}
            for v in sorted({str(x) for x in np.asarray(g).tolist()}, key=stratum_order)
        }
    return res
