"""Read a run's meta.json: strictly when it is our own format, leniently when another tool wrote it.

Own format (has `schema_version`): must be valid JSON with exactly the top-level keys of
`simulator.meta.RunMeta`, of the right types, or it is refused (unknown keys included; a test keeps
the two key sets equal, since stream may not import the simulator). Seed-schema files (no `schema_version`) and missing files give
only what replay needs, with run id from the directory name and rate from the timestamps.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["RunInfo", "MetaError", "read_run_info"]


class MetaError(ValueError):
    """A malformed meta.json of our own format."""


class _OwnMeta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int = Field(ge=1)
    simulator_version: str
    run_id: str
    binary_id: str
    hz: float = Field(gt=0)
    duration_s: float = Field(gt=0)
    n_samples: int = Field(ge=0)
    seed: int
    warmup_s: float = Field(ge=0)
    n_activations: int = Field(ge=0)
    spec: dict  # checked in depth by the simulator's RunSpec, which stream may not import
    instance: dict[str, float | list[float]]


class RunInfo(BaseModel):
    """What replay and evaluation take from meta.json; None where the file does not say."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    run_id: str
    binary_id: str | None = None
    hz: float | None = None
    duration_s: float | None = None
    own_format: bool = False


def read_run_info(run_dir: Path) -> RunInfo:
    path = Path(run_dir) / "meta.json"
    if not path.is_file():
        return RunInfo(run_id=Path(run_dir).name)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MetaError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MetaError(f"{path}: expected a JSON object")
    if "schema_version" in data:
        try:
            own = _OwnMeta.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise MetaError(f"{path}: field '{loc}': {err['msg']}") from None
        return RunInfo(
            run_id=own.run_id,
            binary_id=own.binary_id,
            hz=own.hz,
            duration_s=own.duration_s,
            own_format=True,
        )

    def _get(*keys):
        for k in keys:
            v = data.get(k)
            if v is not None:
                return v
        return None

    duration = _get("duration_s", "duration_sec", "duration")
    hz = _get("hz", "sample_rate_hz", "sampling_hz")
    binary = _get("binary_id", "binary")
    try:
        return RunInfo(
            run_id=str(_get("run_id") or Path(run_dir).name),
            binary_id=None if binary is None else str(binary),
            hz=float(hz) if isinstance(hz, (int, float)) and hz > 0 else None,
            duration_s=float(duration)
            if isinstance(duration, (int, float)) and duration > 0
            else None,
        )
    except ValidationError as exc:  # pragma: no cover - defensive
        raise MetaError(f"{path}: {exc}") from None
