"""The three torch models that are exported to ONNX: dynamic ensemble, static ensemble, fusion gate.

Ensembles keep all E members in one module through grouped layers (member e owns the e-th block of
every parameter along dim 0), so one graph scores every member in one call and members still train
independently. Both ensembles end in `ensemble_outputs`: per-member logits are prior-corrected
(`logit_offset`, undoing the class re-weighting used in training) and temperature-scaled, then

    p = mean_e sigmoid(z_e),   u = H(p) - mean_e H(sigmoid(z_e))   (bits)

`u` is the mutual information between the prediction and the member: it is 0 when members agree and
grows with their disagreement, and for a binary outcome it is bounded by 1 bit, so it lies in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ensemble_outputs",
    "DynamicEnsemble",
    "STAT_NAMES",
    "window_stats",
    "StaticEnsemble",
    "FusionGateNet",
    "member_blocks",
]

_EPS = 1e-6
_LOG2 = float(np.log(2.0))


def _entropy_bits(p: torch.Tensor) -> torch.Tensor:
    q = p.clamp(_EPS, 1.0 - _EPS)
    return -(q * torch.log(q) + (1.0 - q) * torch.log(1.0 - q)) / _LOG2


def ensemble_outputs(
    logits: torch.Tensor, offset: torch.Tensor, temperature: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, E) member logits -> calibrated member probabilities (B, E), p (B,), u (B,)."""
    members = torch.sigmoid((logits + offset) / temperature)
    p = members.mean(dim=1)
    u = (_entropy_bits(p) - _entropy_bits(members).mean(dim=1)).clamp(0.0, 1.0)
    return members, p, u


def _init_blocks(param: torch.Tensor, n_members: int, fan_in: int, seed: int, k: int) -> None:
    """Uniform(+-1/sqrt(fan_in)) init, each member's block from its own seeded generator."""
    bound = 1.0 / np.sqrt(max(fan_in, 1))  # an empty block (a disabled branch) has fan_in 0
    blocks = param.data.view(n_members, -1)
    for e in range(n_members):
        g = torch.Generator().manual_seed(
            int(np.random.SeedSequence([seed, e, k]).generate_state(1)[0])
        )
        blocks[e] = (torch.rand(blocks.shape[1], generator=g) * 2.0 - 1.0) * bound


def member_blocks(module: nn.Module, n_members: int) -> list[torch.Tensor]:
    """Views (E, -1) of every trainable parameter: row e is member e's parameters."""
    return [p.data.view(n_members, -1) for p in module.parameters()]


#: Per-channel window statistics computed inside the dynamic graph (see `window_stats`).
STAT_NAMES = (
    "mean",
    "mean_last_3s",
    "mean_last_1s",
    "std",
    "std_last_3s",
    "max",
    "min",
    "mean_abs_step",
    "max_rise_1s",
    "max_fall_1s",
    "last_minus_first_3s",
    "max_dev_last_3s",
)


def window_stats(x: torch.Tensor, hz: float = 10.0) -> torch.Tensor:
    """(B, W, F) window -> (B, len(STAT_NAMES) * F) statistics, grouped by statistic.

    Levels (whole window, last 3 s, last 1 s), spread, extremes, and pulse detectors: mean absolute
    step, largest rise/fall over 1 s, recent change and the largest recent deviation. Pulsed
    trojans (on 0.5-2 s every 4-10 s) show in spread and rises more than in means.
    """
    w = x.shape[1]
    k3, k1 = max(1, min(w, int(round(3 * hz)))), max(1, min(w, int(round(hz))))
    lag = max(1, min(w - 1, int(round(hz)))) if w > 1 else 0
    mean = x.mean(dim=1)
    last = x[:, w - k3 :]
    last_mean = last.mean(dim=1)
    std = torch.sqrt(((x - mean[:, None]) ** 2).mean(dim=1) + 1e-8)
    last_std = torch.sqrt(((last - last_mean[:, None]) ** 2).mean(dim=1) + 1e-8)
    if w > 1:
        step = (x[:, 1:] - x[:, :-1]).abs().mean(dim=1)
        rise = x[:, lag:] - x[:, : w - lag]
        rise_max, rise_min = rise.amax(dim=1), rise.amin(dim=1)
    else:
        step = rise_max = rise_min = torch.zeros_like(mean)
    feats = [
        mean,
        last_mean,
        x[:, w - k1 :].mean(dim=1),
        std,
        last_std,
        x.amax(dim=1),
        x.amin(dim=1),
        step,
        rise_max,
        rise_min,
        last_mean - x[:, :k3].mean(dim=1),
        (last - last_mean[:, None]).abs().amax(dim=1),
    ]
    return torch.cat(feats, dim=1)


