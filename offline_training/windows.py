"""Windowed NPZ tensors per split (DESIGN.md 3.4), cut by the runtime's own windowing code.

For each split the normalisation scale is fitted on that split's training runs only, then applied
to all three parts, and stored in the NPZ so training copies it into the model manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.eval_logs import overlap_fraction  # the one label definition, shared with evaluate
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.sources import read_truth
from stream.splits import read_split_file
from stream.telemetry_io import read_telemetry
from stream.windowing import (
    Normalisation,
    WindowSpec,
    baseline_residuals,
    fit_scale,
    fit_spread_ref,
    scaled_run,
    window_run,
)

__all__ = [
    "RunResiduals",
    "load_run",
    "run_windows",
    "overlap_fraction",
    "build_split_windows",
    "build_windows",
    "NPZ_SPEC",
]

#: Windows stored on disk: 10 s at 10 Hz, one every 4 s (the runtime emits every 1 s; these are a
#: subset of its emission times, aligned to the absolute sample count).
NPZ_SPEC = WindowSpec(hz=10.0, window_s=10.0, stride_s=4.0)
#: Per-device spread adaptation of the normalisation (stream.windowing), on by default: without it a
#: held-out workload that keeps one engine busy (cv_pipeline) scored like a trojan on that engine.
SPREAD_TAU_S = 300.0
#: Warm start of that adaptation: the training reference weighs as 30 s of a device's own samples,
#: so a device busy from its first second is judged by its own spread within about a minute.
SPREAD_WARM_S = 30.0


@dataclass(frozen=True)
class RunResiduals:
    """One run after the causal baseline: residuals (T, F), masks (T, K), times, truth."""

    run_id: str
    binary_id: str
    t_sim_s: np.ndarray
    residuals: np.ndarray
    masks: np.ndarray
    truth: np.ndarray  # (n, 2) activation intervals [start, end)


def load_run(run_dir: Path, norm: Normalisation) -> RunResiduals:
    """Read one run directory and compute its causal-baseline residuals."""
    tel = read_telemetry(run_dir / "telemetry.csv")
    r = baseline_residuals(tel.features, tel.hz, norm)
    return RunResiduals(
        tel.run_id, tel.binary_id, tel.t_sim_s, r, tel.masks, read_truth(run_dir / "intervals.csv")
    )


def run_windows(run: RunResiduals, norm: Normalisation, spec: WindowSpec):
    """One run's windows with a given normalisation: X (N, W, F), M (N, W, K), y_soft, t_end."""
    return _windows(run, norm, spec)


def _windows(run: RunResiduals, norm: Normalisation, spec: WindowSpec):
    z = scaled_run(run.residuals, spec.hz, norm)
    X, M, ends = window_run(z, run.masks, spec)
    dt = 1.0 / spec.hz
    t_end = run.t_sim_s[ends]
    t_first = run.t_sim_s[ends - (spec.window - 1)]
    y_soft = overlap_fraction(t_first, t_end + dt, run.truth).astype(np.float32)
    return X, M, y_soft, t_end


