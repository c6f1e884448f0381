"""Train the static expert: a bootstrap ensemble on LIEF features of the training runs' binaries.

Label: capability != benign. With ~30 training binaries the members are L2-regularised logistic
models on standardised features (the standardisation lives inside the graph), classes balanced by
weight. Scores for the training binaries themselves are produced out of fold (stratified K-fold
over *source programs*: every build of one program is held out together, since a sibling build in
the training folds makes a binary's score in-sample in all but name, and measured on this corpus
lifted the out-of-fold ROC-AUC from 0.65 to 0.77), and the temperature is fitted by NLL on those
out-of-fold scores, so neither the calibration nor the fusion gate ever sees an in-sample static
score. Unreadable binaries are simply unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from offline_training.calibrate import fit_temperature
from offline_training.config import TrainConfig
from offline_training.data import Binaries
from offline_training.models import StaticEnsemble
from stream.binary_worker import StaticResult, read_many
from stream.static_features import STATIC_FEATURE_NAMES
from stream.window_metrics import roc_auc

__all__ = [
    "StaticTable",
    "StaticTraining",
    "read_static_table",
    "fit_static",
    "static_scores",
    "train_static",
    "heldout_auc",
]

Reader = Callable[[Sequence[Path]], list[StaticResult]]
#: Offline there is no latency target: a generous per-file limit keeps a loaded machine from
#: turning readable binaries into "unavailable" (a parse takes ~25 ms when the CPU is free).
_READ_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class StaticTable:
    """Static features of every indexed binary; rows LIEF could not read are unavailable."""

    binary_id: np.ndarray  # (B,) str
    features: np.ndarray  # (B, S) float32, zeros where unavailable
    available: np.ndarray  # (B,) bool
    label: np.ndarray  # (B,) int64, 1 = not benign
    reasons: dict[str, str] = field(default_factory=dict)
    source: np.ndarray | None = None  # (B,) str source program; None: one program per binary

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        index = {b: i for i, b in enumerate(self.binary_id.tolist())}
        return np.array([index[b] for b in ids], dtype=np.int64)


@dataclass
class StaticTraining:
    """The final calibrated ensemble plus its out-of-fold scores on the training binaries."""

    model: StaticEnsemble
    train_ids: list[str]  # training binaries with features
    oof: dict[str, tuple[float, float]]  # binary -> (p, u) from a model that never saw it
    fold: dict[str, int]  # binary -> the fold it was held out in
    cv_roc_auc: float | None


def read_static_table(binaries: Binaries, reader: Reader | None = None) -> StaticTable:
    """Read every binary in isolation; a failure makes that binary unavailable, never raises."""
    default = lambda p: read_many(p, max_workers=2, timeout_s=_READ_TIMEOUT_S)  # noqa: E731
    results = (reader or default)(list(binaries.path))
    S = len(STATIC_FEATURE_NAMES)
    feats = np.zeros((len(results), S), np.float32)
    avail = np.zeros(len(results), bool)
    reasons = {}
    for i, (bid, res) in enumerate(zip(binaries.binary_id.tolist(), results, strict=True)):
        if res.features is not None and res.features.shape == (S,):
            feats[i], avail[i] = res.features, True
        else:
            reasons[bid] = res.reason or "malformed feature vector"
    return StaticTable(binaries.binary_id, feats, avail, binaries.label, reasons, binaries.source)


def fit_static(features: np.ndarray, labels: np.ndarray, cfg: TrainConfig, seed: int):
    """Fit an uncalibrated ensemble (temperature 1, prior offset set) on (n, S) features."""
    torch.manual_seed(seed)
    n = labels.shape[0]
    model = StaticEnsemble(
        features.shape[1], members=cfg.static_members, hidden=cfg.static_hidden, seed=seed
    )
    model.set_standardisation(features)
    n_pos = int(labels.sum())
    n_neg = n - n_pos
    cls_w = np.where(labels == 1, n / (2.0 * max(n_pos, 1)), n / (2.0 * max(n_neg, 1)))
    boot = np.empty((n, cfg.static_members), np.float32)
    for e in range(cfg.static_members):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 303, e]))
        boot[:, e] = np.bincount(rng.integers(0, n, n), minlength=n)
    w = torch.as_tensor(boot * cls_w[:, None], dtype=torch.float32)  # (n, E)
    s = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.float32)[:, None].expand(n, cfg.static_members)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.static_lr)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    for _ in range(cfg.static_steps):
        bce = F.binary_cross_entropy_with_logits(model.logits(s), y, reduction="none")
        loss = (bce * w).sum() / w.sum().clamp(min=1.0)
        loss = loss + cfg.static_l2 * sum((p**2).sum() for p in weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        model.logit_offset.fill_(float(np.log(max(n_pos, 1) / max(n_neg, 1))))
    return model


def static_scores(model: StaticEnsemble, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, S) -> p (n,), u (n,) float64."""
    with torch.no_grad():
        _, p, u = model(torch.as_tensor(features, dtype=torch.float32))
    return p.numpy().astype(np.float64), u.numpy().astype(np.float64)


