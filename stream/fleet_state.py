"""Per-device runtime state for a fleet worker: a growable device pool and state snapshots.

A fleet worker does not know its devices in advance: they arrive with the partitions it is given
and leave with the ones it loses. `DevicePool` maps device ids to rows of ONE `Runtime` (so every
tick still scores all ready windows in one call per expert), grows it by copying state, and
exports / imports a device's complete state (causal baseline, ring buffer, decision stage, drift
detector) as bytes. Restoring a snapshot and feeding the samples after it gives bitwise the same
windows, scores and intervals as never having stopped: that is what makes a handover exact.

Snapshots are an internal format read only by workers of the same group: numpy arrays in an NPZ
(no pickle) plus the river ADWIN, unpickled with an allow-list limited to river's classes.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections.abc import Callable, Iterable

import numpy as np

from stream.runtime import Runtime

__all__ = ["DevicePool", "StateRecord", "encode_state", "decode_state", "STATE_VERSION"]

#: 2: normaliser.spread_n (warm start of the spread adaptation); 3: the static expert's verdict;
#: 4: whether the static expert trained on the device's binary (static.seen)
STATE_VERSION = 4
_STATE_HEAD = struct.Struct("<4sBIqH")  # magic, version, input partition, next offset, model id len
_STATE_MAGIC = b"FSST"

_STATE_ARRAYS = Runtime.DEVICE_STATE


def _get(obj: object, path: str) -> np.ndarray:
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj  # type: ignore[return-value]


class _RiverOnly(pickle.Unpickler):
    """Unpickles the drift detector only: classes from river (and copyreg's helpers)."""

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "river" or (module, name) == ("copyreg", "_reconstructor"):
            return super().find_class(module, name)
        if (module, name) in {("builtins", "object"), ("builtins", "dict"), ("builtins", "list")}:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from a state snapshot")


class DevicePool:
    """Device id <-> row of one Runtime, created by `factory(capacity)` and grown on demand."""

    def __init__(self, factory: Callable[[int], Runtime], capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError(
                f"The 'capacity' parameter of DevicePool must be >= 1. Got {capacity!r} instead."
            )
        self.factory = factory
        self.runtime = factory(capacity)
        self._fresh = factory(1)  # row 0 holds the state of a device never seen
        self.row_of: dict[str, int] = {}
        self.id_of: dict[int, str] = {}
        self._free = list(range(capacity - 1, -1, -1))

    @property
    def capacity(self) -> int:
        return self.runtime.n_devices

    def rows(self, device_ids: Iterable[str]) -> np.ndarray:
        """Rows of these devices, allocating fresh state for new ones."""
        out = []
        for d in device_ids:
            r = self.row_of.get(d)
            if r is None:
                if not self._free:
                    self._grow(2 * self.capacity)
                r = self._free.pop()
                self._reset(r)
                self.row_of[d], self.id_of[r] = r, d
            out.append(r)
        return np.array(out, np.intp)

    def release(self, device_ids: Iterable[str]) -> None:
        """Forget these devices (their partition moved elsewhere)."""
        for d in list(device_ids):
            r = self.row_of.pop(d, None)
            if r is not None:
                del self.id_of[r]
                self._reset(r)
                self._free.append(r)

    def export(self, device_id: str) -> bytes:
        """The device's complete state as bytes."""
        r = self.row_of[device_id]
        arrays = {p: _get(self.runtime, p)[r] for p in _STATE_ARRAYS}
        drift = self.runtime.drift
        adwin = drift._detectors.get(r) if drift is not None else None
        arrays["adwin"] = np.frombuffer(pickle.dumps(adwin) if adwin else b"", np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    def restore(self, device_id: str, blob: bytes) -> None:
        """Load a state exported by `export` (allocating the device's row if needed)."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        missing = set(_STATE_ARRAYS) - set(arrays)
        if missing:
            raise ValueError(f"state snapshot of {device_id!r} lacks {sorted(missing)}")
        r = int(self.rows([device_id])[0])
        for p in _STATE_ARRAYS:
            _get(self.runtime, p)[r] = arrays[p]
        drift = self.runtime.drift
        if drift is not None:
            drift._detectors.pop(r, None)
            raw = arrays["adwin"].tobytes()
            if raw:
                drift._detectors[r] = _RiverOnly(io.BytesIO(raw)).load()

    def _reset(self, r: int) -> None:
        for p in _STATE_ARRAYS:
            _get(self.runtime, p)[r] = _get(self._fresh, p)[0]
        if self.runtime.drift is not None:
            self.runtime.drift._detectors.pop(r, None)

    def _grow(self, capacity: int) -> None:
        old, new = self.runtime, self.factory(capacity)
        n = old.n_devices
        for p in _STATE_ARRAYS:
            _get(new, p)[:n] = _get(old, p)
        if old.drift is not None and new.drift is not None:
            new.drift._detectors.update(old.drift._detectors)
            new.drift.n_drifts = old.drift.n_drifts
        new.accounting = old.accounting
        new.decisions.discarded = old.decisions.discarded
        self.runtime = new
        self._free = list(range(capacity - 1, n - 1, -1)) + self._free


class StateRecord:
    """A snapshot as stored on the state topic: the state after all input offsets < next_offset."""

    __slots__ = ("partition", "next_offset", "model_id", "blob")

    def __init__(self, partition: int, next_offset: int, model_id: str, blob: bytes) -> None:
        self.partition = partition
        self.next_offset = next_offset
        self.model_id = model_id
        self.blob = blob


def encode_state(rec: StateRecord) -> bytes:
    mid = rec.model_id.encode()
    head = _STATE_HEAD.pack(_STATE_MAGIC, STATE_VERSION, rec.partition, rec.next_offset, len(mid))
    return head + mid + rec.blob


def decode_state(value: bytes) -> StateRecord:
    if value is None or len(value) < _STATE_HEAD.size:
        raise ValueError("state record truncated")
    magic, version, part, nxt, n = _STATE_HEAD.unpack_from(value)
    if magic != _STATE_MAGIC or version != STATE_VERSION:
        raise ValueError(f"state record of unknown format {magic!r} v{version}")
    start = _STATE_HEAD.size
    return StateRecord(part, nxt, value[start : start + n].decode(), value[start + n :])
