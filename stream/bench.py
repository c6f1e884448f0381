"""Latency and throughput of the detector (DESIGN.md section 7): the figures `cli.py bench` writes.

`run_bench` measures, after warm-up: model-only latency per expert, batch size and provider; the
end-to-end latency of one stream from sample arrival to decision, with a per-stage breakdown; the
sustained throughput against the number of concurrent device streams; the dynamic expert against a
PyTorch-eager reference on the same windows (the reference is injected: stream/ never imports
torch); state bytes per stream and peak RSS; and the environment (`stream.bench_env`; the timing
helpers are in `stream.bench_timing`). Telemetry is synthetic (bounded
random walks per feature at realistic magnitudes), generated outside every timed region. The result
is a plain JSON-ready dict. A benchmark, never a timed test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stream.bench_env import environment, peak_rss_bytes, state_bytes
from stream.bench_timing import STAGES, StageClock, percentiles_ms, time_calls
from stream.detector import Detector, DeviceInfo
from stream.manifest import read_verified
from stream.onnx_session import ModelSet, load_models
from stream.schema import FEATURE_COLUMNS, FUSION_INPUTS, MASK_COLUMNS, PERF_COLUMNS

__all__ = [
    "SCHEMA",
    "BenchConfig",
    "DynamicFn",
    "Reference",
    "ReferenceFactory",
    "SyntheticTelemetry",
    "parse_counts",
    "model_latency",
    "one_stream_latency",
    "throughput",
    "dynamic_weights",
    "torch_reference",
    "run_bench",
]

SCHEMA = "fusionstream.bench/1"
F, K = len(FEATURE_COLUMNS), len(MASK_COLUMNS)

#: values (B, W, F) float32, masks (B, W, K) uint8 -> p (B,)
DynamicFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Reference:
    """A reference implementation of the dynamic expert (PyTorch eager, built outside stream/)."""

    score: DynamicFn
    description: str
    threads: int  # the thread count it runs with by default
    set_threads: Callable[[int], None] | None = None


#: (DynamicEnsemble keyword arguments, state dict as numpy) -> Reference, or None without torch
ReferenceFactory = Callable[[dict, dict[str, np.ndarray]], Reference | None]
Progress = Callable[[str], None]


class BenchConfig(BaseModel):
    """What to measure; `duration_s` is simulated seconds streamed per stream count."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models_dir: Path
    streams: tuple[int, ...] = (1, 10, 100, 1000)
    batches: tuple[int, ...] = (1, 16, 256, 4096)
    duration_s: float = Field(default=30.0, gt=0)
    provider: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    min_reps: int = Field(default=20, ge=1)  # timed calls per model-only case, at least
    case_time_s: float | None = Field(default=None, ge=0)  # per case; None: duration_s / 100
    max_case_time_s: float = Field(default=5.0, gt=0)
    latency_factor: float = Field(default=20.0, gt=0)  # one-stream run: factor x duration_s

    def case_seconds(self) -> float:
        return min(0.5, self.duration_s / 100) if self.case_time_s is None else self.case_time_s


def parse_counts(text: str) -> tuple[int, ...] | None:
    """ "1,10,100" -> (1, 10, 100); None unless every item is an integer > 0."""
    try:
        out = tuple(int(s) for s in str(text).split(","))
    except ValueError:
        return None
    return out if out and all(v > 0 for v in out) else None


# ---------------------------------------------------------------------------------------------
# Synthetic telemetry


def _feature_ranges() -> np.ndarray:
    """(F, 3) lower bound, upper bound, step sd per feature; perf counters in log10 units."""
    rows = []
    for c in FEATURE_COLUMNS:
        if c in PERF_COLUMNS:
            rows.append((1.0, 9.0, 0.03))  # counts per 100 ms, a random walk in decades
        elif c.endswith("_util") or c.startswith("cpu_util"):
            rows.append((0.0, 100.0, 2.0))
        elif c.endswith("_freq_mhz"):
            rows.append((200.0, 3200.0, 15.0))
        elif c.endswith("_c"):
            rows.append((25.0, 95.0, 0.05))
        elif c == "fan_pwm":
            rows.append((0.0, 255.0, 1.0))
        elif c == "fan_rpm":
            rows.append((0.0, 5000.0, 15.0))
        elif c.endswith("_mw"):
            rows.append((100.0, 15000.0, 40.0))
        else:
            rows.append((0.0, 1.0, 0.01))
    return np.array(rows, np.float64)


