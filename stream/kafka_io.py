"""Kafka transport for fleet telemetry and detections: wire format, publisher, sink, mock cluster.

Telemetry travels as one message per device and batch of samples, keyed by the device id, so that
Kafka's key partitioning keeps every device on one partition (and so on one consumer of a group).
A value is a fixed little-endian header followed by numpy buffers:

    magic b"FSTM" | version u8 | bin_len u8 | key_len u16 | n_features u16 | n_masks u16 | n u32
    device id (utf-8, key_len bytes) | binary id (utf-8, bin_len bytes)
    t float64 (n,) | features float32 (n, F) | masks uint8 (n, K)

The binary id (version 2) names the firmware binary the device runs, as in a `binaries.csv` index,
so that a worker can give the device its static expert; bin_len 0 means unknown. Version 1
messages (the byte was reserved, always 0) still decode, with no binary.
Features and masks are in `stream.schema` order. Decoding checks every field and raises
`MalformedMessage` with a short reason (counted and skipped by the worker, never fatal).
Detections are the JSON objects of DESIGN.md 3.6 plus a deterministic `detection_id`, so that the
duplicates that at-least-once delivery can produce are recognisable.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS

__all__ = [
    "MAGIC",
    "VERSION",
    "MalformedMessage",
    "SampleBatch",
    "encode_batch",
    "decode_batch",
    "encode_chunk",
    "detection_id",
    "encode_detection",
    "decode_detection",
    "MockCluster",
    "resolve_bootstrap",
    "TelemetryPublisher",
    "DetectionSink",
    "publish_fleet",
    "DEFAULT_TOPIC",
    "DEFAULT_OUT_TOPIC",
]

MAGIC = b"FSTM"
VERSION = 2
_VERSIONS = (1, 2)  # 1: no binary id
DEFAULT_TOPIC = "fleet.telemetry"
DEFAULT_OUT_TOPIC = "fleet.detections"
_HEADER = struct.Struct("<4sBBHHHI")
F, K = len(FEATURE_COLUMNS), len(MASK_COLUMNS)

Step = Callable[[int], dict[str, np.ndarray]]


class MalformedMessage(ValueError):
    """A telemetry message that cannot be used; `reason` is the counter it is filed under."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """Consecutive samples of one device: t (n,), raw features (n, F) float32, masks (n, K) uint8."""

    device_id: str
    t: np.ndarray
    raw: np.ndarray
    masks: np.ndarray
    binary_id: str | None = None


def encode_batch(
    device_id: str,
    t: np.ndarray,
    raw: np.ndarray,
    masks: np.ndarray,
    binary_id: str | None = None,
) -> bytes:
    """One message value: header + device id + binary id + t (n,) + raw (n, F) + masks (n, K)."""
    key = device_id.encode()
    binary = (binary_id or "").encode()
    if len(binary) > 255:
        raise ValueError(
            f"The 'binary_id' parameter of encode_batch must be at most 255 bytes in UTF-8. "
            f"Got {len(binary)} bytes instead."
        )
    t = np.ascontiguousarray(t, "<f8")
    raw = np.ascontiguousarray(raw, "<f4")
    masks = np.ascontiguousarray(masks, np.uint8)
    n = t.shape[0]
    if raw.shape != (n, F) or masks.shape != (n, K):
        raise ValueError(
            f"The 'raw' parameter of encode_batch must have shape ({n}, {F}) and masks "
            f"({n}, {K}). Got {raw.shape}, {masks.shape} instead."
        )
    head = _HEADER.pack(MAGIC, VERSION, len(binary), len(key), F, K, n)
    return b"".join((head, key, binary, t.tobytes(), raw.tobytes(), masks.tobytes()))


def decode_batch(value: bytes | None, key: bytes | None = None) -> SampleBatch:
    """Parse one message value; the message key, when given, must equal the embedded device id."""
    if value is None or len(value) < _HEADER.size:
        raise MalformedMessage("truncated", f"{0 if value is None else len(value)} bytes")
    magic, version, bin_len, key_len, n_f, n_k, n = _HEADER.unpack_from(value)
    if magic != MAGIC:
        raise MalformedMessage("bad_magic", repr(magic))
    if version not in _VERSIONS or (version == 1 and bin_len):
        raise MalformedMessage("unknown_version", str(version))
    if (n_f, n_k) != (F, K):
        raise MalformedMessage("bad_shape", f"{n_f} features, {n_k} masks")
    start = _HEADER.size
    expected = start + key_len + bin_len + n * (8 + 4 * F + K)
    if len(value) != expected:
        raise MalformedMessage("bad_length", f"{len(value)} bytes, expected {expected}")
    try:
        device_id = value[start : start + key_len].decode()
    except UnicodeDecodeError as exc:
        raise MalformedMessage("bad_device_id", str(exc)) from None
    if not device_id or (key is not None and key != value[start : start + key_len]):
        raise MalformedMessage("wrong_key", f"key {key!r} for device {device_id!r}")
    off = start + key_len
    try:
        binary_id = value[off : off + bin_len].decode() or None
    except UnicodeDecodeError as exc:
        raise MalformedMessage("bad_binary_id", str(exc)) from None
    off += bin_len
    t = np.frombuffer(value, "<f8", n, off)
    off += 8 * n
    raw = np.frombuffer(value, "<f4", n * F, off).reshape(n, F)
    off += 4 * n * F
    masks = np.frombuffer(value, np.uint8, n * K, off).reshape(n, K)
    return SampleBatch(device_id, t, raw, masks, binary_id)


def encode_chunk(
    device_ids: Sequence[str],
    cols: dict[str, np.ndarray],
    binary_ids: Sequence[str | None] | None = None,
) -> list[tuple[str, bytes]]:
    """A fleet chunk {column: (D, n)} -> one (key, value) per device, with its binary id if given."""
    if binary_ids is not None and len(binary_ids) != len(device_ids):
        raise ValueError(
            f"The 'binary_ids' parameter of encode_chunk must have one entry per device "
            f"({len(device_ids)}). Got {len(binary_ids)} instead."
        )
    bins = list(binary_ids) if binary_ids is not None else [None] * len(device_ids)
    t = np.asarray(cols["t_sim_s"], np.float64)  # (D, n)
    raw = np.stack([cols[c] for c in FEATURE_COLUMNS], axis=-1).astype(np.float32)  # (D, n, F)
    masks = np.stack([cols[c] for c in MASK_COLUMNS], axis=-1).astype(np.uint8)  # (D, n, K)
    return [(d, encode_batch(d, t[i], raw[i], masks[i], bins[i])) for i, d in enumerate(device_ids)]


def detection_id(record: dict) -> str:
    """Deterministic id of a detection: the same interval of the same device gets the same id."""
    text = f"{record['run_id']}|{record['t_start_s']:.3f}|{record['t_end_s']:.3f}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_detection(record: dict) -> bytes:
    """A DESIGN.md 3.6 record as UTF-8 JSON with its `detection_id`."""
    return json.dumps({"detection_id": detection_id(record), **record}).encode()


def decode_detection(value: bytes) -> dict:
    return json.loads(value)


class MockCluster:
    """librdkafka's built-in mock cluster, alive while this object is open.

    Its brokers listen on localhost, so clients in other processes reach it through
    `bootstrap_servers`. Topics are created on first use with 4 partitions (the mock's default).
    """

    def __init__(self, n_brokers: int = 1) -> None:
        from confluent_kafka import Producer

        if n_brokers < 1:
            raise ValueError(
                f"The 'n_brokers' parameter of MockCluster must be >= 1. Got {n_brokers!r} instead."
            )
        self._handle = Producer({"test.mock.num.brokers": n_brokers, "log_level": 3})
        brokers = self._handle.list_topics(timeout=10).brokers.values()
        self.bootstrap_servers = ",".join(f"{b.host}:{b.port}" for b in brokers)

    def close(self) -> None:
        self._handle = None

    def __enter__(self) -> MockCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resolve_bootstrap(servers: str) -> tuple[str, MockCluster | None]:
    """'mock' starts a mock cluster (returned, keep it open); anything else is used as given."""
    if servers == "mock":
        cluster = MockCluster()
        return cluster.bootstrap_servers, cluster
    return servers, None


class _Delivery:
    """Delivery reports of one producer; `check` raises after a flush that did not deliver all."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, err, msg) -> None:
        if err is not None:
            self.errors.append(str(err))

    def check(self, producer, timeout_s: float, what: str) -> None:
        left = producer.flush(timeout_s)
        if left or self.errors:
            errors, self.errors = self.errors, []
            raise RuntimeError(
                f"{what}: {left} messages undelivered after {timeout_s:g} s; errors {errors[:3]}"
            )


class TelemetryPublisher:
    """Publishes fleet chunks to `topic`, one message per device and chunk, keyed by device id."""

    def __init__(self, bootstrap_servers: str, topic: str = DEFAULT_TOPIC) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "enable.idempotence": True,
                "linger.ms": 5,
                "compression.type": "lz4",
                "log_level": 3,
            }
        )
        self._delivery = _Delivery()
        self.messages = 0
        self.samples = 0

    def publish(
        self,
        device_ids: Sequence[str],
        cols: dict[str, np.ndarray],
        binary_ids: Sequence[str | None] | None = None,
    ) -> None:
        for key, value in encode_chunk(device_ids, cols, binary_ids):
            self.produce_raw(key.encode(), value)
        self.samples += int(np.asarray(cols["t_sim_s"]).size)

    def produce_raw(self, key: bytes | None, value: bytes | None, partition: int = -1) -> None:
        """Produce one message as is (also how tests inject malformed ones)."""
        while True:
            try:
                self._producer.produce(
                    self.topic, value, key, partition=partition, on_delivery=self._delivery
                )
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                self._producer.poll(0.05)
        self._producer.poll(0)
        self.messages += 1

    def flush(self, timeout_s: float = 30.0) -> None:
        self._delivery.check(self._producer, timeout_s, "telemetry publisher")


