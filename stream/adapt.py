"""Online adaptation with river: drift detection on benign-looking scores, delayed recalibration.

`DriftRefresh` keeps one ADWIN per device over the scores that stay below the decision's off
threshold. When their level drifts (a new regime, a workload change), the device's causal baseline
is re-initialised so its residuals re-centre. It uses no labels, so it is on in evaluation too.

`DelayedRecalibrator` is online Platt scaling of the fused score, learned from labels that arrive
`delay_s` after each window (an analyst's verdict, a sandbox report). It uses labels, so it is off
unless asked for (`--feedback-delay`), and reported numbers never use it by default.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
from river import drift, linear_model, optim

__all__ = ["DriftRefresh", "DelayedRecalibrator"]


class DriftRefresh:
    """Per-device ADWIN over benign-looking scores; `update` returns the devices that drifted."""

    def __init__(self, n_devices: int, off_threshold: float, delta: float = 0.002) -> None:
        self.off_threshold = off_threshold
        self.delta = delta
        self._detectors: dict[int, drift.ADWIN] = {}
        self.n_drifts = 0

    def update(self, rows: np.ndarray, score: np.ndarray) -> np.ndarray:
        drifted = []
        benign = score < self.off_threshold
        for d, s in zip(rows[benign].tolist(), score[benign].tolist(), strict=True):
            det = self._detectors.get(d)
            if det is None:
                det = self._detectors[d] = drift.ADWIN(delta=self.delta)
            det.update(s)
            if det.drift_detected:
                drifted.append(d)
        self.n_drifts += len(drifted)
        return np.array(drifted, np.intp)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class DelayedRecalibrator:
    """Online Platt scaling from delayed feedback; usable as the runtime's `score_transform`.

    label_fn(rows, t_end) -> (B,) bool gives the truth of windows once their feedback is due.
    Scores pass through unchanged until `min_labels` labels have been learned.
    """

    def __init__(
        self,
        delay_s: float,
        label_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
        min_labels: int = 50,
        lr: float = 0.05,
    ) -> None:
        if delay_s < 0:
            raise ValueError(
                f"The 'delay_s' parameter of DelayedRecalibrator must be >= 0. Got {delay_s!r} instead."
            )
        self.delay_s = delay_s
        self.label_fn = label_fn
        self.min_labels = min_labels
        self.model = linear_model.LogisticRegression(optimizer=optim.SGD(lr))
        self._pending: deque[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = deque()
        self.n_learned = 0

    def __call__(self, rows: np.ndarray, t_end: np.ndarray, score: np.ndarray) -> np.ndarray:
        now = float(np.max(t_end))
        while self._pending and self._pending[0][0] + self.delay_s <= now:
            _, r, t, z = self._pending.popleft()
            for zi, yi in zip(z.tolist(), self.label_fn(r, t).tolist(), strict=True):
                self.model.learn_one({"z": zi}, bool(yi))
            self.n_learned += len(r)
        z = _logit(np.asarray(score, np.float64))
        self._pending.append((now, rows.copy(), t_end.copy(), z))
        if self.n_learned < self.min_labels:
            return score
        w = self.model.weights.get("z", 0.0)
        b = self.model.intercept
        return (1.0 / (1.0 + np.exp(-(w * z + b)))).astype(np.float32)
