"""A detector worker of a Kafka consumer group: each device's state lives on the owner of its partition.

Delivery is at least once, and exact for the intervals:

1. Messages are applied in offset order per partition; every malformed one is counted and skipped.
2. A checkpoint of partition p (every `commit_every_s`, on revocation and at exit): flush the
   detections already produced to the output topic; then write a state snapshot of each device of
   p that received samples since the last checkpoint to the state topic, tagged with p's next
   offset C, and flush it; only then commit C. So a committed offset never runs ahead of the
   detections or of the state it stands for.
3. On assignment the new owner reads the committed offset C of p and, per device, the snapshot
   with the highest tag <= C (a snapshot tagged later belongs to a checkpoint whose commit never
   happened, and is ignored; replay is deterministic, so a tag names one state whoever wrote it), restores it, and consumes from C. Every window ending after C is
   rebuilt from those uncommitted messages and scored again; every window before C was scored and
   its detections written before C was committed.
4. A crash between steps 2 and commit replays messages whose detections were already written: the
   replay produces the same records with the same `detection_id`, so duplicates are recognisable
   and a consumer that keeps one record per id sees exactly the single-process result.

Every message names the device's binary (kafka_io wire format v2): the first time a device is seen
with a binary id, or with a new one, its static expert verdict is computed from the worker's
`binaries` index (each content parsed once, in an isolated child) and kept in the device's state,
so fleet mode fuses the same three inputs as replay. An id missing from the index, or a binary
that cannot be read, leaves the static input masked (counted in `static` by reason).

Revocation hands state over (snapshot + commit, no interval closed); a lost assignment (session
expired) drops the devices without committing. Only `finish` (end of stream) closes open intervals.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from stream.binary_worker import StaticCache
from stream.detector import Detector, DeviceInfo, static_scores
from stream.fleet_state import DevicePool, StateRecord, decode_state, encode_state
from stream.kafka_io import (
    DEFAULT_OUT_TOPIC,
    DEFAULT_TOPIC,
    DetectionSink,
    MalformedMessage,
    SampleBatch,
    decode_batch,
    detection_id,
)
from stream.onnx_session import ModelSet
from stream.runtime import WindowRecord
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.sinks import detection_record

__all__ = ["WorkerConfig", "WorkerStats", "IdleClock", "FleetWorker"]

F, K = len(FEATURE_COLUMNS), len(MASK_COLUMNS)


@dataclass(frozen=True)
class WorkerConfig:
    """Where a worker reads and writes, and how often it checkpoints."""

    bootstrap_servers: str
    group: str
    topic: str = DEFAULT_TOPIC
    out_topic: str = DEFAULT_OUT_TOPIC
    state_topic: str | None = None  # default: "<topic>.state.<group>"
    commit_every_s: float = 2.0
    max_batch: int = 1000
    poll_s: float = 0.2
    session_timeout_ms: int = 10000
    idle_exit_s: float | None = None  # end of stream: this long without data, once data was seen

    def __post_init__(self) -> None:
        for name in ("commit_every_s", "poll_s"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"The '{name}' parameter of WorkerConfig must be > 0. "
                    f"Got {getattr(self, name)!r} instead."
                )
        if self.max_batch < 1:
            raise ValueError(
                f"The 'max_batch' parameter of WorkerConfig must be >= 1. Got {self.max_batch!r} instead."
            )

    @property
    def state(self) -> str:
        return self.state_topic or f"{self.topic}.state.{self.group}"


class IdleClock:
    """When a worker may call the stream ended: `idle_s` without data once data was seen.

    Idle time counts from the latest data or rebalance. While a rebalance is under way (this
    worker's partitions revoked or lost, its next assignment not yet received) it does not count
    at all, for up to `await_s`: a worker that ended the stream then would hold no devices, and
    the open intervals of the partitions in flight would be closed by no one (seen: under load the
    group took longer than `idle_s` to re-assign after the other worker left).
    """

    def __init__(self, idle_s: float | None, await_s: float) -> None:
        self.idle_s, self.await_s = idle_s, await_s
        self.last: float | None = None
        self.revoked_at: float | None = None
        self.seen = False

    def activity(self, now: float, data: bool = False) -> None:
        """New messages (data=True) or a completed rebalance at `now`."""
        self.last = now
        self.seen = self.seen or data

    def revoked(self, now: float) -> None:
        if self.revoked_at is None:
            self.revoked_at = now

    def assigned(self, now: float) -> None:
        self.revoked_at = None
        self.activity(now)

    def ended(self, now: float) -> bool:
        if self.idle_s is None or not self.seen or self.last is None:
            return False
        last = self.last
        if self.revoked_at is not None:
            if now - self.revoked_at < self.await_s:
                return False
            last = max(last, self.revoked_at + self.await_s)  # the wait counts as activity
        return now - last >= self.idle_s


@dataclass
class WorkerStats:
    """Counters of one worker; latencies are produce -> decision, in milliseconds."""

    messages: int = 0
    samples: int = 0
    malformed: Counter = field(default_factory=Counter)
    static: Counter = field(default_factory=Counter)  # static verdicts set, by outcome
    windows: int = 0
    detections: int = 0
    checkpoints: int = 0
    commit_failures: int = 0
    snapshots_written: int = 0
    devices_restored: int = 0
    snapshots_ignored: int = 0
    rebalances: int = 0
    latency_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        lat = np.asarray(self.latency_ms, np.float64)
        pct = (lambda q: round(float(np.percentile(lat, q)), 2)) if lat.size else (lambda q: None)
        return {
            "messages": self.messages,
            "samples": self.samples,
            "malformed": dict(sorted(self.malformed.items())),
            "static": dict(sorted(self.static.items())),
            "windows": self.windows,
            "detections": self.detections,
            "checkpoints": self.checkpoints,
            "commit_failures": self.commit_failures,
            "snapshots_written": self.snapshots_written,
            "devices_restored": self.devices_restored,
            "snapshots_ignored": self.snapshots_ignored,
            "rebalances": self.rebalances,
            "wall_s": round(self.wall_s, 3),
            "samples_per_s": round(self.samples / self.wall_s, 1) if self.wall_s > 0 else None,
            "latency_ms_p50": pct(50),
            "latency_ms_p99": pct(99),
        }


def model_id(models: ModelSet) -> str:
    """Identity of the models a snapshot was made with (state is only valid for the same ones)."""
    return hashlib.sha256(models.manifest.model_dump_json().encode()).hexdigest()[:16]


class FleetWorker:
    """One member of consumer group `cfg.group` scoring the devices of the partitions it owns.

    `events`, when given, receives JSON lines: assignments, checkpoints, scored windows (device
    and window end times: an audit of coverage) and the final stats.
    """

    def __init__(
        self,
        models: ModelSet,
        cfg: WorkerConfig,
        *,
        events: IO[str] | None = None,
        on_detection: Callable[[dict], None] | None = None,
        binaries: Mapping[str, Path] | None = None,
        cache: StaticCache | None = None,
    ) -> None:
        from confluent_kafka import Consumer, Producer

        self.binaries = dict(binaries or {})
        self.cache = cache or StaticCache()
        self.binary_of: dict[str, str] = {}  # device -> binary whose verdict is in its state
        self.cfg = cfg
        self.models = models
        self.model_id = model_id(models)
        self.events = events
        self.on_detection = on_detection
        self.stats = WorkerStats()
        self.pool = DevicePool(self._runtime, capacity=16)
        self.partition_of: dict[str, int] = {}  # device -> input partition
        self.next_offset: dict[int, int] = {}  # partition -> offset after the last one applied
        self.dirty: dict[int, set[str]] = defaultdict(set)  # partition -> devices since checkpoint
        self.assigned: set[int] = set()
        self._committed: dict[int, int] = {}  # partition -> offset this worker last committed
        self.idle = IdleClock(cfg.idle_exit_s, await_s=3.0 * cfg.session_timeout_ms / 1000.0)
        common = {"bootstrap.servers": cfg.bootstrap_servers, "log_level": 3}
        self.consumer = Consumer(
            common
            | {
                "group.id": cfg.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": cfg.session_timeout_ms,
                "heartbeat.interval.ms": max(100, cfg.session_timeout_ms // 5),
                "enable.partition.eof": False,
            }
        )
        self.sink = DetectionSink(cfg.bootstrap_servers, cfg.out_topic)
        self.state_producer = Producer(
            common | {"enable.idempotence": True, "compression.type": "lz4", "linger.ms": 5}
        )
        self.reader = Consumer(
            common | {"group.id": f"{cfg.group}.state-reader", "enable.auto.commit": False}
        )
        self._state_errors: list[str] = []
        self._n_state = self._state_partitions()

    # --- wiring -------------------------------------------------------------------------------

    def _runtime(self, n: int):
        slots = [DeviceInfo(f"_slot{i}") for i in range(n)]
        return Detector(self.models, slots, on_windows=self._on_windows).runtime

    def _on_windows(self, rec: WindowRecord) -> None:
        self.stats.windows += int(rec.rows.size)
        if self.events is not None:
            ids = [self.pool.id_of[r] for r in rec.rows.tolist()]
            t = np.round(rec.t_end_s, 3).tolist()
            self._event({"event": "windows", "devices": ids, "t_end_s": t})

    def _event(self, obj: dict) -> None:
        if self.events is not None:
            self.events.write(json.dumps({"t": round(time.time(), 3), **obj}) + "\n")
            self.events.flush()

    def _state_partitions(self) -> int:
        """Partitions of the state topic (auto-created by the cluster where that is allowed)."""
        md = self.state_producer.list_topics(self.cfg.state, timeout=10)
        t = md.topics.get(self.cfg.state)
        n = len(t.partitions) if t is not None and t.error is None else 0
        if n == 0:
            raise RuntimeError(
                f"state topic {self.cfg.state!r} does not exist and could not be auto-created: "
                "create it (cleanup.policy=compact) with as many partitions as the input topic"
            )
        return n

    # --- main loop ----------------------------------------------------------------------------

    def run(self, stop: Callable[[], bool] | None = None) -> WorkerStats:
        """Consume until `stop()` (hand over) or `idle_exit_s` without data (end of stream)."""
        cfg = self.cfg
        self.consumer.subscribe(
            [cfg.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        start = time.perf_counter()
        last_ckpt = time.monotonic()
        self.idle.activity(last_ckpt)
        ended = False
        try:
            while not (stop is not None and stop()):
                msgs = self.consumer.consume(cfg.max_batch, cfg.poll_s)
                now = time.monotonic()
                if msgs:
                    self._process(msgs)
                    self.idle.activity(now, data=self.stats.samples > 0)
                if now - last_ckpt >= cfg.commit_every_s:
                    self._checkpoint(sorted(self.assigned))
                    last_ckpt = now
                if self.idle.ended(now):
                    ended = True
                    break
            if ended:
                self.finish()
            self._checkpoint(sorted(self.assigned))
        finally:
            self.stats.wall_s = time.perf_counter() - start
            self.consumer.close()  # revokes: a no-op checkpoint after the one above
            self.reader.close()
            self._event({"event": "stats", **self.stats.to_dict()})
        return self.stats

    def finish(self) -> None:
        """End of stream: close the open intervals of every owned device and write them."""
        for r in self.pool.runtime.decisions.flush():
            self._write(r)
        self.dirty.update({p: set(self._devices(p)) for p in self.assigned})

    # --- messages -----------------------------------------------------------------------------

    def _process(self, msgs: list) -> None:
        """Apply a batch of messages in offset order per device, one runtime tick per sample."""
        batches: list[SampleBatch] = []
        stamps: list[float] = []
        for m in msgs:
            if m.error() is not None:
                self.stats.malformed["kafka_error"] += 1
                continue
            p, off = m.partition(), m.offset()
            self.next_offset[p] = off + 1
            self.stats.messages += 1
            try:
                b = decode_batch(m.value(), m.key())
            except MalformedMessage as exc:
                self.stats.malformed[exc.reason] += 1
                continue
            if b.t.size == 0:
                continue
            self.partition_of.setdefault(b.device_id, p)
            self.dirty[self.partition_of[b.device_id]].add(b.device_id)
            batches.append(b)
            kind, ts = m.timestamp()
            stamps.append(ts / 1000.0 if kind != 0 else np.nan)
        if batches:
            self._ingest(batches)
            now = time.time()
            lat = (now - np.asarray(stamps)) * 1000.0
            self.stats.latency_ms.extend(lat[np.isfinite(lat)].tolist())

    def _ingest(self, batches: list[SampleBatch]) -> None:
        per_dev: dict[str, list[SampleBatch]] = defaultdict(list)
        for b in batches:  # per message, not per sample
            per_dev[b.device_id].append(b)
        ids = list(per_dev)
        rows = self.pool.rows(ids)  # (B,)
        for d, r in zip(ids, rows.tolist(), strict=True):
            binary = per_dev[d][-1].binary_id
            if binary is not None and self.binary_of.get(d) != binary:
                self._set_static(d, r, binary)
        seqs = [per_dev[d] for d in ids]
        n = np.array([sum(b.t.size for b in s) for s in seqs])
        L = int(n.max())
        t = np.full((len(ids), L), np.nan)  # (B, L)
        raw = np.zeros((len(ids), L, F), np.float32)  # (B, L, F)
        masks = np.zeros((len(ids), L, K), np.uint8)  # (B, L, K)
        for i, s in enumerate(seqs):
            t[i, : n[i]] = np.concatenate([b.t for b in s])
            raw[i, : n[i]] = np.concatenate([b.raw for b in s])
            masks[i, : n[i]] = np.concatenate([b.masks for b in s])
        valid = np.arange(L)[None, :] < n[:, None]  # (B, L)
        self.stats.samples += int(n.sum())
        rt = self.pool.runtime
        for j in range(L):
            sel = valid[:, j]
            for det in rt.ingest(rows[sel], t[sel, j], raw[sel, j], masks[sel, j]):
                self._write(det)

    def _set_static(self, device: str, row: int, binary: str) -> None:
        """Give `device` (at `row`) the static verdict of `binary`, or mask it with a reason."""
        path = self.binaries.get(binary)
        scores, results = static_scores(self.models, [path], self.cache)
        static = self.pool.runtime.static
        static.p[row], static.u[row] = scores.p[0], scores.u[0]
        static.available[row] = scores.available[0]
        static.seen[row] = scores.seen[0]
        result = results[0]
        if result is None:
            outcome = "unknown binary id"
        else:
            outcome = "available" if result.available else str(result.reason)
        self.stats.static[outcome] += 1
        self.binary_of[device] = binary
        self._event({"event": "static", "device": device, "binary": binary, "outcome": outcome})

    def _write(self, det) -> None:
        rec = detection_record(det, self.pool.id_of[det.device])
        rec = {"detection_id": detection_id(rec), **rec}
        self.sink.write(rec)
        self.stats.detections += 1
        if self.on_detection is not None:
            self.on_detection(rec)

    # --- checkpoints and rebalances -------------------------------------------------------------

    def _devices(self, p: int) -> list[str]:
        return [d for d, q in self.partition_of.items() if q == p and d in self.pool.row_of]

    def _checkpoint(self, partitions: list[int]) -> None:
        """Detections durable -> snapshots durable -> commit, for `partitions`."""
        from confluent_kafka import KafkaException, TopicPartition

        todo = [
            p
            for p in partitions
            if p in self.next_offset
            and (self.dirty.get(p) or self._committed.get(p) != self.next_offset[p])
        ]
        if not todo:
            return
        self.sink.flush()
        for p in todo:
            for d in sorted(self.dirty.get(p, ())):
                rec = StateRecord(p, self.next_offset[p], self.model_id, self.pool.export(d))
                self._produce_state(p, d, encode_state(rec))
        left = self.state_producer.flush(30.0)
        if left or self._state_errors:
            errors, self._state_errors = self._state_errors, []
            raise RuntimeError(f"state snapshots not delivered ({left} left; {errors[:3]})")
        offsets = [TopicPartition(self.cfg.topic, p, self.next_offset[p]) for p in todo]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # e.g. a rebalance is under way: the partitions may be gone
            self.stats.commit_failures += 1
            self._event({"event": "commit_failed", "error": str(exc.args[0])})
            return  # nothing committed: the next owner replays from the previous commit
        for p in todo:
            self.dirty.pop(p, None)
            self._committed[p] = self.next_offset[p]
        self.stats.checkpoints += 1
        self._event({"event": "commit", "offsets": {str(p): self.next_offset[p] for p in todo}})

    def _produce_state(self, p: int, device: str, value: bytes) -> None:
        def report(err, msg) -> None:
            if err is not None:
                self._state_errors.append(str(err))

        while True:
            try:
                self.state_producer.produce(
                    self.cfg.state,
                    value,
                    f"{p}|{device}".encode(),
                    partition=p % self._n_state,
                    on_delivery=report,
                )
                break
            except BufferError:
                self.state_producer.poll(0.05)
        self.stats.snapshots_written += 1

    def _on_assign(self, consumer, partitions) -> None:
        self.stats.rebalances += 1
        self.idle.assigned(time.monotonic())
        parts = [tp.partition for tp in partitions]
        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            if tp.offset >= 0:
                self._restore(tp.partition, tp.offset)
        self.assigned.update(parts)
        self._event({"event": "assigned", "partitions": sorted(self.assigned)})

    def _on_revoke(self, consumer, partitions) -> None:
        parts = [tp.partition for tp in partitions]
        self._checkpoint(sorted(p for p in parts if p in self.assigned))
        self._drop(parts)
        self.idle.revoked(time.monotonic())
        self._event({"event": "revoked", "partitions": parts})

    def _on_lost(self, consumer, partitions) -> None:
        parts = [tp.partition for tp in partitions]
        self._drop(parts)
        self.idle.revoked(time.monotonic())
        self._event({"event": "lost", "partitions": parts})

    def _drop(self, parts: list[int]) -> None:
        for p in parts:
            self.pool.release(self._devices(p))
            for d in self._devices_all(p):
                del self.partition_of[d]
                self.binary_of.pop(d, None)
            self.next_offset.pop(p, None)
            self._committed.pop(p, None)
            self.dirty.pop(p, None)
            self.assigned.discard(p)

    def _devices_all(self, p: int) -> list[str]:
        return [d for d, q in self.partition_of.items() if q == p]

    def _restore(self, p: int, committed: int) -> None:
        """Load, per device of partition p, its latest snapshot tagged <= the committed offset."""
        from confluent_kafka import KafkaException, TopicPartition

        sp = p % self._n_state
        try:
            lo, hi = self.reader.get_watermark_offsets(
                TopicPartition(self.cfg.state, sp), timeout=10
            )
        except KafkaException:
            return
        latest: dict[str, StateRecord] = {}
        if hi > lo:
            self.reader.assign([TopicPartition(self.cfg.state, sp, lo)])
            pos = lo
            deadline = time.monotonic() + 60.0
            while pos < hi and time.monotonic() < deadline:
                for m in self.reader.consume(1000, 0.5):
                    if m.error() is not None:
                        continue
                    pos = m.offset() + 1
                    try:
                        rec = decode_state(m.value())
                        device = m.key().decode().split("|", 1)[1]
                    except (ValueError, AttributeError, IndexError):
                        self.stats.snapshots_ignored += 1
                        continue
                    if rec.partition != p:
                        continue
                    if rec.next_offset > committed or rec.model_id != self.model_id:
                        self.stats.snapshots_ignored += 1
                        continue
                    old = latest.get(device)
                    if old is None or rec.next_offset >= old.next_offset:
                        latest[device] = rec
            self.reader.unassign()
            if pos < hi:
                raise RuntimeError(
                    f"state topic {self.cfg.state!r} partition {sp}: read to {pos} of {hi}"
                )
        for device, rec in latest.items():
            self.pool.restore(device, rec.blob)
            self.partition_of[device] = p
            self.binary_of.pop(device, None)  # the next message confirms or replaces the verdict
        self.stats.devices_restored += len(latest)
        self.next_offset[p] = self._committed[p] = committed
        self._event(
            {"event": "restored", "partition": p, "offset": committed, "devices": len(latest)}
        )


def open_events(path: Path | None) -> IO[str] | None:
    """An append-mode events file, or None."""
    if path is None:
        return None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a")  # noqa: SIM115
