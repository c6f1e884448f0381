"""The training script, linear: seed -> data -> models -> train -> calibrate -> export.

`run_training(cfg)` trains the dynamic ensemble, the static expert and the fusion gate on one split
and writes a checked model directory (ONNX + manifest.json + train_config.json). Progress goes to an
optional callback `progress(stage, done, total)`; `rich_progress()` gives one that draws bars.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from offline_training.calibrate import choose_decision
from offline_training.config import TrainConfig
from offline_training.data import (
    PARTS,
    DataError,
    SplitData,
    available_splits,
    load_binaries,
    load_split,
)
from offline_training.export import EXPORTER, ExportSpec, check_target, write_model_dir
from offline_training.labels import relabel_recent
from offline_training.models import ensemble_outputs
from offline_training.synthetic import synthetic_train_windows, with_synthetic
from offline_training.train_dynamic import train_dynamic
from offline_training.train_gate import (
    build_gate_data,
    cross_fitted_scores,
    fit_gate,
    fusion_baselines,
)
from offline_training.train_static import (
    StaticTable,
    heldout_auc,
    read_static_table,
    static_scores,
    train_static,
)
from stream.manifest import ModelManifest, sha256_bytes
from stream.schema import FEATURE_COLUMNS, FUSION_INPUTS, MASK_COLUMNS, MASK_GROUPS
from stream.splits import data_fingerprint
from stream.static_features import STATIC_FEATURE_NAMES
from stream.window_metrics import score_windows

__all__ = ["Progress", "TrainingReport", "run_training", "rich_progress", "seeded"]

Progress = Callable[[str, int, int], None]
_N_PARITY = 256


@dataclass(frozen=True)
class TrainingReport:
    """What `run_training` wrote and measured."""

    out_dir: Path
    manifest: ModelManifest
    parity: dict[str, float]
    wall_time_s: float


@contextlib.contextmanager
def seeded(cfg: TrainConfig) -> Iterator[None]:
    """Seeds, deterministic algorithms on the CPU and a fixed thread count; restored afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=cfg.device != "cpu")
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _window_metrics(y_soft: np.ndarray, score: np.ndarray, run_id: np.ndarray) -> dict:
    r = score_windows(y_soft, np.clip(score, 0.0, 1.0), run_id, n_resamples=0)
    return {
        "roc_auc": r.roc_auc,
        "pr_auc": r.pr_auc,
        "ece": r.ece,
        "n_windows": r.n_windows,
        "n_positive": r.n_positive,
    }


def _part_binaries(data_dir: Path, split: str) -> dict[str, list[str]] | None:
    """Binary ids per part of another split, read from its NPZ windows (None if absent)."""
    root = data_dir / "processed" / split
    try:
        return {
            p: sorted(set(np.load(root / f"windows_{p}.npz")["binary_id"].astype(str).tolist()))
            for p in PARTS
        }
    except (OSError, KeyError, ValueError):
        return None


def _sha256_of(binaries, ids) -> list[str]:
    """Content sha256 of the named binaries, sorted: how the runtime recognises them."""
    index = binaries.index()
    return sorted(sha256_bytes(Path(binaries.path[index[b]]).read_bytes()) for b in ids)


def _static_map(table: StaticTable, trained, final_p, final_u) -> dict[str, tuple[float, float]]:
    """binary -> (p, u) the gate may see: out-of-fold for training binaries, else the final model's.

    Training binaries without an out-of-fold score are left out (static unavailable).
    """
    out = {}
    train = set(trained.train_ids)
    for i, b in enumerate(table.binary_id.tolist()):
        if not table.available[i]:
            continue
        if b in train:
            if b in trained.oof:
                out[b] = trained.oof[b]
        else:
            out[b] = (float(final_p[i]), float(final_u[i]))
    return out


