"""Window-level PR-AUC, ROC-AUC, ECE and their run bootstrap, against hand values and references."""

from __future__ import annotations

import numpy as np
import pytest

from stream.window_metrics import (
    bootstrap_window_ci,
    expected_calibration_error,
    pr_auc,
    roc_auc,
    score_windows,
)

Y = np.array([0, 0, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8])


def mann_whitney_auc(y: np.ndarray, s: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + 1/2 P(tie), over all pairs."""
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def test_roc_auc_hand_value():
    assert roc_auc(Y, S) == pytest.approx(0.75)


def test_roc_auc_equals_the_mann_whitney_statistic_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) * 0.5 + 0.3 * y, 1)  # coarse scores: many ties
    assert roc_auc(y, s) == pytest.approx(mann_whitney_auc(y, s))


def test_pr_auc_is_average_precision_hand_value():
    # Ranked: 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1: AP = 0.5 * 1 + 0.5 * 2/3.
    assert pr_auc(Y, S) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_pr_auc_treats_tied_scores_as_one_threshold():
    # All four tied: one operating point with precision 0.5 at recall 1.
    assert pr_auc(Y, np.full(4, 0.3)) == pytest.approx(0.5)


def test_auc_undefined_without_both_classes():
    assert roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])) is None
    assert pr_auc(np.zeros(3), np.array([0.1, 0.2, 0.3])) is None


def test_ece_hand_value_with_15_bins():
    # p = 0.1 falls in bin 1 (confidence 0.1, accuracy 0.5); p = 0.9 in bin 13 (0.9 vs 1.0).
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.9])
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)


def test_ece_puts_probability_one_in_the_last_bin_and_is_zero_when_calibrated():
    assert expected_calibration_error(np.array([1, 1]), np.array([1.0, 1.0])) == 0.0


def test_ece_refuses_scores_outside_unit_interval():
    with pytest.raises(ValueError, match="'y_prob' parameter of expected_calibration_error"):
        expected_calibration_error(np.array([1]), np.array([1.5]))


def test_sample_weights_equal_repeating_windows():
    rng = np.random.default_rng(1)
    y, s = rng.integers(0, 2, 40), np.round(rng.random(40), 1)
    w = rng.integers(0, 4, 40)
    ry, rs = np.repeat(y, w), np.repeat(s, w)
    assert roc_auc(y, s, w) == pytest.approx(roc_auc(ry, rs))
    assert pr_auc(y, s, w) == pytest.approx(pr_auc(ry, rs))
    assert expected_calibration_error(y, s, sample_weight=w) == pytest.approx(
        expected_calibration_error(ry, rs)
    )


def test_agrees_with_sklearn_when_installed():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    y, s = rng.integers(0, 2, 500), np.round(rng.random(500), 2)
    assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s))
    assert pr_auc(y, s) == pytest.approx(metrics.average_precision_score(y, s))


def test_score_windows_labels_by_soft_overlap_at_one_half():
    y_soft = np.array([0.0, 0.49, 0.5, 1.0])
    rep = score_windows(y_soft, np.array([0.1, 0.9, 0.8, 0.7]), ["a"] * 4, n_resamples=0)
    assert rep.n_positive == 2
    assert rep.roc_auc == pytest.approx(0.5)  # the 0.49 window outranks both positives


def test_window_bootstrap_is_seeded_and_resamples_runs():
    rng = np.random.default_rng(3)
    runs = np.repeat([f"r{k}" for k in range(10)], 30)
    y = rng.integers(0, 2, 300)
    s = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1)
    a = bootstrap_window_ci(y, s, runs, n_resamples=100, seed=0)
    assert a == bootstrap_window_ci(y, s, runs, n_resamples=100, seed=0)
    assert a != bootstrap_window_ci(y, s, runs, n_resamples=100, seed=1)
    point = roc_auc(y, s)
    assert a["roc_auc"][0] <= point <= a["roc_auc"][1]


def test_window_bootstrap_of_one_run_is_the_point_value():
    y, s = np.array([0, 1, 0, 1]), np.array([0.2, 0.7, 0.4, 0.6])
    ci = bootstrap_window_ci(y, s, ["a"] * 4, n_resamples=10)
    assert ci["roc_auc"] == (1.0, 1.0)
    assert ci["ece"][0] == ci["ece"][1] == pytest.approx(expected_calibration_error(y, s))
