"""Presentation of `stream.bench` results: rich tables for the console and a matplotlib PNG.

Reads only the JSON-ready dict `run_bench` returns, so a saved bench.json can be re-rendered.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from stream.bench_timing import STAGES

__all__ = ["write_json", "print_report", "plot_report"]


def write_json(result: dict, path: Path) -> None:
    """The result as indented JSON, written to `path` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def _f(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}g}"


def _yes(v: bool | None) -> str:
    return "n/a" if v is None else ("yes" if v else "NO")


def print_report(result: dict, console: Console) -> None:
    """Environment line, then tables: model latency, one stream, streams, torch, memory, goals."""
    env = result["environment"]
    gpu = ", ".join(env["gpu"]) or "no GPU"
    console.print(
        f"{env['cpu_model']} ({env['cpus_usable']} usable cores), {gpu}; "
        f"provider {env['provider']} ({env['provider_reason']})"
    )

    t = Table(title="Model-only latency (ms per call)")
    for c in ("provider", "expert", "batch", "reps", "p50", "p99", "windows/s"):
        t.add_column(c, justify="left" if c in ("provider", "expert") else "right")
    for r in result["model_latency"]:
        t.add_row(
            r["provider"].replace("ExecutionProvider", ""),
            r["expert"],
            str(r["batch"]),
            str(r["reps"]),
            _f(r["p50_ms"]),
            _f(r["p99_ms"]),
            _f(r["windows_per_s"]),
        )
    console.print(t)

    e2e = result["end_to_end"]
    t = Table(title=f"One stream, sample arrival -> decision ({e2e['window_ticks']} decisions)")
    for c in ("stage", "p50 ms", "p99 ms", "mean ms", "share"):
        t.add_column(c, justify="left" if c == "stage" else "right")
    for s in STAGES:
        r = e2e["stages"][s]
        share = None if r["share"] is None else 100 * r["share"]
        t.add_row(s, _f(r["p50_ms"]), _f(r["p99_ms"]), _f(r["mean_ms"]), f"{_f(share)}%")
    d = e2e["decision"]
    t.add_row("end to end", _f(d["p50_ms"]), _f(d["p99_ms"]), _f(d["mean_ms"]), "", style="bold")
    console.print(t)

    t = Table(title="Throughput versus concurrent streams (10 Hz each)")
    cols = ("streams", "windows/s", "samples/s", "CPU ms/window", "p99 ms", "x real time", "holds")
    for c in cols:
        t.add_column(c, justify="right")
    for r in result["throughput"]:
        t.add_row(
            str(r["streams"]),
            _f(r["windows_per_s"]),
            _f(r["samples_per_s"]),
            _f(r["cpu_ms_per_window"]),
            _f(r["decision_tick"]["p99_ms"]),
            _f(r["realtime_factor"]),
            _yes(r["realtime"]),
        )
    console.print(t)

    ref = result["torch_reference"]
    if ref.get("available"):
        t = Table(title=f"Dynamic expert: ONNX Runtime vs {ref['reference']} (same windows)")
        variants = list(ref["rows"][0]["torch"]) if ref["rows"] else []
        cols = ["provider", "batch", "onnx windows/s", "torch windows/s"]
        cols += [f"ratio {v.replace('_', ' ')}" for v in variants]
        for c in cols:
            t.add_column(c, justify="left" if c == "provider" else "right")
        for r in ref["rows"]:
            t.add_row(
                r["provider"].replace("ExecutionProvider", ""),
                str(r["batch"]),
                _f(r["onnx_windows_per_s"]),
                _f(r["torch_windows_per_s"]),
                *(_f(r["torch"][v]["ratio"]) for v in variants),
            )
        console.print(t)
        console.print(f"torch weights: {ref['weights']}; parity {ref['parity_max_abs_diff_p']:.2g}")
    else:
        console.print(f"PyTorch eager reference skipped: {ref['reason']}")

    mem = result["memory"]
    console.print(
        f"state per stream: {mem['per_stream_bytes']:,.0f} bytes "
        f"({', '.join(f'{k} {v:,.0f}' for k, v in mem['breakdown'].items())}); "
        f"peak RSS {mem['peak_rss_bytes_streaming'] / 2**20:,.0f} MiB after streaming, "
        f"{mem['peak_rss_bytes_before_reference'] / 2**20:,.0f} MiB after model-only batches, "
        f"{mem['peak_rss_bytes'] / 2**20:,.0f} MiB with the torch reference"
    )

    t = Table(title="Goals")
    for c in ("goal", "target", "measured", "met"):
        t.add_column(c, justify="left" if c == "goal" else "right")
    for name, g in result["goals"].items():
        target = g["target"] if isinstance(g["target"], str) else _f(g["target"])
        t.add_row(name, target, _f(g["measured"]), _yes(g["met"]))
    console.print(t)


def plot_report(result: dict, path: Path) -> None:
    """PNG: windows/s and decision p99 versus the number of streams (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["throughput"]
    n = [r["streams"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(n, [r["windows_per_s"] for r in rows], "o-", label="sustained")
    m = result["models"]
    a.plot(n, [k * m["hz"] / m["stride"] for k in n], "k--", label="needed for real time")
    a.set(xscale="log", yscale="log", xlabel="streams", ylabel="windows/s", title="Throughput")
    a.legend()
    b.plot(n, [r["decision_tick"]["p99_ms"] for r in rows], "o-", color="C1")
    b.set(
        xscale="log", yscale="log", xlabel="streams", ylabel="ms", title="p99 arrival -> decision"
    )
    fig.suptitle(f"{result['environment']['cpu_model']} - {result['environment']['provider']}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
