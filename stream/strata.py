"""Event recall broken down by what the trojan was (family, variant, strength band), and false
alarms broken down by what the device was doing (workload, power mode).

A pooled event F1 hides *which* trojans a detector misses. The benchmark draws a share of its
trojans from the weak end on purpose (near invisible), so a researcher needs recall per stratum to
tell "misses what the physics hides" from "misses what it should see". Labels come from the
optional truth columns of intervals.csv (`trojan_family`, `trojan_variant`, `strength`), read by
the same strict reader as the truth itself; a run directory without them puts its events under
"unknown". Matching is the same one-to-one IoU
matching as the pooled metrics (stream.metrics).

False alarms are the other half: a pooled FAR/h hides *where* they come from, and a held-out
workload that looks like a trojan shows up only per workload. `far_by_stratum` scores each
stratum's runs with the pooled metric itself (`stream.metrics.score_runs`), so the strata's false
alarms and benign hours add up to the pooled ones. Run labels come from the run's own meta.json
(`read_run_strata`); a run without one is "unknown".

Example (a run with three compute trojans, two of them found 4 s after they started):
    labels = read_event_labels(run_dir)
    recall_by_stratum([run_intervals], [labels])["trojan_family"]["compute"]
    # {'n': 3, 'recall': 0.666..., 'ttd_median_s': 4.0}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from stream.intervals_io import read_truth
from stream.metrics import DEFAULT_MIN_IOU, RunIntervals, match_intervals, score_runs
from stream.run_meta import read_run_info

__all__ = [
    "RUN_STRATA",
    "STRENGTH_BANDS",
    "EventLabels",
    "event_labels",
    "stratum_order",
    "far_by_stratum",
    "read_event_labels",
    "read_run_strata",
    "recall_by_stratum",
]

#: Strength bands [lo, hi): the benchmark's weak end is below 0.3 (simulator.benchmark).
STRENGTH_BANDS: tuple[tuple[str, float, float], ...] = (
    ("<0.3", 0.0, 0.3),
    ("0.3-0.6", 0.3, 0.6),
    (">=0.6", 0.6, math.inf),
)
UNKNOWN = "unknown"
#: What a run's device was doing, from meta.json: key -> path inside `spec`.
RUN_STRATA: dict[str, tuple[str, str]] = {
    "workload": ("workload", "family"),
    "power_mode": ("regime", "power_mode"),
}

#: Per truth interval of one run: (start, end) rows and one label array per stratum key.
EventLabels = Mapping[str, np.ndarray]


def _band(strength: float) -> str:
    if not math.isfinite(strength):
        return UNKNOWN
    return next((name for name, lo, hi in STRENGTH_BANDS if lo <= strength < hi), UNKNOWN)


def _order(value: str) -> tuple[int, str]:
    """Strength bands weakest first, then other labels alphabetically, "unknown" last."""
    names = [name for name, _, _ in STRENGTH_BANDS]
    if value in names:
        return (names.index(value), value)
    return (len(names) + (value == UNKNOWN), value)


def read_event_labels(run_dir: Path) -> dict[str, np.ndarray]:
    """Labels of each truth interval of `run_dir`, keyed by stratum.

    Read by the strict truth reader (`stream.intervals_io.read_truth`), so a malformed file is an
    error naming file, row and column, never a silently unlabelled event. Returns arrays `t`
    (n, 2) with the intervals, and `trojan_family`, `trojan_variant`, `strength_band` (n,)
    strings; a missing column or empty cell gives "unknown". Rows are matched to the scored truth
    by their (start, end), so the order of the file does not matter.
    """
    got = read_truth(run_dir)
    runs = got.run_ids
    t = np.concatenate([got.intervals[r] for r in runs]) if runs else np.zeros((0, 2))
    n = len(t)

    def column(name: str) -> np.ndarray:
        parts = [got.labels.get(r, {}).get(name) for r in runs]
        if any(p is None for p in parts) or not parts:
            return np.full(n, math.nan if name == "strength" else UNKNOWN, dtype=object)
        return np.concatenate(parts)

    def named(values: np.ndarray) -> np.ndarray:
        return np.array([v if isinstance(v, str) and v else UNKNOWN for v in values], dtype=object)

    strength = column("strength")
    return {
        "t": np.asarray(t, np.float64).reshape(-1, 2),
        "trojan_family": named(column("trojan_family")),
        "trojan_variant": named(column("trojan_variant")),
        "strength_band": np.array([_band(float(v)) for v in strength], dtype=object),
    }


def stratum_order(value: str) -> tuple[int, str]:
    """Sort key of stratum values: strength bands weakest first, others alphabetically."""
    return _order(value)


def event_labels(labels: EventLabels, truth: np.ndarray, key: str) -> np.ndarray:
    """The `key` label of each row of one run's `truth` ("unknown" where `labels` lacks it)."""
    return _aligned(labels, np.asarray(truth, np.float64).reshape(-1, 2), key)


