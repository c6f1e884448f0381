"""Write an evaluation: report.json, report.md and PNG plots per split, and the cross-split table.

report.json keys: split, rule, data, n_runs, far_target_per_hour, selection, grid, n_resamples,
seed, provider, models, model_train_overlap, detectors (per detector: description, decision,
far_target_met_on_val, n_candidates, val, test, test_ci95, window), far_vs_ttd, timing_s, plots.

Plots (matplotlib, Agg): per-run timelines of a few test runs (total power, fused score with the
frozen thresholds, truth and predicted intervals), the window-level PR curve and reliability
diagram on test, and a FAR-vs-TTD curve of the full system swept over the on threshold ON TEST
after freezing: a descriptive curve only, never used to choose anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from stream.baselines import DETECTORS
from stream.decide import DecisionConfig
from stream.evaluate import Part, SplitResult, apply_decision
from stream.metrics import score_runs
from stream.offline_decide import decide_offline
from stream.warmup_pair import measure_warmup_pair

__all__ = [
    "far_vs_ttd",
    "fold_table",
    "format_split_md",
    "results_table",
    "seed_table",
    "write_report",
]

_PLOT_DETECTORS = ("fusion", "dynamic_only", "product_of_experts", "halfspacetrees", "zscore_power")


def far_vs_ttd(test: Part, cfg: DecisionConfig, n: int = 25) -> list[dict[str, float | None]]:
    """Descriptive sweep of the fusion on threshold on test, other settings frozen."""
    s = test.scores["fusion"]
    if s.size == 0:
        return []
    ons = np.unique(np.quantile(s, np.linspace(0.5, 0.999, n)))
    out = []
    for on in ons.tolist():
        fast = None if cfg.raise_threshold is None else max(cfg.raise_threshold, on)
        c = replace(
            cfg, on_threshold=on, off_threshold=min(cfg.off_threshold, on), raise_threshold=fast
        )
        rep = score_runs(apply_decision(test, "fusion", c))
        out.append(
            {
                "on_threshold": on,
                "far_per_hour": rep.far_per_hour,
                "ttd_median_s": rep.ttd_median_s,
                "event_f1": rep.event_f1,
                "miss_rate": rep.miss_rate,
            }
        )
    return out


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _timelines(result: SplitResult, path: Path, n_runs: int = 4) -> None:
    plt = _plt()
    test, cfg = result.test, result.report["detectors"]["fusion"]["decision"]
    with_truth = [k for k, tr in enumerate(test.truth) if len(tr)]
    picks = (with_truth + [k for k in range(len(test.run_ids)) if k not in with_truth])[:n_runs]
    fig, axes = plt.subplots(len(picks), 1, figsize=(11, 2.6 * max(len(picks), 1)), squeeze=False)
    det = decide_offline(test.t_end_s, test.scores["fusion"], test.run, DecisionConfig(**cfg))
    for ax, k in zip(axes[:, 0], picks, strict=False):
        rid = test.run_ids[k]
        log = result.logs[rid]
        m = test.run == k
        for a, b in test.truth[k]:
            ax.axvspan(a, b, color="tab:red", alpha=0.18, lw=0)
        for a, b in zip(det.start[det.run == k], det.end[det.run == k], strict=True):
            ax.axvspan(a, b, ymin=0.0, ymax=0.08, color="tab:blue", alpha=0.9, lw=0)
        ax.plot(
            test.t_end_s[m], test.scores["fusion"][m], color="tab:blue", lw=0.8, label="fused score"
        )
        ax.axhline(cfg["on_threshold"], color="tab:blue", ls="--", lw=0.6, label="on threshold")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("score")
        ax2 = ax.twinx()
        ax2.plot(log.t_sim_s, log.power_mw / 1000.0, color="0.45", lw=0.5, label="p_sys5v (W)")
        ax2.set_ylabel("p_sys5v W")
        ax.set_title(
            f"{rid}: truth (red), predicted (blue bar), fused score, total power", fontsize=9
        )
    axes[-1, 0].set_xlabel("simulation time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _pr_curve(test: Part, path: Path) -> None:
    plt = _plt()
    y = test.y_soft >= 0.5
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name in _PLOT_DETECTORS if y.any() else ():
        s = test.scores[name]
        order = np.argsort(-s, kind="stable")
        tp = np.cumsum(y[order])
        prec = tp / np.arange(1, s.size + 1)
        ax.plot(tp / y.sum(), prec, lw=1, label=name)
    ax.set_xlabel("recall (windows, y_soft >= 0.5)")
    ax.set_ylabel("precision")
    ax.set_title("Window-level PR curve, test runs")
    if y.any():
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no trojan window in the test runs", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _reliability(test: Part, path: Path, n_bins: int = 15) -> None:
    plt = _plt()
    y = (test.y_soft >= 0.5).astype(float)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":")
    for name in ("fusion", "dynamic_only", "product_of_experts"):
        p = test.scores[name]
        b = np.minimum((p * n_bins).astype(int), n_bins - 1)
        cnt = np.bincount(b, minlength=n_bins)
        has = cnt > 0
        ax.plot(
            (np.bincount(b, p, n_bins)[has] / cnt[has]),
            (np.bincount(b, y, n_bins)[has] / cnt[has]),
            marker="o",
            ms=3,
            lw=1,
            label=name,
        )
    ax.set_xlabel("mean predicted probability (15 bins)")
    ax.set_ylabel("fraction of windows with y_soft >= 0.5")
    ax.set_title("Reliability diagram, test runs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _far_ttd_plot(curve: list[dict], chosen: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    pts = [(c["far_per_hour"], c["ttd_median_s"]) for c in curve if c["ttd_median_s"] is not None]
    if pts:
        far, ttd = zip(*pts, strict=True)
        ax.plot(far, ttd, marker=".", lw=1, label="fusion, on threshold swept on test")
    te = chosen["test"]
    if te["ttd_median_s"] is not None and te["far_per_hour"] is not None:
        ax.plot(te["far_per_hour"], te["ttd_median_s"], "r*", ms=11, label="frozen (chosen on val)")
    ax.set_xlabel("false alarms per benign hour")
    ax.set_ylabel("median time to detect (s)")
    ax.set_title("FAR vs TTD (DESCRIPTIVE: swept on test after freezing)", fontsize=9)
    if pts or ax.get_lines():
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no detection matched a true event", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _f(v: object, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _ci(entry: dict, key: str) -> str:
    ci = entry["test_ci95"].get(key)
    return "" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"


def _row(split: str, name: str, e: dict) -> str:
    t = e["test"]
    return (
        f"| {split} | {name} | {_f(t['event_f1'], 2)}{_ci(e, 'event_f1')} | "
        f"{_f(t['far_per_hour'], 2)} | {_f(t['ttd_median_s'], 1)} / {_f(t['ttd_p90_s'], 1)} | "
        f"{_f(t['miss_rate'], 2)} | {_f(e['window']['pr_auc'], 2)} | "
        f"{'yes' if e['far_target_met_on_val'] else 'NO'} |"
    )


_HEADER = (
    "| split | detector | event F1 [95% CI] | FAR/h | TTD p50 / p90 (s) | miss rate | "
    "window PR-AUC | val met FAR target |\n|---|---|---|---|---|---|---|---|"
)


def results_table(reports: Sequence[dict]) -> str:
    """Markdown table over splits: test metrics of every detector, thresholds from validation."""
    lines = [_HEADER]
    for r in reports:
        for name in DETECTORS:
            lines.append(_row(r["split"], name, r["detectors"][name]))
    return "\n".join(lines)


def _spread_table(groups: Mapping[str, Sequence[dict]], first: str, count: str) -> str:
    """Per group and detector: mean (min-max) over the group's reports of test F1 and FAR/h."""
    lines = [
        f"| {first} | detector | event F1 mean (min-max) | FAR/h mean (min-max) | "
        f"TTD p50 mean (s) | {count} |\n|---|---|---|---|---|---|"
    ]

    def spread(values: list) -> str:
        v = [x for x in values if x is not None]
        if not v:
            return "n/a"
        return f"{np.mean(v):.2f} ({min(v):.2f}-{max(v):.2f})"

    for group, reps in groups.items():
        for name in DETECTORS:
            tests = [r["detectors"][name]["test"] for r in reps]
            ttd = [t["ttd_median_s"] for t in tests if t["ttd_median_s"] is not None]
            lines.append(
                f"| {group} | {name} | {spread([t['event_f1'] for t in tests])} | "
                f"{spread([t['far_per_hour'] for t in tests])} | "
                f"{_f(float(np.mean(ttd)) if ttd else None, 1)} | {len(reps)} |"
            )
    return "\n".join(lines)


