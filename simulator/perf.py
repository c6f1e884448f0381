"""Perf counters per sample, derived from CPU frequency, utilisation and memory pressure.

cycles = cores * busy clock * dt; instructions through an IPC that falls as memory stalls grow
(more so when the CPU clock is high relative to the memory clock); cache and LLC load misses per
instruction rise with working-set pressure; page faults are driven by `mem`, context switches by
`io` (wake-ups) and `cpu` (preemption). Event counts use a Poisson-like noise. When more events
are requested than the PMU has counters, the kernel multiplexes: during such episodes the
counters take turns and a counter not scheduled in a slot is not read (mask 0).
"""

from __future__ import annotations

import numpy as np

from stream.schema import PERF_COUNTERS

__all__ = ["N_CORES", "MUX_GROUP", "perf_counters", "multiplex_hidden"]

N_CORES = 12
IPC_BASE = 1.8
MEM_STALL = 2.5
CACHE_MISS_PER_INSTR = (4e-3, 3.5e-2)  # base, per unit of mem
LLC_MISS_PER_INSTR = (6e-4, 1.6e-2)
BRANCH_MISS_PER_INSTR = 4.5e-3
CSW_HZ = (250.0, 4000.0, 900.0)  # base, per unit io, per unit cpu
PAGE_FAULT_HZ = (15.0, 6000.0, 150.0)  # base, per unit mem^1.5, per unit io
#: Multiplexing: episode start rate (per s), durations (s) and the rotation slot (s).
MUX_RATE_HZ = 1.0 / 180.0
MUX_DURATION_S = (3.0, 30.0)
MUX_SLOT_S = 0.5
#: Rotation group of each counter (`PERF_COUNTERS` order) while multiplexing: the two groups
#: take turns on the PMU, one slot each.
MUX_GROUP = (0, 1, 0, 1, 0, 1, 0)
assert len(MUX_GROUP) == len(PERF_COUNTERS)


def _events(rate_per_sample: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Poisson-like counts: mean plus sqrt(mean) Gaussian noise, rounded, never negative."""
    return np.maximum(np.rint(rate_per_sample + np.sqrt(rate_per_sample) * z), np.float32(0.0))


def perf_counters(
    work_cpu_mhz: np.ndarray,
    f_cpu_mhz: np.ndarray,
    f_emc_mhz: np.ndarray,
    cpu: np.ndarray,
    mem: np.ndarray,
    io: np.ndarray,
    ipc_scale: np.ndarray,
    branch_scale: np.ndarray,
    z: list[np.ndarray],
    dt: float,
) -> np.ndarray:
    """Counter deltas (7, D, n) float32 in `PERF_COUNTERS` order.

    work_cpu_mhz = util * f (busy clock, MHz); all arrays float32 (D, n); z: seven
    standard-normal arrays (D, n).
    """
    ipc_scale = ipc_scale.astype(np.float32)[:, None]
    branch_scale = branch_scale.astype(np.float32)[:, None]
    out = np.empty((7,) + work_cpu_mhz.shape, np.float32)
    cycles, instr = out[0], out[1]
    np.multiply(work_cpu_mhz, np.float32(N_CORES * 1e6 * dt), out=cycles)
    cycles *= 1.0 + 0.01 * z[0]
    ipc = IPC_BASE * ipc_scale / (1.0 + MEM_STALL * mem * (f_cpu_mhz / f_emc_mhz))
    np.multiply(cycles, ipc, out=instr)
    instr *= 1.0 + 0.03 * z[1]
    np.multiply(
        instr,
        (CACHE_MISS_PER_INSTR[0] + CACHE_MISS_PER_INSTR[1] * mem) * (1.0 + 0.05 * z[2]),
        out=out[2],
    )
    out[3] = _events(dt * (CSW_HZ[0] + CSW_HZ[1] * io + CSW_HZ[2] * cpu), z[3])
    out[4] = _events(
        dt * (PAGE_FAULT_HZ[0] + PAGE_FAULT_HZ[1] * mem * np.sqrt(mem) + PAGE_FAULT_HZ[2] * io),
        z[4],
    )
    np.multiply(
        instr,
        (LLC_MISS_PER_INSTR[0] + LLC_MISS_PER_INSTR[1] * mem) * (1.0 + 0.05 * z[5]),
        out=out[5],
    )
    np.multiply(instr, BRANCH_MISS_PER_INSTR * branch_scale * (1.0 + 0.05 * z[6]), out=out[6])
    np.rint(out, out=out)
    return np.maximum(out, np.float32(0.0), out=out)


def multiplex_hidden(active: np.ndarray, i0: int, hz: float) -> np.ndarray:
    """Which counter groups are not read, (2, D, n) bool, given multiplexing active (D, n)."""
    slot = max(1, int(round(MUX_SLOT_S * hz)))
    n = active.shape[1]
    turn = ((i0 + np.arange(n)) // slot) % 2  # (n,) which group is scheduled
    return active[None] & (np.arange(2)[:, None] != turn)[:, None, :]
