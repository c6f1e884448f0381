"""Windowing and causal normalisation: the contract shared by training and serving."""

import numpy as np
import pytest

from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.windowing import (
    CausalNormaliser,
    Normalisation,
    OnlineWindower,
    WindowSpec,
    baseline_residuals,
    emission_indices,
    fit_scale,
    fit_spread_ref,
    scaled_run,
    transform_features,
    window_run,
)

F, K = len(FEATURE_COLUMNS), len(MASK_COLUMNS)
SPEC = WindowSpec(hz=10.0, window_s=2.0, stride_s=0.5)


def _run(seed: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.normal(50, 5, size=(T, F)).cumsum(axis=0) / 10
    raw[:, -7:] = rng.integers(0, 10**8, size=(T, 7))  # perf counters, log1p'd
    masks = (rng.random((T, K)) > 0.2).astype(np.uint8)
    return raw, masks


def _norm() -> Normalisation:
    return Normalisation(scale=tuple(np.linspace(0.5, 2.0, F)))


def _offline(raw, masks, spec=SPEC):
    norm = _norm()
    r = baseline_residuals(raw, spec.hz, norm)
    z = CausalNormaliser(1, spec.hz, norm).scale_residuals(r)
    return window_run(z, masks, spec)


def _online(runs, spec=SPEC, order_seed=0):
    """Feed several devices sample by sample in a shuffled interleaving; collect windows."""
    norm = _norm()
    D = len(runs)
    normaliser = CausalNormaliser(D, spec.hz, norm)
    windower = OnlineWindower(D, spec, F, K)
    feats = [transform_features(raw) for raw, _ in runs]
    pos = [0] * D
    out = {d: [] for d in range(D)}
    rng = np.random.default_rng(order_seed)
    pending = [d for d in range(D) for _ in range(len(runs[d][0]))]
    rng.shuffle(pending)
    for d in pending:
        t = pos[d]
        pos[d] += 1
        rows = np.array([d])
        r = normaliser.step(feats[d][t : t + 1], rows)
        ready = windower.push(rows, normaliser.scale_residuals(r), runs[d][1][t : t + 1])
        if ready.size:
            X, M = windower.windows(ready)
            out[d].append((t, X[0], M[0]))
    return out


def test_online_windows_equal_offline_windows_bitwise():
    runs = [_run(s, 137) for s in range(3)]
    online = _online(runs)
    for d, (raw, masks) in enumerate(runs):
        X, M, ends = _offline(raw, masks)
        assert [t for t, _, _ in online[d]] == ends.tolist()
        for i, (_, x, m) in enumerate(online[d]):
            assert np.array_equal(x, X[i]) and np.array_equal(m, M[i])


def test_device_interleaving_does_not_change_windows():
    runs = [_run(s, 90) for s in range(4)]
    a, b = _online(runs, order_seed=1), _online(runs, order_seed=2)
    for d in range(4):
        assert all(
            np.array_equal(x1, x2) for (_, x1, _), (_, x2, _) in zip(a[d], b[d], strict=True)
        )


def test_windows_only_use_samples_at_or_before_their_end():
    raw, masks = _run(7, 120)
    X, M, ends = _offline(raw, masks)
    cut = 70
    raw2, masks2 = raw.copy(), masks.copy()
    raw2[cut + 1 :] = raw2[cut + 1 :] * 3 + 100
    masks2[cut + 1 :] = 1 - masks2[cut + 1 :]
    X2, M2, ends2 = _offline(raw2, masks2)
    early = ends <= cut
    assert early.any() and (~early).any()
    assert np.array_equal(X[early], X2[early]) and np.array_equal(M[early], M2[early])
    assert not np.array_equal(X[~early], X2[~early])


def test_emissions_are_aligned_to_the_absolute_sample_count():
    spec = WindowSpec(hz=10, window_s=2.0, stride_s=1.0)
    idx = emission_indices(55, spec)
    assert idx.tolist() == [19, 29, 39, 49]
    coarse = emission_indices(400, WindowSpec(hz=10, window_s=20.0, stride_s=4.0))
    fine = emission_indices(400, WindowSpec(hz=10, window_s=20.0, stride_s=1.0))
    assert set(coarse.tolist()) <= set(fine.tolist())


def test_baseline_recovers_after_activity_during_warm_up():
    hz = 10.0
    T = int(400 * hz)
    raw = np.full((T, F), 10.0)
    active = np.zeros(T, bool)
    active[: int(60 * hz)] = True  # a trojan active from the first sample
    active[int(250 * hz) : int(280 * hz)] = True
    raw[active, 0] += 5.0
    r = baseline_residuals(raw, hz, Normalisation.unit())
    assert abs(r[int(200 * hz), 0]) < 0.2  # baseline back at the quiet level
    assert r[int(270 * hz), 0] > 4.0  # later activity stands out


def test_baseline_ignores_non_finite_values():
    raw = np.full((50, F), 3.0)
    raw[10:20, 2] = np.nan
    raw[25, 3] = np.inf
    r = baseline_residuals(raw, 10.0, Normalisation.unit())
    assert np.isfinite(r).all()
    assert np.all(r[:, 2] == 0.0)


def test_counters_are_log_transformed():
    raw = np.zeros((1, F))
    raw[0, FEATURE_COLUMNS.index("delta_cycles")] = np.e - 1
    out = transform_features(raw)
    assert out[0, FEATURE_COLUMNS.index("delta_cycles")] == pytest.approx(1.0)
    assert raw[0, FEATURE_COLUMNS.index("delta_cycles")] == pytest.approx(np.e - 1)  # not mutated


def test_state_per_device_stays_under_64_kb():
    spec = WindowSpec(hz=10.0, window_s=20.0, stride_s=1.0)
    w = OnlineWindower(100, spec, F, K)
    n = CausalNormaliser(100, spec.hz, Normalisation.unit())
    per_device = (w.values.nbytes + w.masks.nbytes + n.baseline.nbytes + n.started.nbytes) / 100
    assert per_device <= 64 * 1024


def test_fit_scale_is_positive_and_robust():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 2.0, size=(5000, F))
    r[:, 1] = 0.0
    scale = fit_scale([r[:2500], r[2500:]])
    assert all(s > 0 for s in scale)
    assert scale[0] == pytest.approx(2.0, rel=0.1)


