"""Online adaptation: drift detection on benign-looking scores, delayed recalibration."""

import numpy as np
import pytest

from stream.adapt import DelayedRecalibrator, DriftRefresh


def test_drift_is_flagged_after_a_level_shift_of_benign_scores():
    drift = DriftRefresh(2, off_threshold=0.5)
    rng = np.random.default_rng(0)
    flagged = []
    for i in range(2000):
        level = 0.05 if i < 1000 else 0.35
        s = np.clip(rng.normal(level, 0.02, 2), 0, 1)
        s[1] = np.clip(rng.normal(0.05, 0.02), 0, 1)  # device 1 never drifts
        flagged += [(i, int(d)) for d in drift.update(np.array([0, 1]), s)]
    assert any(d == 0 and i >= 1000 for i, d in flagged)
    assert not any(d == 1 for _, d in flagged)


def test_scores_above_the_off_threshold_do_not_feed_drift_detection():
    drift = DriftRefresh(1, off_threshold=0.3)
    for _ in range(1000):
        assert drift.update(np.array([0]), np.array([0.9])).size == 0
    assert drift._detectors == {}


def _labels(rows, t):
    return (t % 100) >= 50  # truth: active in the second half of every 100 s


def test_recalibration_passes_scores_through_until_enough_feedback():
    cal = DelayedRecalibrator(delay_s=10.0, label_fn=_labels, min_labels=50)
    s = np.array([0.3], np.float32)
    assert cal(np.array([0]), np.array([1.0]), s) is s


def test_recalibration_learns_from_delayed_labels_only():
    cal = DelayedRecalibrator(delay_s=5.0, label_fn=_labels, min_labels=20, lr=0.2)
    rng = np.random.default_rng(1)
    for t in range(1, 600):
        y = _labels(None, np.array([float(t)]))[0]
        raw = 0.45 + (0.1 if y else -0.1) + rng.normal(0, 0.02)  # informative but squashed
        cal(np.array([0]), np.array([float(t)]), np.array([raw], np.float32))
    assert cal.n_learned > 500
    hi = cal(np.array([0]), np.array([600.0]), np.array([0.55], np.float32))[0]
    lo = cal(np.array([0]), np.array([601.0]), np.array([0.35], np.float32))[0]
    assert hi > 0.6 and lo < 0.4  # stretched apart: calibrated on the feedback


def test_negative_delay_is_refused_with_the_template():
    with pytest.raises(ValueError, match="The 'delay_s' parameter of DelayedRecalibrator"):
        DelayedRecalibrator(-1.0, _labels)
