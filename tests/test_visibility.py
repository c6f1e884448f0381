"""Onset visibility of truth events against the run's own benign steps (stream.visibility)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.schema import FEATURE_COLUMNS
from stream.visibility import onset_visibility, visibility_band

HZ = 10.0


def _run(seconds: float = 600.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """White-noise telemetry: every feature N(100, 1) (positive, so the counters' log1p is fine)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * HZ)) / HZ
    return t, 100.0 + rng.standard_normal((len(t), len(FEATURE_COLUMNS)))


def test_a_large_step_is_clear_and_a_missing_one_is_hidden():
    t, x = _run()
    x[(t >= 200) & (t < 240), 0] += 5.0  # a step of 5 noise stds in one channel
    vis = onset_visibility(t, x, [[200.0, 240.0], [400.0, 440.0]])  # the second: nothing there
    assert vis.band.tolist() == ["clear", "hidden"]
    assert vis.exceedance[0] == 0.0
    assert vis.exceedance[1] > 0.01
    assert vis.contrast[0] > 3 * vis.contrast[1]


def test_a_step_along_the_workloads_own_direction_counts_less_than_one_across_it():
    """The same step size is hidden when the benign load steps that way all the time."""
    t, x = _run(seed=1)
    rng = np.random.default_rng(2)
    level = np.repeat(rng.choice([0.0, 3.0], size=len(t) // 100), 100)  # benign phases, 10 s each
    x[:, 0] += level
    x[:, 1] += level  # the workload moves channels 0 and 1 together
    along, across = x.copy(), x.copy()
    ev = (t >= 305) & (t < 345)  # inside the phases, so the event never coincides with a switch
    along[ev, 0] += 3.0
    along[ev, 1] += 3.0
    across[ev, 0] += 3.0
    across[ev, 1] -= 3.0
    a = onset_visibility(t, along, [[305.0, 345.0]])
    c = onset_visibility(t, across, [[305.0, 345.0]])
    assert a.exceedance[0] > 0.01
    assert c.exceedance[0] == 0.0


def test_events_at_the_run_start_and_runs_without_benign_time_are_unknown():
    t, x = _run(seconds=240.0)
    at_start = onset_visibility(t, x, [[0.0, 20.0], [60.0, 80.0]])
    assert at_start.band[0] == "unknown" and np.isnan(at_start.exceedance[0])
    assert at_start.band[1] != "unknown"
    busy = onset_visibility(t, x, [[8.0, 235.0]])
    assert busy.band.tolist() == ["unknown"] and busy.n_benign == 0


def test_a_run_without_events_or_samples_gives_empty_or_unknown_labels():
    t, x = _run(seconds=60.0)
    assert onset_visibility(t, x, np.zeros((0, 2))).band.tolist() == []
    short = onset_visibility(t[:5], x[:5], [[0.1, 0.3]])
    assert short.band.tolist() == ["unknown"]


def test_visibility_does_not_depend_on_units_or_offsets():
    """A channel in mW or W, or shifted, gives the same bands: contrasts are whitened."""
    t, x = _run(seed=3)
    x[(t >= 200) & (t < 240), 12] += 2.0
    truth = [[200.0, 240.0], [450.0, 480.0]]
    base = onset_visibility(t, x, truth)
    y = x.copy()
    y[:, 12] = y[:, 12] * 1000.0 + 7.0  # not a log1p counter column
    assert FEATURE_COLUMNS[12] not in ("cycles",)
    moved = onset_visibility(t, y, truth)
    np.testing.assert_allclose(moved.exceedance, base.exceedance)
    assert moved.band.tolist() == base.band.tolist()


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0, allow_nan=False))
def test_bands_partition_exceedance(e):
    band = visibility_band(e)
    assert band == ("hidden" if e >= 1e-2 else "faint" if e >= 1e-3 else "clear")


def test_nan_exceedance_is_unknown():
    assert visibility_band(float("nan")) == "unknown"


@pytest.mark.parametrize("seed", [0, 1])
def test_benign_exceedance_is_uniform_for_pure_noise(seed):
    """With no signal anywhere, an 'event' is about as visible as a random benign moment: near 1 in
    10 'events' placed at random land in the top 10 % of benign contrasts (a little more, since the
    covariance is fitted without them), and none is clear."""
    t, x = _run(seconds=3000.0, seed=seed)
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.choice(np.arange(30, 2950, 20.0), size=80, replace=False))
    vis = onset_visibility(t, x, np.stack([starts, starts + 1.0], axis=1), guard_s=0.0)
    assert 0.02 < np.mean(vis.exceedance < 0.1) < 0.3
    assert 0.3 < np.mean(vis.exceedance) < 0.7
    assert np.mean(vis.band == "clear") <= 0.05