_RANGES = _feature_ranges()
_PERF = np.array([c in PERF_COLUMNS for c in FEATURE_COLUMNS])


class SyntheticTelemetry:
    """Bounded random walks per device and feature at realistic magnitudes; masks mostly fresh.

    `chunk(n)` returns raw (D, n, F) float64 and masks (D, n, K) uint8, each mask stale (0) with
    probability `stale`.
    """

    def __init__(self, n_devices: int, *, seed: int = 0, stale: float = 0.01) -> None:
        self.n_devices = n_devices
        self.stale = stale
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, n_devices]))
        lo, hi = _RANGES[:, 0], _RANGES[:, 1]
        self._level = lo + (hi - lo) * self._rng.uniform(0.2, 0.6, (n_devices, F))  # (D, F)

    def chunk(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi, sd = _RANGES[:, 0], _RANGES[:, 1], _RANGES[:, 2]
        steps = self._rng.standard_normal((self.n_devices, n, F)) * sd  # (D, n, F)
        walk = self._level[:, None, :] + np.cumsum(steps, axis=1)
        walk = np.clip(walk, lo, hi)  # (D, n, F)
        self._level = walk[:, -1, :]
        raw = walk.copy()
        raw[..., _PERF] = 10.0 ** walk[..., _PERF]
        masks = (self._rng.random((self.n_devices, n, K)) >= self.stale).astype(np.uint8)
        return raw, masks


# ---------------------------------------------------------------------------------------------
# 1. Model-only latency


def _expert_inputs(models: ModelSet, batch: int, seed: int) -> dict[str, tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, batch]))
    W, S = models.manifest.window, len(models.manifest.static_feature_names)
    values = np.clip(rng.standard_normal((batch, W, F)), -10, 10).astype(np.float32)
    masks = (rng.random((batch, W, K)) >= 0.01).astype(np.uint8)
    return {
        "dynamic": (values, masks),
        "static": (rng.standard_normal((batch, S)).astype(np.float32),),
        "fusion": (rng.random((batch, len(FUSION_INPUTS))).astype(np.float32),),
    }


def model_latency(model_sets: list[ModelSet], cfg: BenchConfig) -> list[dict]:
    """Per provider, expert and batch size: p50/p99/mean ms per call and windows/s at p50."""
    rows = []
    for models in model_sets:
        experts = {"dynamic": models.dynamic, "static": models.static, "fusion": models.fusion}
        provider = models.dynamic.providers[0]
        for batch in cfg.batches:
            inputs = _expert_inputs(models, batch, cfg.seed)
            for name, expert in experts.items():
                args = inputs[name]
                (secs,) = time_calls(
                    lambda e=expert, a=args: e.score(*a),
                    min_reps=cfg.min_reps,
                    min_time_s=cfg.case_seconds(),
                    max_time_s=cfg.max_case_time_s,
                )
                stats = percentiles_ms(secs)
                rows.append(
                    {
                        "provider": provider,
                        "expert": name,
                        "batch": batch,
                        "reps": int(secs.size),
                        **stats,
                        "windows_per_s": batch / (stats["p50_ms"] / 1e3),
                    }
                )
    return rows


# ---------------------------------------------------------------------------------------------
# 2-3. Streams through a Detector


