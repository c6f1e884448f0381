"""Inspect one binary as the runtime sees it: static features, the static expert's p_s and u_s.

The file is parsed exactly as the runtime parses a device's binary (`stream.detector.static_scores`:
an isolated child process with time and memory limits), so a hostile file gives a reason, never a
crash or a hang. When the features are unavailable the runtime scores the device with the static
expert masked (p_s 0.5, u_s 1, availability 0); the inspection reports the reason instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stream.binary_worker import StaticCache
from stream.detector import static_scores
from stream.onnx_session import ModelSet
from stream.static_features import STATIC_FEATURE_NAMES

__all__ = ["Inspection", "inspect_binary", "format_inspection"]


@dataclass(frozen=True)
class Inspection:
    """What the runtime knows about one binary.

    `features` maps STATIC_FEATURE_NAMES to values (None when unavailable); `p_s` is the static
    expert's probability that the binary carries a trojan capability and `u_s` its uncertainty,
    both in [0, 1] and None when unavailable; `reason` says why it is unavailable (else None);
    `seen`: the static expert trained on this very binary, so p_s is in-sample and the fusion
    gate weighs it as such.
    """

    path: Path
    sha256: str | None
    features: dict[str, float] | None
    p_s: float | None
    u_s: float | None
    reason: str | None
    seen: bool = False

    @property
    def available(self) -> bool:
        return self.features is not None

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "available": self.available,
            "reason": self.reason,
            "p_s": self.p_s,
            "u_s": self.u_s,
            "seen": self.seen,
            "features": self.features,
        }


def inspect_binary(
    path: Path, models: ModelSet, *, timeout_s: float = 10.0, memory_mb: int = 1024
) -> Inspection:
    """Parse `path` in isolation and score it with `models.static`; never raises on a bad file.

    `timeout_s` and `memory_mb` are the parse limits of `stream.binary_worker.read_static`.
    """
    path = Path(path)
    cache = StaticCache(timeout_s=timeout_s, memory_mb=memory_mb)
    scores, results = static_scores(models, [path], cache)
    result = results[0]
    assert result is not None  # a path was given
    if not result.available:
        return Inspection(path, result.sha256, None, None, None, result.reason)
    assert result.features is not None
    features = {n: float(v) for n, v in zip(STATIC_FEATURE_NAMES, result.features, strict=True)}
    p_s, u_s = float(scores.p[0]), float(scores.u[0])
    return Inspection(path, result.sha256, features, p_s, u_s, None, bool(scores.seen[0]))


def format_inspection(ins: Inspection) -> str:
    """A few lines for a terminal: verdict first, then one `name value` line per feature."""
    lines = [f"{ins.path}", f"sha256  {ins.sha256 or 'n/a'}"]
    if not ins.available:
        lines.append(f"static unavailable: {ins.reason}")
        lines.append(
            "the runtime scores this device with the static expert masked (p_s 0.5, u_s 1)"
        )
        return "\n".join(lines)
    lines.append(f"p_s     {ins.p_s:.4f}  (probability of a trojan capability)")
    lines.append(f"u_s     {ins.u_s:.4f}  (uncertainty)")
    lines.append(
        "seen    "
        + (
            "yes  (the static expert trained on this binary: p_s is in-sample)"
            if ins.seen
            else "no   (a binary new to the static expert)"
        )
    )
    assert ins.features is not None
    width = max(len(n) for n in ins.features)
    lines += [f"  {n:<{width}}  {v:.4f}" for n, v in ins.features.items()]
    return "\n".join(lines)