@pytest.mark.parametrize("kw", [{"hz": 0}, {"window_s": -1}, {"stride_s": 30.0}])
def test_bad_window_spec_is_refused_with_the_template(kw):
    with pytest.raises(ValueError, match=r"parameter of WindowSpec must be"):
        WindowSpec(**kw)


def _spread_norm(tau_s: float = 30.0) -> Normalisation:
    return Normalisation(scale=(1.0,) * F, spread_tau_s=tau_s, spread_ref=(2.0,) * F)


def test_spread_adaptation_shrinks_a_channel_that_is_always_busy_on_this_device():
    rng = np.random.default_rng(0)
    T = 3000  # 300 s at 10 Hz, ten spread time constants
    r = np.abs(rng.normal(0.0, 1.0, (T, F)))  # typical: |z| ~ 0.8 < ref 2
    r[:, 4] = 6.0 + rng.normal(0.0, 0.5, T)  # one channel busy all the time
    z = scaled_run(r, 10.0, _spread_norm())
    assert np.array_equal(z[-100:, 0], r[-100:, 0].astype(np.float32))  # typical: untouched
    assert 1.5 < z[-100:, 4].mean() < 2.5  # busy: shrunk to about the reference


def test_spread_adaptation_leaves_a_short_burst_on_a_quiet_device_untouched():
    r = np.zeros((3000, F))
    r[2000:2300, 0] = 6.0  # a 30 s activation on a quiet device, tau 300 s
    z = scaled_run(r, 10.0, _spread_norm(300.0))
    assert (z[2000:2300, 0] == 6.0).all()  # m_t stays below the reference: divisor 1


