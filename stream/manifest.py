"""The model manifest (DESIGN.md 3.5): what the runtime needs to know about exported models.

`manifest.json` records feature and mask order, sample rate, window and stride, the causal
normalisation, the decision settings chosen on validation, the opset, the sha256 and input/output
signature of every file, the training split and its validation metrics, and a model card.
`load_manifest` refuses unknown keys, a schema the runtime does not speak, and any file whose bytes
do not match their recorded hash, with an error naming the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream.schema import FEATURE_COLUMNS, FUSION_INPUTS, MASK_COLUMNS, MASK_GROUPS
from stream.windowing import Normalisation

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "MODEL_FILES",
    "ModelError",
    "FileEntry",
    "NormalisationSpec",
    "DecisionSpec",
    "TrainingInfo",
    "ModelCard",
    "ModelManifest",
    "sha256_bytes",
    "load_manifest",
    "read_verified",
    "write_decision",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
#: The files every model directory holds, by role.
MODEL_FILES = ("dynamic", "static", "fusion")

Dim = int | str  # a fixed size, or a symbolic (dynamic) axis name such as "batch"
Metric = float | int | str | None


class ModelError(ValueError):
    """A model directory the runtime refuses; the message names the file and the defect."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Strict):
    """One exported file: its path inside the model directory, hash and I/O signature."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    inputs: dict[str, list[Dim]]
    outputs: dict[str, list[Dim]]


class NormalisationSpec(_Strict):
    """The causal normalisation the training windows were cut with (stream.windowing)."""

    scale: list[float]
    up_tau_s: float = Field(gt=0)
    down_tau_s: float = Field(gt=0)
    clip: float = Field(gt=0)
    spread_tau_s: float = Field(default=0.0, ge=0)
    spread_ref: list[float] | None = None
    spread_warm_s: float = Field(default=0.0, ge=0)

    def to_runtime(self) -> Normalisation:
        """The runtime's Normalisation: the one conversion, so serving and tests cannot drift."""
        return Normalisation(
            tuple(self.scale),
            self.up_tau_s,
            self.down_tau_s,
            self.clip,
            self.spread_tau_s,
            None if self.spread_ref is None else tuple(self.spread_ref),
            self.spread_warm_s,
        )


class DecisionSpec(_Strict):
    """Hysteresis settings chosen on validation runs, and by what rule (`source`).

    `train` chooses them by window-level F1; `evaluate --write-decision` replaces them with the
    event-level choice (best event F1 under the FAR/h target) on the same validation runs.
    """

    on_threshold: float = Field(ge=0, le=1)
    off_threshold: float = Field(ge=0, le=1)
    min_duration_s: float = Field(ge=0)
    merge_gap_s: float = Field(ge=0)
    backdate_s: float = Field(default=0.0, ge=0)
    raise_threshold: float | None = Field(default=None, ge=0, le=1)
    source: str = "train: window-level F1 on validation runs"


class TrainingInfo(_Strict):
    """How the models were trained."""

    split: str
    seed: int
    epochs: int  # maximum
    epochs_run: int
    best_epoch: list[int]  # per dynamic member
    device: str
    n_windows: dict[str, int]  # per part
    n_binaries: dict[str, int]
    members: int
    static_members: int
    wall_time_s: float
    exporter: str
    torch_version: str
    #: `stream.splits.data_fingerprint` of the training split; None for models from before it.
    data_fingerprint: str | None = None


class ModelCard(_Strict):
    """Intended use, data and limits, in words."""

    intended_use: str
    data: str
    limits: list[str]