class _Fleet:
    """A Detector over n synthetic devices, warmed up so every stride emits windows."""

    def __init__(self, models: ModelSet, n: int, seed: int, *, stagger: bool) -> None:
        self.det = Detector(models, [DeviceInfo(f"bench-{i:05d}") for i in range(n)])
        self.source = SyntheticTelemetry(n, seed=seed)
        self.rows = np.arange(n)
        self.hz = models.manifest.hz
        self.count = np.zeros(n, np.int64)  # samples fed per device
        stride, W = models.manifest.stride, models.manifest.window
        if stagger:  # device d runs d % stride samples ahead: emissions spread over the stride
            lead = self.rows % stride
            raw, masks = self.source.chunk(stride)
            for j in range(stride - 1):
                sub = self.rows[lead > j]
                self._ingest(sub, raw[sub, j], masks[sub, j])
        self.run(W + 2 * stride)

    def _ingest(self, rows: np.ndarray, raw: np.ndarray, masks: np.ndarray) -> None:
        t = self.count[rows] / self.hz
        self.det.ingest(rows, t, raw, masks)
        self.count[rows] += 1

    def run(
        self, n_ticks: int, clock: StageClock | None = None
    ) -> tuple[np.ndarray, np.ndarray, float, list[dict[str, float]]]:
        """Feed n ticks of every device; per tick: wall seconds and windows scored; CPU seconds."""
        chunk = max(1, int(round(self.hz)))
        lat = np.empty(n_ticks)
        windows = np.empty(n_ticks, np.int64)
        stages: list[dict[str, float]] = []
        acc = self.det.runtime.accounting
        cpu = 0.0
        done = 0
        clock_wall = time.perf_counter
        while done < n_ticks:
            n = min(chunk, n_ticks - done)
            raw, masks = self.source.chunk(n)  # (D, n, F), (D, n, K): not timed
            ts = (self.count[:, None] + np.arange(n)[None, :]) / self.hz  # (D, n)
            c0 = time.process_time()
            for j in range(n):
                before = acc.windows_scored
                if clock is not None:
                    clock.reset()
                t0 = clock_wall()
                self.det.ingest(self.rows, ts[:, j], raw[:, j], masks[:, j])
                lat[done + j] = clock_wall() - t0
                windows[done + j] = acc.windows_scored - before
                if clock is not None:
                    spent = dict(clock.spent)
                    spent["ingest"] = lat[done + j] - sum(
                        v for k, v in spent.items() if k != "ingest"
                    )
                    stages.append(spent)
            cpu += time.process_time() - c0
            self.count += n
            done += n
        return lat, windows, cpu, stages


def one_stream_latency(models: ModelSet, cfg: BenchConfig) -> dict:
    """Sample arrival -> decision for one device: per-tick latency of Detector.ingest (p50/p99 over
    ticks that completed a window, and over all ticks), then a second, instrumented run for the
    per-stage breakdown."""
    n_ticks = max(1, int(round(cfg.duration_s * cfg.latency_factor * models.manifest.hz)))
    fleet = _Fleet(models, 1, cfg.seed, stagger=False)
    lat, windows, _, _ = fleet.run(n_ticks)
    decided = windows > 0
    out: dict = {
        "streams": 1,
        "provider": fleet.det.provider,
        "ticks": int(n_ticks),
        "window_ticks": int(decided.sum()),
        "decision": percentiles_ms(lat[decided]),
        "tick": percentiles_ms(lat),
        "no_window_tick": percentiles_ms(lat[~decided]),
    }
    fleet = _Fleet(models, 1, cfg.seed, stagger=False)
    clock = StageClock()
    with clock.installed(fleet.det.runtime):
        lat_i, windows_i, _, stages = fleet.run(n_ticks, clock)
    dec = windows_i > 0
    table = {s: np.array([row[s] for row in stages]) for s in STAGES}
    total = sum(float(table[s][dec].mean()) for s in STAGES) if dec.any() else 0.0
    out["stages"] = {
        s: {
            **percentiles_ms(table[s][dec]),
            "share": float(table[s][dec].mean() / total) if total > 0 else None,
            "mean_ms_no_window_tick": percentiles_ms(table[s][~dec])["mean_ms"],
        }
        for s in STAGES
    }
    out["instrumented_decision"] = percentiles_ms(lat_i[dec])
    out["stage_method"] = (
        "second run with the runtime's components wrapped by timers (StageClock); stage figures "
        "are over ticks that completed a window; 'ingest' = tick minus the other stages"
    )
    return out


def throughput(
    models: ModelSet, cfg: BenchConfig, progress: Progress | None = None
) -> tuple[list[dict], dict]:
    """Per stream count: sustained windows/s and samples/s, CPU ms per window, real-time factor;
    and the state bytes per stream of the largest fleet."""
    rows = []
    memory: dict = {}
    hz = models.manifest.hz
    n_ticks = max(1, int(round(cfg.duration_s * hz)))
    for n in cfg.streams:
        if progress is not None:
            progress(f"throughput: {n} streams x {cfg.duration_s:g} s")
        fleet = _Fleet(models, n, cfg.seed, stagger=True)
        lat, windows, cpu, _ = fleet.run(n_ticks)
        wall = float(lat.sum())
        sim = n_ticks / hz
        n_windows = int(windows.sum())
        rows.append(
            {
                "streams": n,
                "sim_s": sim,
                "wall_s": wall,
                "cpu_s": cpu,
                "windows": n_windows,
                "samples": n * n_ticks,
                "windows_per_s": n_windows / wall,
                "samples_per_s": n * n_ticks / wall,
                "cpu_ms_per_window": cpu / n_windows * 1e3 if n_windows else None,
                "realtime_factor": sim / wall,
                "realtime": bool(sim / wall >= 1.0),
                "decision_tick": percentiles_ms(lat[windows > 0]),
                "tick": percentiles_ms(lat),
            }
        )
        if n == max(cfg.streams) and not memory:
            memory = state_bytes(fleet.det)
        del fleet
    return rows, memory