def _aligned(labels: EventLabels, truth: np.ndarray, key: str) -> np.ndarray:
    """The label of each row of `truth`, found by its (start, end) in `labels["t"]`."""
    lt = np.asarray(labels["t"], np.float64).reshape(-1, 2)
    out = np.full(len(truth), UNKNOWN, dtype=object)
    if len(lt) == 0 or len(truth) == 0:
        return out
    d = np.abs(truth[:, None, :] - lt[None, :, :]).max(axis=2)  # (n_truth, n_labels)
    j = d.argmin(axis=1)
    ok = d[np.arange(len(truth)), j] <= 1e-6 * np.maximum(1.0, np.abs(truth).max(axis=1))
    out[ok] = np.asarray(labels[key], dtype=object)[j[ok]]
    return out


def recall_by_stratum(
    runs: Sequence[RunIntervals],
    labels: Sequence[EventLabels],
    keys: Sequence[str] = ("trojan_family", "trojan_variant", "strength_band"),
    min_iou: float = DEFAULT_MIN_IOU,
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Event recall and median time to detect per stratum value, pooled over runs.

    `labels[i]` labels the truth of `runs[i]` (see `read_event_labels`). Time to detect follows
    the pooled metrics: emission of the matched prediction (its start when unknown) minus the
    truth start, floored at 0.
    """
    if len(runs) != len(labels):
        raise ValueError(
            f"The 'labels' parameter of recall_by_stratum must have one entry per run "
            f"({len(runs)}). Got {len(labels)} instead."
        )
    hit, ttd, lab = [], [], {k: [] for k in keys}
    for run, lb in zip(runs, labels, strict=True):
        mi, mj = match_intervals(run.truth, run.pred, min_iou)
        h = np.zeros(len(run.truth), bool)
        h[mi] = True
        d = np.full(len(run.truth), np.nan)
        emit = (np.full(len(run.pred), np.nan) if run.pred_emit_s is None else run.pred_emit_s)[mj]
        d[mi] = np.maximum(0.0, np.where(np.isnan(emit), run.pred[mj, 0], emit) - run.truth[mi, 0])
        hit.append(h)
        ttd.append(d)
        for k in keys:
            lab[k].append(_aligned(lb, run.truth, k))
    hits = np.concatenate(hit) if hit else np.zeros(0, bool)
    ttds = np.concatenate(ttd) if ttd else np.zeros(0)
    out: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for k in keys:
        values = np.concatenate(lab[k]) if lab[k] else np.zeros(0, dtype=object)
        out[k] = {}
        for v in sorted(set(values.tolist()), key=_order):
            sel = values == v
            found = ttds[sel & hits]
            out[k][str(v)] = {
                "n": int(sel.sum()),
                "recall": float(hits[sel].mean()),
                "ttd_median_s": float(np.median(found)) if len(found) else None,
            }
    return out


def read_run_strata(run_dir: Path) -> dict[str, str]:
    """The run's `RUN_STRATA` labels from its meta.json; "unknown" where it does not say.

    meta.json of our own format is validated first (`stream.run_meta.read_run_info`), so a
    malformed one is an error naming the file, never a silently unlabelled run.
    """
    path = Path(run_dir) / "meta.json"
    if not read_run_info(run_dir).own_format:
        return dict.fromkeys(RUN_STRATA, UNKNOWN)
    spec = json.loads(path.read_text()).get("spec", {})
    out = {}
    for key, (group, field) in RUN_STRATA.items():
        value = spec.get(group, {}).get(field) if isinstance(spec.get(group), dict) else None
        out[key] = value if isinstance(value, str) and value else UNKNOWN
    return out


def far_by_stratum(
    runs: Sequence[RunIntervals],
    labels: Sequence[Mapping[str, str]],
    keys: Sequence[str] = tuple(RUN_STRATA),
    min_iou: float = DEFAULT_MIN_IOU,
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """False alarms, benign hours and FAR/h per stratum value, each scored like the pooled ones.

    `labels[i]` labels `runs[i]` (see `read_run_strata`). FAR/h is None where a stratum's runs
    have no known duration or no benign time.
    """
    if len(runs) != len(labels):
        raise ValueError(
            f"The 'labels' parameter of far_by_stratum must have one entry per run "
            f"({len(runs)}). Got {len(labels)} instead."
        )
    out: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for k in keys:
        values = [str(lb.get(k, UNKNOWN)) for lb in labels]
        out[k] = {}
        for v in sorted(set(values), key=_order):
            rep = score_runs([r for r, x in zip(runs, values, strict=True) if x == v], min_iou)
            out[k][v] = {
                "runs": rep.n_runs,
                "benign_hours": rep.benign_hours,
                "false_alarms": rep.n_false_alarms,
                "far_per_hour": rep.far_per_hour,
            }
    return out
