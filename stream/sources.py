"""Sources of samples: replay of recorded run directories, and ticking many runs together.

A live simulated fleet is wired in by cli.py (stream never imports the simulator); it yields the
same kind of ticks. Replayed runs at another rate are resampled causally to the model's rate.
`live_arrays` is the live boundary: it turns whatever columns a live source hands over into the
runtime's arrays without ever raising on their content (missing, non-numeric, NaN), so that the
runtime can mask, drop and count bad values instead of stopping.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from stream.intervals_io import read_truth as read_interval_file
from stream.run_meta import read_run_info
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.telemetry_io import TelemetryError, read_telemetry

__all__ = [
    "ReplayRun",
    "load_replay",
    "resample_causal",
    "read_truth",
    "start_at",
    "ticks",
    "Tick",
    "live_arrays",
]


@dataclass(frozen=True, slots=True)
class ReplayRun:
    """A recorded run at the model's rate: times (T,), raw features (T, F), masks (T, K)."""

    run_id: str
    binary_id: str | None
    t_sim_s: np.ndarray
    raw: np.ndarray
    masks: np.ndarray
    hz_in: float
    duration_s: float
    truth: np.ndarray | None  # (n, 2) or None when the run has no intervals.csv
    n_samples_in: int


def start_at(run: ReplayRun, t0: float) -> ReplayRun:
    """The run as a device that starts streaming at `t0`: its samples before `t0` are dropped.

    The end of the run, its truth and its binary are unchanged, so the two versions are scored on
    the same span; `n_samples_in` loses the input samples before `t0`, so accounting stays exact.
    """
    k = int(np.searchsorted(run.t_sim_s, t0, side="left"))
    if k >= run.t_sim_s.size:
        raise ValueError(
            f"{run.run_id}: start {t0!r} s is after the last sample ({run.t_sim_s[-1]!r} s)."
        )
    first = float(run.t_sim_s[0])
    skipped_in = int(round((float(run.t_sim_s[k]) - first) * run.hz_in))
    return replace(
        run,
        t_sim_s=run.t_sim_s[k:],
        raw=run.raw[k:],
        masks=run.masks[k:],
        duration_s=run.duration_s - (float(run.t_sim_s[k]) - first),
        n_samples_in=max(run.n_samples_in - skipped_in, run.t_sim_s.size - k),
    )


def read_truth(path: Path) -> np.ndarray:
    """One run's intervals.csv -> (n, 2) [start, end); header-only files give an empty array.

    Read by the one interval reader (`stream.intervals_io`), so replay, training and scoring refuse
    the same defects (reversed or non-finite intervals, unknown columns) with the file, row and
    column named, instead of training or evaluating on a corrupted truth.
    """
    got = read_interval_file(path)
    if len(got.intervals) > 1:
        raise TelemetryError(
            f"{path}: holds {len(got.intervals)} runs ({', '.join(got.run_ids[:3])}, ...); "
            "a run directory's intervals.csv holds one"
        )
    return next(iter(got.intervals.values()), np.zeros((0, 2)))