def test_spread_scale_step_online_equals_scaled_run_offline():
    raw, _ = _run(3, 400)
    norm = Normalisation(
        scale=tuple(np.linspace(0.5, 2.0, F)), spread_tau_s=5.0, spread_ref=(0.5,) * F
    )
    r = baseline_residuals(raw, 10.0, norm)
    offline = scaled_run(r, 10.0, norm)
    online = CausalNormaliser(2, 10.0, norm)
    rows = np.array([1])
    got = np.concatenate([online.scale_step(r[t : t + 1], rows) for t in range(r.shape[0])])
    assert np.array_equal(offline, got)
    assert not np.array_equal(offline, online.scale_residuals(r))  # the adaptation acted


def test_spread_fitted_reference_is_a_per_feature_quantile_of_the_traced_spread():
    rng = np.random.default_rng(1)
    runs = [np.abs(rng.normal(0.0, s, (500, F))) for s in (1.0, 3.0)]
    norm = Normalisation(scale=(1.0,) * F, spread_tau_s=5.0, spread_ref=(1.0,) * F)
    ref = np.array(fit_spread_ref(runs, 10.0, norm, q=0.5))
    assert ref.shape == (F,)
    assert (ref > 0.8).all() and (ref < 2.4).all()  # between the two runs' mean |z|


def test_spread_needs_a_reference():
    with pytest.raises(ValueError, match="spread_ref"):
        Normalisation(scale=(1.0,) * F, spread_tau_s=10.0)


def test_spread_warm_start_learns_a_busy_channel_within_a_minute():
    """From a device's first samples: the plain start needs several tau, the warm start ~1 min."""
    r = np.zeros((900, F))  # 90 s at 10 Hz
    r[:, 4] = 6.0  # busy from the first second; reference 2
    plain = scaled_run(r, 10.0, _spread_norm(300.0))
    warm_norm = Normalisation(
        scale=(1.0,) * F, spread_tau_s=300.0, spread_ref=(2.0,) * F, spread_warm_s=30.0
    )
    warm = scaled_run(r, 10.0, warm_norm)
    assert plain[600, 4] > 4.0  # after 60 s the plain start still passes most of it
    assert warm[600, 4] < 3.0  # warm: m = (30 s x 2 + 60 s x 6) / 90 s, so 6 / (m / 2) = 2.6


def test_spread_warm_start_keeps_a_short_burst_after_warm_up():
    r = np.zeros((3000, F))
    r[2000:2300, 0] = 6.0
    norm = Normalisation(
        scale=(1.0,) * F, spread_tau_s=300.0, spread_ref=(2.0,) * F, spread_warm_s=30.0
    )
    z = scaled_run(r, 10.0, norm)
    assert (z[2000:2300, 0] == 6.0).all()  # a quiet device's m_t stays under the reference


def test_spread_warm_start_online_equals_offline_per_device():
    raw, _ = _run(3, 400)
    norm = Normalisation(
        scale=tuple(np.linspace(0.5, 2.0, F)),
        spread_tau_s=20.0,
        spread_ref=(0.5,) * F,
        spread_warm_s=3.0,
    )
    r = baseline_residuals(raw, 10.0, norm)
    online = CausalNormaliser(2, 10.0, norm)
    rows = np.array([1])
    online.scale_step(r[:50], np.zeros(50, np.intp))  # device 0's samples do not move device 1
    got = np.concatenate([online.scale_step(r[t : t + 1], rows) for t in range(r.shape[0])])
    assert np.array_equal(scaled_run(r, 10.0, norm), got)


def test_spread_warm_start_must_be_finite_and_not_negative():
    with pytest.raises(ValueError, match="spread_warm_s"):
        Normalisation(scale=(1.0,) * F, spread_warm_s=-1.0)
