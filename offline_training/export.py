"""Export trained models to ONNX and write a model directory that proves itself.

For every model: eval mode, named inputs and outputs, a dynamic batch axis, `onnx.checker`, then
ONNX Runtime vs torch parity (max abs diff <= tol) on every given feed set (random and real inputs).
Only when all three pass are the manifest (with sha256 and signatures) and the resolved config
written, into a temporary directory that then replaces the output directory in one rename.

Exporter: torch's TorchScript-based exporter (`dynamo=False`). It is deprecated in torch >= 2.9
but exports these small graphs in a fraction of a second, works on every torch the Colab range
allows, and needs no onnxscript; the dynamo exporter took ~3 s per model here and prints a lot.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from stream.manifest import (
    MANIFEST_NAME,
    FileEntry,
    ModelManifest,
    load_manifest,
    sha256_bytes,
)

__all__ = [
    "EXPORTER",
    "ExportError",
    "ExportSpec",
    "check_target",
    "export_onnx",
    "onnx_parity",
    "write_model_dir",
]

EXPORTER = f"torch.onnx TorchScript exporter (dynamo=False), torch {torch.__version__}"
CONFIG_NAME = "train_config.json"


class ExportError(ValueError):
    """An export that failed a check; nothing was written."""


@dataclass
class ExportSpec:
    """One model to export: module, example inputs, names, and feed sets for the parity check."""

    name: str
    module: torch.nn.Module
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    feeds: Sequence[dict[str, np.ndarray]]  # each: input name -> array; first one is the example


def export_onnx(spec: ExportSpec, path: Path, opset: int) -> None:
    """Export with a dynamic batch axis on every input and output, then run onnx.checker."""
    spec.module.eval()
    example = tuple(torch.as_tensor(spec.feeds[0][n]) for n in spec.input_names)
    axes = {n: {0: "batch"} for n in spec.input_names + spec.output_names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            spec.module,
            example,
            str(path),
            input_names=list(spec.input_names),
            output_names=list(spec.output_names),
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def onnx_parity(spec: ExportSpec, data: bytes) -> float:
    """Max abs difference between ONNX Runtime (CPU) and torch over all outputs and feed sets."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    worst = 0.0
    for feed in spec.feeds:
        with torch.no_grad():
            ref = spec.module(*(torch.as_tensor(feed[n]) for n in spec.input_names))
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = sess.run(list(spec.output_names), {n: feed[n] for n in spec.input_names})
        for r, g in zip(ref, got, strict=True):
            if tuple(r.shape) != g.shape:
                return float("inf")
            worst = max(worst, float(np.max(np.abs(r.numpy() - g))) if g.size else 0.0)
    return worst


def _signature(values) -> dict[str, list[int | str]]:
    out = {}
    for v in values:
        dims = v.type.tensor_type.shape.dim
        out[v.name] = [d.dim_param if d.dim_param else int(d.dim_value) for d in dims]
    return out


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    backup = None
    if out_dir.exists():
        backup = out_dir.with_name(f".{out_dir.name}.old")
        if backup.exists():
            shutil.rmtree(backup)
        out_dir.rename(backup)
    tmp.rename(out_dir)
    out_dir.chmod(0o755)  # mkdtemp creates 0700
    if backup is not None:
        shutil.rmtree(backup)


def check_target(out_dir: Path) -> None:
    """Refuse to replace a non-empty directory that is not a model directory."""
    if out_dir.exists() and (
        not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / MANIFEST_NAME).is_file())
    ):
        raise ExportError(
            f"{out_dir}: exists and is not a model directory (no {MANIFEST_NAME}); "
            "refusing to overwrite it."
        )


def write_model_dir(
    out_dir: Path,
    specs: Sequence[ExportSpec],
    manifest_fields: dict,
    config_json: str,
    opset: int,
    tol: float,
) -> tuple[ModelManifest, dict[str, float]]:
    """Export, check and prove every model, then write out_dir atomically.

    Returns the manifest and the parity (max abs diff) per model. Raises ExportError, writing
    nothing, when a check fails.
    """
    out_dir = Path(out_dir)
    check_target(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        files, parity = {}, {}
        for spec in specs:
            path = tmp / f"{spec.name}.onnx"
            export_onnx(spec, path, opset)
            data = path.read_bytes()
            parity[spec.name] = onnx_parity(spec, data)
            if not parity[spec.name] <= tol:
                raise ExportError(
                    f"{spec.name}.onnx: ONNX Runtime differs from torch by "
                    f"{parity[spec.name]:.3g} > {tol:g}; not written."
                )
            graph = onnx.load_from_string(data).graph
            files[spec.name] = FileEntry(
                path=path.name,
                sha256=sha256_bytes(data),
                inputs=_signature(graph.input),
                outputs=_signature(graph.output),
            )
        manifest = ModelManifest(**manifest_fields, files=files, opset=opset)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest.model_dump(mode="json"), indent=2))
        (tmp / CONFIG_NAME).write_text(config_json)
        load_manifest(tmp)  # the round trip the runtime will do
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest, parity