def seed_table(reports_by_seed: Mapping[int, Sequence[dict]]) -> str:
    """Markdown table over splits of the spread across training seeds: mean (min-max) per metric.

    Every seed's models were trained on the same training runs and judged on the same test runs,
    so the spread is what retraining alone moves; differences smaller than it say nothing.
    """
    by_split: dict[str, list[dict]] = {}
    for k in sorted(reports_by_seed):
        for r in reports_by_seed[k]:
            by_split.setdefault(r["split"], []).append(r)
    return _spread_table(by_split, "split", "seeds")


def fold_table(parent: str, reports: Sequence[dict]) -> str:
    """Markdown for a held-out split's development folds (simulator.splits.dev_folds).

    First each fold's held-out numbers beside its validation FAR/h (how far the FAR chosen on
    seen conditions moves under the shift), then the spread across folds per detector.
    """
    lines = [
        "| fold (held out) | detector | val F1 | val FAR/h | held-out F1 | held-out FAR/h | "
        "TTD p50 (s) |\n|---|---|---|---|---|---|---|"
    ]
    for r in reports:
        for name in DETECTORS:
            d = r["detectors"][name]
            v, t = d["val"], d["test"]
            lines.append(
                f"| {r['split']} | {name} | {_f(v['event_f1'], 2)} | {_f(v['far_per_hour'], 2)} | "
                f"{_f(t['event_f1'], 2)} | {_f(t['far_per_hour'], 2)} | {_f(t['ttd_median_s'], 1)} |"
            )
    spread = _spread_table({f"{parent} (all folds)": list(reports)}, "folds", "folds")
    return "\n".join(lines) + "\n\n" + spread