def _feeds(data: SplitData, table: StaticTable, ctx: np.ndarray, seed: int):
    """Random and real feed sets per model for the export parity check."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 606]))
    val = data.val
    n = min(_N_PARITY, len(val))
    W, F_, K = val.X.shape[1], val.X.shape[2], val.M.shape[2]
    dyn = [
        {
            "x": np.clip(rng.normal(0, 3, (64, W, F_)), -10, 10).astype(np.float32),
            "m": (rng.random((64, W, K)) < 0.7).astype(np.float32),
        },
        {"x": val.X[:n], "m": val.M[:n].astype(np.float32)},
    ]
    real_s = table.features[table.available]
    S = table.features.shape[1]
    sta = [
        {"s": (rng.random((64, S)) * 8.0).astype(np.float32)},
        {"s": real_s if len(real_s) else np.zeros((1, S), np.float32)},
    ]
    rand_ctx = rng.random((64, len(FUSION_INPUTS))).astype(np.float32)
    rand_ctx[:, 4] = rng.random(64) < 0.5
    rand_ctx[:, 5] = rng.random(64) < 0.5
    fus = [{"ctx": rand_ctx}, {"ctx": ctx[:_N_PARITY]}]
    return dyn, sta, fus


def run_training(cfg: TrainConfig, progress: Progress | None = None) -> TrainingReport:
    """Train every model on `cfg.split` of `cfg.data_dir` and write `cfg.out_dir`."""
    t0 = time.perf_counter()
    cfg = cfg.resolved()
    check_target(Path(cfg.out_dir))
    tick = progress or (lambda stage, done, total: None)
    with seeded(cfg):
        # data
        tick("loading windows", 0, 1)
        data = load_split(cfg.data_dir, cfg.split)
        if cfg.label_recent_s is not None:
            data = relabel_recent(data, cfg.data_dir, cfg.label_recent_s)
        if cfg.synthetic_runs:
            extra = synthetic_train_windows(
                cfg.data_dir,
                data,
                cfg.synthetic_runs,
                cfg.seed,
                cfg.label_recent_s,
                trojan_share=cfg.synthetic_trojans,
            )
            data = with_synthetic(data, extra)
        binaries = load_binaries(cfg.data_dir)
        tick("loading windows", 1, 1)
        tick("reading binaries (LIEF)", 0, 1)
        table = read_static_table(binaries)
        tick("reading binaries (LIEF)", 1, 1)
        unknown = sorted(set(data.train.binary_id.tolist()) - set(table.binary_id.tolist()))
        if unknown:
            raise DataError(f"binaries.csv lacks binaries used by training runs, e.g. {unknown[0]}")

        # dynamic expert
        dyn = train_dynamic(
            data, cfg, on_epoch=lambda e, loss: tick("dynamic ensemble (epochs)", e, cfg.epochs)
        )
        tick("dynamic ensemble (epochs)", cfg.epochs, cfg.epochs)
        with torch.no_grad():
            z = torch.as_tensor(dyn.val_logits, dtype=torch.float32)
            _, p_d, u_d = ensemble_outputs(z, dyn.model.logit_offset, dyn.model.temperature)
        p_d, u_d = p_d.numpy().astype(np.float64), u_d.numpy().astype(np.float64)

        # static expert
        tick("static expert", 0, 1)
        train_bins = sorted(set(data.train.binary_id.tolist()))
        st = train_static(table, train_bins, cfg)
        final_p, final_u = static_scores(st.model, table.features)
        static_new = _static_map(table, st, final_p, final_u)
        static_served = {
            b: (float(final_p[i]), float(final_u[i]))
            for i, b in enumerate(table.binary_id.tolist())
            if table.available[i]
        }
        held = sorted(set(data.val.binary_id.tolist()) | set(data.test.binary_id.tolist()))
        heldout_here = heldout_auc(table, train_bins, held, cfg)
        disjoint = _part_binaries(cfg.data_dir, "binary_disjoint")
        heldout_disjoint = (
            heldout_auc(table, disjoint["train"], disjoint["test"], cfg) if disjoint else None
        )
        tick("static expert", 1, 1)

        # fusion gate on validation windows only
        tick("fusion gate", 0, 1)
        train_runs = set(data.train.run_id.tolist())
        gate = build_gate_data(
            data.val,
            p_d,
            u_d,
            static_served,
            train_runs,
            static_new=static_new,
            seen=frozenset(st.train_ids),
        )
        fused_oof = cross_fitted_scores(gate, cfg)[gate.served]
        gate_net = fit_gate(gate.ctx, gate.y_soft, cfg, cfg.seed)
        served = gate.view(gate.served)
        tick("fusion gate", 1, 1)

        # calibrate: decision settings on validation (temperatures were fitted in training)
        decision = choose_decision(
            fused_oof,
            served.y_soft,
            served.run_id,
            served.t_end_s,
            cfg.min_duration_s,
            cfg.merge_gap_s,
        )
        val = data.val
        metrics: dict[str, dict] = {
            "val_dynamic": _window_metrics(val.y_soft, p_d, val.run_id),
            "val_static": _window_metrics(
                val.y_soft, fusion_baselines(served.ctx)["static_only"], val.run_id
            ),
            "val_fused": _window_metrics(val.y_soft, fused_oof, val.run_id),
        }
        for name, score in fusion_baselines(served.ctx).items():
            if name not in ("dynamic_only", "static_only"):
                metrics[f"val_baseline_{name}"] = _window_metrics(val.y_soft, score, val.run_id)
        metrics["static_binaries"] = {
            "cv_roc_auc_train_binaries": st.cv_roc_auc,
            "heldout_roc_auc": heldout_here["roc_auc"],
            "heldout_n_binaries": heldout_here["n_test_binaries"],
            "binary_disjoint_roc_auc": heldout_disjoint["roc_auc"] if heldout_disjoint else None,
            "binary_disjoint_n_test_binaries": (
                heldout_disjoint["n_test_binaries"] if heldout_disjoint else None
            ),
        }
        metrics["calibration"] = {
            "dynamic_temperature": float(dyn.model.temperature),
            "dynamic_pos_weight": dyn.pos_weight,
            "static_temperature": float(st.model.temperature),
            "gate_rows": int(gate.ctx.shape[0]),
            "gate_rows_static_available": int(served.ctx[:, 4].sum()),
            "gate_rows_static_seen": int(served.ctx[:, 5].sum()),
        }

        # export
        tick("export + parity", 0, 1)
        dyn_feeds, sta_feeds, fus_feeds = _feeds(data, table, served.ctx, cfg.seed)
        specs = [
            ExportSpec("dynamic", dyn.model, ("x", "m"), ("p_members", "p", "u"), dyn_feeds),
            ExportSpec("static", st.model, ("s",), ("p_members", "p", "u"), sta_feeds),
            ExportSpec("fusion", gate_net, ("ctx",), ("score",), fus_feeds),
        ]
        fields = _manifest_fields(cfg, data, table, st, dyn, decision, metrics, t0)
        fields["static_seen_sha256"] = _sha256_of(binaries, st.train_ids)
        manifest, parity = write_model_dir(
            cfg.out_dir, specs, fields, cfg.model_dump_json(indent=2), cfg.opset, cfg.parity_tol
        )
        tick("export + parity", 1, 1)
    return TrainingReport(Path(cfg.out_dir), manifest, parity, time.perf_counter() - t0)


def _manifest_fields(cfg, data: SplitData, table, st, dyn, decision, metrics, t0) -> dict:
    spec, norm = data.spec, data.norm
    stride = max(1, int(round(spec.hz)))  # the runtime emits every second
    return {
        "feature_names": list(FEATURE_COLUMNS),
        "mask_names": list(MASK_COLUMNS),
        "mask_groups": {k: list(v) for k, v in MASK_GROUPS.items()},
        "fusion_inputs": list(FUSION_INPUTS),
        "static_feature_names": list(STATIC_FEATURE_NAMES),
        "hz": spec.hz,
        "window": spec.window,
        "stride": stride,
        "window_s": spec.window / spec.hz,
        "stride_s": stride / spec.hz,
        "normalisation": {
            "scale": list(norm.scale),
            "up_tau_s": norm.up_tau_s,
            "down_tau_s": norm.down_tau_s,
            "clip": norm.clip,
            "spread_tau_s": norm.spread_tau_s,
            "spread_ref": None if norm.spread_ref is None else list(norm.spread_ref),
            "spread_warm_s": norm.spread_warm_s,
        },
        "decision": decision,
        "drift_threshold": decision["off_threshold"],
        "training": {
            "split": cfg.split,
            "seed": cfg.seed,
            "epochs": cfg.epochs,
            "epochs_run": dyn.epochs_run,
            "best_epoch": dyn.best_epoch,
            "device": cfg.device,
            "n_windows": {p: len(data.parts[p]) for p in PARTS},
            "n_binaries": {
                "indexed": int(table.binary_id.size),
                "readable": int(table.available.sum()),
                "static_train": len(st.train_ids),
            },
            "members": cfg.members,
            "static_members": cfg.static_members,
            "wall_time_s": round(time.perf_counter() - t0, 2),
            "exporter": EXPORTER,
            "torch_version": torch.__version__,
            "data_fingerprint": data_fingerprint(cfg.data_dir, cfg.split),
        },
        "metrics": metrics,
        "model_card": {
            "intended_use": (
                "Second-by-second detection of active firmware-trojan behaviour on Jetson-class "
                "edge devices from thermal, power, utilisation and perf-counter telemetry, fused "
                "with static features of the device's ELF binary. A triage signal for operators, "
                "not proof of compromise."
            ),
            "data": (
                f"Simulated FusionBench-Sim telemetry ({cfg.data_dir}), split '{cfg.split}': "
                f"{len(data.train)} training, {len(data.val)} validation windows of "
                f"{spec.window / spec.hz:g} s at {spec.hz:g} Hz. Validation runs chose early "
                "stopping, temperatures, the gate and the decision thresholds; test runs were "
                "not used."
            ),
            "limits": [
                "Trained on simulated devices only; real boards, sensors and trojans will differ.",
                "The static expert learned from a few dozen binaries: on a binary it trained on "
                "(static_seen) its score is in-sample and the gate trusts it more; on a new "
                "binary treat p_static as weak.",
                "Decision thresholds are provisional (window-level F1 on validation).",
                "Trojans whose activity hides below benign workload variation are missed.",
            ],
        },
    }


@contextlib.contextmanager
def rich_progress() -> Iterator[Progress]:
    """A `Progress` callback that draws one rich bar per stage on stderr."""
    from rich.console import Console
    from rich.progress import Progress as RichProgress

    tasks: dict[str, int] = {}
    with RichProgress(console=Console(stderr=True)) as bar:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def check_split(data_dir: Path, split: str) -> None:
    """Raise DataError unless `split` has processed windows under data_dir."""
    names = available_splits(Path(data_dir))
    if split not in names:
        raise DataError(
            f"The 'split' parameter of train must be one of {names}. Got {split!r} instead."
        )


def format_report(report: TrainingReport) -> str:
    """A few lines for the console: where, how long, on what, and the validation metrics."""
    m, t = report.manifest.metrics, report.manifest.training
    lines = [
        f"wrote {report.out_dir} in {report.wall_time_s:.1f} s on {t.device} "
        f"({t.members} members, {t.epochs_run} epochs, split {t.split})",
        "parity ONNX vs torch: " + ", ".join(f"{k} {v:.1e}" for k, v in report.parity.items()),
    ]
    for name in ("val_dynamic", "val_static", "val_fused"):
        r = m[name]
        lines.append(
            f"{name:12s} ROC-AUC {_fmt(r['roc_auc'])}  PR-AUC {_fmt(r['pr_auc'])}  "
            f"ECE {_fmt(r['ece'])}"
        )
    s = m["static_binaries"]
    lines.append(
        f"static binaries: CV ROC-AUC {_fmt(s['cv_roc_auc_train_binaries'])}, binary-disjoint "
        f"ROC-AUC {_fmt(s['binary_disjoint_roc_auc'])} on "
        f"{s['binary_disjoint_n_test_binaries']} unseen binaries"
    )
    return "\n".join(lines)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"
