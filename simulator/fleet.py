"""A fleet of simulated devices stepped together: activity -> device physics -> telemetry chunks.

`Fleet.step(n)` returns the next n samples of every device as column arrays (D, n); the run writer
and the live stream source both consume it, so a recorded run and a live stream are the same data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from simulator.activity import ActivityModel
from simulator.config import RunSpec
from simulator.device import DeviceModel
from simulator.schedules import Activation

__all__ = ["Fleet", "simulate_runs"]


class Fleet:
    """D runs simulated in lock-step (same sample rate). Chunk sizes do not change the output."""

    def __init__(self, specs: Sequence[RunSpec]) -> None:
        if not specs:
            raise ValueError("The 'specs' parameter of Fleet must hold at least one run. Got 0.")
        rates = {s.hz for s in specs}
        if len(rates) != 1:
            raise ValueError(
                f"The 'specs' parameter of Fleet must share one sample rate. Got {sorted(rates)}."
            )
        self.specs = tuple(specs)
        self.hz = specs[0].hz
        self.activity = ActivityModel(self.specs)
        self.device = DeviceModel(self.specs)
        self.position = 0

    @property
    def intervals(self) -> tuple[tuple[Activation, ...], ...]:
        """Ground-truth activations per device: the same list that drives the trojans."""
        return self.activity.intervals

    def step(self, n: int) -> dict[str, np.ndarray]:
        """Advance every device by n samples; columns (D, n) plus 't_sim_s' and 't_unix_s'."""
        if n <= 0:
            raise ValueError(f"The 'n' parameter of Fleet.step must be > 0. Got {n} instead.")
        demand = self.activity.demand(self.position, n)
        cols = self.device.step(demand)
        idx = np.arange(self.position, self.position + n, dtype=np.float64)
        t_sim = np.broadcast_to(idx / self.hz, (len(self.specs), n))
        t0 = np.array([s.t0_unix_s for s in self.specs])[:, None]
        cols["t_sim_s"] = np.round(t_sim, 6)
        cols["t_unix_s"] = np.round(t0 + t_sim, 6)
        self.position += n
        return cols


def simulate_runs(
    fleet: Fleet, chunk: int = 3000
) -> Iterator[tuple[int, dict[str, np.ndarray], tuple[Activation, ...]]]:
    """Run a fresh fleet to the end; yield each finished run: (device index, columns (n,), intervals).

    Runs end at their own `n_samples`; a finished run is yielded as soon as it is complete.
    """
    specs = fleet.specs
    total = np.array([s.n_samples for s in specs])
    parts: list[list[dict[str, np.ndarray]]] = [[] for _ in specs]
    done = np.zeros(len(specs), bool)
    while not done.all():
        start = fleet.position
        n = int(min(chunk, total[~done].max() - start))
        cols = fleet.step(n)
        for d in np.flatnonzero(~done):
            keep = min(n, total[d] - start)
            parts[d].append({k: v[d, :keep] for k, v in cols.items()})
            if start + n >= total[d]:
                done[d] = True
                run = {k: np.concatenate([p[k] for p in parts[d]]) for k in parts[d][0]}
                parts[d] = []
                yield int(d), run, fleet.intervals[d]
