"""Train the fusion gate on predictions the experts did not train on, and the fusion baselines.

Gate rows are validation windows only: the dynamic expert never trained on them (its validation
part only chose the early-stopping epoch and the temperature). `build_gate_data` refuses any row
from an expert's training runs. The static expert scores binaries, not windows, and a validation
run's binary may be one it trained on (every split but binary_disjoint shares binaries between
training and test runs): the runtime then serves its in-sample score, flagged `static_seen`. So
each window gives the row the runtime would serve (the shipped static model's score, with the
flag), and a window of a seen binary gives a second row with the binary's out-of-fold score, flag
off: what the static expert is worth on a binary it never saw. The gate learns one static weight
for each case, from rows that show each as it is served; before session 11 it saw only the
out-of-fold rows and so under-used a score the runtime serves in-sample on known binaries. Fused
validation metrics come from run-level cross-fitting of the gate (a run's rows, both kinds, stay in
one fold), so they are not in-sample either; the shipped gate is then fitted on all gate rows.
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
    served: np.ndarray  # (N,) bool: the row the runtime serves; False: a seen binary shown as new

    def view(self, rows: np.ndarray) -> GateData:
        return GateData(
            self.ctx[rows],
            self.y_soft[rows],
            self.run_id[rows],
            self.binary_id[rows],
            self.t_end_s[rows],
            self.served[rows],
        )


def build_gate_data(
    windows: WindowSet,
    p_dynamic: np.ndarray,
    u_dynamic: np.ndarray,
    static: StaticScore,
    expert_train_runs: set[str],
    *,
    static_new: StaticScore | None = None,
    seen: frozenset[str] | set[str] = frozenset(),
) -> GateData:
    """Rows from `windows` (not the experts' training part) with the experts' honest scores.

    `static`: the shipped static expert's score per binary (as served); `seen`: binaries it
    trained on; `static_new`: their out-of-fold scores. The served rows come first, in window
    order; windows of seen binaries with an out-of-fold score follow once more, flag off.
    """
    leaked = sorted(set(windows.run_id.tolist()) & set(expert_train_runs))
    if leaked:
        raise ValueError(
            "The 'windows' parameter of build_gate_data must exclude the experts' training runs. "
            f"Got {len(leaked)} of them (e.g. {leaked[0]!r}) instead."
        )
    ids = windows.binary_id.tolist()

    def rows(scores: StaticScore, flag: np.ndarray) -> np.ndarray:
        avail = np.array([b in scores for b in ids], bool)
        p_s = np.array([scores[b][0] if b in scores else 0.5 for b in ids], np.float32)
        u_s = np.array([scores[b][1] if b in scores else 1.0 for b in ids], np.float32)
        return fusion_context(p_dynamic, u_dynamic, p_s, u_s, avail, flag, windows.M, MASK_COLUMNS)

    is_seen = np.array([b in seen for b in ids], bool)
    ctx = rows(static, is_seen)
    extra = np.zeros(0, np.intp)
    if static_new is not None:
        extra = np.flatnonzero(is_seen & np.array([b in static_new for b in ids], bool))
        ctx = np.concatenate([ctx, rows(static_new, np.zeros(len(ids), bool))[extra]])
    take = np.concatenate([np.arange(len(ids)), extra])
    served = np.arange(take.size) < len(ids)
    return GateData(
        ctx,
        windows.y_soft[take],
        windows.run_id[take],
        windows.binary_id[take],
        windows.t_end_s[take],
        served,
    )


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
