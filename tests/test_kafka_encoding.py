"""Fleet wire format, detection ids and device-state snapshots: no Kafka needed."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from stream.decide import DecisionConfig
from stream.detector import Detector, DeviceInfo
from stream.fleet_state import DevicePool, StateRecord, decode_state, encode_state
from stream.kafka_io import (
    MalformedMessage,
    decode_batch,
    decode_detection,
    detection_id,
    encode_batch,
    encode_detection,
)
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS

F, K = len(FEATURE_COLUMNS), len(MASK_COLUMNS)
MODELS = Path(__file__).resolve().parents[1] / "exported_models"


def _batch(seed: int, n: int = 10, t0: float = 0.0):
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(n) / 10.0
    raw = rng.normal(50.0, 10.0, (n, F)).astype(np.float32)
    masks = (rng.random((n, K)) < 0.8).astype(np.uint8)
    return t, raw, masks


def test_a_batch_round_trips_bit_for_bit():
    t, raw, masks = _batch(0)
    b = decode_batch(encode_batch("dev-7", t, raw, masks), b"dev-7")
    assert b.device_id == "dev-7"
    np.testing.assert_array_equal(b.t, t)
    np.testing.assert_array_equal(b.raw, raw)
    np.testing.assert_array_equal(b.masks, masks)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda v: b"XXXX" + v[4:], "bad_magic"),
        (lambda v: v[:4] + bytes([9]) + v[5:], "unknown_version"),
        (lambda v: v[:-3], "bad_length"),
        (lambda v: v[:10], "truncated"),
        (lambda v: v[:8] + struct.pack("<H", F + 1) + v[10:], "bad_shape"),
    ],
)
def test_a_corrupted_message_is_refused_with_its_reason(mutate, reason):
    value = encode_batch("dev-1", *_batch(1))
    with pytest.raises(MalformedMessage) as err:
        decode_batch(mutate(value), b"dev-1")
    assert err.value.reason == reason


def test_a_batch_carries_the_devices_binary_id():
    t, raw, masks = _batch(3)
    b = decode_batch(encode_batch("dev-7", t, raw, masks, "bin_0123abcd"), b"dev-7")
    assert b.binary_id == "bin_0123abcd"
    np.testing.assert_array_equal(b.raw, raw)
    assert decode_batch(encode_batch("dev-7", t, raw, masks), b"dev-7").binary_id is None


def test_a_version_1_message_still_decodes_without_a_binary():
    t, raw, masks = _batch(4)
    v2 = encode_batch("dev-1", t, raw, masks)  # no binary: the same bytes as version 1 after it
    b = decode_batch(v2[:4] + bytes([1]) + v2[5:], b"dev-1")
    assert b.binary_id is None
    np.testing.assert_array_equal(b.masks, masks)


def test_a_version_1_message_with_a_binary_length_is_refused():
    v2 = encode_batch("dev-1", *_batch(5), "bin_x")
    with pytest.raises(MalformedMessage) as err:
        decode_batch(v2[:4] + bytes([1]) + v2[5:], b"dev-1")
    assert err.value.reason == "unknown_version"


def test_a_binary_id_that_is_not_utf8_is_refused():
    v = bytearray(encode_batch("dev-1", *_batch(6), "bin_x"))
    start = struct.calcsize("<4sBBHHHI") + len(b"dev-1")
    v[start] = 0xFF
    with pytest.raises(MalformedMessage) as err:
        decode_batch(bytes(v), b"dev-1")
    assert err.value.reason == "bad_binary_id"


def test_a_binary_id_longer_than_255_bytes_is_refused_when_encoding():
    with pytest.raises(ValueError, match="'binary_id' parameter of encode_batch"):
        encode_batch("dev-1", *_batch(7), "b" * 256)


def test_a_message_under_another_devices_key_is_refused():
    value = encode_batch("dev-1", *_batch(2))
    with pytest.raises(MalformedMessage) as err:
        decode_batch(value, b"dev-2")
    assert err.value.reason == "wrong_key"


def test_detection_ids_are_deterministic_and_tell_intervals_apart():
    a = {"run_id": "d1", "t_start_s": 10.0, "t_end_s": 20.0, "t_emit_s": 12.0}
    assert detection_id(a) == detection_id(dict(a))
    assert detection_id(a) != detection_id({**a, "t_start_s": 11.0})
    assert detection_id(a) != detection_id({**a, "run_id": "d2"})
    assert decode_detection(encode_detection(a))["detection_id"] == detection_id(a)


def test_a_state_record_round_trips():
    rec = decode_state(encode_state(StateRecord(3, 1234, "abc", b"\x00\x01state")))
    assert (rec.partition, rec.next_offset, rec.model_id, rec.blob) == (
        3,
        1234,
        "abc",
        b"\x00\x01state",
    )


@pytest.fixture(scope="module")
def models():
    from stream.onnx_session import load_models

    return load_models(MODELS, "cpu", threads=1)


def _feed(runtime, rows, batches, j0, j1, windows):
    out = []
    for j in range(j0, j1):
        t = np.array([b[0][j] for b in batches])
        raw = np.stack([b[1][j] for b in batches])
        masks = np.stack([b[2][j] for b in batches])
        out += runtime.ingest(rows, t, raw, masks)
    return out


def test_restoring_a_snapshot_into_another_pool_continues_exactly(models):
    """Export mid-stream, restore into a pool of another layout (and after growth), continue:
    windows and intervals equal those of one uninterrupted runtime."""
    n = 400
    batches = []
    for d in range(2):
        t, raw, masks = _batch(10 + d, n)
        raw[150:300, :5] += 40.0 * (d + 1)  # a burst, so that intervals open and close
        batches.append((t, raw, masks))
    ref_windows: list = []

    # thresholds low enough that the burst raises an interval whatever the shipped models decide
    decision = DecisionConfig(0.3, 0.2, 2.0, 2.0, stride_s=models.manifest.stride_s)

    def factory(k, sink):
        return Detector(
            models,
            [DeviceInfo(f"s{i}") for i in range(k)],
            decision=decision,
            on_windows=sink.append,
        ).runtime

    ref = factory(2, ref_windows)
    rows = np.arange(2)
    _feed(ref, rows, batches, 0, 220, ref_windows)
    ref_dets = _feed(ref, rows, batches, 220, n, ref_windows) + ref.finish()

    first = DevicePool(lambda k: factory(k, []), capacity=2)
    r1 = first.rows(["a", "b"])
    _feed(first.runtime, r1, batches, 0, 220, [])
    blobs = {d: first.export(d) for d in ("a", "b")}

    windows: list = []
    second = DevicePool(lambda k: factory(k, windows), capacity=1)
    second.rows(["other"])  # another device first: a and b land on other rows, after growth
    for d in ("b", "a"):
        second.restore(d, blobs[d])
    r2 = second.rows(["a", "b"])
    dets = _feed(second.runtime, r2, batches, 220, n, windows)
    dets += second.runtime.finish()

    cut = batches[0][0][219]
    ref_windows_after = [
        (int(w.rows[i]), float(w.t_end_s[i]), float(w.score[i]))
        for w in ref_windows
        for i in range(w.rows.size)
        if w.t_end_s[i] > cut
    ]
    back = {int(r2[0]): 0, int(r2[1]): 1}
    got = [
        (back[int(w.rows[i])], float(w.t_end_s[i]), float(w.score[i]))
        for w in windows
        for i in range(w.rows.size)
        if int(w.rows[i]) in back
    ]
    assert sorted(got) == sorted(ref_windows_after)
    assert ref_dets, "the burst should raise an interval that closes after the snapshot"

    def key(d, dev):
        return (dev, d.t_start_s, d.t_end_s, d.t_emit_s, d.peak_score, d.mean_score)

    assert sorted(key(d, back[d.device]) for d in dets) == sorted(
        key(d, d.device) for d in ref_dets
    )