def _warmup_pair_md(pair: dict | None) -> list[str]:
    """The paired contaminated-warm-up comparison (stream.warmup_pair), when the report has it."""
    if not pair:
        return []
    lines = ["## What the contaminated warm-up costs (same runs, paired)", ""]
    if "detectors" not in pair:
        return [*lines, f"Not measured: {pair.get('skipped')}.", ""]
    lines += [
        f"{pair['n_runs']} test runs with a trojan active in their first {pair['warmup_s']:g} s, "
        "each replayed from the start and from the end of the last activation begun in the "
        "warm-up (a clean start), scored on the same span with the frozen decisions "
        f"({pair['n_runs_left_out_too_short_after_warmup']} runs left out: too short after it).",
        "",
        "| detector | F1 contaminated | F1 clean start | F1 loss [95% CI] | FAR/h contaminated | "
        "FAR/h clean start |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in pair["detectors"].items():
        a, b, ci = v["contaminated"], v["clean_start"], v["f1_loss_ci95"]
        ci_txt = "" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        lines.append(
            f"| {name} | {_f(a['event_f1'], 2)} | {_f(b['event_f1'], 2)} | "
            f"{v['f1_loss']:.2f}{ci_txt} | {_f(a['far_per_hour'], 2)} | {_f(b['far_per_hour'], 2)} |"
        )
    return [*lines, ""]


_STRATA_TITLES = {
    "trojan_family": "family",
    "trojan_variant": "variant",
    "strength_band": "strength",
}


def _strata_md(d: dict) -> list[str]:
    """Test recall per trojan family, variant and strength band, one column per detector."""
    first = d[DETECTORS[0]].get("test_by_event")
    if not first:
        return []
    lines = [
        "## Test recall by trojan (events; TTD p50 of the fusion in brackets)",
        "",
        "| stratum | events | " + " | ".join(DETECTORS) + " |",
        "|---|---|" + "---|" * len(DETECTORS),
    ]
    for key, title in _STRATA_TITLES.items():
        for value, cell in first.get(key, {}).items():
            recalls = []
            for name in DETECTORS:
                r = d[name]["test_by_event"][key][value]
                text = _f(r["recall"], 2)
                if name == "fusion" and r["ttd_median_s"] is not None:
                    text += f" ({r['ttd_median_s']:.1f} s)"
                recalls.append(text)
            lines.append(f"| {title} {value} | {cell['n']} | " + " | ".join(recalls) + " |")
    return [*lines, ""]


_RUN_STRATA_TITLES = {"workload": "workload", "power_mode": "power mode"}


def _far_strata_md(d: dict) -> list[str]:
    """Test false alarms per benign hour by workload and power mode, one column per detector."""
    first = d[DETECTORS[0]].get("test_far_by_stratum")
    if not first:
        return []
    lines = [
        "## Test false alarms by what the device was doing (FAR/h; false alarms of the fusion in "
        "brackets)",
        "",
        "| stratum | runs | benign h | " + " | ".join(DETECTORS) + " |",
        "|---|---|---|" + "---|" * len(DETECTORS),
    ]
    for key, title in _RUN_STRATA_TITLES.items():
        for value, cell in first.get(key, {}).items():
            cells = []
            for name in DETECTORS:
                r = d[name]["test_far_by_stratum"][key][value]
                text = _f(r["far_per_hour"], 2)
                if name == "fusion":
                    text += f" ({r['false_alarms']})"
                cells.append(text)
            lines.append(
                f"| {title} {value} | {cell['runs']} | {_f(cell['benign_hours'], 2)} | "
                + " | ".join(cells)
                + " |"
            )
    return [*lines, ""]


_CAUSE_TITLES = {
    "detected": "detected",
    "raised_unmatched": "raised, not matched",
    "too_short": "crossed on, too short",
    "below_on": "score below on",
}


def _miss_causes_md(d: dict) -> list[str]:
    """Test events by what became of them (stream.miss_causes): all detectors, then the fusion
    per strength band."""
    if not all(d[name].get("test_miss_causes") for name in DETECTORS):
        return []
    head = " | ".join(_CAUSE_TITLES.values())
    lines = [
        "## Why test events were missed",
        "",
        "Each test event, under the frozen config: matched; overlapped by a raised interval that "
        "did not match; overlapped only by a candidate the minimum duration discarded (the score "
        "crossed the on threshold); or overlapped by nothing (the score stayed below on). The "
        "first two are the decision stage's or the matching's, the last the scores'.",
        "",
        f"| detector | events | {head} |",
        "|---|---|" + "---|" * len(_CAUSE_TITLES),
    ]

    def row(label: str, counts: dict) -> str:
        n = sum(counts.values())
        return f"| {label} | {n} | " + " | ".join(str(counts[c]) for c in _CAUSE_TITLES) + " |"

    for name in DETECTORS:
        lines.append(row(name, d[name]["test_miss_causes"]["all"]))
    by = d["fusion"]["test_miss_causes"].get("by_group")
    if by:
        lines += ["", f"| fusion, strength | events | {head} |"]
        lines.append("|---|---|" + "---|" * len(_CAUSE_TITLES))
        lines += [row(band, counts) for band, counts in by.items()]
    return [*lines, ""]


def format_split_md(report: dict) -> str:
    """report.md of one split."""
    d = report["detectors"]
    lines = [
        f"# Evaluation: split `{report['split']}`",
        "",
        f"Rule: {report['rule']}. Runs: {report['n_runs']['val']} validation, "
        f"{report['n_runs']['test']} test. Provider: {report['provider']}.",
        "",
        f"Decision configs (thresholds, hysteresis, backdate) were chosen on the **validation runs "
        f"only** (best event F1 with FAR/h <= {report['far_target_per_hour']:g}), then frozen and "
        f"applied to the test runs. 95 % CIs: bootstrap over test runs "
        f"({report['n_resamples']} resamples, seed {report['seed']}).",
        "",
    ]
    ov = report.get("model_train_overlap")
    if ov:
        lines += [f"**Caution:** {ov}", ""]
    lines += ["## Test results", "", _HEADER]
    lines += [_row(report["split"], name, d[name]) for name in DETECTORS]
    lines += [
        "",
        "## Frozen decision configs (chosen on validation)",
        "",
        "| detector | on | off | fast raise | min dur (s) | merge gap (s) | backdate (s) | val F1 "
        "| val FAR/h | val TTD p50 (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in DETECTORS:
        c, v = d[name]["decision"], d[name]["val"]
        lines.append(
            f"| {name} | {c['on_threshold']:.4f} | {c['off_threshold']:.4f} | "
            f"{'none' if c.get('raise_threshold') is None else _f(c['raise_threshold'], 4)} | "
            f"{c['min_duration_s']:g} | {c['merge_gap_s']:g} | {c['backdate_s']:g} | "
            f"{_f(v['event_f1'], 3)} | {_f(v['far_per_hour'], 2)} | {_f(v['ttd_median_s'], 1)} |"
        )
    lines += [
        "",
        "## Window level (test, y_soft >= 0.5)",
        "",
        "| detector | PR-AUC | ROC-AUC | ECE | windows | positives |",
        "|---|---|---|---|---|---|",
    ]
    for name in DETECTORS:
        w = d[name]["window"]
        lines.append(
            f"| {name} | {_f(w['pr_auc'])} | {_f(w['roc_auc'])} | {_f(w['ece'])} | "
            f"{w['n_windows']} | {w['n_positive']} |"
        )
    lines += [
        "",
        "ECE is meaningful for the probability scores only (experts, gates, fusion); the z-score "
        "and HalfSpaceTrees scores are monotone anomaly scores.",
        "",
    ]
    lines += _strata_md(d)
    lines += _far_strata_md(d)
    lines += _miss_causes_md(d)
    lines += _warmup_pair_md(report.get("warmup_pair"))
    lines += [
        "## Plots",
        "",
    ]
    lines += [f"![{p}]({p})" for p in report["plots"]]
    lines += [
        "",
        "`far_vs_ttd.png` sweeps the fusion on threshold **on test after freezing**: a descriptive "
        "trade-off curve, never used to choose anything.",
        "",
    ]
    return "\n".join(lines)


def write_report(result: SplitResult, out_dir: Path) -> dict:
    """Write report.json, report.md and the PNG plots of one split into out_dir; return the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(result.report)
    cfg = DecisionConfig(**report["detectors"]["fusion"]["decision"])
    curve = far_vs_ttd(result.test, cfg)
    report["far_vs_ttd"] = {"descriptive_only_swept_on_test_after_freezing": True, "points": curve}
    plots = ["timelines.png", "pr_curve.png", "reliability.png", "far_vs_ttd.png"]
    result.report = report
    _timelines(result, out / plots[0])
    _pr_curve(result.test, out / plots[1])
    _reliability(result.test, out / plots[2])
    _far_ttd_plot(curve, report["detectors"]["fusion"], out / plots[3])
    report["plots"] = plots
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(format_split_md(report))
    return report


def write_frozen_decision(model_dir: Path, report: dict, detector: str = "fusion") -> dict:
    """Ship `detector`'s frozen decision config of `report` in the models' manifest.

    Only for the split the models were trained on: its validation runs are the ones training
    used, and no test run is involved in the choice. Returns the written settings.
    """
    from stream.manifest import DecisionSpec, write_decision

    if report["models"]["split"] != report["split"]:
        raise ValueError(
            f"{model_dir}: models trained on split {report['models']['split']!r} cannot take the "
            f"decision chosen on split {report['split']!r}; evaluate their own split."
        )
    if report["models"].get("trained_on_this_benchmark") is False:
        raise ValueError(
            f"{model_dir}: models trained on another benchmark's split {report['split']!r} cannot "
            f"take a decision chosen on this benchmark's validation runs ({report['data']})."
        )
    c = report["detectors"][detector]["decision"]
    spec = DecisionSpec(
        on_threshold=c["on_threshold"],
        off_threshold=c["off_threshold"],
        min_duration_s=c["min_duration_s"],
        merge_gap_s=c["merge_gap_s"],
        backdate_s=c["backdate_s"],
        raise_threshold=c.get("raise_threshold"),
        source=(
            f"evaluate: best event F1 with FAR/h <= {report['far_target_per_hour']:g} (then the "
            f"lowest TTD p50 within {report['grid'].get('ttd_f1_tolerance', 0.0):g} F1) on the "
            f"validation runs of split {report['split']!r}, {detector}"
        ),
    )
    write_decision(model_dir, spec)
    return spec.model_dump()


def evaluate_to_dir(
    data: Path,
    split: str,
    models,
    out: Path | None,
    *,
    far_target: float = 2.0,
    binaries=None,
    progress=None,
    grid=None,
) -> tuple[list[dict], list[Path]]:
    """`cli.py evaluate`: evaluate SPLIT (or 'all') and write each split's report.

    Each split goes to `out` (single split; default reports/<split>) or `out/<split>` ('all';
    default reports/), and 'all' also writes results.md with the cross-split table.
    """
    from stream.evaluate import available_splits, evaluate_splits

    names = available_splits(data) if split == "all" else [split]
    if not names:
        raise ValueError(f"{Path(data) / 'splits'}: no split manifests found.")
    results = evaluate_splits(
        data, names, models, binaries=binaries, far_target=far_target, grid=grid, progress=progress
    )
    root = Path("reports") if out is None else Path(out)
    reports, written = [], []
    for res in results:
        if res.split.name == "contaminated_warmup":
            dets = res.report["detectors"]
            res.report["warmup_pair"] = measure_warmup_pair(
                data,
                res.logs,
                models,
                {name: DecisionConfig(**dets[name]["decision"]) for name in dets},
                binaries=binaries,
            )
        target = root / res.split.name if (split == "all" or out is None) else root
        reports.append(write_report(res, target))
        written.append(target)
    if split == "all":
        table = results_table(reports)
        (root / "results.md").write_text(
            "# Results (test runs; decision configs chosen on validation only)\n\n" + table + "\n"
        )
        written.append(root / "results.md")
    return reports, written