# ---------------------------------------------------------------------------------------------
# 4. PyTorch eager reference


def dynamic_weights(models: ModelSet, model_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """DynamicEnsemble keyword arguments and state dict, read from the verified dynamic.onnx.

    Shapes come from the initializers (named as the torch parameters), dilations and pooling from
    the graph's Conv and AveragePool nodes; the reference's strict state-dict load and the parity
    check against ONNX Runtime decide whether they were read right.
    """
    import onnx
    from onnx import numpy_helper

    m = models.manifest
    graph = onnx.load_from_string(read_verified(model_dir, m.files["dynamic"])).graph
    state = {i.name: numpy_helper.to_array(i).copy() for i in graph.initializer}
    cnn = "head.bias" in state
    if not cnn and "stats_out.bias" not in state:
        raise ValueError("dynamic.onnx does not have the DynamicEnsemble's parameter names")
    members = int(state["head.bias" if cnn else "stats_out.bias"].shape[0])
    convs = sorted(k for k in state if k.startswith("convs.") and k.endswith(".weight"))
    conv_dilation = {
        n.input[1]: next((int(a.ints[0]) for a in n.attribute if a.name == "dilations"), 1)
        for n in graph.node
        if n.op_type == "Conv" and len(n.input) > 1
    }
    pools = [
        int(a.ints[0])
        for n in graph.node
        if n.op_type == "AveragePool"
        for a in n.attribute
        if a.name == "kernel_shape"
    ]
    stats = state.get("stats_in.weight")
    arch = {
        "n_features": F,
        "n_masks": K,
        "window": m.window,
        "members": members,
        "channels": int(state[convs[0]].shape[0]) // members if convs else 0,
        "pool": pools[0] if pools else 1,
        "dilations": tuple(conv_dilation.get(k, 1) for k in convs) or (1,),
        "kernel": int(state[convs[0]].shape[2]) if convs else 3,
        "stats_hidden": int(stats.shape[0]) // members if stats is not None else 0,
        "cnn": cnn,
        "hz": m.hz,
    }
    return arch, state


def torch_reference(
    model_sets: list[ModelSet], cfg: BenchConfig, reference: ReferenceFactory | None
) -> dict:
    """The dynamic expert in PyTorch eager on the same windows, timed call for call in turn with
    ONNX Runtime (so both see the same machine load), at torch's default thread count and at one
    thread; ratio = ONNX windows/s / the faster torch variant's windows/s."""
    base = {
        "incremental_path": None,
        "note": "the runtime recomputes every whole window; there is no incremental path to compare",
    }
    if reference is None:
        return {"available": False, "reason": "no reference factory given", **base}
    models = model_sets[0]
    try:
        arch, state = dynamic_weights(models, cfg.models_dir)
        ref = reference(arch, state)
    except Exception as exc:  # a reference that cannot be built is reported, not fatal
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}", **base}
    if ref is None:
        return {"available": False, "reason": "torch is not installed", **base}
    probe = _expert_inputs(models, 64, cfg.seed + 1)["dynamic"]
    parity = float(np.max(np.abs(ref.score(*probe) - models.dynamic.score(*probe)[0])))
    threads = [ref.threads] + ([1] if ref.set_threads is not None and ref.threads != 1 else [])
    rows = []
    for ms in model_sets:
        for batch in cfg.batches:
            values, masks = _expert_inputs(models, batch, cfg.seed)["dynamic"]
            row: dict = {"provider": ms.dynamic.providers[0], "batch": batch, "torch": {}}
            for n in threads:
                if ref.set_threads is not None:
                    ref.set_threads(n)
                onnx_s, torch_s = time_calls(
                    lambda e=ms.dynamic, v=values, m=masks: e.score(v, m),
                    lambda v=values, m=masks: ref.score(v, m),
                    min_reps=cfg.min_reps,
                    min_time_s=cfg.case_seconds(),
                    max_time_s=cfg.max_case_time_s,
                )
                o, t = percentiles_ms(onnx_s), percentiles_ms(torch_s)
                ratio = t["p50_ms"] / o["p50_ms"]
                row["torch"][f"{n}_threads"] = {**t, "onnx_p50_ms": o["p50_ms"], "ratio": ratio}
            best = min(row["torch"].values(), key=lambda r: r["p50_ms"] / r["onnx_p50_ms"])
            row["onnx_windows_per_s"] = batch / (best["onnx_p50_ms"] / 1e3)
            row["torch_windows_per_s"] = batch / (best["p50_ms"] / 1e3)
            row["ratio"] = best["ratio"]
            rows.append(row)
    if ref.set_threads is not None:
        ref.set_threads(ref.threads)
    return {
        "available": True,
        "reference": ref.description,
        "weights": "trained: the dynamic.onnx initializers loaded into DynamicEnsemble",
        "architecture": {k: list(v) if isinstance(v, tuple) else v for k, v in arch.items()},
        "parity_max_abs_diff_p": parity,
        "rows": rows,
        "ratio_method": "p50 torch / p50 onnx, interleaved; the torch variant least favourable "
        "to ONNX Runtime",
        **base,
    }