class ModelManifest(_Strict):
    """manifest.json of a model directory."""

    manifest_version: Literal[1] = 1
    feature_names: list[str]
    mask_names: list[str]
    mask_groups: dict[str, list[str]]
    fusion_inputs: list[str]
    static_feature_names: list[str]
    hz: float = Field(gt=0)
    window: int = Field(ge=1)  # samples
    stride: int = Field(ge=1)  # samples between runtime emissions
    window_s: float = Field(gt=0)
    stride_s: float = Field(gt=0)
    normalisation: NormalisationSpec
    files: dict[str, FileEntry]
    opset: int
    decision: DecisionSpec
    #: Score below which a window counts as benign-looking for the drift watch (stream.adapt),
    #: fixed at training. Separate from `decision`, so that writing a decision chosen by
    #: `evaluate` changes decisions only, never the scores evaluate chose it from. None (models
    #: from before it): the decision's off threshold.
    drift_threshold: float | None = Field(default=None, ge=0, le=1)
    #: sha256 of every binary the static expert trained on: for those its score is in-sample,
    #: and the fusion gate's `static_seen` input tells it so (it learned both cases).
    static_seen_sha256: list[str] = Field(default_factory=list)
    training: TrainingInfo
    metrics: dict[str, dict[str, Metric]]
    model_card: ModelCard


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_schema(m: ModelManifest, path: Path) -> None:
    """The runtime builds inputs in stream.schema order: a model trained otherwise is refused."""
    expected = {
        "feature_names": list(FEATURE_COLUMNS),
        "mask_names": list(MASK_COLUMNS),
        "fusion_inputs": list(FUSION_INPUTS),
        "mask_groups": {k: list(v) for k, v in MASK_GROUPS.items()},
    }
    for name, value in expected.items():
        if getattr(m, name) != value:
            raise ModelError(f"{path}: '{name}' differs from this runtime's stream.schema.")
    missing = [f for f in MODEL_FILES if f not in m.files]
    if missing:
        raise ModelError(f"{path}: 'files' lacks entries {missing}.")


def _file_path(model_dir: Path, entry: FileEntry) -> Path:
    rel = Path(entry.path)
    if rel.is_absolute() or ".." in rel.parts:
        raise ModelError(f"{entry.path}: model file paths must stay inside {model_dir}.")
    return model_dir / rel


def read_verified(model_dir: Path, entry: FileEntry) -> bytes:
    """The bytes of one model file, after checking them against the manifest's sha256."""
    path = _file_path(Path(model_dir), entry)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file ({exc.strerror or exc}).") from None
    digest = sha256_bytes(data)
    if digest != entry.sha256:
        raise ModelError(
            f"{path}: sha256 {digest[:12]}... does not match the manifest's "
            f"{entry.sha256[:12]}...; refusing a modified or corrupt model file."
        )
    return data


_PROVISIONAL = "Decision thresholds are provisional"


def write_decision(model_dir: Path, decision: DecisionSpec) -> ModelManifest:
    """Replace the decision settings in model_dir/manifest.json (everything else is kept).

    The model card's "provisional thresholds" limit is replaced by the new settings' source. The
    model files are untouched, so their checksums still hold; the file is replaced atomically.
    """
    path = Path(model_dir) / MANIFEST_NAME
    manifest = load_manifest(model_dir)
    limits = [
        f"Decision thresholds: {decision.source}." if line.startswith(_PROVISIONAL) else line
        for line in manifest.model_card.limits
    ]
    card = manifest.model_card.model_copy(update={"limits": limits})
    manifest = manifest.model_copy(update={"decision": decision, "model_card": card})
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(manifest.model_dump_json(indent=2) + "\n")
    tmp.replace(path)
    return manifest


def load_manifest(model_dir: Path, *, verify: bool = True) -> ModelManifest:
    """Read and validate model_dir/manifest.json; with `verify`, check every file's sha256."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST_NAME
    if not path.is_file():
        raise ModelError(f"{path}: missing; not a model directory.")
    try:
        manifest = ModelManifest.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(first[:3]) if first else type(exc).__name__
        raise ModelError(f"{path}: invalid manifest ({detail}).") from None
    _check_schema(manifest, path)
    if verify:
        for entry in manifest.files.values():
            read_verified(model_dir, entry)
    return manifest
