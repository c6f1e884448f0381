"""The runtime loop: samples -> per-device state -> batched windows -> experts -> fusion -> decisions.

One `Runtime` serves many devices. `ingest` takes one tick (at most one sample per device, any
subset of devices), updates each device's causal normaliser and ring buffer, scores every window
that became ready in ONE call per expert, fuses, and runs the decision stage. Labels never enter.
Bad live values are masked and counted, never fatal; every sample ends used or dropped by reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from stream.accounting import Accounting
from stream.adapt import DriftRefresh
from stream.decide import DecisionConfig, DecisionStage, Detection
from stream.onnx_session import fusion_context
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.windowing import (
    CausalNormaliser,
    Normalisation,
    OnlineWindower,
    WindowSpec,
    transform_features,
)

__all__ = ["DynamicFn", "GateFn", "StaticScores", "WindowRecord", "Runtime", "FEATURE_MASK"]

F, K = len(FEATURE_COLUMNS), len(MASK_COLUMNS)


def _feature_masks() -> np.ndarray:
    """Feature index -> index of the mask that covers it (-1 when the feature has no mask)."""
    special = {"fan_est_temp_c": "mask_fan_est_temp", "p_sys5v_mw": "mask_power_sys5v"}
    out = np.full(F, -1, np.intp)
    for i, c in enumerate(FEATURE_COLUMNS):
        if c in special:
            name = special[c]
        elif c.startswith("temp_"):
            name = "mask_temp_" + c[len("temp_") : -len("_c")]
        elif c.startswith("p_"):
            name = "mask_power_" + c[len("p_") : -len("_mw")]
        elif c.startswith("delta_"):
            name = "mask_perf_" + c[len("delta_") :]
        else:
            continue
        out[i] = MASK_COLUMNS.index(name)
    return out


FEATURE_MASK = _feature_masks()


DynamicFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
GateFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class StaticScores:
    """Static expert verdict per device: p, u (D,), availability (D,) bool and whether the static
    expert trained on the device's binary (D,) bool (its score is then in-sample)."""

    p: np.ndarray
    u: np.ndarray
    available: np.ndarray
    seen: np.ndarray

    @staticmethod
    def missing(n: int) -> StaticScores:
        return StaticScores(
            np.full(n, 0.5, np.float32),
            np.ones(n, np.float32),
            np.zeros(n, bool),
            np.zeros(n, bool),
        )


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """Scores of the windows emitted at one tick (for logs, parity tests and evaluation)."""

    rows: np.ndarray  # (B,)
    t_end_s: np.ndarray  # (B,)
    ctx: np.ndarray  # (B, len(FUSION_INPUTS))
    score: np.ndarray  # (B,)


