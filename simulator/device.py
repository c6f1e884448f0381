"""The Jetson-class device model: turns per-sample resource `Demand` into telemetry columns.

Composition: regime (caps, ambient, supply) -> governor targets -> a per-sample feedback loop,
vectorised over devices, that carries only the tightly coupled state (DVFS level and throttle
caps, thermal nodes, fan) -> vectorised-over-time reporting (power rails and INA averaging,
perf counters, sensor refresh, dropouts, multiplexing, noise, quantisation). Every random draw
is tied to an absolute sample index, so any chunking gives bitwise the same output.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from simulator import dvfs, power
from simulator.config import RunSpec
from simulator.demand import Demand
from simulator.fan import FAN_PWM, RPM_FLOOR, FanController
from simulator.instance import SENSOR_CLOCKS, draw_instances
from simulator.perf import MUX_DURATION_S, MUX_GROUP, MUX_RATE_HZ, multiplex_hidden, perf_counters
from simulator.regimes import Ambient, input_voltage, mode_tops, power_budget_w
from simulator.sensors import EpisodeProcess, NoiseSource, RefreshClock, SampleHold, quantise
from simulator.thermal import ThermalNetwork
from stream.schema import (
    MASK_COLUMNS,
    PERF_COLUMNS,
    PERF_MASKS,
    POWER_COLUMNS,
    POWER_MASKS,
    SIGNAL_COLUMNS,
    TEMP_COLUMNS,
    TEMP_MASKS,
)

__all__ = ["DeviceModel", "TICK_S", "keep_freed_memory"]

#: Polling period (s) of the thermal governor: fan state, fan estimate and throttle steps.
TICK_S = 0.5
#: The governor's EMC request also follows GPU activity (shared memory traffic).
EMC_FROM_GPU = 0.35
#: Sensor noise: temperatures (°C), power (mW floor and relative), rpm (relative).
TEMP_NOISE_C = 0.12
POWER_NOISE_MW, POWER_NOISE_REL = 2.0, 0.003
RPM_NOISE_REL = 0.01
#: Dropout episodes holding a whole sensor group stale: rate (per s) and durations (s).
TEMP_DROPOUT = (1.0 / 900.0, (1.0, 10.0))
POWER_DROPOUT = (1.0 / 600.0, (1.0, 8.0))
#: Module power averaging for the soft cap (s).
POWER_AVG_TAU_S = 1.0
_NOISE_TAG = 0xD371CE

# uint16 / uint32 noise slots (see sensors.NoiseBlock)
_S_TEMP, _S_POWER, _S_PERF, _S_RPM, _S_VIN = 0, 6, 12, 19, 20
_S_JIT = (21, 22, 23, 24, 25)  # temp cpu/gpu, temp aux/ttp, board, power cpu/gpu/soc, power rest
_U32_DROP_T, _U32_DROP_P, _U32_MUX, _U32_AMB = 13, 14, 15, 16
_S_LEN_DROP_T, _S_LEN_DROP_P, _S_LEN_MUX, _S_LEN_AMB, _S_AMB = 34, 35, 36, 37, 38
# sensor clock indices (instance.SENSOR_CLOCKS order) per jitter group
_FLAT_FREQ32 = dvfs.FLAT_FREQ_MHZ.astype(np.float32)
_FLAT_V2_32 = dvfs.FLAT_V2.astype(np.float32)
_F_MAX32 = dvfs.F_MAX_MHZ.astype(np.float32)[:, None, None]
_IDLE32 = power.IDLE_W.astype(np.float32)[:, :, None]
_FAN_PWM32 = FAN_PWM.astype(np.float32)


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed heap memory for reuse instead of handing it back to the OS.

    Each `step` allocates tens of MB of numpy temporaries; with glibc's default trimming they
    page-fault afresh every chunk, which costs about a fifth of the step time. Process-wide, so
    it is opt-in: call it once from an entry point. Returns False where glibc is not available.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = libc.mallopt(m_mmap_threshold, 256 * 2**20) == 1
    return ok and libc.mallopt(m_trim_threshold, 1024 * 2**20) == 1


class DeviceModel:
    """A fleet of D simulated boards stepped together; see the module docstring.

    power_mode, jetson_clocks: the constant regime columns per device.
    """

    def __init__(self, specs: Sequence[RunSpec]) -> None:
        if len(specs) == 0:
            raise ValueError(
                "The 'specs' parameter of DeviceModel must be non-empty. Got 0 instead."
            )
        hz = {s.hz for s in specs}
        if len(hz) != 1:
            raise ValueError(
                f"The 'specs' parameter of DeviceModel must share one hz. Got {sorted(hz)} instead."
            )
        self.hz = hz.pop()
        self.dt = 1.0 / self.hz
        self.d = d = len(specs)
        self.power_mode = tuple(s.regime.power_mode for s in specs)
        self.jetson_clocks = tuple(s.regime.jetson_clocks for s in specs)
        self.instance = inst = draw_instances([s.device_seed for s in specs])
        seeds = [s.seed for s in specs]
        self._noise = NoiseSource(seeds, _NOISE_TAG)
        self._v_nom = np.array([s.regime.input_voltage_v for s in specs])
        eff_in = power.converter_efficiency(self._v_nom)
        self._eff_in = eff_in
        self._loss_k = 1.0 / (power.MODULE_EFFICIENCY * eff_in) - 1.0  # heat per W of module power
        self._budget = power_budget_w(self.power_mode, self._v_nom)
        self._ambient = Ambient(np.array([s.regime.ambient_c for s in specs]), seeds, self.hz)
        self._pinned = np.array(self.jetson_clocks, bool)
        self._dvfs = dvfs.Dvfs(mode_tops(self.power_mode), self._pinned, self.hz)
        self._tick = max(1, int(round(self.hz * TICK_S)))
        self._thermal = ThermalNetwork(inst, self.hz)
        self._fan = FanController(inst, self._pinned, self.hz, self._tick * self.dt)
        self._filter = dvfs.DemandFilter(d, self.hz)
        self._ina = power.InaAverager(6, d, self.hz)
        period = np.array(SENSOR_CLOCKS)[:, None] * inst.sensor_period_scale  # (5, D)
        phase = inst.sensor_phase * period
        self._clocks = [RefreshClock(period[k], phase[k], self.hz, 0.3) for k in range(len(period))]
        self._hold_temp = SampleHold((6, d), np.float32)
        self._hold_power = SampleHold((6, d), np.float32)
        self._hold_perf = SampleHold((7, d), np.float32)
        self._drop_temp = EpisodeProcess(d, self.hz, TEMP_DROPOUT[0], TEMP_DROPOUT[1])
        self._drop_power = EpisodeProcess(d, self.hz, POWER_DROPOUT[0], POWER_DROPOUT[1])
        self._mux = EpisodeProcess(d, self.hz, MUX_RATE_HZ, MUX_DURATION_S)
        # constants folded for the loop: dynamic and leakage coefficients (3, D)
        self._cdyn, self._cleak = power.unit_coefficients(inst.dyn_scale, inst.leak_scale)
        self._cdyn32 = self._cdyn.astype(np.float32)[:, :, None]
        self._cleak32 = self._cleak.astype(np.float32)[:, :, None]
        self._sys_base32 = (inst.sys_base_mw * 1e-3).astype(np.float32)[:, None]
        self._power_gain32 = inst.power_gain.astype(np.float32)[:, :, None]
        self._temp_bias32 = inst.temp_bias_c.astype(np.float32)[:, :, None]
        self._eff_in32 = eff_in.astype(np.float32)
        self._sys_base_w = inst.sys_base_mw * 1e-3  # (D,)
        self._dram_bg_heat = power.DRAM_BG_W * (1.0 + self._loss_k)
        self._a_pavg = -np.expm1(-self._tick * self.dt / POWER_AVG_TAU_S)  # per tick
        self._p_avg = np.zeros(d)  # module power averaged for the soft cap (W)
        self._p_acc = np.zeros(d)  # module energy since the last tick (W x samples)
        self._t_leak = np.zeros((3, d))  # junction temperatures the leakage is evaluated at
        self._i = 0

    # ------------------------------------------------------------------ public
    def step(self, demand: Demand) -> dict[str, np.ndarray]:
        """Advance every device by demand.shape[1] samples; returns telemetry columns (D, n)."""
        d, n = demand.shape
        if d != self.d:
            raise ValueError(
                f"The 'demand' parameter of DeviceModel.step must have {self.d} rows. Got {d} instead."
            )
        if n == 0:
            return self._empty()
        i0 = self._i
        noise = self._noise.draw(n)
        amb = self._ambient.step(i0, noise, _U32_AMB, _S_LEN_AMB, _S_AMB)  # (D, n)

        # time-major (n, 3, D) inputs of the feedback loop
        cpu_t, gpu_t, emc_t = demand.cpu.T, demand.gpu.T, demand.emc.T
        emc_req = np.maximum(emc_t, EMC_FROM_GPU * gpu_t)
        load = self._filter.step(np.stack([demand.cpu_peak.T, gpu_t, emc_req], axis=1))
        target = dvfs.governor_levels(load)
        target = dvfs.pinned_targets(target, self._pinned, self._dvfs.cap_max)
        busy = np.stack([cpu_t, gpu_t, emc_t], axis=1) * dvfs.F_MAX_MHZ[:, None]
        p_cv = power.cv_power(demand.cv)  # (D, n) float32
        pfix = np.empty((n, 3, d))
        pfix[:, :2] = power.IDLE_W[:2]
        pfix[:, 2] = p_cv.T + power.IDLE_W[2, 0]
        p_board_fix = (self._sys_base_w + power.IO_FULL_W * demand.io.T) / self._eff_in
        p_board_fix += self._dram_bg_heat
        amb_t = np.ascontiguousarray(amb.T)  # (n, D)

        if i0 == 0:
            self._settle(target[0], busy[0], pfix[0], p_board_fix[0], amb_t[0])
        drive = self._thermal.board_drive(p_board_fix, amb_t)
        levels, temps, fan_state, rpm, est, t_before = self._loop(
            i0, target, busy, pfix, drive, amb_t
        )
        self._i = i0 + n
        return self._report(
            i0, demand, noise, amb, p_cv, levels, temps, fan_state, rpm, est, t_before
        )

    # ------------------------------------------------------------------ loop
    def _settle(self, target0, busy0, pfix0, pb_fix0, amb0) -> None:
        """Start as a board that has been running the first sample's load for a long time."""
        dv, th, fan = self._dvfs, self._thermal, self._fan
        dv.start(target0)
        idx = (dv.lf + 0.5).astype(np.intp)
        f, v2 = dvfs.FLAT_FREQ_MHZ[idx], dvfs.FLAT_V2[idx]
        work = np.minimum(f, busy0)
        temps = np.full((3, self.d), 45.0)
        for _ in range(12):  # fixed point: leakage <-> temperature <-> fan
            p3 = power.unit_power(v2, work, temps, self._cdyn, self._cleak) + pfix0
            pd = power.DRAM_CLK_W_PER_MHZ * f[2] + power.DRAM_W_PER_MHZ * work[2]
            p_mod = p3.sum(0) + pd + power.DRAM_BG_W
            th.steady_state(p3, pb_fix0 + pd + self._loss_k * p_mod, amb0)
            temps = th.T[:3]
            th.set_airflow(fan.settle(temps))
        self._p_avg = p_mod
        self._t_leak = th.T[:3].copy()

    def _loop(self, i0, target, busy, pfix, drive, amb):
        """The feedback loop over samples, vectorised over devices (few numpy ops per sample).

        Inputs are time-major: target, busy, pfix (n, 3, D); drive (board), amb (n, D).
        """
        n = target.shape[0]
        rec_lvl = np.empty((n, 3, self.d), np.int8)
        rec_t = np.empty((n, 5, self.d))
        rec_state = np.empty((n, self.d), np.int8)
        rec_est = np.empty((n, self.d))
        rec_leak = np.empty((n, 3, self.d))
        dv, th, fan = self._dvfs, self._thermal, self._fan
        flat_f, flat_v2, leak_k = dvfs.FLAT_FREQ_MHZ, dvfs.FLAT_V2, power.LEAK_K
        cdyn, cleak, loss_k, budget = self._cdyn, self._cleak, self._loss_k, self._budget
        c_clk, c_dram, dram_bg = power.DRAM_CLK_W_PER_MHZ, power.DRAM_W_PER_MHZ, power.DRAM_BG_W
        a_p, p_avg, p_acc = self._a_pavg, self._p_avg, self._p_acc
        tick, dt_tick, inv_tick = self._tick, self._tick * self.dt, 1.0 / self._tick
        t_leak = self._t_leak
        leak = cleak * np.exp(leak_k * t_leak)  # leakage follows temperature at tick resolution
        for i in range(n):
            idx = dv.slew(target[i])
            f = flat_f[idx]
            work = np.minimum(f, busy[i])
            p3 = cdyn * work  # same as power.unit_power with the tick's leakage
            p3 += leak
            p3 *= flat_v2[idx]
            p3 += pfix[i]
            pd = c_clk * f[2] + c_dram * work[2]
            p_mod = p3.sum(0) + pd + dram_bg
            th.advance(p3, pd + loss_k * p_mod, drive[i], amb[i])
            p_acc += p_mod
            rec_leak[i] = t_leak
            T = th.T
            if (i0 + i) % tick == 0:
                p_avg += a_p * (p_acc * inv_tick - p_avg)
                p_acc[:] = 0.0
                th.set_airflow(fan.tick(T[:3]))
                dv.control(T[:3], p_avg, budget, dt_tick)
                t_leak = T[:3].copy()
                leak = cleak * np.exp(leak_k * t_leak)
            rec_lvl[i] = idx
            rec_t[i] = T
            rec_state[i] = fan.state
            rec_est[i] = fan.est
        self._t_leak = t_leak
        t_before = rec_leak.transpose(1, 2, 0).astype(np.float32)
        state = rec_state.T  # (D, n)
        return (
            rec_lvl.transpose(1, 2, 0),  # (3, D, n) flat levels
            rec_t.transpose(1, 2, 0),  # (5, D, n)
            state,
            fan.rotor(state),  # (D, n) rpm
            rec_est.T,
            t_before,  # (3, D, n) junction temperatures the leakage was computed at
        )

    # ------------------------------------------------------------------ reporting
    def _report(self, i0, demand, noise, amb, p_cv, levels, temps, fan_state, rpm, est, t_before):
        """Everything without feedback, vectorised over devices and time."""
        d, n = demand.shape
        inst = self.instance
        f32 = np.float32
        out: dict[str, np.ndarray] = {}
        levels = np.array(levels, dtype=np.intp, order="C")  # (3, D, n)
        f = _FLAT_FREQ32.take(levels)  # (3, D, n)
        out["cpu_freq_mhz"], out["gpu_freq_mhz"], out["emc_freq_mhz"] = f[0], f[1], f[2]

        # utilisation: the load at the current clock
        busy = np.stack([demand.cpu, demand.gpu, demand.emc]) * _F_MAX32  # (3, D, n) MHz
        work = np.minimum(f, busy)
        inv_f = f32(100.0) / f
        out["cpu_util_avg"] = np.rint(work[0] * inv_f[0])
        out["cpu_util_max"] = np.rint(
            np.minimum(demand.cpu_peak * _F_MAX32[0, 0, 0], f[0]) * inv_f[0]
        )
        out["gpu_util"] = np.rint(work[1] * inv_f[1])
        out["emc_util"] = np.rint(work[2] * inv_f[2])
        out["cv_util"] = np.rint(demand.cv * f32(100.0))

        # power rails (W), recomputed from the loop's levels and temperatures
        unit = power.unit_power(
            _FLAT_V2_32.take(levels), work, t_before, self._cdyn32, self._cleak32
        )
        unit += _IDLE32
        p_vddrq = power.dram_power(f[2], work[2])
        module = unit.sum(0) + p_cv + p_vddrq
        pwm = _FAN_PWM32.take(np.array(fan_state, dtype=np.intp, order="C"))
        p_sys = power.sys5v_power(module, self._sys_base32, demand.io, pwm)
        raw = (p_sys, unit[0], unit[1], unit[2], p_cv, p_vddrq)  # POWER_COLUMNS order, W
        meas = self._ina.step(raw)  # (6, D, n) mW, boxcar averaged
        for k in range(6):
            z = noise.normal(_S_POWER + k)
            z *= f32(POWER_NOISE_REL) * meas[k] + f32(POWER_NOISE_MW)
            meas[k] *= self._power_gain32[k]
            meas[k] += z
        np.rint(meas, out=meas)
        np.maximum(meas, f32(0.0), out=meas)

        fresh = [c.step(i0, noise.uniform(s)) for c, s in zip(self._clocks, _S_JIT, strict=True)]
        drop_p = self._drop_power.step(i0, noise.u32(_U32_DROP_P), noise.uniform(_S_LEN_DROP_P)) > 0
        fa, fb = fresh[3] & ~drop_p, fresh[4] & ~drop_p
        if i0 == 0:  # the first sample of a run is always a reading
            fa[:, 0] = fb[:, 0] = True
        held = self._hold_power.step(meas, np.stack([fa, fb]), (1, 0, 0, 0, 1, 1))
        for k, name in enumerate(POWER_COLUMNS):
            out[name] = held[k]
        power_masks = (fa, fa, fa, fb, fb, fb, fb)  # cpu gpu soc cv vddrq sys5v in
        masks = {m: v.view(np.uint8) for m, v in zip(POWER_MASKS, power_masks, strict=True)}

        # temperatures
        read_t = np.empty((6, d, n), f32)
        read_t[:5] = temps
        read_t[5] = est
        read_t += self._temp_bias32
        for k in range(6):
            read_t[k] += f32(TEMP_NOISE_C) * noise.normal(_S_TEMP + k)
        read_t = quantise(read_t, 0.1)
        drop_t = self._drop_temp.step(i0, noise.u32(_U32_DROP_T), noise.uniform(_S_LEN_DROP_T)) > 0
        tick = np.broadcast_to((i0 + np.arange(n)) % self._tick == 0, (d, n))
        ft = [g & ~drop_t for g in (fresh[0], fresh[1], fresh[2], tick)]
        if i0 == 0:
            for g in ft:
                g[:, 0] = True
        held_t = self._hold_temp.step(read_t, np.stack(ft), (0, 0, 1, 1, 2, 3))
        for k, name in enumerate(TEMP_COLUMNS):
            out[name] = held_t[k]
        temp_masks = (ft[0], ft[0], ft[1], ft[1], ft[2], ft[3])
        masks.update({m: v.view(np.uint8) for m, v in zip(TEMP_MASKS, temp_masks, strict=True)})

        # fan
        out["fan_pwm"] = pwm
        rpm_read = np.rint(rpm * (1.0 + RPM_NOISE_REL * noise.normal(_S_RPM)))
        out["fan_rpm"] = np.where(rpm < RPM_FLOOR, 0.0, rpm_read).astype(f32)
        out["hysteresis_state"] = fan_state.astype(np.int64)

        # perf counters
        zp = [noise.normal(_S_PERF + k) for k in range(7)]
        counters = perf_counters(
            work[0],
            f[0],
            f[2],
            demand.cpu,
            demand.mem,
            demand.io,
            inst.ipc_scale,
            inst.branch_scale,
            zp,
            self.dt,
        )
        active = self._mux.step(i0, noise.u32(_U32_MUX), noise.uniform(_S_LEN_MUX)) > 0
        fresh_perf = ~multiplex_hidden(active, i0, self.hz)  # (2, D, n), one row per group
        if i0 == 0:
            fresh_perf[..., 0] = True
        held_p = self._hold_perf.step(counters, fresh_perf[:2], MUX_GROUP)
        for k, name in enumerate(PERF_COLUMNS):
            out[name] = held_p[k]
        masks.update(
            {m: fresh_perf[g].view(np.uint8) for m, g in zip(PERF_MASKS, MUX_GROUP, strict=True)}
        )

        for name in MASK_COLUMNS:
            out[name] = masks[name]
        out["ambient_c"] = np.round(amb, 2)
        p_in = p_sys / self._eff_in32[:, None]
        out["input_voltage_v"] = input_voltage(self._v_nom, p_in, noise.normal(_S_VIN))
        return out

    def _empty(self) -> dict[str, np.ndarray]:
        out = {c: np.zeros((self.d, 0), np.float32) for c in SIGNAL_COLUMNS}
        out["hysteresis_state"] = np.zeros((self.d, 0), np.int64)
        out.update({c: np.zeros((self.d, 0), np.uint8) for c in MASK_COLUMNS})
        out["ambient_c"] = np.zeros((self.d, 0))
        out["input_voltage_v"] = np.zeros((self.d, 0))
        return out
