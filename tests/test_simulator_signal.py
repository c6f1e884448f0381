"""The simulated telemetry carries real trojan signal, weak trojans are hard, and a fleet is
chunk- and seed-deterministic (the research code's data had no trojan activity at all)."""

import numpy as np
import pytest

from simulator.config import (
    WORKLOAD_FAMILIES,
    RegimeSpec,
    RunSpec,
    ScheduleSpec,
    TrojanSpec,
    WorkloadSpec,
)
from simulator.fleet import Fleet
from stream.schema import FEATURE_COLUMNS, LOG_FEATURES, MASK_COLUMNS, SIGNAL_COLUMNS

EXPECTED = {
    "compute": ("cpu_util_avg", "p_cpu_mw", "delta_cycles", "delta_instructions"),
    "mempressure": ("emc_util", "p_vddrq_mw", "delta_cache_misses", "delta_page_faults"),
    "cv": ("cv_util", "p_cv_mw", "gpu_util", "p_gpu_mw"),
    "io": ("delta_context_switches", "p_sys5v_mw"),
}
DEFAULT_STRENGTH, WEAK_STRENGTH = 0.6, 0.1


def _spec(family, strength, workload, seed, duration_s=900.0):
    return RunSpec(
        run_id=f"run_{seed:04d}",
        binary_id="bin_x",
        capability=family,
        workload=WorkloadSpec(family=workload, intensity=0.6),
        trojan=TrojanSpec(family=family, variant="steady", strength=strength),
        schedule=ScheduleSpec(kind="periodic", period_s=120.0, on_s=40.0, jitter=0.1),
        regime=RegimeSpec(power_mode="MAXN", ambient_c=25.0, input_voltage_v=12.0),
        device_seed=seed,
        seed=seed,
        duration_s=duration_s,
        hz=10.0,
    )


def _effect_sizes(family, strength):
    """(workload, feature) -> (mean active - mean inactive) / std inactive, within each run."""
    specs = [_spec(family, strength, wl, 100 + i) for i, wl in enumerate(WORKLOAD_FAMILIES)]
    fleet = Fleet(specs)
    n = specs[0].n_samples
    cols = fleet.step(n)
    active = fleet.activity.active(0, n)
    out = {}
    for d, wl in enumerate(WORKLOAD_FAMILIES):
        a = active[d]
        assert 0.1 < a.mean() < 0.6
        for c in FEATURE_COLUMNS:
            v = cols[c][d].astype(np.float64)
            if c in LOG_FEATURES:
                v = np.log1p(v)
            sd = v[~a].std()
            out[wl, c] = 0.0 if sd == 0 else (v[a].mean() - v[~a].mean()) / sd
    return out


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_default_strength_trojans_move_their_channels_by_more_than_2_sigma(family):
    es = _effect_sizes(family, DEFAULT_STRENGTH)
    best = [max(es[wl, c] for c in EXPECTED[family]) for wl in WORKLOAD_FAMILIES]
    # A workload that already saturates the family's resource may hide it; the others may not.
    assert sum(b > 2.0 for b in best) >= len(WORKLOAD_FAMILIES) - 1, best


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_weakest_trojans_stay_below_1_sigma_on_every_channel(family):
    es = _effect_sizes(family, WEAK_STRENGTH)
    assert max(abs(v) for v in es.values()) < 1.0


def test_devices_really_work_and_dvfs_moves():
    specs = [_spec("compute", 0.6, wl, 200 + i, 600.0) for i, wl in enumerate(WORKLOAD_FAMILIES)]
    cols = Fleet(specs).step(specs[0].n_samples)
    assert cols["cpu_util_avg"].mean() > 15.0
    assert all(np.unique(cols["cpu_freq_mhz"][d]).size >= 2 for d in range(len(specs)))
    for c in ("cpu_freq_mhz", "gpu_freq_mhz", "emc_freq_mhz"):
        assert max(np.unique(cols[c][d]).size for d in range(len(specs))) >= 3, c


def test_chunking_does_not_change_the_output():
    specs = [_spec("io", 0.5, wl, 300 + i, 120.0) for i, wl in enumerate(WORKLOAD_FAMILIES[:3])]
    whole = Fleet(specs).step(1200)
    fleet = Fleet(specs)
    parts = [fleet.step(n) for n in (1, 7, 500, 92, 600)]
    for c in SIGNAL_COLUMNS + MASK_COLUMNS:
        assert np.array_equal(np.concatenate([p[c] for p in parts], axis=1), whole[c]), c


def test_a_run_does_not_depend_on_the_fleet_it_is_simulated_in():
    spec = _spec("cv", 0.5, "gpu_streaming", 1, 120.0)
    alone = Fleet([spec]).step(1200)
    others = [_spec("io", 0.5, wl, 40 + i, 120.0) for i, wl in enumerate(WORKLOAD_FAMILIES)]
    together = Fleet([spec, *others]).step(1200)
    for c in SIGNAL_COLUMNS + MASK_COLUMNS:
        assert np.array_equal(alone[c][0], together[c][0]), c


def test_a_benchmark_run_resimulated_alone_from_its_meta_json_gives_the_same_files(
    tiny_data, tmp_path
):
    """What a reader of a paper needs: one run reproduced without simulating the whole benchmark."""
    import json

    from simulator.dataset import write_runs
    from simulator.meta import read_run_spec

    warmup_s = json.loads((tiny_data / "benchmark.json").read_text())["warmup_s"]
    for run_id in sorted(p.name for p in (tiny_data / "runs").iterdir())[:3]:
        spec = read_run_spec(tiny_data / "runs" / run_id / "meta.json")
        write_runs([spec], tmp_path, warmup_s)
        for name in ("telemetry.csv", "intervals.csv", "meta.json"):
            again = (tmp_path / run_id / name).read_bytes()
            assert again == (tiny_data / "runs" / run_id / name).read_bytes(), (run_id, name)


def test_same_seed_same_output_other_seed_differs():
    a = Fleet([_spec("cv", 0.5, "gpu_streaming", 1, 60.0)]).step(600)
    b = Fleet([_spec("cv", 0.5, "gpu_streaming", 1, 60.0)]).step(600)
    c = Fleet([_spec("cv", 0.5, "gpu_streaming", 2, 60.0)]).step(600)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["p_sys5v_mw"], c["p_sys5v_mw"])
