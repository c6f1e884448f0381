"""A detector over a set of devices: loaded models + static scores + the runtime loop.

This is the object the CLIs drive, for live fleets and for replay alike: `ingest(tick)` returns
closed detections as DESIGN.md 3.6 records, `finish()` closes what is still open.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.adapt import DriftRefresh
from stream.binary_worker import StaticCache, StaticResult
from stream.decide import DecisionConfig
from stream.onnx_session import ModelSet
from stream.runtime import Runtime, StaticScores, WindowRecord
from stream.sinks import detection_record
from stream.windowing import WindowSpec

__all__ = ["DeviceInfo", "Detector", "static_scores", "decision_from_manifest"]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One monitored device: its id (the run id in a benchmark) and its binary, if known."""

    device_id: str
    binary_path: Path | None = None


def static_scores(
    models: ModelSet, binaries: Sequence[Path | None], cache: StaticCache | None = None
) -> tuple[StaticScores, list[StaticResult | None]]:
    """Score each device's binary once (per content) with the static expert; missing -> mask 0.

    `seen`: the binary's sha256 is one the static expert trained on (manifest
    `static_seen_sha256`), so its score is in-sample, as the fusion gate was taught to expect.
    """
    cache = cache or StaticCache()
    results = [None if b is None else cache.get(Path(b)) for b in binaries]
    n = len(binaries)
    p = np.full(n, 0.5, np.float32)
    u = np.ones(n, np.float32)
    avail = np.array([r is not None and r.available for r in results], bool)
    trained = set(models.manifest.static_seen_sha256)
    seen = np.array([r is not None and r.available and r.sha256 in trained for r in results], bool)
    if avail.any():
        feats = np.stack([r.features for r in results if r is not None and r.features is not None])
        ps, us = models.static.score(feats)
        p[avail], u[avail] = ps, us
    return StaticScores(p, u, avail, seen), results


def decision_from_manifest(models: ModelSet) -> DecisionConfig:
    d = models.manifest.decision
    return DecisionConfig(
        on_threshold=d.on_threshold,
        off_threshold=d.off_threshold,
        min_duration_s=d.min_duration_s,
        merge_gap_s=d.merge_gap_s,
        backdate_s=d.backdate_s,
        stride_s=models.manifest.stride_s,
        raise_threshold=d.raise_threshold,
    )


class Detector:
    """Runtime for `devices`, wired to `models`. Labels never enter."""

    def __init__(
        self,
        models: ModelSet,
        devices: Sequence[DeviceInfo],
        *,
        decision: DecisionConfig | None = None,
        adapt: bool = True,
        score_transform: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
        on_windows: Callable[[WindowRecord], None] | None = None,
        cache: StaticCache | None = None,
    ) -> None:
        m = models.manifest
        self.models = models
        self.devices = tuple(devices)
        self.spec = WindowSpec(hz=m.hz, window_s=m.window_s, stride_s=m.stride_s)
        norm = m.normalisation.to_runtime()
        self.decision = decision or decision_from_manifest(models)
        self.static, self.static_results = static_scores(
            models, [d.binary_path for d in self.devices], cache
        )
        self.runtime = Runtime(
            len(self.devices),
            models.dynamic.score,
            models.fusion.score,
            self.static,
            self.spec,
            norm,
            self.decision,
            on_windows=on_windows,
            score_transform=score_transform,
            drift=DriftRefresh(len(self.devices), self._drift_threshold(m)) if adapt else None,
        )

    def _drift_threshold(self, m) -> float:
        """The models' own drift threshold; the decision's off threshold for older models."""
        return self.decision.off_threshold if m.drift_threshold is None else m.drift_threshold

    @property
    def provider(self) -> str:
        """The provider ONNX Runtime really runs the dynamic expert on."""
        return self.models.dynamic.providers[0]

    def ingest(self, rows, t, raw, masks) -> list[dict]:
        dets = self.runtime.ingest(rows, t, raw, masks)
        return [detection_record(d, self.devices[d.device].device_id) for d in dets]

    def finish(self) -> list[dict]:
        return [
            detection_record(d, self.devices[d.device].device_id) for d in self.runtime.finish()
        ]
