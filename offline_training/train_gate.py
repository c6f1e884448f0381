"""Train the fusion gate on predictions the experts did not train on, and the fusion baselines.

Gate rows are validation windows only: the dynamic expert never trained on them (its validation
part only chose the early-stopping epoch and the temperature), and their static scores are
out-of-fold for binaries the static expert trained on. `build_gate_data` refuses any row from an
expert's training runs. Fused validation metrics come from run-level cross-fitting of the gate, so
they are not in-sample either; the shipped gate is then fitted on all gate rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from offline_training.config import TrainConfig
from offline_training.data import WindowSet
from offline_training.models import FusionGateNet
from stream.onnx_session import fusion_context
from stream.schema import FUSION_INPUTS, MASK_COLUMNS

__all__ = [
    "GateData",
    "StaticScore",
    "build_gate_data",
    "fit_gate",
    "gate_scores",
    "cross_fitted_scores",
    "fusion_baselines",
]

#: binary -> (p_static, u_static); a binary absent from the mapping is "static unavailable".
StaticScore = Mapping[str, tuple[float, float]]


@dataclass(frozen=True)
class GateData:
    """Gate training rows: contexts in FUSION_INPUTS order, labels and provenance."""

    ctx: np.ndarray  # (N, len(FUSION_INPUTS)) float32
    y_soft: np.ndarray  # (N,) float32
    run_id: np.ndarray  # (N,) str
    binary_id: np.ndarray  # (N,) str
    t_end_s: np.ndarray  # (N,) float64


def build_gate_data(
    windows: WindowSet,
    p_dynamic: np.ndarray,
    u_dynamic: np.ndarray,
    static: StaticScore,
    expert_train_runs: set[str],
) -> GateData:
    """Rows from `windows` (not the experts' training part) with the experts' honest scores."""
    leaked = sorted(set(windows.run_id.tolist()) & set(expert_train_runs))
    if leaked:
        raise ValueError(
            "The 'windows' parameter of build_gate_data must exclude the experts' training runs. "
            f"Got {len(leaked)} of them (e.g. {leaked[0]!r}) instead."
        )
    ids = windows.binary_id.tolist()
    avail = np.array([b in static for b in ids], bool)
    p_s = np.array([static[b][0] if b in static else 0.5 for b in ids], np.float32)
    u_s = np.array([static[b][1] if b in static else 1.0 for b in ids], np.float32)
    ctx = fusion_context(p_dynamic, u_dynamic, p_s, u_s, avail, windows.M, MASK_COLUMNS)
    return GateData(ctx, windows.y_soft, windows.run_id, windows.binary_id, windows.t_end_s)


def fit_gate(ctx: np.ndarray, y_soft: np.ndarray, cfg: TrainConfig, seed: int) -> FusionGateNet:
    """Full-batch AdamW on soft-label BCE; deterministic for a seed."""
    torch.manual_seed(seed)
    net = FusionGateNet(
        len(FUSION_INPUTS), hidden=cfg.gate_hidden, monotone=cfg.gate_monotone, seed=seed
    )
    c = torch.as_tensor(ctx, dtype=torch.float32)
    y = torch.as_tensor(y_soft, dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.gate_lr, weight_decay=cfg.gate_weight_decay)
    for _ in range(cfg.gate_steps):
        loss = F.binary_cross_entropy(net(c).clamp(1e-6, 1 - 1e-6), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def gate_scores(net: FusionGateNet, ctx: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.as_tensor(ctx, dtype=torch.float32)).numpy().astype(np.float64)


def cross_fitted_scores(data: GateData, cfg: TrainConfig) -> np.ndarray:
    """Gate scores where each run's rows come from a gate fitted on the other runs' rows."""
    runs = np.unique(data.run_id)
    k = min(cfg.gate_folds, runs.size)
    if k < 2:
        return gate_scores(fit_gate(data.ctx, data.y_soft, cfg, cfg.seed), data.ctx)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 505]))
    fold_of_run = dict(zip(rng.permutation(runs).tolist(), np.arange(runs.size) % k, strict=True))
    fold = np.array([fold_of_run[r] for r in data.run_id.tolist()])
    out = np.zeros(data.y_soft.shape, np.float64)
    for f in range(k):
        tr, te = fold != f, fold == f
        out[te] = gate_scores(
            fit_gate(data.ctx[tr], data.y_soft[tr], cfg, cfg.seed + f + 1), data.ctx[te]
        )
    return out


def fusion_baselines(ctx: np.ndarray) -> dict[str, np.ndarray]:
    """Simple fusions for comparison, each (N,) in [0, 1], from contexts in FUSION_INPUTS order.

    dynamic_only: p_d. static_only: p_s (0.5 when unavailable). constant_gate: the mean of p_d and
    p_s where static is available, else p_d. product_of_experts: p_d p_s / (p_d p_s + (1-p_d)(1-p_s))
    (equals p_d when static is unavailable, as p_s = 0.5 there).
    """
    c = np.asarray(ctx, np.float64)
    p_d, p_s, avail = c[:, 0], np.where(c[:, 4] > 0.5, c[:, 2], 0.5), c[:, 4] > 0.5
    num = p_d * p_s
    return {
        "dynamic_only": p_d,
        "static_only": p_s,
        "constant_gate": np.where(avail, 0.5 * (p_d + p_s), p_d),
        "product_of_experts": num / np.maximum(num + (1 - p_d) * (1 - p_s), 1e-12),
    }
