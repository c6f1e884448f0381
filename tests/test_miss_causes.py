"""Why each truth event was missed (stream.miss_causes)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.decide import DecisionConfig
from stream.metrics import RunIntervals, score_runs
from stream.miss_causes import MISS_CAUSES, count_causes, miss_causes
from stream.offline_decide import decide_offline

CFG = DecisionConfig(on_threshold=0.5, off_threshold=0.5, min_duration_s=5.0, merge_gap_s=0.0)


def _one_run(high: list[tuple[float, float]], t_max: float = 120.0):
    """Windows every second; the score is 0.9 on [a, b] for each (a, b) in `high`, else 0.1."""
    t = np.arange(1.0, t_max + 1.0)
    s = np.full(t.size, 0.1)
    for a, b in high:
        s[(t >= a) & (t <= b)] = 0.9
    return t, s, np.zeros(t.size, np.int64)


def test_each_cause_is_told_apart_on_a_hand_checked_run():
    # A: high for 15 s inside it; B: high for 2 s only (min duration 5 s); C: low throughout;
    # D: a 0.5 s event inside a 16 s raised interval (IoU 0.03 < 0.1).
    t, s, run = _one_run([(22, 36), (51, 52), (85, 100)])
    truth = np.array([[20, 40], [50, 55], [70, 80], [90, 90.5]])
    (causes,) = miss_causes(t, s, run, [truth], CFG)
    assert causes.tolist() == ["detected", "too_short", "below_on", "raised_unmatched"]


def test_a_fast_raise_turns_a_short_crossing_into_a_raised_interval():
    t, s, run = _one_run([(51, 52)])
    truth = np.array([[50, 55]])
    fast = DecisionConfig(0.5, 0.5, min_duration_s=5.0, merge_gap_s=0.0, raise_threshold=0.8)
    assert miss_causes(t, s, run, [truth], CFG)[0].tolist() == ["too_short"]
    assert miss_causes(t, s, run, [truth], fast)[0].tolist() == ["detected"]


def test_backdating_is_applied_before_comparing_with_the_event():
    # The score crosses 3 s after the event ended; backdated by 5 s, the interval covers it.
    t, s, run = _one_run([(43, 60)])
    truth = np.array([[30, 40]])
    plain = miss_causes(t, s, run, [truth], CFG)[0].tolist()
    back = DecisionConfig(0.5, 0.5, min_duration_s=5.0, merge_gap_s=0.0, backdate_s=5.0)
    assert plain == ["below_on"]
    assert miss_causes(t, s, run, [truth], back)[0].tolist() == ["raised_unmatched"]


def test_a_run_without_truth_gives_no_causes_and_counts_stay_zero():
    t, s, run = _one_run([(10, 30)])
    causes = miss_causes(t, s, run, [np.zeros((0, 2))], CFG)
    assert causes[0].size == 0
    assert count_causes(causes)["all"] == dict.fromkeys(MISS_CAUSES, 0)


def test_mismatched_window_arrays_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        miss_causes(np.arange(3.0), np.zeros(2), np.zeros(3, np.int64), [np.zeros((0, 2))], CFG)


def test_counts_by_group_add_up_and_order_strength_bands_weakest_first():
    causes = [np.array(["detected", "below_on"], object), np.array(["too_short"], object)]
    groups = [np.array([">=0.6", "<0.3"], object), np.array([">=0.6"], object)]
    out = count_causes(causes, groups)
    assert out["all"] == {"detected": 1, "raised_unmatched": 0, "too_short": 1, "below_on": 1}
    assert list(out["by_group"]) == ["<0.3", ">=0.6"]
    assert out["by_group"][">=0.6"]["too_short"] == 1
    with pytest.raises(ValueError, match="label every event"):
        count_causes(causes, [np.array(["<0.3"], object)])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_runs=st.integers(1, 4),
    on=st.floats(0.3, 0.9),
    min_dur=st.sampled_from([1.0, 3.0, 6.0]),
    gap=st.sampled_from([0.0, 2.0, 5.0]),
    backdate=st.sampled_from([0.0, 2.5]),
)
def test_detected_events_are_exactly_the_pooled_metrics_matches(
    seed, n_runs, on, min_dur, gap, backdate
):
    rng = np.random.default_rng(seed)
    cfg = DecisionConfig(on, on * 0.8, min_dur, gap, backdate)
    ts, ss, rs, truths = [], [], [], []
    for k in range(n_runs):
        t = np.arange(1.0, 201.0)
        ts.append(t)
        ss.append(np.clip(rng.random(t.size) * 0.6 + (rng.random(t.size) < 0.2) * 0.4, 0, 1))
        rs.append(np.full(t.size, k, np.int64))
        starts = np.sort(rng.choice(np.arange(0, 190, 12), size=rng.integers(0, 5), replace=False))
        truths.append(
            np.stack([starts, starts + rng.integers(1, 11, starts.size)], 1).astype(float)
        )
    t, s, run = np.concatenate(ts), np.concatenate(ss), np.concatenate(rs)
    causes = miss_causes(t, s, run, truths, cfg)
    o = decide_offline(t, s, run, cfg)
    runs = [
        RunIntervals(
            str(k), truth=truths[k], pred=np.stack([o.start[o.run == k], o.end[o.run == k]], 1)
        )
        for k in range(n_runs)
    ]
    rep = score_runs(runs)
    counts = count_causes(causes)["all"]
    assert counts["detected"] == rep.n_matched
    assert sum(counts.values()) == rep.n_true
