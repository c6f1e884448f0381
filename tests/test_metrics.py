"""Interval metrics on small hand-checked cases (DESIGN.md section 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stream.metrics import (
    RunIntervals,
    bootstrap_ci,
    interval_iou,
    match_intervals,
    pool_stats,
    resample_run_counts,
    run_stats,
    score_runs,
)

NONE = np.empty((0, 2))


def run(truth, pred, emit=None, start=0.0, end=3600.0, run_id="r") -> RunIntervals:
    return RunIntervals(
        run_id,
        np.array(truth, float).reshape(-1, 2),
        np.array(pred, float).reshape(-1, 2),
        None if emit is None else np.array(emit, float),
        start,
        end,
    )


# --- matching ---------------------------------------------------------------------------------


def test_touching_intervals_do_not_overlap():
    assert interval_iou([[0, 10]], [[10, 20]])[0, 0] == 0.0
    rep = score_runs([run([[0, 10]], [[10, 20]])])
    assert (rep.n_matched, rep.n_false_alarms, rep.range_recall) == (0, 1, 0.0)


def test_iou_exactly_at_threshold_is_eligible():
    # [0, 1) inside [0, 10): IoU = 1 / 10 = 0.1 exactly.
    mi, mj = match_intervals([[0, 10]], [[0, 1]], min_iou=0.1)
    assert (mi.tolist(), mj.tolist()) == ([0], [0])


def test_iou_just_below_threshold_is_not_matched_but_is_no_false_alarm():
    rep = score_runs([run([[0, 10]], [[0, 0.99]])])
    assert rep.n_matched == 0
    assert rep.n_false_alarms == 0  # it overlaps the truth, so it is not a false alarm


def test_optimal_matching_maximises_pairs_where_greedy_by_iou_does_not():
    # IoU: P0-T0 = 8/14 = 0.571 (the best pair), P0-T1 = 4/28 = 0.143, P1-T0 = 3/10 = 0.3.
    # Greedy on the best IoU takes P0-T0 and leaves one pair; optimal takes P1-T0 and P0-T1.
    truth = [[0, 10], [10, 30]]
    pred = [[2, 14], [0, 3]]
    mi, mj = match_intervals(truth, pred)
    assert list(zip(mi.tolist(), mj.tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_optimal_matching_breaks_ties_by_total_iou_not_file_order():
    # Both predictions are eligible for the one truth: IoU 2/10 = 0.2 (first in file) and 0.8.
    mi, mj = match_intervals([[0, 10]], [[0, 2], [0, 8]])
    assert mj.tolist() == [1]


def test_matching_is_one_to_one():
    mi, mj = match_intervals([[0, 10]], [[0, 10], [1, 9]])
    assert len(mi) == 1
    rep = score_runs([run([[0, 10]], [[0, 10], [1, 9]])])
    assert (rep.event_precision, rep.event_recall) == (0.5, 1.0)


# --- event metrics, TTD, FAR ------------------------------------------------------------------


def test_late_detection_gives_ttd_equal_to_the_delay():
    rep = score_runs([run([[100, 200]], [[130, 210]], emit=[135])])
    assert rep.n_matched == 1
    assert rep.ttd_median_s == 35.0 and rep.ttd_p90_s == 35.0
    assert rep.ttd_from_start is False


def test_ttd_uses_start_when_emission_time_unknown_and_flags_it():
    rep = score_runs([run([[100, 200]], [[130, 210]])])
    assert rep.ttd_median_s == 30.0
    assert rep.ttd_from_start is True


def test_ttd_is_clamped_at_zero_for_an_early_prediction():
    rep = score_runs([run([[100, 200]], [[90, 200]], emit=[95])])
    assert rep.ttd_median_s == 0.0


def test_ttd_median_and_p90_over_matched_events():
    truth = [[0, 100], [200, 300], [400, 500], [600, 700]]
    pred = [[0, 100], [210, 300], [420, 500], [630, 700]]
    rep = score_runs([run(truth, pred)])
    assert rep.ttd_median_s == 15.0  # of 0, 10, 20, 30
    assert rep.ttd_p90_s == pytest.approx(27.0)  # linear: 20 + 0.7 * 10


def test_missed_event_counts_in_recall_and_miss_rate():
    rep = score_runs([run([[0, 10], [500, 600]], [[0, 10]])])
    assert (rep.n_true, rep.n_matched, rep.event_recall, rep.miss_rate) == (2, 1, 0.5, 0.5)
    assert rep.event_precision == 1.0
    assert rep.event_f1 == pytest.approx(2 / 3)


def test_ttd_is_none_when_nothing_matched():
    rep = score_runs([run([[0, 10]], NONE)])
    assert rep.ttd_median_s is None and rep.ttd_p90_s is None and rep.miss_rate == 1.0


def test_false_alarms_per_hour_is_exact():
    # One hour scored, truth covers 1800 s: 0.5 benign hours. [100, 200) overlaps the truth (IoU
    # 100/1800 < 0.1, unmatched but not a false alarm); [2000, 2100) is the one false alarm.
    rep = score_runs([run([[0, 1800]], [[100, 200], [2000, 2100]])])
    assert rep.n_false_alarms == 1
    assert rep.benign_hours == 0.5
    assert rep.far_per_hour == 2.0


def test_far_pools_false_alarms_and_benign_time_over_runs():
    runs = [
        run(NONE, [[10, 20]], end=1800.0, run_id="a"),
        run([[0, 1800]], NONE, end=3600.0, run_id="b"),
    ]
    rep = score_runs(runs)
    assert rep.benign_hours == 1.0 and rep.far_per_hour == 1.0


def test_predictions_outside_the_scored_span_are_not_false_alarms():
    rep = score_runs([run(NONE, [[10, 50], [4000, 4100], [90, 110]], start=100.0, end=3700.0)])
    assert rep.n_false_alarms == 1  # only [90, 110) reaches into [100, 3700)
    assert rep.benign_hours == 1.0
    assert rep.n_pred == 3  # all still count as predictions for precision


def test_truth_outside_the_scored_span_does_not_reduce_benign_time():
    rep = score_runs([run([[3000, 4000]], NONE, end=3600.0)])
    assert rep.benign_hours == pytest.approx(3000 / 3600)


def test_far_is_none_with_a_reason_when_a_duration_is_unknown():
    runs = [run(NONE, [[0, 1]], run_id="known"), run(NONE, NONE, end=None, run_id="mystery")]
    rep = score_runs(runs)
    assert rep.far_per_hour is None and rep.benign_hours is None
    assert "mystery" in rep.far_reason
    assert rep.n_false_alarms == 1


def test_far_is_none_when_truth_covers_all_scored_time():
    rep = score_runs([run([[0, 3600]], [[0, 3600]])])
    assert rep.far_per_hour is None and "benign" in rep.far_reason


def test_silent_benign_runs_are_correct():
    runs = [run([[0, 10]], [[0, 10]], run_id="hit"), run(NONE, NONE, run_id="benign")]
    rep = score_runs(runs)
    assert (rep.event_precision, rep.event_recall, rep.event_f1) == (1.0, 1.0, 1.0)
    assert rep.far_per_hour == 0.0


def test_no_truth_and_no_predictions_anywhere_is_perfect():
    rep = score_runs([run(NONE, NONE)])
    assert (rep.event_precision, rep.event_recall, rep.event_f1) == (1.0, 1.0, 1.0)
    assert (rep.range_precision, rep.range_recall, rep.miss_rate) == (1.0, 1.0, 0.0)


def test_no_predictions_with_truth_gives_zero_precision_and_recall():
    rep = score_runs([run([[0, 10]], NONE)])
    assert (rep.event_precision, rep.event_recall, rep.event_f1) == (0.0, 0.0, 0.0)
    assert (rep.range_precision, rep.range_recall) == (0.0, 0.0)


def test_false_alarm_in_a_run_without_truth_costs_precision_only():
    rep = score_runs([run(NONE, [[0, 10]])])
    assert (rep.event_precision, rep.event_recall, rep.event_f1) == (0.0, 1.0, 0.0)


def test_zero_runs_report_no_far_with_a_reason():
    rep = score_runs([])
    assert rep.n_runs == 0 and rep.far_per_hour is None and "no runs" in rep.far_reason


# --- range-based precision and recall ---------------------------------------------------------


def test_range_recall_uses_the_union_of_overlapping_predictions():
    # [0, 5) and [3, 8) cover 8 of 10 s: 0.8, not the 1.0 a sum of overlaps would give.
    rep = score_runs([run([[0, 10]], [[0, 5], [3, 8]])])
    assert rep.range_recall == pytest.approx(0.8)
    assert rep.range_precision == 1.0


def test_range_metrics_are_means_over_intervals_pooled_across_runs():
    runs = [run([[0, 10]], [[0, 10]], run_id="a"), run([[0, 10], [20, 40]], [[0, 5]], run_id="b")]
    rep = score_runs(runs)
    assert rep.range_recall == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert rep.range_precision == 1.0


# --- validation and report --------------------------------------------------------------------


def test_reversed_interval_is_refused():
    with pytest.raises(
        ValueError, match="'truth' parameter of RunIntervals must have end >= start"
    ):
        RunIntervals("r", np.array([[10.0, 5.0]]), NONE)


def test_nan_time_is_refused():
    with pytest.raises(ValueError, match="finite"):
        RunIntervals("r", NONE, np.array([[0.0, np.nan]]))


def test_emit_times_must_match_predictions():
    with pytest.raises(ValueError, match="pred_emit_s"):
        RunIntervals("r", NONE, np.array([[0.0, 1.0]]), np.array([1.0, 2.0]))


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_min_iou_outside_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match="'min_iou' parameter of score_runs must be in"):
        score_runs([run(NONE, NONE)], min_iou=bad)


def test_report_to_dict_has_the_contract_fields_and_json_types():
    d = score_runs([run([[0, 10]], [[0, 10]])]).to_dict()
    for key in [
        "event_precision",
        "event_recall",
        "event_f1",
        "far_per_hour",
        "far_reason",
        "ttd_median_s",
        "ttd_p90_s",
        "miss_rate",
        "range_precision",
        "range_recall",
        "n_true",
        "n_pred",
        "n_matched",
        "n_false_alarms",
        "benign_hours",
        "n_runs",
        "ttd_from_start",
    ]:
        assert key in d
    assert all(v is None or type(v) in (int, float, bool, str) for v in d.values())


# --- bootstrap --------------------------------------------------------------------------------


def _runs_for_bootstrap() -> list[RunIntervals]:
    rng = np.random.default_rng(3)
    out = []
    for k in range(12):
        s = np.sort(rng.uniform(0, 3000, 4))
        truth = np.stack([s, s + 50], 1)
        pred = truth[rng.random(4) < 0.7] + rng.uniform(-20, 20)
        out.append(RunIntervals(f"r{k}", truth, pred, None, 0.0, 3600.0))
    return out


def test_resample_counts_draw_n_runs_per_resample_and_are_seeded():
    c = resample_run_counts(7, 50, seed=1)
    assert c.shape == (50, 7) and (c.sum(axis=1) == 7).all()
    assert (c == resample_run_counts(7, 50, seed=1)).all()
    assert not (c == resample_run_counts(7, 50, seed=2)).all()


def test_weighted_pooling_equals_scoring_the_resampled_runs():
    runs = _runs_for_bootstrap()
    weights = resample_run_counts(len(runs), 3, seed=5)
    stats = run_stats(runs)
    for w in weights:
        repeated = [r for r, k in zip(runs, w, strict=True) for _ in range(k)]
        expected = score_runs(repeated).to_dict()
        got = pool_stats(stats, weights=w).to_dict()
        for key in ("event_f1", "far_per_hour", "ttd_median_s", "ttd_p90_s", "range_recall"):
            assert got[key] == pytest.approx(expected[key]), key


def test_bootstrap_ci_is_seeded_and_ordered():
    runs = _runs_for_bootstrap()
    a = bootstrap_ci(runs, n_resamples=200, seed=0)
    assert a == bootstrap_ci(runs, n_resamples=200, seed=0)
    assert a != bootstrap_ci(runs, n_resamples=200, seed=1)
    for lo, hi in a.values():
        assert lo <= hi


def test_bootstrap_ci_of_identical_runs_is_the_point_value():
    runs = [run([[0, 10], [20, 30]], [[0, 10]], run_id=f"r{k}") for k in range(5)]
    ci = bootstrap_ci(runs, n_resamples=50, metrics=("event_recall",))
    assert ci == {"event_recall": (0.5, 0.5)}


def test_bootstrap_ci_is_none_for_a_metric_never_defined():
    ci = bootstrap_ci([run([[0, 10]], NONE)], n_resamples=20, metrics=("ttd_median_s",))
    assert ci == {"ttd_median_s": None}


def test_bootstrap_ci_refuses_unknown_metric_names():
    with pytest.raises(ValueError, match="'metrics' parameter of bootstrap_ci"):
        bootstrap_ci([run(NONE, NONE)], metrics=("f2",))


def test_report_values_are_not_nan():
    rep = score_runs(_runs_for_bootstrap())
    assert not any(isinstance(v, float) and math.isnan(v) for v in rep.to_dict().values())