class Runtime:
    """Streaming detector state for `n_devices` devices."""

    #: Every per-device array (row = device), as attribute paths: what a fleet worker snapshots,
    #: restores and resets per device (stream.fleet_state). Listed here, beside the state itself.
    DEVICE_STATE: tuple[str, ...] = (
        "normaliser.baseline",
        "normaliser.started",
        "normaliser.spread",
        "normaliser.spread_n",
        "windower.values",
        "windower.masks",
        "windower.count",
        "decisions.active",
        "decisions.raised",
        "decisions.t_first",
        "decisions.t_last_on",
        "decisions.t_emit",
        "decisions.peak",
        "decisions.total",
        "decisions.count",
        "decisions.experts",
        "last_t",
        "first_window_t",
        "static.p",
        "static.u",
        "static.available",
        "static.seen",
    )

    def __init__(
        self,
        n_devices: int,
        dynamic: DynamicFn,
        gate: GateFn,
        static: StaticScores,
        spec: WindowSpec,
        norm: Normalisation,
        decision: DecisionConfig,
        *,
        on_windows: Callable[[WindowRecord], None] | None = None,
        score_transform: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
        drift: DriftRefresh | None = None,
    ) -> None:
        self.n_devices = n_devices
        self.dynamic = dynamic
        self.gate = gate
        self.drift = drift
        self.static = static
        self.spec = spec
        self.normaliser = CausalNormaliser(n_devices, spec.hz, norm)
        self.windower = OnlineWindower(n_devices, spec, F, K)
        self.decisions = DecisionStage(n_devices, decision, n_experts=2)
        self.last_t = np.full(n_devices, -np.inf)
        self.first_window_t = np.full(n_devices, np.nan)
        self.accounting = Accounting()
        self.on_windows = on_windows
        self.score_transform = score_transform

    def ingest(
        self, rows: np.ndarray, t: np.ndarray, raw: np.ndarray, masks: np.ndarray
    ) -> list[Detection]:
        """One tick: raw (B, F) features and masks (B, K) for distinct devices `rows` at times t.

        Samples with a non-finite, duplicated or out-of-order time, or an unknown device, are
        dropped and counted; non-finite feature values are masked (their sensor's mask set to 0,
        the baseline not moved) and counted.
        """
        rows = np.asarray(rows, np.intp)
        t = np.asarray(t, np.float64)
        self.accounting.samples_in += rows.size
        keep = (rows >= 0) & (rows < self.n_devices)
        self.accounting.drop("unknown_device", int((~keep).sum()))
        bad_t = keep & ~np.isfinite(t)
        self.accounting.drop("non_finite_time", int(bad_t.sum()))
        keep &= ~bad_t
        prev = np.where(keep, self.last_t[np.where(keep, rows, 0)], -np.inf)
        dup = keep & (t == prev)
        late = keep & (t < prev)
        self.accounting.drop("duplicate_timestamp", int(dup.sum()))
        self.accounting.drop("out_of_order", int(late.sum()))
        keep &= ~(dup | late)
        if not keep.all():
            rows, t, raw, masks = rows[keep], t[keep], raw[keep], masks[keep]
        if rows.size == 0:
            return []
        _, first = np.unique(rows, return_index=True)
        if first.size != rows.size:  # one sample per device and tick: later copies are dropped
            self.accounting.drop("repeated_in_tick", rows.size - first.size)
            first.sort()
            rows, t, raw, masks = rows[first], t[first], raw[first], masks[first]
        self.accounting.samples_used += rows.size
        self.last_t[rows] = t
        x = transform_features(raw)  # (B, F) float64
        m = np.asarray(masks, np.uint8).copy()
        finite = np.isfinite(x)
        if not finite.all():
            bad_r, bad_f = np.nonzero(~finite)
            for f in np.unique(bad_f):
                self.accounting.masked_values[FEATURE_COLUMNS[f]] += int((bad_f == f).sum())
            covered = FEATURE_MASK[bad_f] >= 0
            m[bad_r[covered], FEATURE_MASK[bad_f[covered]]] = 0
        m = np.where((m == 0) | (m == 1), m, 0).astype(np.uint8)
        r = self.normaliser.step(x, rows)
        ready = self.windower.push(rows, self.normaliser.scale_step(r, rows), m)
        if ready.size == 0:
            return []
        return self._score(ready, self.last_t[ready])

    def _score(self, rows: np.ndarray, t_end: np.ndarray) -> list[Detection]:
        values, masks = self.windower.windows(rows)  # (B, W, F), (B, W, K)
        p_d, u_d = self.dynamic(values, masks)
        ctx = fusion_context(
            p_d,
            u_d,
            self.static.p[rows],
            self.static.u[rows],
            self.static.available[rows],
            self.static.seen[rows],
            masks,
            MASK_COLUMNS,
        )
        score = np.asarray(self.gate(ctx), np.float32)
        if self.score_transform is not None:
            score = self.score_transform(rows, t_end, score)
        self.accounting.windows_scored += rows.size
        new = np.isnan(self.first_window_t[rows])
        self.first_window_t[rows[new]] = t_end[new]
        if self.on_windows is not None:
            self.on_windows(WindowRecord(rows, t_end, ctx, score))
        if self.drift is not None:
            drifted = self.drift.update(rows, score)
            if drifted.size:
                self.normaliser.reset(drifted)
        before = self.decisions.discarded
        out = self.decisions.update(rows, t_end, score, ctx[:, [0, 2]])
        self.accounting.intervals_emitted += len(out)
        self.accounting.intervals_discarded += self.decisions.discarded - before
        return out

    def finish(self) -> list[Detection]:
        """End of stream: close open intervals."""
        before = self.decisions.discarded
        out = self.decisions.flush()
        self.accounting.intervals_emitted += len(out)
        self.accounting.intervals_discarded += self.decisions.discarded - before
        return out
