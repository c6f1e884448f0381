"""Specification of the device physics: DVFS, throttling, thermal, power, fan, perf, sensors."""

from __future__ import annotations

from dataclasses import fields
from functools import cache

import numpy as np
import pytest

from simulator.config import RegimeSpec, RunSpec, WorkloadSpec
from simulator.demand import Demand
from simulator.device import DeviceModel
from simulator.dvfs import CPU_FREQS_MHZ, EMC_FREQS_MHZ, GPU_FREQS_MHZ, RECOVERY_C, TRIP_C
from simulator.fan import MIN_DWELL_S
from simulator.instance import draw_instances
from simulator.power import InaAverager
from simulator.thermal import ThermalNetwork
from stream.schema import MASK_COLUMNS, SIGNAL_COLUMNS, TEMP_COLUMNS

HZ = 10.0


def spec(
    i: int = 0,
    mode: str = "MAXN",
    amb: float = 25.0,
    jc: bool = False,
    device_seed: int | None = None,
    seed: int | None = None,
) -> RunSpec:
    return RunSpec(
        run_id=f"run_{i}",
        binary_id="bin",
        capability="benign",
        workload=WorkloadSpec(family="periodic_inference", intensity=0.5),
        regime=RegimeSpec(power_mode=mode, ambient_c=amb, input_voltage_v=19.0, jetson_clocks=jc),
        device_seed=i if device_seed is None else device_seed,
        seed=1000 + i if seed is None else seed,
        duration_s=600.0,
        hz=HZ,
    )


def demand(d: int, n: int, **channels: np.ndarray | float) -> Demand:
    """A Demand with the given channels (broadcast to (d, n)); the others are zero."""
    out = {}
    for name in ("cpu", "cpu_peak", "gpu", "emc", "cv", "mem", "io"):
        v = channels.get(name, channels.get("cpu", 0.0) if name == "cpu_peak" else 0.0)
        out[name] = np.broadcast_to(np.asarray(v, np.float32), (d, n)).astype(np.float32)
    return Demand(**out)


def step_profile(n: int, start: int, level: float = 1.0) -> np.ndarray:
    x = np.zeros(n, np.float32)
    x[start:] = level
    return x


