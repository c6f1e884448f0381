"""Fleet detection over Kafka, end to end against librdkafka's mock cluster.

The mock cluster lives in this process; workers are real processes (`cli.py fleet detect`)
reaching it through its bootstrap address. Their results are compared with one Detector fed the
same telemetry in this process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("confluent_kafka")

from simulator.benchmark import PRESETS, plan_runs  # noqa: E402
from simulator.corpus import corpus_dir, load_corpus  # noqa: E402
from simulator.fleet import Fleet  # noqa: E402
from simulator.writer import as_recorded  # noqa: E402
from stream.binaries import read_binary_index  # noqa: E402
from stream.detector import Detector, DeviceInfo  # noqa: E402
from stream.kafka_io import (  # noqa: E402
    VERSION,
    MockCluster,
    TelemetryPublisher,
    decode_batch,
    encode_batch,
    encode_chunk,
)
from stream.manifest import load_manifest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "exported_models"
N_DEVICES, DURATION_S = 6, 50.0


@pytest.fixture(scope="module")
def telemetry():
    """Messages (key, value) per second of a small simulated fleet, and the single-process result."""
    from stream.onnx_session import load_models

    models = load_models(MODELS, "cpu", threads=1)
    hz = load_manifest(MODELS).hz
    cfg = PRESETS["tiny"].model_copy(
        update={
            "n_runs": N_DEVICES,
            "short_s": (DURATION_S, DURATION_S),
            "long_s": (DURATION_S, DURATION_S),
            "hz": hz,
            "seed": 11,
        }
    )
    specs = plan_runs(cfg, load_corpus())
    ids = [s.run_id for s in specs]
    bins = [s.binary_id for s in specs]
    fleet = Fleet(specs)
    seconds = [
        encode_chunk(ids, as_recorded(fleet.step(int(hz))), bins) for _ in range(int(DURATION_S))
    ]
    windows: list = []
    index = read_binary_index(corpus_dir() / "binaries.csv")
    devices = [DeviceInfo(i, index[b]) for i, b in zip(ids, bins, strict=True)]
    det = Detector(models, devices, on_windows=windows.append)
    assert det.static.available.all()  # workers must fuse the static expert to match
    found: list[dict] = []
    rows = np.arange(len(ids))
    for msgs in seconds:
        b = [decode_batch(v, k.encode()) for k, v in msgs]
        for j in range(b[0].t.size):
            found += det.ingest(
                rows,
                np.array([x.t[j] for x in b]),
                np.stack([x.raw[j] for x in b]),
                np.stack([x.masks[j] for x in b]),
            )
    found += det.finish()
    ref_windows = sorted(
        (ids[r], round(float(t), 3))
        for w in windows
        for r, t in zip(w.rows.tolist(), w.t_end_s.tolist(), strict=True)
    )
    return seconds, ref_windows, sorted(_key(r) for r in found)


def _key(r: dict) -> tuple:
    return (r["run_id"], r["t_start_s"], r["t_end_s"], r["t_emit_s"], r["peak_score"])


def _same_detections(got: list[tuple], want: list[tuple]) -> bool:
    """Same intervals and emission times; peak scores equal up to float noise (ONNX Runtime's CPU
    kernels round differently for different batch compositions, and two workers batch other
    devices together than one process does)."""
    return len(got) == len(want) and all(
        g[:4] == w[:4] and abs(g[4] - w[4]) <= 1e-5 for g, w in zip(got, want, strict=True)
    )


def _malformed(pub: TelemetryPublisher) -> None:
    """One message of each kind of garbage, spread over partitions (this also creates the topic)."""
    good = encode_batch("run_0001", np.zeros(2), np.zeros((2, 29)), np.zeros((2, 20)))
    pub.produce_raw(b"run_0001", b"not a telemetry message", partition=0)
    pub.produce_raw(b"run_0001", good[:4] + bytes([VERSION + 1]) + good[5:], partition=1)
    pub.produce_raw(b"run_9999", good, partition=2)
    pub.flush()


def _worker(cluster: MockCluster, group: str, topic: str, events: Path, **opts) -> subprocess.Popen:
    args = [
        sys.executable,
        str(ROOT / "cli.py"),
        "fleet",
        "detect",
        "--bootstrap-servers",
        cluster.bootstrap_servers,
        "--group",
        group,
        "--topic",
        topic,
        "--out-topic",
        topic + ".out",
        "--events",
        str(events),
    ]
    for k, v in opts.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(x) for x in lines if x.endswith("}")]


def _wait(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _assignment(path: Path) -> set[int]:
    owned: set[int] = set()
    for e in _events(path):
        if e["event"] == "assigned":
            owned = set(e["partitions"])
        elif e["event"] in ("revoked", "lost"):
            owned -= set(e["partitions"])
    return owned


def _both_share(paths: list[Path]) -> bool:
    a, b = (_assignment(p) for p in paths)
    return bool(a) and bool(b) and not (a & b) and a | b == {0, 1, 2, 3}


def _publish(pub: TelemetryPublisher, seconds: list, per_s: float) -> None:
    for msgs in seconds:
        for k, v in msgs:
            pub.produce_raw(k.encode(), v)
        time.sleep(per_s)
    pub.flush()


def _scored(paths: list[Path]) -> list[tuple[str, float]]:
    return sorted(
        (d, t)
        for p in paths
        for e in _events(p)
        if e["event"] == "windows"
        for d, t in zip(e["devices"], e["t_end_s"], strict=True)
    )


def _stats(path: Path) -> dict:
    return next(e for e in _events(path) if e["event"] == "stats")


def _detections(cluster: MockCluster, topic: str) -> list[dict]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "check"})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    out = []
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if hi > lo:
            c.assign([TopicPartition(topic, p, lo)])
            pos = lo
            while pos < hi:
                for m in c.consume(100, 1.0):
                    if m.error() is None:
                        out.append(json.loads(m.value()))
                        pos = m.offset() + 1
    c.close()
    return out


def _finish(procs: list[subprocess.Popen], timeout_s: float = 60.0) -> None:
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        assert p.returncode in (0, -signal.SIGKILL), err[-2000:]


def test_two_workers_score_every_window_once_and_match_single_process(telemetry, tmp_path):
    seconds, ref_windows, ref_dets = telemetry
    topic, group = f"tel-{uuid.uuid4().hex[:8]}", "pair"
    paths = [tmp_path / "w0.jsonl", tmp_path / "w1.jsonl"]
    with MockCluster() as cluster:
        pub = TelemetryPublisher(cluster.bootstrap_servers, topic)
        _malformed(pub)
        procs = [_worker(cluster, group, topic, p, idle_exit=8, commit_every=0.5) for p in paths]
        _wait(lambda: _both_share(paths), 40, "both workers to own partitions")
        _publish(pub, seconds, 0.02)
        _finish(procs)
        dets = _detections(cluster, topic + ".out")

    assert _scored(paths) == ref_windows  # every window, exactly once
    assert all(_scored([p]) for p in paths)  # and both workers did score
    ids = [d["detection_id"] for d in dets]
    assert len(ids) == len(set(ids))
    assert _same_detections(sorted(_key(d) for d in dets), ref_dets)
    malformed: dict = {}
    for p in paths:
        for k, v in _stats(p)["malformed"].items():
            malformed[k] = malformed.get(k, 0) + v
    # at least once: a partition handed over before its first commit re-reads its malformed message
    assert set(malformed) == {"bad_magic", "unknown_version", "wrong_key"}
    assert all(v >= 1 for v in malformed.values())
    static = [_stats(p)["static"] for p in paths]
    assert all(set(s) == {"available"} for s in static)  # every device got its static verdict
    assert sum(s["available"] for s in static) >= N_DEVICES


def test_a_killed_workers_devices_are_rebuilt_by_the_other(telemetry, tmp_path):
    seconds, ref_windows, ref_dets = telemetry
    topic, group = f"tel-{uuid.uuid4().hex[:8]}", "crash"
    paths = [tmp_path / "victim.jsonl", tmp_path / "survivor.jsonl"]
    with MockCluster() as cluster:
        pub = TelemetryPublisher(cluster.bootstrap_servers, topic)
        _malformed(pub)
        victim = _worker(cluster, group, topic, paths[0], commit_every=0.3, session_timeout=3)
        survivor = _worker(
            cluster, group, topic, paths[1], commit_every=0.3, session_timeout=3, idle_exit=10
        )
        _wait(lambda: _both_share(paths), 40, "both workers to own partitions")
        feeder = threading.Thread(target=_publish, args=(pub, seconds, 0.1))
        feeder.start()

        def victim_committed_data() -> bool:
            return any(
                e["event"] == "commit" and e["offsets"] and min(e["offsets"].values()) > 3
                for e in _events(paths[0])
            )

        _wait(victim_committed_data, 30, "the victim to commit some telemetry")
        assert feeder.is_alive(), "the kill must happen mid-stream"
        victim.send_signal(signal.SIGKILL)
        feeder.join()
        _finish([victim, survivor])
        dets = _detections(cluster, topic + ".out")

    scored = _scored(paths)
    assert set(scored) == set(ref_windows)  # every window scored at least once
    assert _stats(paths[1])["devices_restored"] > 0  # the victim's devices came from snapshots
    by_id: dict[str, dict] = {}
    for d in dets:
        assert by_id.setdefault(d["detection_id"], d) == d  # a duplicate is an identical copy
    assert _same_detections(sorted(_key(d) for d in by_id.values()), ref_dets)