def build_split_windows(
    runs: dict[str, RunResiduals],
    parts: dict[str, Iterable[str]],
    out_dir: Path,
    spec: WindowSpec = NPZ_SPEC,
    base: Normalisation | None = None,
    on_part: Callable[[str], None] | None = None,
    spread_tau_s: float = SPREAD_TAU_S,
    spread_warm_s: float = SPREAD_WARM_S,
) -> Normalisation:
    """Write windows_{train,val,test}.npz for one split; return the fitted normalisation."""
    base = base or Normalisation.unit()
    train_ids = list(parts["train"])
    scale = fit_scale([runs[r].residuals for r in train_ids])
    norm = Normalisation(scale, base.up_tau_s, base.down_tau_s, base.clip)
    if spread_tau_s > 0:
        fixed = Normalisation(scale, base.up_tau_s, base.down_tau_s, base.clip, spread_tau_s, scale)
        ref = fit_spread_ref([runs[r].residuals for r in train_ids], spec.hz, fixed)
        norm = Normalisation(
            scale, base.up_tau_s, base.down_tau_s, base.clip, spread_tau_s, ref, spread_warm_s
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for part, ids in parts.items():
        Xs, Ms, ys, ts, rid, bid = [], [], [], [], [], []
        for run_id in sorted(ids):
            run = runs[run_id]
            X, M, y_soft, t_end = _windows(run, norm, spec)
            Xs.append(X)
            Ms.append(M)
            ys.append(y_soft)
            ts.append(t_end)
            rid += [run.run_id] * len(t_end)
            bid += [run.binary_id] * len(t_end)
        y_soft = np.concatenate(ys) if ys else np.zeros(0, np.float32)
        np.savez(
            out_dir / f"windows_{part}.npz",
            X=np.concatenate(Xs)
            if Xs
            else np.zeros((0, spec.window, len(FEATURE_COLUMNS)), np.float32),
            M=np.concatenate(Ms) if Ms else np.zeros((0, spec.window, len(MASK_COLUMNS)), np.uint8),
            y_soft=y_soft,
            y=(y_soft >= 0.5).astype(np.uint8),
            run_id=np.array(rid, dtype=str),
            binary_id=np.array(bid, dtype=str),
            t_end_s=np.concatenate(ts) if ts else np.zeros(0),
            feature_names=np.array(FEATURE_COLUMNS),
            mask_names=np.array(MASK_COLUMNS),
            window=spec.window,
            stride=spec.stride,
            hz=spec.hz,
            norm_scale=np.array(norm.scale),
            norm_up_tau_s=norm.up_tau_s,
            norm_down_tau_s=norm.down_tau_s,
            norm_clip=norm.clip,
            norm_spread_tau_s=norm.spread_tau_s,
            norm_spread_ref=np.array(norm.spread_ref or (), np.float64),
            norm_spread_warm_s=norm.spread_warm_s,
        )
        if on_part is not None:
            on_part(part)
    return norm


def build_windows(
    data_dir: Path,
    names: Sequence[str],
    *,
    window_s: float = NPZ_SPEC.window_s,
    stride_s: float = NPZ_SPEC.stride_s,
    on_run: Callable[[str], None] | None = None,
    on_part: Callable[[str], None] | None = None,
) -> dict[str, Normalisation]:
    """(Re)build `processed/<name>/windows_*.npz` of `data_dir` for each split manifest
    `splits/<name>.json`, from the run directories it lists: what `simulate --out` writes, for a
    custom split too (a leave-one-group-out development split, say) and without simulating again.

    Each run's causal baseline is computed once for all splits. Returns each split's fitted
    normalisation. A manifest naming a run without a directory, or runs at different sample
    rates, is refused.
    """
    data_dir = Path(data_dir)
    manifests = {n: read_split_file(data_dir / "splits" / f"{n}.json") for n in names}
    ids = sorted({r for m in manifests.values() for r in (*m.train, *m.val, *m.test)})
    for name, m in manifests.items():
        for r in (*m.train, *m.val, *m.test):
            if not (data_dir / "runs" / r).is_dir():
                raise ValueError(
                    f"{data_dir / 'splits' / f'{name}.json'}: run {r!r} has no directory under "
                    f"{data_dir / 'runs'}"
                )
    if not ids:
        return {}
    runs: dict[str, RunResiduals] = {}
    for r in ids:
        runs[r] = load_run(data_dir / "runs" / r, Normalisation.unit())
        if on_run is not None:
            on_run(r)
    rates = {round(1.0 / float(np.median(np.diff(run.t_sim_s))), 6) for run in runs.values()}
    if len(rates) != 1:
        raise ValueError(f"{data_dir / 'runs'}: runs at different sample rates {sorted(rates)} Hz")
    spec = WindowSpec(hz=rates.pop(), window_s=window_s, stride_s=stride_s)
    out: dict[str, Normalisation] = {}
    for name, m in manifests.items():
        out[name] = build_split_windows(
            runs,
            {"train": m.train, "val": m.val, "test": m.test},
            data_dir / "processed" / name,
            spec,
            on_part=on_part,
        )
    return out
