"""What a contaminated warm-up costs, measured on the same runs (the contaminated_warmup split).

Comparing contaminated_warmup's test runs with random's mixes three things: the contamination,
a different test mix (the runs active in their first minute are the high-duty schedules) and
models trained on fewer trojan windows (the split trains on clean runs only). Here each test run
whose trojan was active during the warm-up is replayed a second time, by the same models, as a
device that starts streaming when the last activation begun inside the warm-up has ended
(`clean_start`). Both replays are then scored from the clean start's first full window on, against
the same truth, with each detector's decision config frozen on validation. The F1 difference is
the price of the contamination alone, with a paired bootstrap CI over runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from stream.decide import DecisionConfig
from stream.eval_logs import RunLog, collect_logs
from stream.evaluate import apply_decision, build_part
from stream.metrics import paired_bootstrap_ci, score_runs
from stream.onnx_session import ModelSet

__all__ = ["DETECTORS", "clean_start", "warmup_pair", "read_warmup_s", "measure_warmup_pair"]

#: Detectors whose scores come from the runtime's own outputs (the runtime is what a warm-up
#: contaminates); the z-score and HalfSpaceTrees baselines are left out.
DETECTORS = ("dynamic_only", "static_only", "constant_gate", "product_of_experts", "fusion")
_KEEP = ("event_f1", "event_recall", "event_precision", "far_per_hour", "ttd_median_s", "n_true")


def read_warmup_s(data: Path) -> float | None:
    """The benchmark's warm-up length from data/benchmark.json; None when it does not say."""
    path = Path(data) / "benchmark.json"
    try:
        value = json.loads(path.read_text()).get("warmup_s")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def clean_start(truth: np.ndarray, t_first: float, warmup_s: float) -> float | None:
    """When a device would start clean: the end of the last activation that began inside the
    warm-up [t_first, t_first + warmup_s); None when no activation began there."""
    truth = np.asarray(truth, np.float64).reshape(-1, 2)
    early = truth[truth[:, 0] < t_first + warmup_s]
    return float(early[:, 1].max()) if len(early) else None


def _restrict(log: RunLog, start_s: float) -> RunLog:
    """The log from `start_s` on: later windows, and the truth that is still running then."""
    keep = log.t_end_s >= start_s
    t = log.truth
    return replace(
        log,
        t_end_s=log.t_end_s[keep],
        ctx=log.ctx[keep],
        fused=log.fused[keep],
        feats=log.feats[keep],
        zscore=log.zscore[keep],
        truth=t[t[:, 1] > start_s],
        scored_start_s=max(start_s, log.scored_start_s),
    )


def warmup_pair(
    contaminated: Mapping[str, RunLog],
    clean: Mapping[str, RunLog],
    decisions: Mapping[str, DecisionConfig],
    *,
    window_s: float,
    hz: float,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, object]:
    """Score both replays of the same runs on the clean replay's span (module docstring).

    `clean[r]` is run r replayed from its clean start, `contaminated[r]` from its beginning.
    Returns, per detector, both sides' metrics, `f1_loss` (clean minus contaminated) and its 95 %
    paired bootstrap CI.
    """
    ids = sorted(clean)
    missing = [r for r in ids if r not in contaminated]
    if missing:
        raise ValueError(f"run {missing[0]!r} has a clean replay but no contaminated one.")
    starts = {r: clean[r].scored_start_s for r in ids}
    a = build_part({r: _restrict(contaminated[r], starts[r]) for r in ids}, ids, None, window_s, hz)
    b = build_part({r: _restrict(clean[r], starts[r]) for r in ids}, ids, None, window_s, hz)
    out: dict[str, object] = {}
    for det in DETECTORS:
        ra, rb = apply_decision(a, det, decisions[det]), apply_decision(b, det, decisions[det])
        sa, sb = score_runs(ra).to_dict(), score_runs(rb).to_dict()
        ci = paired_bootstrap_ci(ra, rb, "event_f1", n_resamples=n_resamples, seed=seed)
        out[det] = {
            "contaminated": {k: sa[k] for k in _KEEP},
            "clean_start": {k: sb[k] for k in _KEEP},
            "f1_loss": sb["event_f1"] - sa["event_f1"],
            "f1_loss_ci95": None if ci is None else list(ci),
        }
    return out


def measure_warmup_pair(
    data: Path,
    test_logs: Mapping[str, RunLog],
    models: ModelSet,
    decisions: Mapping[str, DecisionConfig],
    *,
    binaries: Mapping[str, Path] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, object]:
    """Replay the contaminated test runs from their clean start and compare (`warmup_pair`).

    Runs whose clean start leaves less than two windows to score are left out and counted.
    """
    m = models.manifest
    warmup_s = read_warmup_s(data)
    if warmup_s is None:
        return {"skipped": f"{Path(data) / 'benchmark.json'} gives no warmup_s"}
    starts: dict[str, float] = {}
    too_late = 0
    for rid, log in test_logs.items():
        t0 = clean_start(log.truth, float(log.t_sim_s[0]), warmup_s)
        if t0 is None:
            continue
        if t0 + 2 * m.window_s >= log.scored_end_s:
            too_late += 1
            continue
        starts[rid] = t0
    result: dict[str, object] = {
        "warmup_s": warmup_s,
        "n_runs": len(starts),
        "n_runs_left_out_too_short_after_warmup": too_late,
        "what": "same runs, models and frozen decisions; replayed from the start vs from the end "
        "of the last activation begun inside the warm-up; both scored from the clean start's "
        "first full window on; f1_loss = clean_start F1 - contaminated F1",
    }
    if not starts:
        return {**result, "skipped": "no test run has a trojan active during its warm-up"}
    dirs = [Path(data) / "runs" / r for r in sorted(starts)]
    clean, _ = collect_logs(dirs, models, binaries=binaries, start_s=starts)
    return {
        **result,
        "detectors": warmup_pair(
            test_logs,
            clean,
            decisions,
            window_s=m.window_s,
            hz=m.hz,
            n_resamples=n_resamples,
            seed=seed,
        ),
    }