def varying(n: int, seed: int = 0) -> np.ndarray:
    """A load wandering over the whole range: slow sine plus bursts plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / HZ
    x = 0.5 + 0.45 * np.sin(2 * np.pi * t / 40.0) + 0.1 * rng.standard_normal(n)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


@cache
def fleet_run() -> tuple[dict[str, np.ndarray], int]:
    """16 devices, 10 minutes of varying load: shared by the sensor and multiplexing tests."""
    d, n = 16, 6000
    x = np.stack([varying(n, s) for s in range(d)])
    m = DeviceModel([spec(i, amb=20.0 + i) for i in range(d)])
    return m.step(
        demand(d, n, cpu=x, gpu=x[::-1], emc=0.6 * x, cv=0.3 * x, mem=0.4 * x, io=0.2 * x)
    ), n


@cache
def hot_run() -> dict[str, np.ndarray]:
    """One device at 55 °C ambient, fan automatic: 1 min idle, 9 min full load, then 5 min of
    light load on many cores but one core still saturated (so the governor keeps asking for the
    top CPU step and the CPU frequency shows the throttle cap), then 1 min idle."""
    n = 9600
    heavy = np.zeros(n, np.float32)
    heavy[600:6000] = 1.0
    peak = np.zeros(n, np.float32)
    peak[600:9000] = 1.0
    light = np.maximum(heavy, 0.3 * peak)
    m = DeviceModel([spec(0, amb=55.0)])
    out = m.step(demand(1, n, cpu=light, cpu_peak=peak, gpu=heavy, emc=0.7 * heavy, cv=0.5 * heavy))
    return {k: v[0] for k, v in out.items()}


# ---------------------------------------------------------------------------- contract
def test_step_returns_every_column_with_shape_and_types():
    out = DeviceModel([spec(0), spec(1)]).step(demand(2, 50, cpu=0.3))
    for name in SIGNAL_COLUMNS + MASK_COLUMNS + ("ambient_c", "input_voltage_v"):
        assert out[name].shape == (2, 50), name
    for name in MASK_COLUMNS:
        assert out[name].dtype == np.uint8 and set(np.unique(out[name])) <= {0, 1}, name
    assert np.issubdtype(out["hysteresis_state"].dtype, np.integer)


def test_chunked_stepping_is_bitwise_identical_to_one_step():
    d, n = 3, 1500
    x = np.stack([varying(n, s) for s in range(d)])
    dem = demand(d, n, cpu=x, gpu=x, emc=x, cv=x, mem=x, io=x)
    specs = [spec(i, mode=m) for i, m in enumerate(("MAXN", "30W", "15W"))]
    whole = DeviceModel(specs).step(dem)
    model = DeviceModel(specs)
    parts, i = [], 0
    for size in (1, 7, 600, 0, 513, 2, 377):
        parts.append(
            model.step(Demand(*(getattr(dem, f.name)[:, i : i + size] for f in fields(dem))))
        )
        i += size
    assert i == n
    for name, full in whole.items():
        np.testing.assert_array_equal(
            np.concatenate([p[name] for p in parts], axis=1), full, err_msg=name
        )


def test_same_seeds_give_identical_output_and_other_device_seeds_differ():
    dem = demand(2, 600, cpu=0.8, gpu=0.8)
    a = DeviceModel([spec(0), spec(0, device_seed=7)]).step(dem)
    b = DeviceModel([spec(0), spec(0, device_seed=7)]).step(dem)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert np.abs(a["temp_cpu_c"][0] - a["temp_cpu_c"][1]).mean() > 0.3


def test_values_look_like_a_jetson_agx_orin():
    out, _ = fleet_run()
    assert out["p_sys5v_mw"].min() > 4_000 and out["p_sys5v_mw"].max() < 42_000
    assert out["temp_cpu_c"].min() > 30.0 and out["temp_cpu_c"].max() < 95.0
    assert set(np.unique(out["cpu_freq_mhz"])) <= set(np.float32(CPU_FREQS_MHZ))
    assert out["cpu_util_avg"].min() >= 0 and out["cpu_util_max"].max() <= 100


# ---------------------------------------------------------------------------- DVFS
def test_dvfs_visits_several_steps_and_moves_one_step_per_sample():
    n = 1200
    x = varying(n)
    out = DeviceModel([spec(0)]).step(demand(1, n, cpu=x, gpu=x, emc=x))
    for col, table, at_least in (
        ("cpu_freq_mhz", CPU_FREQS_MHZ, 5),
        ("gpu_freq_mhz", GPU_FREQS_MHZ, 4),
        ("emc_freq_mhz", EMC_FREQS_MHZ, 4),
    ):
        level = np.searchsorted(np.float32(table), out[col][0])
        assert len(np.unique(level)) >= at_least, col
        assert np.abs(np.diff(level)).max() == 1, col  # slewed: never jumps over a step


def test_dvfs_slews_from_idle_to_top_over_several_samples():
    n = 200
    out = DeviceModel([spec(0)]).step(
        demand(1, n, cpu=step_profile(n, 100), gpu=step_profile(n, 100))
    )
    cpu = out["cpu_freq_mhz"][0]
    reached = 100 + int(np.argmax(cpu[100:] == np.float32(CPU_FREQS_MHZ[-1])))
    assert reached - 100 >= 5  # about a second from the lowest to the top step
    assert len(np.unique(cpu[100 : reached + 1])) >= 5


def test_power_modes_cap_frequency_and_power_in_order():
    outs = {
        m: DeviceModel([spec(0, mode=m)]).step(demand(1, 600, cpu=1.0, gpu=1.0, emc=1.0))
        for m in ("15W", "30W", "MAXN")
    }
    for col in ("cpu_freq_mhz", "gpu_freq_mhz", "p_sys5v_mw"):
        lo, mid, hi = (outs[m][col][0, 300:].max() for m in ("15W", "30W", "MAXN"))
        assert lo < mid <= hi if col != "p_sys5v_mw" else lo < mid < hi, col
    assert outs["MAXN"]["cpu_freq_mhz"].max() == np.float32(CPU_FREQS_MHZ[-1])


def test_jetson_clocks_pins_the_top_frequency_whatever_the_load():
    out = DeviceModel([spec(0, jc=True), spec(1, mode="30W", jc=True)]).step(
        demand(2, 300, cpu=0.05)
    )
    assert (out["cpu_freq_mhz"][0] == np.float32(CPU_FREQS_MHZ[-1])).all()
    assert (out["gpu_freq_mhz"][0] == np.float32(GPU_FREQS_MHZ[-1])).all()
    assert (out["cpu_freq_mhz"][1] == np.float32(CPU_FREQS_MHZ[5])).all()  # 30 W cap


# ---------------------------------------------------------------------------- throttling
def test_throttling_steps_down_above_trip_and_up_below_recovery_without_chatter():
    out = hot_run()
    loaded = slice(700, 9000)  # a saturated core: the frequency shows the throttle cap
    f = out["cpu_freq_mhz"][loaded]
    t = out["temp_cpu_c"][loaded]
    assert f.min() < CPU_FREQS_MHZ[-1]  # hot and heavy: throttled
    assert f[-1] == np.float32(CPU_FREQS_MHZ[-1])  # lighter load: recovered
    change = np.flatnonzero(np.diff(f)) + 1
    tol = 2.5  # sensor bias and noise
    for i in change:
        recent = t[max(0, i - 20) : i + 1]
        if f[i] < f[i - 1]:
            assert recent.max() > TRIP_C[0, 0] - tol
        else:
            assert recent.min() < RECOVERY_C[0, 0] + tol
    assert np.diff(change).min() >= 10  # at least a second between steps: no chatter
    assert len(change) < 30


def test_no_throttling_at_room_temperature():
    out = DeviceModel([spec(0, amb=25.0)]).step(demand(1, 3000, cpu=1.0, gpu=1.0, emc=0.7))
    assert (out["cpu_freq_mhz"][0, 50:] == np.float32(CPU_FREQS_MHZ[-1])).all()


# ---------------------------------------------------------------------------- thermal
def _rise_time(x: np.ndarray, start: int, frac: float = 0.632) -> float:
    x0, x1 = x[start - 10 : start].mean(), x[-50:].mean()
    return (np.argmax(x[start:] >= x0 + frac * (x1 - x0))) / HZ


def test_a_load_step_heats_like_a_first_order_lag_with_the_stated_time_constants():
    n, start = 12000, 600
    load = step_profile(n, start, 0.6)
    out = DeviceModel([spec(0, jc=True)]).step(demand(1, n, cpu=load, gpu=load))  # fan pinned
    cpu, ttp, board = out["temp_cpu_c"][0], out["temp_ttp_c"][0], out["temp_board_c"][0]
    # node constants: junctions ~20 s, sink ~16 s, board ~5 min; the coupled step response of a
    # junction is their blend (junction on a rising sink), the board stays much slower
    assert 15.0 <= _rise_time(cpu, start) <= 60.0
    assert 15.0 <= _rise_time(ttp, start) <= 90.0
    assert 150.0 <= _rise_time(board, start) <= 900.0
    rise = cpu - out["ambient_c"][0]  # the ambient itself drifts slowly
    smooth = np.convolve(rise, np.ones(50) / 50, mode="valid")
    assert smooth.max() <= rise[-100:].mean() + 1.0  # no overshoot


def test_higher_ambient_gives_higher_temperatures():
    out = DeviceModel([spec(0, amb=15.0), spec(0, amb=35.0)]).step(
        demand(2, 1200, cpu=0.5, gpu=0.5)
    )
    for col in TEMP_COLUMNS:
        assert out[col][1].mean() > out[col][0].mean() + 10.0, col


def test_fan_airflow_lowers_the_sink_temperature():
    inst = draw_instances([0, 0])
    net = ThermalNetwork(inst, HZ)
    net.set_airflow(np.array([0.0, 1.0]))
    net.steady_state(np.full((3, 2), 5.0), np.full(2, 3.0), np.full(2, 25.0))
    assert net.T[3, 1] < net.T[3, 0] - 10.0


# ---------------------------------------------------------------------------- power
def test_leakage_makes_a_hotter_device_draw_more_power_for_the_same_work():
    out = DeviceModel([spec(0, amb=20.0), spec(0, amb=45.0)]).step(demand(2, 600, cpu=0.4, gpu=0.4))
    np.testing.assert_array_equal(out["cpu_freq_mhz"][0], out["cpu_freq_mhz"][1])
    assert out["p_cpu_mw"][1, 100:].mean() > 1.05 * out["p_cpu_mw"][0, 100:].mean()
    assert out["p_gpu_mw"][1, 100:].mean() > 1.05 * out["p_gpu_mw"][0, 100:].mean()


@pytest.mark.parametrize(
    ("channel", "rises", "still"),
    [
        ("gpu", ("p_gpu_mw",), ("p_cpu_mw", "p_cv_mw")),
        ("cpu", ("p_cpu_mw",), ("p_gpu_mw", "p_cv_mw")),
        ("cv", ("p_cv_mw",), ("p_cpu_mw", "p_gpu_mw")),
        ("io", ("p_sys5v_mw",), ("p_cpu_mw", "p_gpu_mw", "p_cv_mw", "p_vddrq_mw")),
        ("emc", ("p_vddrq_mw", "p_soc_mw"), ("p_cpu_mw", "p_gpu_mw", "p_cv_mw")),
    ],
)
def test_each_rail_follows_its_demand_channel(channel, rises, still):
    n, start = 1200, 600
    base = demand(1, n, cpu=0.1)
    stepped = {
        "cpu": 0.1,
        channel: np.where(np.arange(n) >= start, 0.9, 0.1 if channel == "cpu" else 0.0),
    }
    out = DeviceModel([spec(0, jc=True)]).step(demand(1, n, **stepped))
    ref = DeviceModel([spec(0, jc=True)]).step(base)
    for col in rises:
        assert out[col][0, -100:].mean() > ref[col][0, -100:].mean() * 1.15 + 100, col
    for col in still:
        assert (
            abs(out[col][0, -100:].mean() - ref[col][0, -100:].mean())
            < 0.1 * ref[col][0, -100:].mean() + 30
        ), col


def test_ina_boxcar_smooths_sample_to_sample_variation():
    rng = np.random.default_rng(0)
    raw = 5.0 + rng.standard_normal((1, 2, 3000))
    avg_w = InaAverager(1, 2, HZ).step(list(raw)) / 1000.0  # reports mW
    assert np.diff(avg_w, axis=-1).std() < 0.2 * np.diff(raw, axis=-1).std()
    assert abs(avg_w[..., 100:].mean() - 5.0) < 0.05


def test_reported_power_is_smoother_than_the_demand_that_drives_it():
    out, _ = fleet_run()
    p = out["p_cpu_mw"][0]
    fresh = out["mask_power_cpu"][0].astype(bool)
    rel_power = np.abs(np.diff(p[fresh])).mean() / p.mean()
    x = varying(6000, 0)
    rel_demand = np.abs(np.diff(x)).mean() / x.mean()
    assert rel_power < 0.3 * rel_demand


# ---------------------------------------------------------------------------- fan
def test_fan_states_change_with_hysteresis_and_rpm_lags_pwm():
    out = hot_run()
    state, pwm, rpm = out["hysteresis_state"], out["fan_pwm"], out["fan_rpm"]
    change = np.flatnonzero(np.diff(state)) + 1
    assert len(change) >= 2  # went up under load and down after it
    assert np.diff(change).min() >= MIN_DWELL_S * HZ
    first_up = change[0]
    assert pwm[first_up] > pwm[first_up - 1]
    target = rpm[first_up + 100]
    assert rpm[first_up] < rpm[first_up - 1] + 0.5 * (target - rpm[first_up - 1])  # lags


def test_fan_does_not_toggle_under_a_steady_load():
    out, _ = fleet_run()
    for state in out["hysteresis_state"]:
        change = np.flatnonzero(np.diff(state))
        assert len(change) == 0 or np.diff(change, prepend=-100).min() >= MIN_DWELL_S * HZ


# ---------------------------------------------------------------------------- perf
def test_cycles_are_proportional_to_frequency_times_utilisation():
    out, _ = fleet_run()
    ok = (out["mask_perf_cycles"] == 1) & (out["cpu_util_avg"] > 10)
    ratio = out["delta_cycles"][ok] / (out["cpu_freq_mhz"][ok] * out["cpu_util_avg"][ok])
    assert ratio.std() / ratio.mean() < 0.05


def test_memory_pressure_lowers_ipc_and_raises_misses_and_page_faults():
    out = DeviceModel([spec(0), spec(0)]).step(
        demand(2, 600, cpu=0.5, mem=np.array([[0.0], [0.8]], np.float32))
    )
    instr = out["delta_instructions"]
    ipc = instr / out["delta_cycles"]
    assert ipc[1].mean() < 0.6 * ipc[0].mean()
    for col in ("delta_cache_misses", "delta_llc_load_misses"):
        per_instr = out[col] / instr
        assert per_instr[1].mean() > 3 * per_instr[0].mean(), col
        assert out[col][1].mean() > 1.3 * out[col][0].mean(), col
    assert out["delta_page_faults"][1].mean() > 5 * out["delta_page_faults"][0].mean()


def test_io_raises_context_switches():
    out = DeviceModel([spec(0), spec(0)]).step(
        demand(2, 600, cpu=0.3, io=np.array([[0.0], [0.8]], np.float32))
    )
    assert out["delta_context_switches"][1].mean() > 3 * out["delta_context_switches"][0].mean()


def test_multiplexing_hides_counters_and_their_values_repeat():
    out, _ = fleet_run()
    hidden = out["mask_perf_instructions"] == 0
    assert 0.002 < hidden.mean() < 0.3
    assert (out["mask_perf_cycles"] != out["mask_perf_instructions"]).any()  # groups take turns


# ---------------------------------------------------------------------------- sensors
@pytest.mark.parametrize(
    ("value", "mask"),
    [
        ("temp_cpu_c", "mask_temp_cpu"),
        ("temp_board_c", "mask_temp_board"),
        ("fan_est_temp_c", "mask_fan_est_temp"),
        ("p_gpu_mw", "mask_power_gpu"),
        ("p_sys5v_mw", "mask_power_sys5v"),
        ("delta_instructions", "mask_perf_instructions"),
    ],
)
def test_stale_samples_repeat_the_last_fresh_value_exactly(value, mask):
    out, _ = fleet_run()
    v, m = out[value], out[mask]
    stale = m[:, 1:] == 0
    assert stale.any()
    np.testing.assert_array_equal(v[:, 1:][stale], v[:, :-1][stale])


def test_sensor_refresh_rates():
    out, _ = fleet_run()
    assert 0.07 < out["mask_temp_board"].mean() < 0.13  # ~1 s
    assert 0.3 < out["mask_temp_aux"].mean() < 0.5  # ~250 ms
    assert 0.7 < out["mask_power_cpu"].mean() < 0.9  # ~120 ms
    assert out["mask_temp_cpu"].mean() > 0.8  # ~100 ms


def test_dropouts_hold_a_sensor_group_stale_for_seconds():
    out, _ = fleet_run()
    group = (
        out["mask_temp_cpu"] | out["mask_temp_gpu"] | out["mask_temp_aux"] | out["mask_temp_ttp"]
    )
    longest = 0
    for row in group:
        zeros = np.flatnonzero(np.diff(np.r_[1, row, 1]))  # run boundaries
        runs = zeros[1::2] - zeros[::2]
        longest = max(longest, runs.max() if len(runs) else 0)
    assert longest >= 1.0 * HZ
