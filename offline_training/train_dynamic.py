"""Train the dynamic expert: a deep ensemble over windows, soft labels, early stopping, temperature.

Members differ by their initialisation seed and by a bootstrap of training runs (window weight =
how often its run was drawn). Class imbalance is handled with `pos_weight = neg / pos` on the soft
labels; the exported graph undoes the implied prior shift with `logit_offset = -log(pos_weight)`
and then applies the temperature fitted by NLL on validation windows. Each member keeps the
parameters of its own best validation ROC-AUC epoch (early stopping per member).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from offline_training.calibrate import fit_temperature
from offline_training.config import TrainConfig
from offline_training.data import SplitData, WindowSet
from offline_training.models import STAT_NAMES, DynamicEnsemble, member_blocks
from stream.window_metrics import roc_auc

__all__ = ["DynamicResult", "bootstrap_run_weights", "predict_logits", "train_dynamic"]


@dataclass
class DynamicResult:
    """The calibrated ensemble (eval mode, on the CPU) and what training saw."""

    model: DynamicEnsemble
    val_logits: np.ndarray  # (N_val, E) raw member logits on validation windows
    best_epoch: list[int]  # per member, 1-based
    epochs_run: int
    pos_weight: float


def bootstrap_run_weights(run_id: np.ndarray, members: int, seed: int) -> np.ndarray:
    """(E, N) window weights: member e draws the training runs with replacement."""
    runs, inv = np.unique(run_id, return_inverse=True)
    out = np.empty((members, run_id.shape[0]), np.float32)
    for e in range(members):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 101, e]))
        counts = np.bincount(rng.integers(0, runs.size, runs.size), minlength=runs.size)
        out[e] = counts[inv]
    return out


def _inputs(
    model: DynamicEnsemble, ws: WindowSet, device: str, chunk: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pool and summarise every window once: (N, F+K, W // pool) and (N, S) float32 on `device`."""
    pooled, stats = [], []
    with torch.no_grad():
        for i in range(0, len(ws), chunk):
            x = torch.as_tensor(ws.X[i : i + chunk], device=device)
            m = torch.as_tensor(ws.M[i : i + chunk], device=device).float()
            pooled.append(model.pooled(x, m))
            stats.append(model.stats(x, m))
    if not pooled:
        n_stats = len(STAT_NAMES) * model.n_features + model.n_masks
        return (
            torch.zeros((0, model.n_features + model.n_masks, 1), device=device),
            torch.zeros((0, n_stats), device=device),
        )
    return torch.cat(pooled), torch.cat(stats)


def _loss(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, pos_weight: torch.Tensor):
    """(B, E) logits, (B,) soft labels, (B, E) weights -> (E,) weighted mean BCE per member."""
    target = y[:, None].expand_as(z)
    bce = F.binary_cross_entropy_with_logits(z, target, pos_weight=pos_weight, reduction="none")
    return (bce * w).sum(0) / w.sum(0).clamp(min=1.0)


def _member_scores(z_val: np.ndarray, y_hard: np.ndarray, val_loss: np.ndarray) -> np.ndarray:
    """(E,) early-stopping criterion per member, lower is better: 1 - validation ROC-AUC.

    The ranking is what the detector needs; the weighted validation loss kept favouring the first
    epoch (the scale drifts while the ranking still improves), and the temperature fixes the scale
    afterwards anyway. Falls back to the loss when validation holds a single class.
    """
    if y_hard.min() == y_hard.max():
        return val_loss
    return np.array([1.0 - roc_auc(y_hard, z_val[:, e]) for e in range(z_val.shape[1])])


def predict_logits(
    model: DynamicEnsemble, h: torch.Tensor, s: torch.Tensor, chunk: int = 4096
) -> np.ndarray:
    """(N, E) raw member logits from pooled inputs and window statistics."""
    model.eval()
    with torch.no_grad():
        out = [
            model.logits_from_parts(h[i : i + chunk], s[i : i + chunk])
            for i in range(0, h.shape[0], chunk)
        ]
    return torch.cat(out).cpu().numpy().astype(np.float64) if out else np.zeros((0, model.members))


def train_dynamic(
    data: SplitData,
    cfg: TrainConfig,
    on_epoch: Callable[[int, float], None] | None = None,
) -> DynamicResult:
    """Train, early-stop and calibrate the ensemble on `data.train` / `data.val`."""
    device = cfg.device
    train, val = data.train, data.val
    model = DynamicEnsemble(
        train.X.shape[2],
        train.M.shape[2],
        train.X.shape[1],
        members=cfg.members,
        channels=cfg.channels,
        pool=cfg.pool,
        dilations=cfg.dilations,
        kernel=cfg.kernel,
        stats_hidden=cfg.stats_hidden,
        cnn=cfg.cnn,
        dropout=cfg.dropout,
        hz=data.spec.hz,
        seed=cfg.seed,
    ).to(device)
    (h_train, s_train), (h_val, s_val) = _inputs(model, train, device), _inputs(model, val, device)
    model.set_stats_standardisation(s_train.cpu().numpy())
    y_train = torch.as_tensor(train.y_soft, device=device)
    y_val = torch.as_tensor(val.y_soft, device=device)
    n_pos = float(train.y_soft.sum())
    pos_weight = float(np.clip((len(train) - n_pos) / max(n_pos, 1.0), 1.0, 100.0))
    pw = torch.tensor(pos_weight, device=device)
    w_train = torch.as_tensor(
        bootstrap_run_weights(train.run_id, cfg.members, cfg.seed).T, device=device
    )  # (N, E)
    w_val = torch.ones((len(val), cfg.members), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    E = cfg.members
    y_hard = (val.y_soft >= 0.5).astype(np.int64)
    best_loss = np.full(E, np.inf)
    best_epoch = [0] * E
    best_blocks = [b.clone() for b in member_blocks(model, E)]
    stale = np.zeros(E, np.int64)
    epochs_run = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 202, epoch]))
        order = torch.as_tensor(rng.permutation(len(train)), device=device)
        for i in range(0, len(train), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            z = model.logits_from_parts(h_train[idx], s_train[idx])
            loss = _loss(z, y_train[idx], w_train[idx], pw).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            z_val = torch.cat(
                [
                    model.logits_from_parts(h_val[i : i + 4096], s_val[i : i + 4096])
                    for i in range(0, len(val), 4096)
                ]
            )
            val_loss = _loss(z_val, y_val, w_val, pw).cpu().numpy()
        epochs_run = epoch
        score = _member_scores(z_val.cpu().numpy(), y_hard, val_loss)
        improved = score < best_loss - 1e-6
        mask = torch.as_tensor(improved, device=device)
        for blocks, best in zip(member_blocks(model, E), best_blocks, strict=True):
            best[mask] = blocks[mask]
        for e in np.flatnonzero(improved):
            best_loss[e], best_epoch[e] = score[e], epoch
        stale = np.where(improved, 0, stale + 1)
        if on_epoch is not None:
            on_epoch(epoch, float(val_loss.mean()))
        if (stale >= cfg.patience).all():
            break
    with torch.no_grad():
        for blocks, best in zip(member_blocks(model, E), best_blocks, strict=True):
            blocks.copy_(best)
    val_logits = predict_logits(model, h_val, s_val)
    offset = -float(np.log(pos_weight))
    temperature = fit_temperature(val_logits, val.y_soft, offset)
    model = model.cpu().eval()
    model.logit_offset.fill_(offset)
    model.temperature.fill_(temperature)
    return DynamicResult(model, val_logits, best_epoch, epochs_run, pos_weight)