class DetectionSink:
    """Writes detections to `topic` keyed by device id; `flush` returns only once all are durable."""

    def __init__(self, bootstrap_servers: str, topic: str = DEFAULT_OUT_TOPIC) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "enable.idempotence": True,
                "linger.ms": 5,
                "log_level": 3,
            }
        )
        self._delivery = _Delivery()
        self.written = 0

    def write(self, record: dict) -> None:
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    encode_detection(record),
                    record["run_id"].encode(),
                    on_delivery=self._delivery,
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self._producer.poll(0)
        self.written += 1

    def flush(self, timeout_s: float = 30.0) -> None:
        self._delivery.check(self._producer, timeout_s, "detection sink")


def publish_fleet(
    step: Step,
    device_ids: Sequence[str],
    publisher: TelemetryPublisher,
    *,
    duration_s: float,
    hz: float,
    speed: float | None = None,
    message_s: float = 1.0,
    binary_ids: Sequence[str | None] | None = None,
) -> dict:
    """Publish `duration_s` of a simulated fleet, `message_s` of samples per device and message.

    speed None publishes as fast as possible; 1.0 paces the messages at real time. `binary_ids`
    (one per device) travel in every message, so a worker that picks a device up mid-stream
    still knows its binary.
    """
    for name, value in (("duration_s", duration_s), ("hz", hz), ("message_s", message_s)):
        if not value > 0:
            raise ValueError(
                f"The '{name}' parameter of publish_fleet must be > 0. Got {value!r} instead."
            )
    if speed is not None and not speed > 0:
        raise ValueError(
            f"The 'speed' parameter of publish_fleet must be > 0. Got {speed!r} instead."
        )
    chunk = max(1, int(round(message_s * hz)))
    total = int(round(duration_s * hz))
    done = 0
    start = time.perf_counter()
    while done < total:
        n = min(chunk, total - done)
        publisher.publish(device_ids, step(n), binary_ids)
        done += n
        if speed is not None:
            due = done / hz / speed - (time.perf_counter() - start)
            if due > 0:
                time.sleep(due)
    publisher.flush()
    wall = time.perf_counter() - start
    return {
        "devices": len(device_ids),
        "messages": publisher.messages,
        "samples": publisher.samples,
        "wall_s": round(wall, 3),
        "samples_per_s": round(publisher.samples / max(wall, 1e-9), 1),
    }
