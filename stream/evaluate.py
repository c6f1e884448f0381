"""Evaluate a split: thresholds and hysteresis chosen on validation runs only, frozen, scored on test.

For every detector (the full fusion and the baselines of `stream.baselines`), identically:

1. the decision config is searched on the split's VALIDATION runs: a grid over on threshold
   (quantiles of the detector's validation scores, so every score scale gets a fair grid), off
   threshold, minimum duration, fast-raise threshold (high quantiles, or none), merge gap and
   backdate; objective: best event F1 with false alarms per hour <= `far_target`; among the configs
   within `ttd_f1_tolerance` of that F1 (and within the target) the lowest median time to detect,
   ties to higher F1, lower FAR/h, then the earlier grid point. The tolerance (0.02, well inside
   retraining noise) keeps the search from buying a negligible F1 gain with ten seconds of delay;
   0 restores pure best-F1. When no config meets the target, the lowest FAR/h (ties to higher F1)
   is taken and `far_target_met` is False;
2. the config is frozen and applied to the TEST runs' recorded scores (offline decisions equal the
   runtime's decision stage exactly), giving the interval report with bootstrap 95 % CIs over runs;
3. window-level PR-AUC, ROC-AUC and ECE on test, against y_soft >= 0.5 (y_soft: the fraction of
   the window's span covered by truth, with the manifest's window length).

Test labels are read only after every choice is frozen. Scores are recorded once with the
runtime's online adaptation on; its drift detector uses the manifest's off threshold (it is a
runtime setting, not part of the search).

`evaluate_splits` replays the union of the requested splits' val and test runs once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from stream.baselines import DESCRIPTIONS, DETECTORS, expert_scores, feature_limits, hst_scores
from stream.decide import DecisionConfig
from stream.eval_logs import RunLog, collect_logs, overlap_fraction, train_features
from stream.metrics import IntervalReport, RunIntervals, bootstrap_ci, score_runs
from stream.miss_causes import count_causes, miss_causes
from stream.offline_decide import Chains, OfflineIntervals, chains, decide_offline, finish
from stream.onnx_session import ModelSet
from stream.splits import SplitManifest, available_splits, data_fingerprint, read_split_file
from stream.strata import (
    EventLabels,
    event_labels,
    far_by_stratum,
    read_event_labels,
    read_run_strata,
    recall_by_stratum,
)
from stream.window_metrics import score_windows

__all__ = [
    "SplitManifest",
    "DecisionGrid",
    "Part",
    "Choice",
    "read_split",
    "available_splits",
    "build_part",
    "choose_decision",
    "apply_decision",
    "evaluate_detector",
    "evaluate_splits",
]


ProgressFn = Callable[[str, int, int], None]  # (stage, advance, total)


def read_split(data: Path, name: str) -> SplitManifest:
    """Read data/splits/<name>.json; an unknown name or a malformed file raises ValueError."""
    path = Path(data) / "splits" / f"{name}.json"
    if not path.is_file():
        known = available_splits(data)
        raise ValueError(
            f"The 'split' parameter of evaluate must be one of {known or '(none found)'} "
            f"or 'all'. Got {name!r} instead (no {path})."
        )
    return read_split_file(path)


@dataclass(frozen=True)
class DecisionGrid:
    """The validation search space; on thresholds are quantiles of validation scores."""

    on_quantiles: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
    off_ratios: tuple[float, ...] = (1.0, 0.7, 0.4)  # off = med + r (on - med)
    min_durations_s: tuple[float, ...] = (1.0, 3.0, 6.0, 10.0)
    merge_gaps_s: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0)
    backdates_s: tuple[float, ...] = (0.0, 2.5, 5.0, 7.5)
    raise_quantiles: tuple[float, ...] = (0.99, 0.995, 0.999)  # fast raise, besides "none"
    ttd_f1_tolerance: float = 0.02

    def __post_init__(self) -> None:
        if not 0.0 <= self.ttd_f1_tolerance <= 1.0:
            raise ValueError(
                "The 'ttd_f1_tolerance' parameter of DecisionGrid must be in [0, 1]. "
                f"Got {self.ttd_f1_tolerance!r} instead."
            )


@dataclass(frozen=True)
class Part:
    """The val or test runs of a split, windows concatenated (sorted by run, then time)."""

    run_ids: tuple[str, ...]
    run: np.ndarray  # (N,) run index
    t_end_s: np.ndarray  # (N,)
    y_soft: np.ndarray  # (N,)
    scores: dict[str, np.ndarray]  # detector -> (N,) in [0, 1]
    truth: tuple[np.ndarray, ...]  # per run (k, 2)
    span: tuple[tuple[float, float], ...]  # per run scored [start, end)


@dataclass(frozen=True)
class Choice:
    """The frozen decision config of one detector and how it did on validation."""

    config: DecisionConfig
    val: IntervalReport
    far_target_met: bool
    n_candidates: int


def _cat(xs: list[np.ndarray], dtype: type = np.float64) -> np.ndarray:
    return np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype)


def build_part(
    logs: Mapping[str, RunLog],
    run_ids: Sequence[str],
    limits: np.ndarray | None,
    window_s: float,
    hz: float,
    seed: int = 0,
) -> Part:
    """Concatenate the runs' windows and compute every detector's score for them.

    `limits` None leaves HalfSpaceTrees out (it needs the training runs' feature limits).
    """
    ids = sorted(run_ids)
    names = DETECTORS if limits is not None else [d for d in DETECTORS if d != "halfspacetrees"]
    scores: dict[str, list[np.ndarray]] = {d: [] for d in names}
    run, t, ys, truth, span = [], [], [], [], []
    for k, rid in enumerate(ids):
        log = logs[rid]
        n = log.t_end_s.size
        run.append(np.full(n, k, np.int64))
        t.append(log.t_end_s)
        dt = 1.0 / hz
        ys.append(overlap_fraction(log.t_end_s + dt - window_s, log.t_end_s + dt, log.truth))
        truth.append(log.truth)
        span.append((log.scored_start_s, log.scored_end_s))
        scores["zscore_power"].append(log.zscore)
        if limits is not None:
            scores["halfspacetrees"].append(hst_scores(log.feats, limits, rid, seed=seed))
        for name, s in expert_scores(log.ctx, log.fused).items():
            scores[name].append(s)
    return Part(
        run_ids=tuple(ids),
        run=_cat(run, np.int64),
        t_end_s=_cat(t),
        y_soft=_cat(ys),
        scores={d: _cat(v) for d, v in scores.items()},
        truth=tuple(truth),
        span=tuple(span),
    )


def _intervals(part: Part, o: OfflineIntervals) -> list[RunIntervals]:
    cuts = np.searchsorted(o.run, np.arange(1, len(part.run_ids)))
    starts, ends, emits = np.split(o.start, cuts), np.split(o.end, cuts), np.split(o.emit, cuts)
    return [
        RunIntervals(
            run_id=rid,
            truth=part.truth[k],
            pred=np.stack([starts[k], ends[k]], axis=1),
            pred_emit_s=emits[k],
            scored_start_s=part.span[k][0],
            scored_end_s=part.span[k][1],
        )
        for k, rid in enumerate(part.run_ids)
    ]


def apply_decision(part: Part, detector: str, cfg: DecisionConfig) -> list[RunIntervals]:
    """Decide `detector`'s recorded scores with `cfg`; intervals and spans per run."""
    return _intervals(part, decide_offline(part.t_end_s, part.scores[detector], part.run, cfg))


def _fallback_better(a: tuple[float, float], b: tuple[float, float] | None) -> bool:
    """No config meets the FAR target: is (F1, FAR/h) `a` preferred to `b`? Lower FAR/h first."""
    return b is None or (-a[1], a[0]) > (-b[1], b[0])


def _ttd_key(rep: IntervalReport) -> float:
    t = rep.ttd_median_s
    return np.inf if t is None or not np.isfinite(t) else float(t)


def choose_decision(
    val: Part,
    detector: str,
    *,
    far_target: float,
    stride_s: float,
    grid: DecisionGrid | None = None,
) -> Choice:
    """Search the grid on validation runs only and return the frozen config (module docstring).

    Two passes: F1 and FAR/h do not depend on emission times, so every config is first scored once
    per distinct interval set (a cache keyed by the intervals); time to detect, which does, is then
    computed only for the configs within the F1 tolerance of the best.
    """
    if not far_target >= 0:
        raise ValueError(
            f"The 'far_target' parameter of choose_decision must be >= 0. Got {far_target!r} instead."
        )
    grid = grid or DecisionGrid()
    s = val.scores[detector]
    med = float(np.median(s)) if s.size else 0.5
    ons = np.unique(np.quantile(s, grid.on_quantiles)) if s.size else np.array([0.5])
    raises = np.unique(np.quantile(s, grid.raise_quantiles)) if s.size else np.zeros(0)
    seen: dict[bytes, tuple[float, float]] = {}
    cands: list[tuple[DecisionConfig, bytes]] = []
    for on in ons.tolist():
        offs = sorted(
            {min(on, max(0.0, med + r * (on - med))) for r in grid.off_ratios}, reverse=True
        )
        fast: list[float | None] = [None, *(r for r in raises.tolist() if r > on)]
        for off in offs:
            for gap in grid.merge_gaps_s:
                c = chains(val.t_end_s, s, val.run, on, off, gap, stride_s)
                for rt in fast:
                    for m in grid.min_durations_s:
                        for b in grid.backdates_s:
                            o = finish(c, m, b, stride_s, rt)
                            key = (
                                o.run.tobytes() + b"|" + o.start.tobytes() + b"|" + o.end.tobytes()
                            )
                            if key not in seen:
                                rep = score_runs(_intervals(val, o))
                                seen[key] = (rep.event_f1, rep.far_per_hour or 0.0)
                            cfg = DecisionConfig(on, off, m, gap, b, stride_s, rt)
                            cands.append((cfg, key))
    feasible = [k for k, (_, far) in seen.items() if far <= far_target + 1e-12]
    if feasible:
        best_f1 = max(seen[k][0] for k in feasible)
        ttds: dict[bytes, float] = {}
        best: tuple[tuple[float, float, float], DecisionConfig] | None = None
        chain_cache: dict[tuple[float, float, float], Chains] = {}
        for cfg, key in cands:
            f1, far = seen[key]
            if far > far_target + 1e-12 or f1 < best_f1 - grid.ttd_f1_tolerance - 1e-12:
                continue
            ck = (cfg.on_threshold, cfg.off_threshold, cfg.merge_gap_s)
            if ck not in chain_cache:
                chain_cache[ck] = chains(val.t_end_s, s, val.run, *ck, stride_s)
            o = finish(
                chain_cache[ck], cfg.min_duration_s, cfg.backdate_s, stride_s, cfg.raise_threshold
            )
            k2 = key + b"|" + o.emit.tobytes()
            if k2 not in ttds:
                ttds[k2] = _ttd_key(score_runs(_intervals(val, o)))
            rank = (ttds[k2], -f1, far)
            if best is None or rank < best[0]:
                best = (rank, cfg)
        assert best is not None
        cfg = best[1]
    else:
        pick: tuple[DecisionConfig, tuple[float, float]] | None = None
        for c_, key in cands:
            if _fallback_better(seen[key], None if pick is None else pick[1]):
                pick = (c_, seen[key])
        assert pick is not None
        cfg = pick[0]
    val_report = score_runs(apply_decision(val, detector, cfg))
    met = (val_report.far_per_hour or 0.0) <= far_target + 1e-12
    return Choice(cfg, val_report, met, len(cands))


def evaluate_detector(
    val: Part,
    test: Part,
    detector: str,
    *,
    far_target: float,
    stride_s: float,
    grid: DecisionGrid | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    test_labels: Sequence[EventLabels] | None = None,
    test_run_labels: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, object]:
    """Choose on val, freeze, score test: the detector's entry of report.json.

    `test_labels` (one per test run, in `test.run_ids` order) adds test recall per trojan family,
    variant and strength band; `test_run_labels` (likewise) test false alarms per workload and
    power mode. Every entry says why each missed test event was missed (`stream.miss_causes`),
    per strength band when `test_labels` is given.
    """
    choice = choose_decision(val, detector, far_target=far_target, stride_s=stride_s, grid=grid)
    runs = apply_decision(test, detector, choice.config)  # test truth is read from here on
    rep = score_runs(runs)
    ci = bootstrap_ci(runs, n_resamples=n_resamples, seed=seed)
    win = score_windows(
        test.y_soft, test.scores[detector], np.asarray(test.run_ids)[test.run], n_resamples, seed
    )
    causes = miss_causes(test.t_end_s, test.scores[detector], test.run, test.truth, choice.config)
    bands = (
        None
        if test_labels is None
        else [
            event_labels(lb, tr, "strength_band")
            for lb, tr in zip(test_labels, test.truth, strict=True)
        ]
    )
    return {
        "description": DESCRIPTIONS[detector],
        "decision": asdict(choice.config),
        "far_target_met_on_val": choice.far_target_met,
        "n_candidates": choice.n_candidates,
        "val": choice.val.to_dict(),
        "test": rep.to_dict(),
        "test_ci95": {k: None if v is None else list(v) for k, v in ci.items()},
        "window": win.to_dict(),
        "test_by_event": None if test_labels is None else recall_by_stratum(runs, test_labels),
        "test_far_by_stratum": (
            None if test_run_labels is None else far_by_stratum(runs, test_run_labels)
        ),
        "test_miss_causes": count_causes(causes, bands),
    }


@dataclass
class SplitResult:
    """Everything report writers need for one split."""

    split: SplitManifest
    report: dict[str, object]
    test: Part
    logs: dict[str, RunLog] = field(repr=False)


def _run_dirs(data: Path, ids: Sequence[str]) -> list[Path]:
    dirs = [Path(data) / "runs" / r for r in ids]
    missing = [d for d in dirs if not d.is_dir()]
    if missing:
        raise ValueError(f"{missing[0]}: no such run directory (named by a split manifest).")
    return dirs


def _model_train_runs(data: Path, split: str, fingerprint: str | None) -> set[str] | None:
    """Training runs of the models' own split in this benchmark, None when it is not there or
    the models were trained on another benchmark's (their `data_fingerprint` differs)."""
    if fingerprint is not None and data_fingerprint(data, split) != fingerprint:
        return None
    try:
        return set(read_split(data, split).train)
    except ValueError:
        return None


def _overlap_note(
    model_split: str, model_train: set[str] | None, spec: SplitManifest
) -> str | None:
    """Say when the models were trained on runs this split evaluates on (a leak, not a result)."""
    if model_train is None:
        return (
            f"the models' training split {model_split!r} is not in this benchmark (missing, or "
            "its manifest or runs' meta.json differ from those the models were trained on); "
            "overlap with this split's runs unknown"
        )
    n_val = len(model_train & set(spec.val))
    n_test = len(model_train & set(spec.test))
    if n_val == 0 and n_test == 0:
        return None
    return (
        f"the shipped models were trained on split {model_split!r}, whose training runs include "
        f"{n_test} of this split's {len(spec.test)} test runs and {n_val} of its {len(spec.val)} "
        "validation runs: these numbers are optimistic for the learned detectors"
    )


def evaluate_splits(
    data: Path,
    names: Sequence[str],
    models: ModelSet,
    *,
    binaries: Mapping[str, Path] | None = None,
    far_target: float = 2.0,
    grid: DecisionGrid | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> list[SplitResult]:
    """Evaluate each named split; the union of their val and test runs is replayed once."""
    if not far_target >= 0:
        raise ValueError(
            f"The 'far_target' parameter of evaluate_splits must be >= 0. Got {far_target!r} instead."
        )
    specs = [read_split(data, n) for n in names]
    m = models.manifest
    start = time.perf_counter()
    replay_ids = sorted({r for s in specs for r in (*s.val, *s.test)})
    train_ids = sorted({r for s in specs for r in s.train})

    def tick(stage: str, total: int) -> Callable[[int], None] | None:
        return None if progress is None else (lambda k: progress(stage, k, total))

    if progress is not None:
        progress("replay val+test runs", 0, len(replay_ids))
    logs, provider = collect_logs(
        _run_dirs(data, replay_ids),
        models,
        binaries=binaries,
        progress=tick("replay val+test runs", len(replay_ids)),
    )
    t_replay = time.perf_counter() - start
    if progress is not None:
        progress("read training runs (baseline scaling)", 0, len(train_ids))
    train = train_features(
        _run_dirs(data, train_ids),
        m.hz,
        m.stride,
        tick("read training runs (baseline scaling)", len(train_ids)),
    )
    model_train = _model_train_runs(data, m.training.split, m.training.data_fingerprint)
    out = []
    for spec in specs:
        t0 = time.perf_counter()
        limits = feature_limits([train[r] for r in spec.train])
        val = build_part(logs, spec.val, limits, m.window_s, m.hz, seed)
        test = build_part(logs, spec.test, limits, m.window_s, m.hz, seed)
        labels = [read_event_labels(Path(data) / "runs" / r) for r in test.run_ids]
        run_labels = [read_run_strata(Path(data) / "runs" / r) for r in test.run_ids]
        detectors = {}
        for det in DETECTORS:
            detectors[det] = evaluate_detector(
                val,
                test,
                det,
                far_target=far_target,
                stride_s=m.stride_s,
                grid=grid,
                n_resamples=n_resamples,
                seed=seed,
                test_labels=labels,
                test_run_labels=run_labels,
            )
            if progress is not None:
                progress(f"{spec.name}: choose on val, score test", 1, len(DETECTORS))
        report = {
            "split": spec.name,
            "rule": spec.rule,
            "data": str(data),
            "n_runs": {"val": len(spec.val), "test": len(spec.test)},
            "far_target_per_hour": far_target,
            "selection": "decision config chosen on validation runs only, frozen for test",
            "grid": asdict(grid or DecisionGrid()),
            "n_resamples": n_resamples,
            "seed": seed,
            "provider": provider,
            "models": {
                "split": m.training.split,
                "sha256": {k: v.sha256 for k, v in m.files.items()},
                "window_s": m.window_s,
                "stride_s": m.stride_s,
                "data_fingerprint": m.training.data_fingerprint,
                "trained_on_this_benchmark": model_train is not None,
            },
            "model_train_overlap": _overlap_note(m.training.split, model_train, spec),
            "detectors": detectors,
            "timing_s": {
                "replay_all_requested_splits": round(t_replay, 2),
                "choose_and_score": round(time.perf_counter() - t0, 2),
            },
        }
        out.append(SplitResult(spec, report, test, {r: logs[r] for r in spec.test}))
    return out
