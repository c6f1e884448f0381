"""The run's meta.json: a typed, versioned record of everything that produced the run."""

from __future__ import annotations

from pathlib import Path

from simulator.config import Frozen, RunSpec

__all__ = ["SCHEMA_VERSION", "SIMULATOR_VERSION", "RunMeta", "read_run_spec"]

SCHEMA_VERSION = 1
SIMULATOR_VERSION = "2.1.0"


class RunMeta(Frozen):
    """meta.json of a run written by this simulator (DESIGN.md 3.1).

    `spec` holds the device, workload, regime, trojan and schedule parameters; `instance` the
    device-instance physical parameters drawn from `spec.device_seed`.
    """

    schema_version: int = SCHEMA_VERSION
    simulator_version: str = SIMULATOR_VERSION
    run_id: str
    binary_id: str
    hz: float
    duration_s: float
    n_samples: int
    seed: int
    warmup_s: float
    n_activations: int
    spec: RunSpec
    instance: dict[str, float | list[float]]


def read_run_spec(meta_path: Path) -> RunSpec:
    """The RunSpec of one run's meta.json; a missing or invalid file raises ValueError naming it."""
    try:
        return RunMeta.model_validate_json(Path(meta_path).read_bytes()).spec
    except (OSError, ValueError) as exc:
        raise ValueError(f"{meta_path}: cannot read the run's spec ({exc})") from None
