"""ONNX Runtime sessions for the three experts: the one module in stream/ that loads onnxruntime.

onnxruntime is imported lazily. The execution provider is chosen once per process and requested
device: CUDA only when `CUDAExecutionProvider` is listed *and* a session created with it really
reports it first (a listed provider whose libraries are missing silently falls back to CPU in
ONNX Runtime; here that is reported as CPU, never presented as GPU). The console stays quiet while
probing. Every session is created from bytes checked against the manifest's sha256, and its
input/output signature and opset are checked against the manifest before first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.manifest import FileEntry, ModelError, ModelManifest, load_manifest, read_verified
from stream.schema import FUSION_INPUTS, MASK_GROUPS

__all__ = [
    "ProviderChoice",
    "choose_provider",
    "DynamicExpert",
    "StaticExpert",
    "FusionGate",
    "ModelSet",
    "load_models",
    "fusion_context",
    "fresh_fractions",
]

_QUIET = 3  # ORT severity: errors and fatal only
_SILENT = 4  # while probing CUDA, whose failure is expected and reported by us instead
_CHOICES: dict[str, ProviderChoice] = {}


@dataclass(frozen=True)
class ProviderChoice:
    """The execution provider in use and why; `device` is "cuda" or "cpu"."""

    provider: str
    device: str
    reason: str


def _ort():
    import onnxruntime as ort

    ort.set_default_logger_severity(_QUIET)
    return ort


def _options(threads: int | None, severity: int = _QUIET):
    ort = _ort()
    so = ort.SessionOptions()
    so.log_severity_level = severity
    if threads is not None:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    return so


def _nvidia_driver() -> bool:
    """True when the NVIDIA driver library loads: without it CUDA cannot work, so do not probe."""
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


class _QuietStderr:
    """Silence file descriptor 2 (C++ logging) for the duration of a block."""

    def __enter__(self) -> None:
        import os
        import sys

        sys.stderr.flush()
        self._saved = os.dup(2)
        self._null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self._null, 2)

    def __exit__(self, *exc) -> None:
        import os

        os.dup2(self._saved, 2)
        os.close(self._saved)
        os.close(self._null)


def choose_provider(device: str = "auto", probe_model: bytes | None = None) -> ProviderChoice:
    """Decide once per `device` ("auto", "cpu" or "cuda") which provider sessions use.

    "cuda" that is not really usable raises ModelError; "auto" falls back to CPU and says why.
    `probe_model` is a serialized ONNX model used to try a CUDA session.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ModelError(
            f"The 'device' parameter of choose_provider must be one of auto, cpu, cuda. "
            f"Got {device!r} instead."
        )
    if device in _CHOICES:
        return _CHOICES[device]
    ort = _ort()
    if device == "cpu":
        choice = ProviderChoice("CPUExecutionProvider", "cpu", "CPU requested")
    elif "CUDAExecutionProvider" not in ort.get_available_providers():
        choice = ProviderChoice("CPUExecutionProvider", "cpu", "CUDA provider not built in")
    elif probe_model is None:
        choice = ProviderChoice("CPUExecutionProvider", "cpu", "no model to probe CUDA with")
    elif not _nvidia_driver():
        choice = ProviderChoice("CPUExecutionProvider", "cpu", "no NVIDIA driver (libcuda) found")
    else:
        ort.set_default_logger_severity(_SILENT)
        try:
            with _QuietStderr():  # a missing CUDA library is logged from C++ before we can ask
                sess = ort.InferenceSession(
                    probe_model,
                    _options(None, _SILENT),
                    providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
                )
            used = sess.get_providers()[0]
        except Exception as exc:  # a broken CUDA install raises assorted errors
            used = f"error {type(exc).__name__}"
        finally:
            ort.set_default_logger_severity(_QUIET)
        if used == "CUDAExecutionProvider":
            choice = ProviderChoice(used, "cuda", "CUDA session created")
        else:
            choice = ProviderChoice(
                "CPUExecutionProvider", "cpu", "CUDA provider listed but not usable (fell back)"
            )
    if device == "cuda" and choice.device != "cuda":
        raise ModelError(f"CUDA was requested but ONNX Runtime cannot use it: {choice.reason}.")
    _CHOICES[device] = choice
    return choice


def _opset(data: bytes, path: str) -> int:
    import onnx

    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf decode errors
        raise ModelError(f"{path}: not a readable ONNX model ({type(exc).__name__}).") from None
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), -1)


def _signature(values) -> dict[str, list[int | str]]:
    return {v.name: [d if isinstance(d, int) else str(d) for d in (v.shape or [])] for v in values}


def _dims_match(actual: list[int | str], expected: list[int | str]) -> bool:
    if len(actual) != len(expected):
        return False
    return all(
        (isinstance(a, str) and isinstance(e, str)) or a == e
        for a, e in zip(actual, expected, strict=True)
    )


