"""Trojan activation schedules: well-formed, deterministic, stationary ground-truth intervals."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.config import RegimeSpec, RunSpec, ScheduleSpec, TrojanSpec, WorkloadSpec
from simulator.schedules import Activation, activation_intervals

PERIODIC = ScheduleSpec(kind="periodic", period_s=120.0, on_s=30.0, jitter=0.3)
RANDOM = ScheduleSpec(kind="random", on_range_s=(10.0, 90.0), gap_range_s=(30.0, 300.0))


def run_spec(
    seed: int,
    schedule: ScheduleSpec | None = RANDOM,
    *,
    duration_s: float = 1800.0,
    hz: float = 10.0,
    variant: str = "steady",
) -> RunSpec:
    benign = schedule is None
    return RunSpec(
        run_id=f"run_{seed:04d}",
        binary_id="bin_0001",
        capability="benign" if benign else "compute",
        workload=WorkloadSpec(family="gpu_streaming", intensity=0.5),
        trojan=None if benign else TrojanSpec(family="compute", variant=variant, strength=0.6),
        schedule=schedule,
        regime=RegimeSpec(power_mode="MAXN", ambient_c=25.0, input_voltage_v=12.0),
        device_seed=seed,
        seed=seed,
        duration_s=duration_s,
        hz=hz,
    )


@pytest.mark.parametrize("schedule", [PERIODIC, RANDOM], ids=["periodic", "random"])
@pytest.mark.parametrize(("duration_s", "hz"), [(1800.0, 10.0), (917.3, 4.0), (600.0, 1.0)])
def test_intervals_are_sorted_disjoint_inside_the_run_and_on_the_sample_grid(
    schedule: ScheduleSpec, duration_s: float, hz: float
) -> None:
    for seed in range(40):
        acts = activation_intervals(run_spec(seed, schedule, duration_s=duration_s, hz=hz))
        for a in acts:
            assert 0.0 <= a.t_start_s < a.t_end_s <= duration_s
            for t in (a.t_start_s, a.t_end_s):
                assert abs(t * hz - round(t * hz)) < 1e-6
        for prev, nxt in zip(acts, acts[1:], strict=False):
            assert prev.t_end_s < nxt.t_start_s


def test_activations_carry_the_trojan_identity() -> None:
    acts = activation_intervals(run_spec(3, RANDOM, variant="pulsed"))
    assert acts
    assert {(a.family, a.variant, a.strength) for a in acts} == {("compute", "pulsed", 0.6)}
    assert all(isinstance(a, Activation) for a in acts)


def test_benign_runs_and_dormant_schedules_never_activate() -> None:
    dormant = ScheduleSpec(kind="dormant")
    for seed in range(20):
        assert activation_intervals(run_spec(seed, None)) == ()
        assert activation_intervals(run_spec(seed, dormant)) == ()


@pytest.mark.parametrize("schedule", [PERIODIC, RANDOM], ids=["periodic", "random"])
def test_intervals_are_deterministic_per_seed_and_differ_between_seeds(
    schedule: ScheduleSpec,
) -> None:
    assert activation_intervals(run_spec(7, schedule)) == activation_intervals(
        run_spec(7, schedule)
    )
    assert activation_intervals(run_spec(7, schedule)) != activation_intervals(
        run_spec(8, schedule)
    )


@pytest.mark.parametrize("schedule", [PERIODIC, RANDOM], ids=["periodic", "random"])
def test_activation_probability_does_not_depend_on_time_since_start(
    schedule: ScheduleSpec,
) -> None:
    duration_s, times = 1800.0, np.array([0.0, 5.0, 30.0, 300.0, 0.8 * 1800.0, 1799.0])
    hits = np.zeros(times.size)
    for seed in range(2000):
        for a in activation_intervals(run_spec(seed, schedule, duration_s=duration_s)):
            hits += (times >= a.t_start_s) & (times < a.t_end_s)
    p = hits / 2000
    assert p.min() > 0.05  # the schedule really is active a fair share of the time
    assert abs(p[1] - p[4]) < 0.05  # t = 5 s vs t = 0.8 * duration
    assert p.max() - p.min() < 0.06


@pytest.mark.parametrize("schedule", [PERIODIC, RANDOM], ids=["periodic", "random"])
def test_first_onset_is_spread_over_the_start_of_the_run(schedule: ScheduleSpec) -> None:
    firsts = []
    for seed in range(200):
        acts = activation_intervals(run_spec(seed, schedule))
        firsts.append(acts[0].t_start_s if acts else np.inf)
    firsts = np.array(firsts)
    assert np.mean(firsts == 0.0) > 0.05  # some runs are already active when they start
    assert np.sum((firsts > 0.0) & (firsts < 60.0)) >= 10  # some start within the first minute
    assert np.sum(firsts >= 60.0) >= 10  # and some later


def test_periodic_onsets_follow_the_jittered_period() -> None:
    spec = run_spec(11, PERIODIC, duration_s=7200.0)
    acts = activation_intervals(spec)
    starts = np.array([a.t_start_s for a in acts if a.t_start_s > 0.0])
    lengths = np.array([a.t_end_s - a.t_start_s for a in acts[1:-1]])
    spacing = np.diff(starts)
    assert np.all(spacing >= 120.0 * (1 - 0.3) - 0.1)
    assert np.all(spacing <= 120.0 * (1 + 0.3) + 0.1)
    assert np.all(lengths <= 30.0 + 1e-9)
    assert np.mean(lengths) > 25.0


def test_random_durations_and_gaps_stay_in_their_ranges() -> None:
    acts = activation_intervals(run_spec(5, RANDOM, duration_s=36000.0))
    inner = acts[1:-1]
    on = np.array([a.t_end_s - a.t_start_s for a in inner])
    gaps = np.array([b.t_start_s - a.t_end_s for a, b in zip(acts, acts[1:], strict=False)])
    assert np.all((on >= 10.0 - 0.1) & (on <= 90.0 + 0.1))
    assert np.all((gaps >= 30.0 - 0.1) & (gaps <= 300.0 + 0.1))
    # log-uniform: the median on-duration sits near the geometric mean, not the arithmetic one
    assert 22.0 < np.median(on) < 40.0


def test_a_malformed_random_range_is_refused_with_the_error_template() -> None:
    bad = ScheduleSpec(kind="random", on_range_s=(50.0, 10.0), gap_range_s=(30.0, 300.0))
    with pytest.raises(ValueError, match=r"The 'on_range_s' parameter of ScheduleSpec must be"):
        activation_intervals(run_spec(1, bad))
