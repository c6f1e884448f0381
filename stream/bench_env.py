"""What a benchmark result must say about where it ran: machine, providers, versions, memory.

Kept apart from the measurements so that every figure `cli.py bench` writes carries the CPU model,
the ONNX Runtime provider really used (not the one asked for), GPU names and library versions.
"""

from __future__ import annotations

import os
import pickle
import platform
import resource
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from stream.detector import Detector
from stream.onnx_session import ModelSet

__all__ = ["state_bytes", "peak_rss_bytes", "environment"]


def _fields(obj: object) -> list[object]:
    if hasattr(obj, "__dict__"):
        return list(vars(obj).values())
    return [getattr(obj, s) for s in getattr(type(obj), "__slots__", ())]


def state_bytes(det: Detector) -> dict:
    """Bytes of per-device state per stream: every (D, ...) array of the runtime's components, and
    the drift detectors' pickled size divided by D."""
    rt = det.runtime
    D = rt.n_devices
    parts = {
        "normaliser": rt.normaliser,
        "windower": rt.windower,
        "decision": rt.decisions,
        "runtime": rt,
        "static": rt.static,
    }
    out: dict[str, float] = {}
    for name, obj in parts.items():
        arrays = [v for v in _fields(obj) if isinstance(v, np.ndarray) and v.ndim and len(v) == D]
        out[name] = sum(a.nbytes for a in arrays) / D
    if rt.drift is not None:
        out["drift_adwin"] = len(pickle.dumps(rt.drift)) / D
    return {
        "per_stream_bytes": float(sum(out.values())),
        "breakdown": out,
        "streams": D,
        "method": "nbytes of (D, ...) arrays; river ADWIN state as pickled size",
    }


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_names() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [s.strip() for s in out.splitlines() if s.strip()]


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment(models: ModelSet) -> dict:
    """CPU model, cores, providers really used, GPU names, library versions."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity) if affinity is not None else os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "provider": models.dynamic.providers[0],
        "providers_session": models.dynamic.providers,
        "provider_reason": models.provider.reason,
        "gpu": _gpu_names(),
        "load_average_start": list(os.getloadavg()),
        "versions": {
            n: _version(n)
            for n in ("numpy", "onnxruntime", "onnxruntime-gpu", "torch", "polars", "river", "lief")
        },
    }