class _Session:
    """One verified, signature-checked InferenceSession."""

    def __init__(
        self, model_dir: Path, entry: FileEntry, opset: int, choice: ProviderChoice, threads
    ):
        self.path = str(Path(model_dir) / entry.path)
        data = read_verified(model_dir, entry)
        found = _opset(data, self.path)
        if found != opset:
            raise ModelError(
                f"{self.path}: opset {found} does not match the manifest's opset {opset}."
            )
        ort = _ort()
        providers = [choice.provider] + (
            ["CPUExecutionProvider"] if choice.provider != "CPUExecutionProvider" else []
        )
        try:
            self.session = ort.InferenceSession(data, _options(threads), providers=providers)
        except Exception as exc:  # ORT raises its own error types on invalid graphs
            raise ModelError(f"{self.path}: ONNX Runtime refused the model ({exc}).") from None
        for kind, actual, expected in (
            ("inputs", _signature(self.session.get_inputs()), entry.inputs),
            ("outputs", _signature(self.session.get_outputs()), entry.outputs),
        ):
            same = list(actual) == list(expected) and all(
                _dims_match(actual[k], expected[k]) for k in expected
            )
            if not same:
                raise ModelError(
                    f"{self.path}: {kind} {actual} do not match the manifest's {expected}."
                )
        self.output_names = list(entry.outputs)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(self.output_names, dict(feeds))
        return dict(zip(self.output_names, outs, strict=True))


class DynamicExpert:
    """The dynamic ensemble: windows -> calibrated probability and uncertainty."""

    def __init__(self, session: _Session) -> None:
        self._s = session

    @property
    def providers(self) -> list[str]:
        """The providers the session really uses, first = where it runs."""
        return list(self._s.session.get_providers())

    def score_all(self, values: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
        """values (B, W, F) float32, masks (B, W, K) 0/1 -> p_members (B, E), p (B,), u (B,)."""
        x = np.ascontiguousarray(values, dtype=np.float32)
        m = np.ascontiguousarray(masks, dtype=np.float32)
        return self._s.run({"x": x, "m": m})

    def score(self, values: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, W, F), (B, W, K) -> p (B,), u (B,), both float32 in [0, 1]."""
        if values.shape[0] == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        out = self.score_all(values, masks)
        return out["p"], out["u"]


class StaticExpert:
    """The static ensemble: raw LIEF feature vectors -> capability probability and uncertainty."""

    def __init__(self, session: _Session) -> None:
        self._s = session

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, S) in STATIC_FEATURE_NAMES order -> p (B,), u (B,)."""
        s = np.ascontiguousarray(features, dtype=np.float32)
        if s.shape[0] == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        out = self._s.run({"s": s})
        return out["p"], out["u"]


class FusionGate:
    """The fusion gate: context rows in FUSION_INPUTS order -> window score in [0, 1]."""

    def __init__(self, session: _Session) -> None:
        self._s = session

    def score(self, ctx: np.ndarray) -> np.ndarray:
        """(B, len(FUSION_INPUTS)) -> (B,) float32."""
        c = np.ascontiguousarray(ctx, dtype=np.float32)
        if c.shape[0] == 0:
            return np.zeros(0, np.float32)
        return self._s.run({"ctx": c})["score"]


@dataclass(frozen=True)
class ModelSet:
    """A loaded model directory: manifest, the three experts and the provider they run on."""

    manifest: ModelManifest
    dynamic: DynamicExpert
    static: StaticExpert
    fusion: FusionGate
    provider: ProviderChoice


def load_models(model_dir: Path, device: str = "auto", threads: int | None = None) -> ModelSet:
    """Verify the manifest and every file, choose the provider, and open the three sessions."""
    model_dir = Path(model_dir)
    manifest = load_manifest(model_dir)
    probe = read_verified(model_dir, manifest.files["fusion"])
    choice = choose_provider(device, probe)
    sessions = {
        name: _Session(model_dir, manifest.files[name], manifest.opset, choice, threads)
        for name in ("dynamic", "static", "fusion")
    }
    return ModelSet(
        manifest,
        DynamicExpert(sessions["dynamic"]),
        StaticExpert(sessions["static"]),
        FusionGate(sessions["fusion"]),
        choice,
    )


def fresh_fractions(masks: np.ndarray, mask_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """(B, W, K) masks -> (B, len(MASK_GROUPS)) fresh fraction per sensor group over the window."""
    index = {n: i for i, n in enumerate(mask_names)}
    m = np.asarray(masks)
    fresh = m.sum(axis=1, dtype=np.int64)  # (B, K) fresh samples per sensor: one pass over W
    W = m.shape[1]
    cols = [
        fresh[:, [index[n] for n in group]].sum(axis=1) / (W * len(group))
        for group in MASK_GROUPS.values()
    ]
    return np.stack(cols, axis=1).astype(np.float32) if cols else np.zeros((m.shape[0], 0))


def fusion_context(
    p_dynamic: np.ndarray,
    u_dynamic: np.ndarray,
    p_static: np.ndarray,
    u_static: np.ndarray,
    static_available: np.ndarray,
    static_seen: np.ndarray,
    masks: np.ndarray,
    mask_names: tuple[str, ...] | list[str],
) -> np.ndarray:
    """Rows in FUSION_INPUTS order, (B, 9) float32; unavailable static -> p 0.5, u 1, flags 0.

    `static_seen`: the static expert trained on this binary (manifest `static_seen_sha256`).
    """
    avail = np.asarray(static_available, bool)
    cols = [
        np.asarray(p_dynamic, np.float32),
        np.asarray(u_dynamic, np.float32),
        np.where(avail, p_static, 0.5).astype(np.float32),
        np.where(avail, u_static, 1.0).astype(np.float32),
        avail.astype(np.float32),
        (avail & np.asarray(static_seen, bool)).astype(np.float32),
    ]
    ctx = np.concatenate([np.stack(cols, axis=1), fresh_fractions(masks, mask_names)], axis=1)
    assert ctx.shape[1] == len(FUSION_INPUTS)
    return ctx.astype(np.float32)