def resample_causal(
    t: np.ndarray, raw: np.ndarray, masks: np.ndarray, hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample to `hz` using only the past: output k at time k/hz averages the input samples in
    ((k-1)/hz, k/hz]; its mask is fresh when any of them was. Empty bins hold the last value
    with mask 0. Input already at `hz` on the same grid passes through unchanged."""
    dt = 1.0 / hz
    k_out = np.arange(int(np.ceil(t[0] * hz - 1e-9)), int(np.ceil(t[-1] * hz - 1e-9)) + 1)
    grid = k_out * dt
    if t.size == grid.size and np.allclose(t, grid, atol=1e-6 * dt):
        return t, raw, masks
    bins = np.ceil(t * hz - 1e-9).astype(np.int64) - k_out[0]  # output index of each input
    n = k_out.size
    counts = np.bincount(bins, minlength=n)[:n]
    sums = np.zeros((n, raw.shape[1]))
    np.add.at(sums, bins, raw)
    fresh = np.zeros((n, masks.shape[1]), np.uint8)
    np.maximum.at(fresh, bins, masks)
    out = np.empty_like(sums)
    has = counts > 0
    out[has] = sums[has] / counts[has, None]
    last = np.maximum.accumulate(np.where(has, np.arange(n), 0))
    out = out[last]
    fresh[~has] = 0
    return grid, out, fresh


def load_replay(run_dir: Path, hz: float) -> ReplayRun:
    """Read one run directory (ours or another tool's) for replay at the model rate `hz`."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TelemetryError(f"{run_dir}: no such run directory")
    info = read_run_info(run_dir)
    tel = read_telemetry(run_dir / "telemetry.csv")
    hz_in = info.hz or tel.hz
    t, raw, masks = resample_causal(tel.t_sim_s, tel.features, tel.masks, hz)
    truth_path = run_dir / "intervals.csv"
    truth = read_truth(truth_path) if truth_path.is_file() else None
    duration = info.duration_s or float(tel.t_sim_s[-1] - tel.t_sim_s[0] + 1.0 / hz_in)
    return ReplayRun(
        run_id=info.run_id if info.own_format else (tel.run_id or info.run_id),
        binary_id=info.binary_id or tel.binary_id or None,
        t_sim_s=t,
        raw=raw,
        masks=masks,
        hz_in=hz_in,
        duration_s=duration,
        truth=truth,
        n_samples_in=tel.t_sim_s.size,
    )


@dataclass(frozen=True, slots=True)
class Tick:
    rows: np.ndarray
    t: np.ndarray
    raw: np.ndarray
    masks: np.ndarray


def ticks(runs: Sequence[ReplayRun]) -> Iterator[Tick]:
    """Interleave runs as devices 0..D-1: tick i holds sample i of every run that has one."""
    lengths = np.array([r.t_sim_s.size for r in runs])
    D, T = len(runs), int(lengths.max())
    t = np.zeros((D, T))
    raw = np.zeros((D, T, runs[0].raw.shape[1]))
    masks = np.zeros((D, T, runs[0].masks.shape[1]), np.uint8)
    for d, r in enumerate(runs):
        n = lengths[d]
        t[d, :n], raw[d, :n], masks[d, :n] = r.t_sim_s, r.raw, r.masks
    order = np.argsort(-lengths, kind="stable")  # devices still running are a prefix of this
    for i in range(T):
        rows = np.sort(order[: int((lengths > i).sum())])
        yield Tick(rows, t[rows, i], raw[rows, i], masks[rows, i])


def _as_float(values: object, shape: tuple[int, ...]) -> np.ndarray:
    """`values` as float64 of `shape`; cells that are not numbers become NaN. Never raises."""
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        try:
            cells = np.asarray(values, dtype=object)
        except (TypeError, ValueError):  # ragged nesting: nothing usable
            return np.full(shape, np.nan)
        flat = np.full(cells.size, np.nan)
        for i, v in enumerate(cells.ravel().tolist()):  # only on the rare path with bad cells
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                flat[i] = float(v)
        out = flat.reshape(cells.shape)
    if out.shape != shape:
        try:
            out = np.broadcast_to(out, shape)
        except ValueError:
            return np.full(shape, np.nan)
    return out


def live_arrays(
    cols: Mapping[str, object], shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Live columns -> t `shape`, raw features `shape + (F,)` float64, masks `shape + (K,)` uint8.

    Never raises on content. A missing, non-numeric or wrongly shaped time or feature column gives
    NaN (the runtime drops such samples or masks such values, and counts them). A missing mask
    column reads as fresh (1), as in batch files without masks; a mask other than 0 or 1 as stale.
    Columns outside the allow-list, labels included, are ignored.
    """
    nan = np.full(shape, np.nan)
    t = _as_float(cols["t_sim_s"], shape) if "t_sim_s" in cols else nan
    raw = np.stack(
        [_as_float(cols[c], shape) if c in cols else nan for c in FEATURE_COLUMNS], axis=-1
    )  # shape + (F,)
    m = np.stack(
        [_as_float(cols[c], shape) if c in cols else np.ones(shape) for c in MASK_COLUMNS],
        axis=-1,
    )  # shape + (K,)
    return t, raw, (m == 1.0).astype(np.uint8)
