"""Software activity: chunk-invariant, deterministic demand of workloads plus schedule-driven trojans."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from simulator import trojans, workloads
from simulator.activity import CHUNK, ActivityModel
from simulator.config import (
    WORKLOAD_FAMILIES,
    RegimeSpec,
    RunSpec,
    ScheduleSpec,
    TrojanSpec,
    WorkloadSpec,
)
from simulator.demand import Demand

FIELDS = [f.name for f in fields(Demand)]
MAIN = {"compute": "cpu", "mempressure": "emc", "cv": "cv", "io": "io"}
SCHEDULE = ScheduleSpec(kind="random", on_range_s=(20.0, 60.0), gap_range_s=(30.0, 90.0))


def run_spec(
    seed: int,
    capability: str = "compute",
    *,
    family: str = "gpu_streaming",
    intensity: float = 0.5,
    variant: str = "steady",
    strength: float = 0.6,
    schedule: ScheduleSpec = SCHEDULE,
    duration_s: float = 600.0,
    hz: float = 10.0,
) -> RunSpec:
    benign = capability == "benign"
    return RunSpec(
        run_id=f"run_{seed:04d}",
        binary_id="bin_0001",
        capability=capability,
        workload=WorkloadSpec(family=family, intensity=intensity),
        trojan=None
        if benign
        else TrojanSpec(family=capability, variant=variant, strength=strength),
        schedule=None if benign else schedule,
        regime=RegimeSpec(power_mode="MAXN", ambient_c=25.0, input_voltage_v=12.0),
        device_seed=seed,
        seed=seed,
        duration_s=duration_s,
        hz=hz,
    )


def mixed_fleet(duration_s: float = 600.0) -> list[RunSpec]:
    caps = ["compute", "mempressure", "cv", "io", "benign"]
    return [
        run_spec(
            100 + i,
            caps[i % 5],
            family=WORKLOAD_FAMILIES[(i // 5) % 5],
            variant=("steady", "pulsed")[i % 2],
            duration_s=duration_s,
        )
        for i in range(25)
    ]


def stacked(dm: Demand) -> np.ndarray:
    return np.stack([getattr(dm, f) for f in FIELDS])  # (7, D, n)


def trojan_part(spec: RunSpec) -> tuple[np.ndarray, np.ndarray]:
    """(7, n) demand added by the trojan (vs the benign twin with the same seed) and (n,) active."""
    twin = spec.model_copy(update={"capability": "benign", "trojan": None, "schedule": None})
    model = ActivityModel([spec, twin])
    dm = stacked(model.demand(0, spec.n_samples))
    return dm[:, 0] - dm[:, 1], model.active(0, spec.n_samples)[0]


@pytest.mark.parametrize(
    "chunks",
    [[6000], [1] * 7 + [5993], [600] * 10, [CHUNK + 1, 3, 2500, 6000 - CHUNK - 2504], [4999, 1001]],
)
def test_any_chunking_gives_bitwise_the_same_demand(chunks: list[int]) -> None:
    model = ActivityModel(mixed_fleet())
    whole = stacked(model.demand(0, 6000))
    start, parts = 0, []
    for n in chunks:
        parts.append(stacked(model.demand(start, n)))
        start += n
    assert np.array_equal(np.concatenate(parts, axis=-1), whole)


def test_chunks_may_be_requested_in_any_order() -> None:
    model = ActivityModel(mixed_fleet())
    late, early = stacked(model.demand(3000, 700)), stacked(model.demand(0, 3700))
    assert np.array_equal(late, early[..., 3000:])


def test_demand_is_deterministic_and_depends_on_the_seed() -> None:
    a = stacked(ActivityModel(mixed_fleet()).demand(0, 2000))
    b = stacked(ActivityModel(mixed_fleet()).demand(0, 2000))
    other = [s.model_copy(update={"seed": s.seed + 1000}) for s in mixed_fleet()]
    c = stacked(ActivityModel(other).demand(0, 2000))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_a_device_does_not_depend_on_the_fleet_it_is_simulated_in() -> None:
    fleet = mixed_fleet()
    alone = stacked(ActivityModel([fleet[7]]).demand(0, 3000))[:, 0]
    longer = fleet[:7] + [fleet[7]] + [run_spec(5, duration_s=2000.0)]
    among = stacked(ActivityModel(longer).demand(0, 3000))[:, 7]
    assert np.array_equal(alone, among)


def test_demand_has_the_contract_shapes_dtypes_and_ranges() -> None:
    model = ActivityModel(mixed_fleet())
    dm = model.demand(100, 1234)
    assert dm.shape == (25, 1234)
    for f in FIELDS:
        x = getattr(dm, f)
        assert x.dtype == np.float32 and x.shape == (25, 1234)
        assert np.all((x >= 0.0) & (x <= 1.0))
    assert np.all(dm.cpu_peak >= dm.cpu)
    assert model.active(100, 1234).shape == (25, 1234)
    assert model.active(100, 1234).dtype == bool


def test_requests_outside_the_run_are_refused() -> None:
    model = ActivityModel([run_spec(1, duration_s=60.0)])
    with pytest.raises(ValueError, match=r"The 'start' and 'n' parameters of ActivityModel"):
        model.demand(590, 20)
    with pytest.raises(ValueError, match=r"must share one hz"):
        ActivityModel([run_spec(1, hz=10.0), run_spec(2, hz=5.0)])


def test_active_is_exactly_the_ground_truth_intervals() -> None:
    fleet = mixed_fleet()
    model = ActivityModel(fleet)
    t = np.arange(6000) / 10.0
    for spec, acts, active in zip(fleet, model.intervals, model.active(0, 6000), strict=True):
        expected = np.zeros(6000, bool)
        for a in acts:
            expected |= (t >= a.t_start_s) & (t < a.t_end_s)
        assert np.array_equal(active, expected)
        assert (spec.capability == "benign") == (len(acts) == 0)


@pytest.mark.parametrize("variant", ["steady", "pulsed"])
@pytest.mark.parametrize("capability", list(MAIN))
def test_trojan_demand_is_exactly_zero_outside_the_intervals(capability: str, variant: str) -> None:
    added, active = trojan_part(run_spec(21, capability, variant=variant, strength=1.0))
    assert active.any() and not active.all()
    assert np.all(added[:, ~active] == 0.0)
    assert np.any(added[:, active] > 0.0)


@pytest.mark.parametrize("capability", list(MAIN))
def test_a_steady_trojan_adds_demand_at_every_active_sample(capability: str) -> None:
    added, active = trojan_part(run_spec(22, capability, intensity=0.2, strength=0.6))
    main = FIELDS.index(MAIN[capability])
    assert np.all(added[main, active] > 0.0)


def test_a_pulsed_trojan_runs_10_to_30_percent_of_each_activation() -> None:
    for seed in range(30, 36):
        spec = run_spec(seed, "io", variant="pulsed", strength=1.0, duration_s=1800.0)
        added, active = trojan_part(spec)
        duty = np.mean(added[FIELDS.index("io"), active] > 0.0)
        assert 0.1 <= duty <= 0.3, (seed, duty)


@pytest.mark.parametrize("capability", list(MAIN))
def test_added_demand_grows_with_strength(capability: str) -> None:
    main = FIELDS.index(MAIN[capability])
    means = []
    for strength in (0.1, 0.3, 0.6, 1.0):
        added, active = trojan_part(run_spec(23, capability, intensity=0.2, strength=strength))
        means.append(added[main, active].mean())
    assert np.all(np.diff(means) > 0.0)


def test_each_trojan_family_loads_its_own_channels() -> None:
    mean = {}
    for capability in MAIN:
        added, active = trojan_part(run_spec(24, capability, intensity=0.2, strength=1.0))
        mean[capability] = dict(zip(FIELDS, added[:, active].mean(axis=1), strict=True))
    assert mean["compute"]["cpu"] > 3 * mean["compute"]["emc"] > 0.0
    assert mean["compute"]["cpu_peak"] > mean["compute"]["cpu"] * 0.9
    assert mean["mempressure"]["emc"] > 2 * mean["mempressure"]["cpu"]
    assert mean["mempressure"]["mem"] > 2 * mean["mempressure"]["cpu"]
    assert mean["cv"]["cv"] > mean["cv"]["gpu"] > 2 * mean["cv"]["cpu"]
    assert mean["io"]["io"] > 2 * mean["io"]["cpu"]
    for capability, main in MAIN.items():  # nobody else moves a family's main channel as much
        others = [mean[c][main] for c in MAIN if c != capability]
        assert mean[capability][main] > 2 * max(others)


@pytest.mark.parametrize("family", WORKLOAD_FAMILIES)
@pytest.mark.parametrize("capability", list(MAIN))
def test_default_strength_stands_out_and_weak_strength_hides_in_the_noise(
    family: str, capability: str
) -> None:
    sd = workloads.noise_std(family)
    steady = dict(family=capability, variant="steady")
    default = trojans.amplitude(TrojanSpec(strength=0.6, **steady))
    weak = trojans.amplitude(TrojanSpec(strength=0.1, **steady))
    main = [i for i, w in enumerate(trojans.WEIGHTS[capability]) if w == 1.0]
    assert np.all(default[main] >= 3.0 * sd[main])
    assert np.all(weak < 0.5 * sd)


@pytest.mark.parametrize("channel", ["cpu", "gpu", "io"])
def test_declared_noise_std_is_the_realised_sample_level_noise(channel: str) -> None:
    """The calibration above is only meaningful if `noise_std` is what the samples really show:
    median over 10 s windows of the within-window std of a long benign run (bursts and phase
    switches touch a minority of windows)."""
    spec = run_spec(40, "benign", family="gpu_streaming", duration_s=3600.0)
    x = getattr(ActivityModel([spec]).demand(0, spec.n_samples), channel)[0]
    window_std = np.median(x.reshape(-1, 100).std(axis=1))
    expected = workloads.noise_std("gpu_streaming")[FIELDS.index(channel)]
    assert 0.8 * expected < window_std < 1.1 * expected


def test_workload_families_differ_in_their_mean_loads_and_all_really_load_the_device() -> None:
    specs = [
        run_spec(50 + i, "benign", family=f, intensity=0.6, duration_s=1800.0)
        for i, f in enumerate(WORKLOAD_FAMILIES)
    ]
    dm = stacked(ActivityModel(specs).demand(0, 18000)).mean(axis=-1)  # (7, 5)
    mean = {f: dict(zip(FIELDS, dm[:, i], strict=True)) for i, f in enumerate(WORKLOAD_FAMILIES)}
    top = {ch: max(mean, key=lambda f, ch=ch: mean[f][ch]) for ch in FIELDS}
    assert top["gpu"] == "gpu_streaming"
    assert top["emc"] == top["mem"] == "memory_bound"
    assert top["io"] == "bursty_network"
    assert top["cv"] == "cv_pipeline"
    for f in WORKLOAD_FAMILIES:
        assert mean[f]["cpu"] > 0.1
        assert sum(mean[f][ch] for ch in ("cpu", "gpu", "emc", "cv", "io")) > 0.7


def test_periodic_inference_spikes_its_gpu_every_few_seconds() -> None:
    spec = run_spec(60, "benign", family="periodic_inference", duration_s=600.0)
    gpu = ActivityModel([spec]).demand(0, 6000).gpu[0]
    centred = gpu - gpu.mean()
    ac = np.array([np.dot(centred[:-lag], centred[lag:]) for lag in range(1, 80)])
    peak_lag = 1 + int(np.argmax(ac[10:])) + 10  # beyond the AR(1) noise's own correlation
    assert 20 <= peak_lag <= 50  # 2-5 s at 10 Hz
    assert ac[peak_lag - 1] > 0.3 * np.dot(centred, centred)


@pytest.mark.parametrize("family", WORKLOAD_FAMILIES)
def test_workloads_switch_phases_every_few_minutes(family: str) -> None:
    spec = run_spec(70, "benign", family=family, duration_s=3600.0)
    wl = workloads.device_workload(spec, spec.n_samples)
    assert len(set(wl.phase_level.tolist())) >= 2
    assert 4 <= wl.phase_start.size <= 120
    # and the switch shows in the demand: minute means differ by more than their noise
    dm = ActivityModel([spec]).demand(0, spec.n_samples)
    minutes = (dm.cpu[0] + dm.emc[0]).reshape(60, 600).mean(axis=1)
    assert minutes.max() - minutes.min() > 0.08


@pytest.mark.parametrize("family", WORKLOAD_FAMILIES)
def test_benign_bursts_hit_the_channels_trojans_use(family: str) -> None:
    spec = run_spec(80, "benign", family=family, duration_s=3600.0)
    wl = workloads.device_workload(spec, spec.n_samples)
    assert wl.burst_start.size >= 20
    assert np.all(wl.burst_end > wl.burst_start)
    assert np.all(wl.burst_start[1:] >= wl.burst_end[:-1])  # one burst at a time
    hit = wl.burst_amp.max(axis=0) > 0.05  # (7,) channels some burst raises noticeably
    assert hit[FIELDS.index("cpu")]
    assert hit[FIELDS.index("io")] or hit[FIELDS.index("cv")] or hit[FIELDS.index("mem")]


def test_bursty_network_bursts_have_heavy_tailed_durations() -> None:
    spec = run_spec(90, "benign", family="bursty_network", duration_s=7200.0)
    wl = workloads.device_workload(spec, spec.n_samples)
    dur = (wl.burst_end - wl.burst_start) / spec.hz
    assert dur.max() > 10 * np.median(dur)
