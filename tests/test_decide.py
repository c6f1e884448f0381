"""Decision stage: hysteresis, minimum duration, gap merging, emission time."""

import numpy as np
import pytest

from stream.decide import DecisionConfig, DecisionStage


def _run(scores, cfg, t0=0.0):
    stage = DecisionStage(1, cfg, n_experts=1)
    out = []
    for i, s in enumerate(scores):
        t = np.array([t0 + i * cfg.stride_s])
        out += stage.update(np.array([0]), t, np.array([s]), np.array([[s / 2]]))
    return out + stage.flush(), stage


CFG = DecisionConfig(on_threshold=0.6, off_threshold=0.4, min_duration_s=2.0, merge_gap_s=0.0)


def test_interval_spans_first_on_to_last_off_crossing():
    det, _ = _run([0.1, 0.7, 0.5, 0.45, 0.3, 0.1], CFG)
    assert len(det) == 1
    d = det[0]
    assert (d.t_start_s, d.t_end_s) == (1.0, 4.0)
    assert d.t_emit_s == 2.0  # raised once it lasted min_duration_s
    assert d.peak_score == 0.7 and d.experts_at_peak == (0.35,)
    assert d.mean_score == pytest.approx((0.7 + 0.5 + 0.45) / 3)


def test_below_on_threshold_never_opens():
    det, _ = _run([0.55, 0.59, 0.5], CFG)
    assert det == []


def test_too_short_intervals_are_discarded_and_counted():
    det, stage = _run([0.1, 0.9, 0.1, 0.1], CFG)
    assert det == [] and stage.discarded == 1


def test_gaps_up_to_merge_gap_are_bridged():
    cfg = DecisionConfig(on_threshold=0.6, off_threshold=0.4, min_duration_s=1.0, merge_gap_s=2.0)
    det, _ = _run([0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1], cfg)
    assert [(d.t_start_s, d.t_end_s) for d in det] == [(0.0, 6.0)]
    det, _ = _run([0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1], cfg)
    assert [(d.t_start_s, d.t_end_s) for d in det] == [(0.0, 2.0), (5.0, 7.0)]


def test_backdate_moves_interval_but_not_emission_time():
    cfg = DecisionConfig(on_threshold=0.6, off_threshold=0.4, min_duration_s=1.0, backdate_s=0.5)
    det, _ = _run([0.1, 0.1, 0.9, 0.9, 0.1], cfg)
    assert (det[0].t_start_s, det[0].t_end_s, det[0].t_emit_s) == (1.5, 3.5, 2.0)


def test_a_window_at_the_raise_threshold_raises_without_waiting():
    cfg = DecisionConfig(0.6, 0.4, min_duration_s=5.0, raise_threshold=0.9)
    det, _ = _run([0.1, 0.7, 0.95, 0.7, 0.1, 0.1], cfg)
    assert [(d.t_start_s, d.t_end_s, d.t_emit_s) for d in det] == [(1.0, 4.0, 2.0)]
    det, stage = _run([0.1, 0.7, 0.85, 0.7, 0.1, 0.1], cfg)  # never confident, too short
    assert det == [] and stage.discarded == 1


def test_raise_threshold_below_on_threshold_is_refused():
    with pytest.raises(ValueError, match="'raise_threshold' parameter of DecisionConfig"):
        DecisionConfig(on_threshold=0.6, off_threshold=0.4, raise_threshold=0.5)


def test_devices_are_independent():
    stage = DecisionStage(2, CFG)
    rows = np.array([0, 1])
    out = []
    for i, (a, b) in enumerate([(0.9, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9), (0.1, 0.9)]):
        out += stage.update(rows, np.array([i, i], float), np.array([a, b]))
    out += stage.flush()
    assert sorted((d.device, d.t_start_s, d.t_end_s) for d in out) == [(0, 0.0, 3.0), (1, 2.0, 5.0)]


def test_bad_thresholds_use_the_template():
    with pytest.raises(ValueError, match="parameter of DecisionConfig must be"):
        DecisionConfig(on_threshold=0.3, off_threshold=0.5)