class DynamicEnsemble(nn.Module):
    """E small temporal models over a window of features plus mask channels, in one graph.

    Member e's logit is the sum of two branches over the same causal window (nothing after its
    end is ever seen):

    - a statistics MLP (`stats_hidden` > 0): `window_stats` of x (levels, spread, 1 s rises and
      falls) and the fresh fraction of every mask channel, standardised with training-set moments stored in the graph, one hidden ReLU layer
      per member. This branch carries most of the accuracy: it generalises across runs far
      better than the convolutions (validation ROC-AUC 0.75 vs 0.63 on unseen workloads).
    - a causal dilated CNN (`channels` > 0): x and m average-pooled by `pool` (aligned to the
      window's end) -> Conv1d layers -> [last step, time mean] -> `head`.

    Cost at W=100, F=29, K=20, E=5, stats_hidden=16 without the CNN (the default): about 0.1 MFLOP
    per window (statistics ~0.04, MLP ~0.06); the CNN adds ~0.9 MFLOP per member at channels=32.
    """

    def __init__(
        self,
        n_features: int,
        n_masks: int,
        window: int,
        *,
        members: int = 5,
        channels: int = 32,
        pool: int = 5,
        dilations: tuple[int, ...] = (1, 2, 4),
        kernel: int = 3,
        stats_hidden: int = 16,
        cnn: bool = True,
        dropout: float = 0.0,
        hz: float = 10.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if window < pool:
            raise ValueError(
                f"The 'window' parameter of DynamicEnsemble must be >= pool ({pool}). "
                f"Got {window} instead."
            )
        self.n_features, self.n_masks, self.window = n_features, n_masks, window
        self.members, self.channels, self.pool, self.kernel = members, channels, pool, kernel
        self.stats_hidden, self.hz, self.cnn = stats_hidden, hz, cnn
        if not cnn and stats_hidden <= 0:
            raise ValueError(
                "The 'stats_hidden' parameter of DynamicEnsemble must be > 0 when cnn is False. "
                f"Got {stats_hidden} instead."
            )
        self.dilations = tuple(dilations)
        self.crop = window % pool  # drop the oldest samples so pooling ends at the window's end
        c_in, e, c = n_features + n_masks, members, channels
        convs = [nn.Conv1d(c_in, e * c, kernel, dilation=self.dilations[0])]
        convs += [nn.Conv1d(e * c, e * c, kernel, dilation=d, groups=e) for d in self.dilations[1:]]
        self.convs = nn.ModuleList(convs)
        self.head = nn.Conv1d(e * 2 * c, e, 1, groups=e)
        self.register_buffer("logit_offset", torch.zeros(()))
        self.register_buffer("temperature", torch.ones(()))
        k = 0
        for conv, fan in zip(convs, [c_in * kernel] + [c * kernel] * (len(convs) - 1), strict=True):
            _init_blocks(conv.weight, e, fan, seed, k)
            _init_blocks(conv.bias, e, fan, seed, k + 1)
            k += 2
        _init_blocks(self.head.weight, e, 2 * c, seed, k)
        _init_blocks(self.head.bias, e, 2 * c, seed, k + 1)
        self.drop = nn.Dropout(dropout)
        n_stats = len(STAT_NAMES) * n_features + n_masks
        h = stats_hidden
        self.stats_in = nn.Linear(n_stats, e * h) if h > 0 else None
        self.stats_out = nn.Conv1d(e * h, e, 1, groups=e) if h > 0 else None
        if self.stats_in is not None and self.stats_out is not None:
            self.register_buffer("stats_mean", torch.zeros(n_stats))
            self.register_buffer("stats_scale", torch.ones(n_stats))
            _init_blocks(self.stats_in.weight, e, n_stats, seed, k + 2)
            _init_blocks(self.stats_in.bias, e, n_stats, seed, k + 3)
            _init_blocks(self.stats_out.weight, e, h, seed, k + 4)
            _init_blocks(self.stats_out.bias, e, h, seed, k + 5)

    def pooled(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(B, W, F), (B, W, K) -> (B, F+K, W // pool), channels first."""
        h = torch.cat([x, m], dim=2).transpose(1, 2)[:, :, self.crop :]
        return F.avg_pool1d(h, self.pool) if self.pool > 1 else h

    def stats(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(B, W, F), (B, W, K) -> (B, S) raw window statistics and fresh fraction per mask."""
        return torch.cat([window_stats(x, self.hz), m.mean(dim=1)], dim=1)

    def set_stats_standardisation(self, stats: np.ndarray) -> None:
        """Mean and spread of the training windows' statistics (constant ones get scale 1)."""
        if self.stats_in is None:
            return
        s = np.asarray(stats, np.float64)
        std = s.std(axis=0)
        self.stats_mean.copy_(torch.as_tensor(s.mean(axis=0), dtype=torch.float32))
        self.stats_scale.copy_(torch.as_tensor(np.where(std > 1e-6, std, 1.0), dtype=torch.float32))

    def logits_from_parts(self, h: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        """Pooled inputs (B, F+K, T) and raw statistics (B, S) -> (B, E) raw member logits."""
        b, e, c = h.shape[0], self.members, self.channels
        z = torch.zeros((b, e), dtype=h.dtype, device=h.device)
        if self.cnn:
            for conv, d in zip(self.convs, self.dilations, strict=True):
                h = F.relu(conv(F.pad(h, ((self.kernel - 1) * d, 0))))
            feats = torch.cat([h[:, :, -1].reshape(b, e, c), h.mean(dim=2).reshape(b, e, c)], 2)
            z = self.head(feats.reshape(b, e * 2 * c, 1)).reshape(b, e)
        if self.stats_in is not None and s is not None:
            z = z + self.stats_logits(s)
        return z

    def stats_logits(self, s: torch.Tensor) -> torch.Tensor:
        """(B, S) raw window statistics -> (B, E) raw logits of the statistics branch."""
        assert self.stats_in is not None and self.stats_out is not None
        zs = ((s - self.stats_mean) / self.stats_scale).clamp(-10.0, 10.0)
        hs = self.drop(F.relu(self.stats_in(self.drop(zs))))
        return self.stats_out(hs.unsqueeze(2)).reshape(s.shape[0], self.members)

    def logits_from_pooled(self, h: torch.Tensor) -> torch.Tensor:
        """(B, F+K, T) pooled inputs -> (B, E) raw logits of the CNN branch alone."""
        return self.logits_from_parts(h, None)

    def logits(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(B, W, F), (B, W, K) -> (B, E) raw member logits."""
        s = self.stats(x, m) if self.stats_in is not None else None
        if not self.cnn and s is not None:  # statistics only: the CNN branch is not in the graph
            return self.stats_logits(s)
        return self.logits_from_parts(self.pooled(x, m), s)

    def forward(
        self, x: torch.Tensor, m: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> p_members (B, E), p (B,), u (B,), all calibrated and in [0, 1]."""
        return ensemble_outputs(self.logits(x, m), self.logit_offset, self.temperature)


class StaticEnsemble(nn.Module):
    """E bootstrap members over the raw static feature vector s (B, S), standardisation inside.

    hidden = 0: L2-regularised logistic members (robust with ~30 training binaries);
    hidden > 0: one hidden ReLU layer of that width per member.
    """

    def __init__(self, n_features: int, *, members: int = 5, hidden: int = 0, seed: int = 0):
        super().__init__()
        self.n_features, self.members, self.hidden = n_features, members, hidden
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("logit_offset", torch.zeros(()))
        self.register_buffer("temperature", torch.ones(()))
        if hidden > 0:
            self.body = nn.Linear(n_features, members * hidden)
            self.out = nn.Conv1d(members * hidden, members, 1, groups=members)
            _init_blocks(self.body.weight, members, n_features, seed, 0)
            _init_blocks(self.body.bias, members, n_features, seed, 1)
            _init_blocks(self.out.weight, members, hidden, seed, 2)
            _init_blocks(self.out.bias, members, hidden, seed, 3)
        else:
            self.body = nn.Linear(n_features, members)
            self.out = None
            nn.init.zeros_(self.body.weight)
            nn.init.zeros_(self.body.bias)

    def set_standardisation(self, features: np.ndarray) -> None:
        """Mean and spread of the training binaries' features (constant features get scale 1)."""
        f = np.asarray(features, np.float64)
        std = f.std(axis=0)
        self.mean.copy_(torch.as_tensor(f.mean(axis=0), dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(np.where(std > 1e-6, std, 1.0), dtype=torch.float32))

    def logits(self, s: torch.Tensor) -> torch.Tensor:
        """(B, S) raw features -> (B, E) raw member logits."""
        z = ((s - self.mean) / self.scale).clamp(-10.0, 10.0)
        if self.out is None:
            return self.body(z)
        h = F.relu(self.body(z))
        return self.out(h.unsqueeze(2)).squeeze(2)

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> p_members (B, E), p (B,), u (B,)."""
        return ensemble_outputs(self.logits(s), self.logit_offset, self.temperature)


class FusionGateNet(nn.Module):
    """A tiny gate on the fusion context (B, len(FUSION_INPUTS)) -> score (B,) in [0, 1].

    monotone (the default in training): `sigmoid(a logit(p_d) + avail (b1 seen + b0 (1 - seen))
    logit(p_s) + c)` with a, b1, b0 >= 0 (softplus): four parameters, never decreasing in either
    expert's probability. The static weight depends on whether the static expert trained on the
    binary (`static_seen`): its in-sample score on a known binary is worth more than its score on
    a new one, and the gate learns both from rows that show each as it is served. It spans
    "dynamic only" (b = 0) and "product of experts" (a = b = 1, c = 0), so fitting it on held-out
    predictions cannot do worse than choosing between them by much, and it cannot learn spurious
    interactions from a few dozen validation runs.

    Otherwise: hidden = 0: logistic on the transformed inputs; hidden > 0: one tanh layer of that
    width. Probabilities enter as clamped logits (scaled by 1/4); the static ones are zeroed when
    the static expert is unavailable, so the runtime's placeholder (0.5, 1) carries no weight. A
    skip term `softplus(skip) * logit(p_dynamic)` (never negative) starts the gate at "dynamic
    only" (the output layer starts at 0), so with little validation data it learns corrections.
    """

    def __init__(
        self, n_inputs: int = 9, *, hidden: int = 0, monotone: bool = False, seed: int = 0
    ) -> None:
        super().__init__()
        self.n_inputs, self.monotone = n_inputs, monotone
        self.hidden1 = nn.Linear(n_inputs + 1, hidden) if hidden > 0 and not monotone else None
        width = hidden if hidden > 0 else n_inputs + 1  # transform splits logit_s by seen
        self.out = nn.Linear(3 if monotone else width, 1)
        if self.hidden1 is not None:
            _init_blocks(self.hidden1.weight, 1, n_inputs + 1, seed, 0)
            _init_blocks(self.hidden1.bias, 1, n_inputs + 1, seed, 1)
        if monotone:  # softplus(w) = 1: start at the product of experts
            nn.init.constant_(self.out.weight, float(np.log(np.e - 1.0)))
        else:
            nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.skip = nn.Parameter(torch.tensor(float(np.log(np.e - 1.0))))  # softplus -> 1

    def transform(self, ctx: torch.Tensor) -> torch.Tensor:
        """FUSION_INPUTS order: p_d, u_d, p_s, u_s, static_available, static_seen, fresh_*.

        -> logit_d, logit_s on seen binaries, logit_s on new ones, u_d, u_s, avail, seen, fresh_*.
        """
        p = ctx[:, [0, 2]].clamp(1e-4, 1.0 - 1e-4)
        logit = torch.log(p / (1.0 - p)) / 4.0
        avail, seen = ctx[:, 4:5], ctx[:, 5:6] * ctx[:, 4:5]
        ls = logit[:, 1:2] * avail
        cols = [logit[:, :1], ls * seen, ls * (1.0 - seen), ctx[:, 1:2], ctx[:, 3:4] * avail]
        return torch.cat(cols + [avail, seen, ctx[:, 6:]], dim=1)

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        t = self.transform(ctx)
        if self.monotone:
            z = 4.0 * t[:, :3] @ F.softplus(self.out.weight).reshape(3, 1)
            return torch.sigmoid(z.reshape(-1) + self.out.bias)
        h = torch.tanh(self.hidden1(t)) if self.hidden1 is not None else t
        return torch.sigmoid(self.out(h).reshape(-1) + 4.0 * F.softplus(self.skip) * t[:, 0])
