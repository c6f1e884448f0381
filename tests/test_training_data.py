"""Helpers for the training tests: a tiny synthetic benchmark cut by the runtime's own windowing.

Not a test module by itself (no tests); it builds, once per session, a data directory in the
benchmark layout: tiny hand-made ELF binaries (one deliberately broken), runs whose trojan
binaries add load inside known intervals, split manifests and processed NPZ windows written by
`offline_training.windows.build_split_windows`, and a model directory trained on it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import polars as pl

from offline_training.windows import RunResiduals, build_split_windows
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.windowing import Normalisation, WindowSpec, baseline_residuals

SPEC = WindowSpec(hz=5.0, window_s=20.0, stride_s=4.0)
SPLITS = ("unseen_workload", "binary_disjoint")
_CACHE: dict[str, Path] = {}


def tiny_elf(payload: bytes) -> bytes:
    """A minimal valid aarch64 ELF64 executable: header, one PT_LOAD segment, the payload."""
    ehdr, phdr = 64, 56
    off, base = ehdr + phdr, 0x400000
    size = off + len(payload)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\x00" * 8
    head = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, 183, 1, base + off, ehdr, 0, 0, ehdr, phdr, 1, 64, 0, 0
    )
    return head + struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000) + payload


def _binaries(root: Path) -> dict[str, str]:
    """Write 8 binaries (4 benign, 4 trojan) plus one unreadable; return id -> capability."""
    bdir = root / "binaries"
    bdir.mkdir(parents=True)
    caps = {}
    rows = []
    for i in range(9):
        bid = f"bin_{i:02d}"
        cap = "benign" if i % 2 == 0 else "compute"
        if i == 8:
            data = b"\x7fELF\x02\x01\x01" + b"\x00" * 20  # truncated: LIEF must not be trusted
        elif cap == "benign":
            data = tiny_elf(b"\x00" * (40 + 8 * i) + b"sensor logger /etc/app.conf " * (i + 1))
        else:
            data = tiny_elf(
                bytes(range(256)) * (i + 1) + b"stratum+tcp://pool.example.com:3333 wallet miner"
            )
        (bdir / f"{bid}.elf").write_bytes(data)
        rows.append(
            {"binary_id": bid, "binary_path": f"{bid}.elf", "sha256": "", "capability": cap}
        )
        caps[bid] = cap
    pl.DataFrame(rows).write_csv(bdir / "binaries.csv")
    return caps


def _run(run_id: str, binary_id: str, trojan: bool, seed: int, n: int) -> RunResiduals:
    """One run of raw telemetry; a trojan adds CPU, power, heat and counters inside its intervals."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(run_id[-2:])]))
    t = np.arange(n) / SPEC.hz
    F = len(FEATURE_COLUMNS)
    base = rng.uniform(10.0, 1000.0, F)
    raw = base * (1.0 + 0.05 * rng.standard_normal((n, F)))
    truth = np.zeros((0, 2))
    if trojan:
        starts = np.sort(rng.uniform(20.0, t[-1] - 40.0, 2))
        truth = np.stack([starts, starts + rng.uniform(15.0, 30.0, 2)], axis=1)
        truth = truth[np.r_[True, truth[1:, 0] > truth[:-1, 1]]]
        active = ((t[:, None] >= truth[:, 0]) & (t[:, None] < truth[:, 1])).any(axis=1)
        raw[active] *= 1.0 + rng.uniform(0.3, 0.6, F)
    masks = (rng.random((n, len(MASK_COLUMNS))) < 0.85).astype(np.uint8)
    residuals = baseline_residuals(raw, SPEC.hz, Normalisation.unit())
    return RunResiduals(run_id, binary_id, t, residuals, masks, truth)


def make_tiny_benchmark(root: Path, seed: int = 0, n_runs: int = 14, duration_s: float = 160.0):
    """Write the tiny benchmark under root and return root."""
    caps = _binaries(root)
    ids = sorted(caps)
    runs = {}
    for k in range(n_runs):
        bid = ids[k % len(ids)]
        runs[f"run_{k:04d}"] = _run(
            f"run_{k:04d}", bid, caps[bid] != "benign", seed, int(duration_s * SPEC.hz)
        )
    names = sorted(runs)
    for r in names:  # the truth, as a run directory holds it (training labels are read from it)
        (root / "runs" / r).mkdir(parents=True)
        rows = "".join(f"{a:.6f},{b:.6f}\n" for a, b in runs[r].truth)
        (root / "runs" / r / "intervals.csv").write_text("t_start_sim_s,t_end_sim_s\n" + rows)
    by_binary = {r: runs[r].binary_id for r in names}
    parts = {
        "unseen_workload": {"train": names[:8], "val": names[8:11], "test": names[11:]},
        "binary_disjoint": {
            "train": [r for r in names if by_binary[r] in ids[:5]],
            "val": [r for r in names if by_binary[r] in ids[5:7]],
            "test": [r for r in names if by_binary[r] in ids[7:]],
        },
    }
    (root / "splits").mkdir()
    for name, p in parts.items():
        (root / "splits" / f"{name}.json").write_text(
            json.dumps({"name": name, **p, "seed": seed, "rule": "test"})
        )
        build_split_windows(runs, p, root / "processed" / name, SPEC)
    return root


def tiny_benchmark(tmp_path_factory) -> Path:
    """The session's tiny benchmark (built once)."""
    if "data" not in _CACHE:
        _CACHE["data"] = make_tiny_benchmark(tmp_path_factory.mktemp("tiny_bench"))
    return _CACHE["data"]


def tiny_config(data: Path, out: Path, **kw):
    from offline_training.config import TrainConfig

    base = dict(
        data_dir=data,
        out_dir=out,
        device="cpu",
        epochs=1,
        seed=0,
        channels=8,
        static_steps=50,
        gate_steps=50,
        threads=1,
        synthetic_runs=0,
    )
    return TrainConfig(**(base | kw))


def tiny_models(tmp_path_factory) -> Path:
    """A model directory trained on the tiny benchmark (built once per session)."""
    if "models" not in _CACHE:
        from offline_training.pipeline import run_training

        out = tmp_path_factory.mktemp("tiny_models") / "models"
        run_training(tiny_config(tiny_benchmark(tmp_path_factory), out))
        _CACHE["models"] = out
    return _CACHE["models"]
