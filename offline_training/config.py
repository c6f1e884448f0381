"""Training configuration: one pydantic model, unknown keys refused, written beside the models.

Every hyperparameter of the pipeline lives here with its default; `TrainConfig.resolved()` turns
"auto" into the device actually used, and that resolved config is what `train_config.json` records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TrainConfig", "resolve_device"]


class TrainConfig(BaseModel):
    """Data, split, output and hyperparameters of one training run (seed -> ... -> export)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path("data/fusionbench_sim")
    split: str = "unseen_workload"
    out_dir: Path = Path("exported_models")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = Field(default=0, ge=0)
    threads: int = Field(default=2, ge=1, description="torch CPU threads (fixed for determinism)")

    # dynamic expert: a grouped-conv ensemble, all members in one module
    members: int = Field(default=5, ge=5)
    channels: int = Field(default=16, ge=4)
    pool: int = Field(default=5, ge=1, description="average-pool factor over time before convs")
    dilations: tuple[int, ...] = (1, 2, 4)
    kernel: int = Field(default=3, ge=1)
    stats_hidden: int = Field(
        default=16,
        ge=0,
        description="hidden width of each member's window-statistics MLP (0: none)",
    )
    cnn: bool = Field(
        default=False,
        description="add the causal CNN branch to each member (it overfits the training runs)",
    )
    dropout: float = Field(default=0.3, ge=0, lt=1, description="dropout in the statistics MLP")
    epochs: int = Field(
        default=25, ge=1, description="maximum epochs; early stopping may end sooner"
    )
    patience: int = Field(default=4, ge=1)
    batch_size: int = Field(default=256, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-2, ge=0)

    label_recent_s: float | None = Field(
        default=2.0,
        gt=0,
        description="train on the activity covered by each window's last N seconds (null: the "
        "whole-window overlap y_soft); offline_training/labels.py says why",
    )

    synthetic_runs: int = Field(
        default=480,
        ge=0,
        description="extra training runs cloned from the split's training runs with randomised "
        "benign workloads (domain randomisation, simulator/augment.py), read from "
        "<data>/synthetic/<split>/ (the train and evaluate commands write them); 0: none",
    )
    synthetic_trojans: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="share of the synthetic runs whose trojan gets a randomised payload mix "
        "(simulator.trojans.synthetic_weights) instead of its family's; 0: none",
    )
    # static expert: a bootstrap ensemble of L2-regularised logistic models (MLP when hidden > 0)
    static_members: int = Field(default=5, ge=2)
    static_hidden: int = Field(default=0, ge=0)
    static_steps: int = Field(default=300, ge=1)
    static_lr: float = Field(default=0.05, gt=0)
    static_l2: float = Field(default=1e-2, ge=0)
    static_folds: int = Field(default=5, ge=2, description="folds for out-of-fold static scores")

    # fusion gate: logistic (or a tiny MLP) on FUSION_INPUTS, fitted on validation windows only
    gate_monotone: bool = Field(
        default=True,
        description="3-parameter monotone gate between dynamic-only and product of experts",
    )
    gate_hidden: int = Field(default=0, ge=0, description="used only when gate_monotone is False")
    gate_steps: int = Field(default=400, ge=1)
    gate_lr: float = Field(default=0.02, gt=0)
    gate_weight_decay: float = Field(default=1e-3, ge=0)
    gate_folds: int = Field(default=5, ge=2, description="run folds for honest fused metrics")

    # decisions (provisional: `evaluate` re-chooses them with the interval-level protocol)
    min_duration_s: float = Field(default=2.0, ge=0)
    merge_gap_s: float = Field(default=4.0, ge=0)

    opset: int = Field(default=17, ge=13)
    parity_tol: float = Field(default=1e-5, gt=0)

    def resolved(self) -> TrainConfig:
        """A copy with `device` resolved to "cpu" or "cuda" (raises if cuda is unusable)."""
        return self.model_copy(update={"device": resolve_device(self.device)})


def resolve_device(device: str) -> str:
    """ "auto" -> "cuda" when torch sees a CUDA device, else "cpu"; "cuda" without one is an error."""
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if device == "cuda" and not has_cuda:
        raise ValueError(
            "The '--device' parameter of train must be 'auto' or 'cpu' when torch sees no CUDA "
            "device. Got 'cuda' instead."
        )
    if device not in ("cpu", "cuda"):
        raise ValueError(
            f"The '--device' parameter of train must be one of auto, cpu, cuda. Got {device!r} instead."
        )
    return device