def _folds(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index per row, stratified by label, with every group (source program) in one fold.

    A group's label is its members' majority label (a program is built into one capability).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 404]))
    names, inverse = np.unique(groups, return_inverse=True)
    group_label = np.bincount(inverse, weights=labels, minlength=names.size) * 2 >= np.bincount(
        inverse, minlength=names.size
    )
    group_fold = np.empty(names.size, np.int64)
    for c in (False, True):
        idx = np.flatnonzero(group_label == c)
        group_fold[rng.permutation(idx)] = np.arange(idx.size) % k
    return group_fold[inverse]


def train_static(table: StaticTable, train_ids: Sequence[str], cfg: TrainConfig) -> StaticTraining:
    """Out-of-fold scores and temperature on the training binaries, then the final ensemble."""
    ids = [b for b in dict.fromkeys(train_ids) if table.available[table.rows([b])[0]]]
    rows = table.rows(ids)
    X, y = table.features[rows], table.label[rows]
    if len(set(y.tolist())) < 2:
        raise ValueError(
            "The training runs' binaries must include both benign and trojan binaries with "
            f"readable static features. Got labels {sorted(set(y.tolist()))} instead."
        )
    groups = np.asarray(ids) if table.source is None else table.source[rows]
    n_pos = len(set(groups[y == 1].tolist()))
    n_neg = len(set(groups[y == 0].tolist()))
    k = min(cfg.static_folds, n_pos, n_neg)
    oof: dict[str, tuple[float, float]] = {}
    fold_of: dict[str, int] = {}
    temperature, cv_auc = 1.0, None
    if k >= 2:
        fold = _folds(y, groups, k, cfg.seed)
        logits = np.zeros((len(ids), cfg.static_members))
        fold_models = []
        for f in range(k):
            tr, te = fold != f, fold == f
            m = fit_static(X[tr], y[tr], cfg, cfg.seed * 1000 + f + 1)
            with torch.no_grad():
                logits[te] = (m.logits(torch.as_tensor(X[te])) + m.logit_offset).numpy()
            fold_models.append(m)
        temperature = fit_temperature(logits, y.astype(np.float64))
        for f, m in enumerate(fold_models):
            m.temperature.fill_(temperature)
            te = np.flatnonzero(fold == f)
            p, u = static_scores(m, X[te])
            for j, pi, ui in zip(te, p, u, strict=True):
                oof[ids[j]], fold_of[ids[j]] = (float(pi), float(ui)), f
        cv_auc = roc_auc(y, np.array([oof[b][0] for b in ids]))
    model = fit_static(X, y, cfg, cfg.seed)
    model.temperature.fill_(temperature)
    return StaticTraining(model, ids, oof, fold_of, cv_auc)


def heldout_auc(
    table: StaticTable, train_ids: Sequence[str], test_ids: Sequence[str], cfg: TrainConfig
) -> dict[str, float | int | None]:
    """Binary-level ROC-AUC of a static ensemble trained on `train_ids`, scored on unseen binaries."""
    train = [b for b in dict.fromkeys(train_ids) if table.available[table.rows([b])[0]]]
    test = [
        b
        for b in dict.fromkeys(test_ids)
        if b not in set(train) and table.available[table.rows([b])[0]]
    ]
    out: dict[str, float | int | None] = {
        "n_train_binaries": len(train),
        "n_test_binaries": len(test),
        "roc_auc": None,
    }
    y_tr = table.label[table.rows(train)] if train else np.zeros(0, np.int64)
    if not test or len(set(y_tr.tolist())) < 2:
        return out
    model = fit_static(table.features[table.rows(train)], y_tr, cfg, cfg.seed)
    p, _ = static_scores(model, table.features[table.rows(test)])
    out["roc_auc"] = roc_auc(table.label[table.rows(test)], p)
    return out