# ---------------------------------------------------------------------------------------------
# All of it


def _goals(result: dict) -> dict:
    tp = {r["streams"]: r for r in result["throughput"]}
    at_1000 = tp.get(1000)
    p99 = result["end_to_end"]["decision"]["p99_ms"]
    ratios = result["torch_reference"].get("rows", [])
    main = [r for r in ratios if r["provider"] == result["environment"]["provider"]]
    big = max(main, key=lambda r: r["batch"]) if main else None
    gpu = [
        r
        for r in result["model_latency"]
        if r["expert"] == "dynamic"
        and r["batch"] == 4096
        and r["provider"] != "CPUExecutionProvider"
    ]
    return {
        "realtime_1000_streams": {
            "target": "sim s per wall s >= 1 at 1000 streams",
            "measured": at_1000["realtime_factor"] if at_1000 else None,
            "met": at_1000["realtime"] if at_1000 else None,
        },
        "one_stream_p99_ms": {"target": 2.0, "measured": p99, "met": p99 is not None and p99 <= 2},
        "dynamic_vs_torch_eager": {
            "target": 20.0,
            "measured": big["ratio"] if big else None,
            "at_batch": big["batch"] if big else None,
            "met": big["ratio"] >= 20 if big else None,
        },
        "gpu_windows_per_s_at_4096": {
            "target": 100000.0,
            "measured": gpu[0]["windows_per_s"] if gpu else None,
            "met": gpu[0]["windows_per_s"] >= 1e5 if gpu else None,
        },
    }


def run_bench(
    cfg: BenchConfig,
    models: ModelSet | None = None,
    *,
    reference: ReferenceFactory | None = None,
    progress: Progress | None = None,
) -> dict:
    """Every figure of DESIGN.md section 7 as a JSON-ready dict (see module docstring)."""
    say = progress or (lambda _msg: None)
    models = models or load_models(cfg.models_dir, cfg.provider)
    model_sets = [models]
    if models.dynamic.providers[0] != "CPUExecutionProvider":
        model_sets.append(load_models(cfg.models_dir, "cpu"))
    m = models.manifest
    result: dict = {
        "schema": SCHEMA,
        "config": cfg.model_dump(mode="json"),
        "environment": environment(models),
        "models": {
            "dir": str(cfg.models_dir),
            "dynamic_sha256": m.files["dynamic"].sha256,
            "hz": m.hz,
            "window": m.window,
            "stride": m.stride,
            "window_s": m.window_s,
            "stride_s": m.stride_s,
        },
        "telemetry": "synthetic bounded random walks per feature (seeded), generated untimed",
    }
    say("one-stream end-to-end latency")
    result["end_to_end"] = one_stream_latency(models, cfg)
    result["throughput"], result["memory"] = throughput(models, cfg, say)
    result["memory"]["peak_rss_bytes_streaming"] = peak_rss_bytes()
    say("model-only latency")
    result["model_latency"] = model_latency(model_sets, cfg)
    result["memory"]["peak_rss_bytes_before_reference"] = peak_rss_bytes()
    say("PyTorch eager reference")
    result["torch_reference"] = torch_reference(model_sets, cfg, reference)
    result["memory"]["peak_rss_bytes"] = peak_rss_bytes()
    result["environment"]["load_average_end"] = list(os.getloadavg())
    result["goals"] = _goals(result)
    return result
