"""fusionstream command line: the only module that wires the packages together.

python cli.py simulate --out data/fusionbench_sim     # write the benchmark
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from simulator.benchmark import DEFAULT_PRESET

DATA_ROOT = Path("data/fusionbench_sim")
MODELS = Path("exported_models")


def _template(command: str, option: str, rule: str, value: object) -> str:
    return f"The '{option}' parameter of {command} must be {rule}. Got {value!r} instead."


def _check_positive(ctx: click.Context, param: click.Parameter, value):
    if value is not None and not value > 0:
        raise click.UsageError(_template(ctx.command.name, param.opts[0], "> 0", value), ctx)
    return value


def _models_option(help: str = "Model directory."):
    """The shared --models option: a model directory, the shipped one by default."""
    return click.option(
        "--models", type=click.Path(path_type=Path), default=MODELS, show_default=True, help=help
    )


def _device_option(help_prefix: str = ""):
    """The shared --device option: which ONNX Runtime provider scores the windows."""
    return click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help=f"{help_prefix}auto: CUDA when a CUDA session really works, else CPU; cpu gives "
        "the same scores on every machine; cuda fails unless CUDA works.",
    )


def _json_option(default: Path | None):
    """The shared --json option of the benchmarks: where their figures are written."""
    return click.option(
        "--json",
        "json_out",
        type=click.Path(path_type=Path),
        default=default,
        show_default=default is not None,
        help="Write the figures as JSON here.",
    )


def _data_option(help: str):
    """The shared --data option: the benchmark root."""
    return click.option(
        "--data", type=click.Path(path_type=Path), default=DATA_ROOT, show_default=True, help=help
    )


class _Group(click.Group):
    """Maps domain errors (bad files, bad configs) to one line and a non-zero exit, no traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            raise click.ClickException(
                str(exc).strip().splitlines()[0] if str(exc) else repr(exc)
            ) from None


@click.group(cls=_Group)
def main() -> None:
    """fusionstream: streaming detection of active firmware trojans on edge devices."""


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DATA_ROOT,
    show_default=True,
    help="Data root to write runs/, binaries/, splits/ and processed/ into.",
)
@click.option(
    "--preset",
    default=DEFAULT_PRESET,
    show_default=True,
    help=f"Benchmark preset: {DEFAULT_PRESET} (default benchmark) or tiny.",
)
@click.option(
    "--runs",
    type=int,
    default=None,
    callback=_check_positive,
    help="Number of runs (default: the preset's).",
)
@click.option(
    "--duration",
    type=float,
    default=None,
    callback=_check_positive,
    help="Every run's duration in seconds (default: the preset's short/long mix).",
)
@click.option("--seed", type=int, default=None, help="Seed (default: the preset's).")
@click.option(
    "--hz",
    type=float,
    default=None,
    callback=_check_positive,
    help="Sample rate in Hz (default 10).",
)
@click.option("--stream", is_flag=True, help="Stream a live fleet through the detector instead.")
@click.option(
    "--devices",
    type=int,
    default=8,
    show_default=True,
    callback=_check_positive,
    help="With --stream: number of simulated devices.",
)
@click.option(
    "--speed",
    default="max",
    show_default=True,
    help="With --stream: 1 = real time, 10 = ten times faster, max = as fast as possible.",
)
@_models_option("With --stream: model directory.")
@_device_option("With --stream: ")
@click.option(
    "--feedback-delay",
    type=float,
    default=None,
    help="With --stream: learn online recalibration from labels arriving S seconds late.",
)
@click.option(
    "--jsonl",
    type=click.Path(path_type=Path),
    default=None,
    help="With --stream: also write detections as JSON Lines here.",
)
@click.option(
    "--rss-every",
    type=float,
    default=None,
    callback=_check_positive,
    help="With --stream: sample resident memory every S simulated seconds and print the curve.",
)
@click.option(
    "--windows/--no-windows",
    default=True,
    show_default=True,
    help="Also write processed/<split>/windows_*.npz.",
)
def simulate(
    out: Path,
    preset: str,
    runs,
    duration,
    seed,
    hz,
    stream: bool,
    devices: int,
    speed: str,
    models: Path,
    device: str,
    feedback_delay,
    jsonl,
    rss_every,
    windows: bool,
) -> None:
    """Simulate a fleet of Jetson-class devices: write a benchmark to OUT, or with --stream pipe
    the fleet live into the detector, print detections as they happen and end with a report."""
    from simulator.benchmark import PRESETS

    if preset not in PRESETS:
        raise click.UsageError(
            _template("simulate", "--preset", f"one of {sorted(PRESETS)}", preset)
        )
    cfg = PRESETS[preset]
    updates = {"n_runs": runs, "seed": seed, "hz": hz}
    if duration is not None:
        updates |= {"short_s": (duration, duration), "long_s": (duration, duration)}
    cfg = cfg.model_copy(update={k: v for k, v in updates.items() if v is not None})
    if stream:
        _simulate_stream(
            cfg,
            devices,
            duration or 300.0,
            _speed(speed),
            models,
            feedback_delay,
            jsonl,
            rss_every,
            device,
        )
    else:
        _write_benchmark(cfg, out, windows)


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        v = float(value)
    except ValueError:
        v = float("nan")
    if not v > 0:
        raise click.UsageError(
            _template(
                click.get_current_context().command.name,
                "--speed",
                "a positive number or 'max'",
                value,
            )
        )
    return v


def _load_models(models: Path, device: str = "auto"):
    from stream.onnx_session import load_models

    if not (models / "manifest.json").is_file():
        raise click.ClickException(
            f"{models}: no model directory (manifest.json missing); train one with "
            "'python cli.py train' or use the shipped exported_models/"
        )
    return load_models(models, device)


def _print_report(report, console, title: str) -> None:
    from rich.table import Table

    d = report.to_dict()
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k in (
        "n_true",
        "n_pred",
        "n_matched",
        "event_precision",
        "event_recall",
        "event_f1",
        "far_per_hour",
        "benign_hours",
        "ttd_median_s",
        "ttd_p90_s",
        "miss_rate",
        "range_precision",
        "range_recall",
    ):
        v = d.get(k)
        table.add_row(k, "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)))
    console.print(table)
    if d.get("far_reason"):
        console.print(f"FAR/h: {d['far_reason']}")


def _simulate_stream(
    cfg,
    n_devices,
    duration,
    speed,
    models_dir,
    feedback_delay,
    jsonl,
    rss_every=None,
    device="auto",
) -> None:
    import numpy as np
    from rich.console import Console

    from simulator.benchmark import plan_runs
    from simulator.corpus import corpus_dir, load_corpus
    from simulator.fleet import Fleet
    from simulator.writer import as_recorded
    from stream.binaries import read_binary_index
    from stream.console import LiveView
    from stream.detector import DeviceInfo
    from stream.live import run_live
    from stream.sinks import JsonlSink

    console = Console(stderr=True)
    models = _load_models(models_dir, device)
    cfg = cfg.model_copy(
        update={
            "n_runs": n_devices,
            "short_s": (duration, duration),
            "long_s": (duration, duration),
            "hz": models.manifest.hz,
        }
    )
    specs = plan_runs(cfg, load_corpus())
    fleet = Fleet(specs)
    index = read_binary_index(corpus_dir() / "binaries.csv")
    devices = [DeviceInfo(s.run_id, index.get(s.binary_id)) for s in specs]
    truth = [
        np.array([[a.t_start_s, a.t_end_s] for a in iv]).reshape(-1, 2) for iv in fleet.intervals
    ]
    sink = JsonlSink(jsonl) if jsonl else None
    console.print(
        f"streaming {n_devices} simulated devices for {duration:g} s "
        f"(speed {'max' if speed is None else f'{speed:g}x'})"
    )
    with LiveView([s.run_id for s in specs], console=console) as view:
        result = run_live(
            lambda n: as_recorded(fleet.step(n)),
            devices,
            models,
            duration_s=duration,
            speed=speed,
            truth=truth,
            view=view,
            feedback_delay_s=feedback_delay,
            on_detection=sink.write if sink else None,
            rss_every_s=rss_every,
        )
    if sink:
        sink.close()
    if result.rss:
        curve = ", ".join(f"{t:.0f}s {mb:.0f}MiB" for t, mb in result.rss)
        console.print(f"RSS over simulated time: {curve}")
    acc = result.accounting.to_dict()
    console.print(
        f"provider {result.provider}; {acc['samples_in']} samples in, {acc['samples_used']} used, "
        f"dropped {acc['dropped'] or 0}; {acc['windows_scored']} windows scored; "
        f"{len(result.detections)} detections; {result.wall_s:.1f} s wall for "
        f"{duration * n_devices / max(result.wall_s, 1e-9):.0f} device-seconds per second"
    )
    _print_report(result.report, console, "interval-level report against the simulated truth")


def _write_benchmark(cfg, out: Path, windows: bool) -> None:
    from rich.console import Console
    from rich.progress import Progress

    from simulator.dataset import write_benchmark
    from simulator.device import keep_freed_memory

    keep_freed_memory()  # glibc keeps freed chunk memory: ~25 % faster simulation

    console = Console(stderr=True)
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task(f"simulating {cfg.n_runs} runs", total=cfg.n_runs)
        metas = write_benchmark(cfg, out, on_run=lambda m: progress.advance(task))
        if windows:
            from simulator.splits import SPLIT_NAMES

            names = [n for n in SPLIT_NAMES if (out / "splits" / f"{n}.json").is_file()]
            if names:  # too few runs for any split writes none
                _build_windows(out, names, progress)
    hours = sum(m.duration_s for m in metas) / 3600
    console.print(f"wrote {len(metas)} runs ({hours:.1f} h of telemetry) to {out}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@_models_option("Model directory.")
@_device_option()
@_data_option("Data root where a relative RUN_DIR that does not exist is looked up.")
@click.option(
    "--speed",
    default="max",
    show_default=True,
    help="1 = real time, 10 = ten times faster, max = as fast as possible.",
)
@click.option(
    "--feedback-delay",
    type=float,
    default=None,
    help="Learn online recalibration from labels arriving S seconds late (off by default).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write detections.jsonl and intervals_pred.csv here.",
)
def replay(
    run_dir: Path,
    models: Path,
    device: str,
    data: Path,
    speed: str,
    feedback_delay,
    as_json: bool,
    out,
) -> None:
    """Replay a recorded run through the runtime; print its intervals and interval metrics."""
    import json

    from rich.console import Console

    from stream.binaries import read_binary_index
    from stream.replay import replay_runs, score_replay
    from stream.sinks import JsonlSink, write_intervals_csv

    if not run_dir.exists() and not run_dir.is_absolute() and (data / run_dir).exists():
        run_dir = data / run_dir
    if not run_dir.is_dir():
        raise click.ClickException(f"{run_dir}: no such run directory (also looked under {data})")
    console = Console(stderr=True)
    loaded = _load_models(models, device)
    index = read_binary_index(run_dir.parent.parent / "binaries" / "binaries.csv")
    if not index:
        from simulator.corpus import corpus_dir

        index = read_binary_index(corpus_dir() / "binaries.csv")

    def printer(r: dict) -> None:
        console.print(
            f"detection [{r['t_start_s']:.1f}, {r['t_end_s']:.1f}) s, raised at "
            f"{r['t_emit_s']:.1f} s, peak {r['peak_score']:.2f}"
        )

    result = replay_runs(
        [run_dir],
        loaded,
        binaries=index,
        speed=_speed(speed),
        feedback_delay_s=feedback_delay,
        on_detection=None if as_json else printer,
    )
    run = result.runs[0]
    dets = result.detections[run.run_id]
    report = score_replay(result) if run.truth is not None else None
    if out is not None:
        sink = JsonlSink(out / "detections.jsonl")
        for r in dets:
            sink.write(r)
        sink.close()
        write_intervals_csv(dets, out / "intervals_pred.csv")
    summary = {
        "run_id": run.run_id,
        "provider": result.provider,
        "detections": dets,
        "static": result.static_reasons[run.run_id] or "available",
        "accounting": result.accounting.to_dict(),
        "wall_s": round(result.wall_s, 3),
        "metrics": None if report is None else report.to_dict(),
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    console.print(
        f"{run.run_id}: {len(dets)} detections, provider {result.provider}, "
        f"static expert: {summary['static']}, {result.wall_s:.2f} s"
    )
    if report is not None:
        _print_report(report, console, f"{run.run_id} against intervals.csv")
    else:
        console.print("no intervals.csv: nothing to score against")


@main.command()
@click.option(
    "--truth",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Truth intervals: a CSV, a run directory or a directory of runs.",
)
@click.option(
    "--pred",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Predicted intervals: a CSV, a .jsonl of detections or a run directory.",
)
@click.option(
    "--duration-s",
    type=float,
    default=None,
    callback=_check_positive,
    help="Run duration for FAR/h when neither meta.json nor a duration_s column says.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def score(truth: Path, pred: Path, duration_s, as_json: bool) -> None:
    """Score any detector's intervals against the truth (DESIGN.md section 6)."""
    import json

    from stream.scoring import format_report, score_files

    report = score_files(truth, pred, duration_s)
    click.echo(json.dumps(report.to_dict()) if as_json else format_report(report))


def _build_windows(data: Path, names: list[str], progress) -> None:
    """processed/<split>/windows_*.npz for `names`, with progress bars."""
    from offline_training.windows import build_windows
    from stream.splits import read_split_file

    runs = {
        r
        for n in names
        for part in ("train", "val", "test")
        for r in getattr(read_split_file(data / "splits" / f"{n}.json"), part)
    }
    baselines = progress.add_task("causal baselines", total=len(runs))
    parts = progress.add_task("windows per split", total=len(names) * 3)
    build_windows(
        data,
        names,
        on_run=lambda _: progress.advance(baselines),
        on_part=lambda _: progress.advance(parts),
    )


@main.command()
@_data_option("Benchmark root holding runs/ and splits/.")
@click.option(
    "--split",
    "splits",
    multiple=True,
    help="Split manifest splits/NAME.json to (re)build windows for; repeat it, or 'all' (default).",
)
def windows(data: Path, splits: tuple[str, ...]) -> None:
    """(Re)build the windowed NPZ tensors processed/<split>/ from the runs and split manifests:
    for a custom split (write splits/NAME.json, then train and evaluate with --split NAME)."""
    from rich.console import Console
    from rich.progress import Progress

    from stream.splits import available_splits

    known = available_splits(data)
    manifests = {p.stem for p in (data / "splits").glob("*.json")}  # development folds too
    names = known if not splits or "all" in splits else list(dict.fromkeys(splits))
    for n in names:
        if n not in manifests:
            raise click.UsageError(
                _template("windows", "--split", f"one of {known or '(none found)'} or 'all'", n)
            )
    if not names:
        raise click.ClickException(f"{data / 'splits'}: no split manifests to build windows for")
    with Progress(console=Console(stderr=True), transient=False) as progress:
        _build_windows(data, names, progress)
    for n in names:
        click.echo(f"wrote {data / 'processed' / n}")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory to write the re-simulated runs into (OUT/<run_id>/).",
)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Compare the written files byte for byte with the given runs; exit 1 on any difference.",
)
def resimulate(run_dirs: tuple[Path, ...], out: Path, check: bool) -> None:
    """Re-simulate recorded runs from their meta.json alone, and check they come out identical.

    A run depends only on its own meta.json (seed, spec, warm-up), so one run of a benchmark can be
    reproduced without simulating the others: a way to verify a copy of the benchmark, or to get a
    run's telemetry back after deleting it.
    """
    from simulator.dataset import write_runs
    from simulator.meta import SIMULATOR_VERSION, RunMeta

    metas = []
    for d in run_dirs:
        path = d / "meta.json"
        try:
            metas.append(RunMeta.model_validate_json(path.read_bytes()))
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise click.ClickException(
                f"{path}: not a meta.json of this simulator ({first})"
            ) from None
    if len({m.run_id for m in metas}) != len(metas):
        raise click.UsageError("Two of the given runs have the same run_id.")
    for d, meta in zip(run_dirs, metas, strict=True):
        if (out / meta.run_id).resolve() == d.resolve():
            raise click.UsageError(f"--out would overwrite the run it checks: {d}")
    differ = []
    for d, meta in zip(run_dirs, metas, strict=True):
        if meta.simulator_version != SIMULATOR_VERSION:
            click.echo(
                f"{d}: written by simulator {meta.simulator_version}, this is "
                f"{SIMULATOR_VERSION}: expect differences",
                err=True,
            )
        write_runs([meta.spec], out, meta.warmup_s)
        if not check:
            click.echo(f"wrote {out / meta.run_id}")
            continue
        bad = [
            name
            for name in ("telemetry.csv", "intervals.csv", "meta.json")
            if not (d / name).is_file()
            or (d / name).read_bytes() != (out / meta.run_id / name).read_bytes()
        ]
        click.echo(f"{meta.run_id}: " + (f"differs ({', '.join(bad)})" if bad else "identical"))
        if bad:
            differ.append(meta.run_id)
    if differ:
        raise click.ClickException(f"{len(differ)} of {len(metas)} runs differ: {differ[:5]}")


@main.command("dev-splits")
@_data_option("Benchmark root holding runs/ and splits/.")
@click.option(
    "--split",
    "splits",
    multiple=True,
    type=click.Choice(["unseen_workload", "unseen_trojan", "unseen_regime"]),
    help="Held-out split to write development folds for; repeat it (default: all three).",
)
def dev_splits(data: Path, splits: tuple[str, ...]) -> None:
    """Write leave-one-out development folds of held-out splits, and their windows.

    Inside a held-out split's train + val runs, each other workload (trojan family, power mode)
    is held out in turn: splits/<split>.dev-<value>.json. Develop and tune on them with
    `evaluate --split <split>.dev --train-per-split DIR`: the shift is met, the split's test runs
    are not. 'all' never includes folds.
    """
    from rich.console import Console
    from rich.progress import Progress

    from simulator.meta import read_run_spec
    from simulator.splits import dev_folds, write_splits
    from stream.splits import read_split_file

    names = list(dict.fromkeys(splits)) or ["unseen_workload", "unseen_trojan", "unseen_regime"]
    folds = {}
    for name in names:
        path = data / "splits" / f"{name}.json"
        if not path.is_file():
            raise click.ClickException(
                f"{path}: no such split manifest (write the benchmark first)"
            )
        split = read_split_file(path)
        try:
            specs = [
                read_run_spec(data / "runs" / r / "meta.json") for r in split.train + split.val
            ]
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None  # the whole message, not its first line
        made, skipped = dev_folds(split, specs)
        folds.update(made)
        for fold, why in skipped.items():
            click.echo(f"skipped {fold}: {why}", err=True)
    if not folds:
        raise click.ClickException(f"{data}: no development fold has runs in every part")
    write_splits(folds, data / "splits")
    with Progress(console=Console(stderr=True), transient=False) as progress:
        _build_windows(data, list(folds), progress)
    for name, fold in folds.items():
        click.echo(
            f"wrote {data / 'splits' / name}.json and {data / 'processed' / name} "
            f"({len(fold.train)} train, {len(fold.val)} val, {len(fold.test)} held-out runs)"
        )


@main.command()
@_data_option("Benchmark root; the default benchmark is generated there when it is missing.")
@click.option("--split", default="unseen_workload", show_default=True, help="Split to train on.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("exported_models"),
    show_default=True,
    help="Model directory to write (ONNX, manifest.json, train_config.json).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="auto: CUDA when torch sees it, else CPU.",
)
@click.option("--epochs", type=int, default=None, callback=_check_positive, help="Max epochs.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed.")
@click.option(
    "--label-recent-s",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Teach each window whether a trojan was active in its last S seconds (read from the "
    "runs' intervals.csv); 0: the whole-window overlap y_soft stored with the windows.",
)
@click.option(
    "--synthetic-runs",
    type=click.IntRange(min=0),
    default=None,
    help="Extra training runs: clones of the split's training runs with randomised benign "
    "workloads, simulated once into DATA/synthetic/ (domain randomisation); 0: none. "
    "Default: the training config's.",
)
@click.option(
    "--synthetic-trojans",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Share of the synthetic runs whose trojan gets a randomised payload mix instead of its "
    "family's (domain randomisation on the payload side). Default: the training config's.",
)
def train(
    data: Path,
    split: str,
    out: Path,
    device: str,
    epochs,
    seed: int,
    label_recent_s: float,
    synthetic_runs: int | None,
    synthetic_trojans: float | None,
) -> None:
    """Train the dynamic ensemble, static expert and fusion gate on a split; export ONNX to OUT."""
    from offline_training.config import TrainConfig
    from offline_training.pipeline import check_split, format_report, rich_progress, run_training
    from simulator.benchmark import DEFAULT_PRESET, PRESETS
    from simulator.splits import SPLIT_NAMES

    extra = {"epochs": epochs} if epochs is not None else {}
    extra["label_recent_s"] = label_recent_s or None
    if synthetic_runs is not None:
        extra["synthetic_runs"] = synthetic_runs
    if synthetic_trojans is not None:
        extra["synthetic_trojans"] = synthetic_trojans
    cfg = TrainConfig(data_dir=data, split=split, out_dir=out, device=device, seed=seed, **extra)
    cfg = cfg.resolved()  # --device cuda without CUDA fails here, before any work
    if not data.exists() or not any(data.iterdir()):
        if split not in SPLIT_NAMES:
            raise click.UsageError(_template("train", "--split", f"one of {SPLIT_NAMES}", split))
        _write_benchmark(PRESETS[DEFAULT_PRESET], data, windows=True)
    check_split(data, split)
    _write_synthetic_runs(cfg)
    with rich_progress() as progress:
        report = run_training(cfg, progress)
    click.echo(format_report(report))


def _write_synthetic_runs(cfg) -> None:
    """Simulate the synthetic training runs `cfg` asks for (reused when already written)."""
    if not cfg.synthetic_runs:
        return
    from offline_training.pipeline import rich_progress
    from simulator.augment import write_synthetic

    with rich_progress() as progress:
        write_synthetic(
            cfg.data_dir,
            cfg.split,
            cfg.synthetic_runs,
            cfg.seed,
            trojan_share=cfg.synthetic_trojans,
            on_run=lambda k, n: progress("synthetic training runs", k, n),
        )


@main.command("bench-simulator")
@click.option("--devices", type=int, default=256, show_default=True, callback=_check_positive)
@click.option("--seconds", type=float, default=600.0, show_default=True, callback=_check_positive)
@_json_option(None)
def bench_simulator_cmd(devices: int, seconds: float, json_out) -> None:
    """Simulator throughput: samples/s in memory (a fleet at 10 Hz) and end to end with CSV."""
    import json

    from simulator.bench import bench_simulator

    result = bench_simulator(n_devices=devices, seconds=seconds)
    text = json.dumps(result, indent=2)
    if json_out is not None:
        Path(json_out).write_text(text + "\n")
    click.echo(text)


@main.command("bench-score")
@click.option("--runs", type=int, default=1000, show_default=True, callback=_check_positive)
@click.option("--hours", type=float, default=1.0, show_default=True, callback=_check_positive)
@click.option("--seed", type=int, default=0, show_default=True)
@_json_option(Path("bench_score.json"))
def bench_score_cmd(runs: int, hours: float, seed: int, json_out: Path) -> None:
    """Interval scoring speed: N runs x H hours of seeded intervals, read and scored as `score`."""
    import json
    import tempfile

    from stream.bench_score import bench_scoring

    with tempfile.TemporaryDirectory() as tmp:
        result = bench_scoring(Path(tmp), n_runs=runs, hours=hours, seed=seed)
    Path(json_out).write_text(json.dumps(result, indent=2) + "\n")
    t = result["timings_s"]
    click.echo(
        f"{runs} runs x {hours:g} h: {result['n_true']} true, {result['n_pred']} predicted "
        f"intervals; read {t['read_files_s']:.2f} s, join {t['join_runs_s']:.2f} s, score "
        f"{t['score_s']:.2f} s, `score` total {t['score_command_s']:.2f} s, bootstrap (1,000) "
        f"{t['bootstrap_s']:.2f} s; wrote {json_out}"
    )


def _torch_dynamic(arch: dict, state: dict):
    """bench's reference: the dynamic ensemble in PyTorch eager with the exported weights."""
    try:
        import torch

        from offline_training.models import DynamicEnsemble
    except ImportError:
        return None
    import inspect

    from stream.bench import Reference

    known = inspect.signature(DynamicEnsemble).parameters  # arch may name newer options
    net = DynamicEnsemble(**{k: v for k, v in arch.items() if k in known}).eval()
    missing, unexpected = net.load_state_dict(
        {k: torch.from_numpy(v) for k, v in state.items()}, strict=False
    )
    if unexpected or any(not k.startswith(("convs.", "head.")) for k in missing):
        raise ValueError(f"dynamic.onnx weights do not fit DynamicEnsemble: {missing} {unexpected}")

    def score(values, masks):
        with torch.inference_mode():
            return net(torch.from_numpy(values), torch.from_numpy(masks.astype("float32")))[
                1
            ].numpy()

    return Reference(
        score, f"PyTorch {torch.__version__} eager", torch.get_num_threads(), torch.set_num_threads
    )


@main.command("bench")
@_models_option("Model directory.")
@click.option(
    "--streams",
    default="1,10,100,1000",
    show_default=True,
    help="Numbers of concurrent device streams to measure.",
)
@click.option(
    "--batch",
    default="1,16,256,4096",
    show_default=True,
    help="Batch sizes for the model-only latency.",
)
@click.option(
    "--duration",
    type=float,
    default=30.0,
    show_default=True,
    callback=_check_positive,
    help="Simulated seconds per stream count (one-stream latency: 20x); each model-only "
    "case runs duration/100 s (at most 0.5 s) and at least 20 calls.",
)
@click.option("--provider", default="auto", show_default=True, help="auto, cpu or cuda.")
@_json_option(Path("bench.json"))
@click.option(
    "--plot",
    type=click.Path(path_type=Path),
    default=None,
    help="Write a PNG of throughput and p99 versus streams here.",
)
def bench_cmd(
    models: Path, streams: str, batch: str, duration: float, provider: str, json_out: Path, plot
) -> None:
    """Latency, throughput and memory of the detector (DESIGN.md section 7): table and JSON."""
    from rich.console import Console

    from stream.bench import BenchConfig, parse_counts, run_bench
    from stream.bench_report import plot_report, print_report, write_json

    counts = {"--streams": parse_counts(streams), "--batch": parse_counts(batch)}
    for opt, value in (("--streams", streams), ("--batch", batch)):
        if counts[opt] is None:
            raise click.UsageError(_template("bench", opt, "comma-separated integers > 0", value))
    if provider not in ("auto", "cpu", "cuda"):
        raise click.UsageError(_template("bench", "--provider", "one of auto, cpu, cuda", provider))
    if duration == float("inf"):
        raise click.UsageError(_template("bench", "--duration", "finite", duration))
    cfg = BenchConfig(
        models_dir=models,
        streams=counts["--streams"],
        batches=counts["--batch"],
        duration_s=duration,
        provider=provider,
    )
    err = Console(stderr=True)
    result = run_bench(
        cfg,
        _load_models(models, provider),
        reference=_torch_dynamic,
        progress=lambda msg: err.print(f"[dim]{msg}...[/dim]"),
    )
    write_json(result, json_out)
    if plot is not None:
        plot_report(result, plot)
    print_report(result, Console())


@main.command("inspect-binary")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_models_option("Model directory whose static expert scores the binary.")
@click.option(
    "--timeout",
    type=float,
    default=10.0,
    show_default=True,
    callback=_check_positive,
    help="Parse time limit in seconds (the parse runs in an isolated process).",
)
def inspect_binary_cmd(file: Path, as_json: bool, models: Path, timeout: float) -> None:
    """Static features of an ELF binary, the static expert's p_s and u_s, or why unavailable."""
    import json

    from stream.inspect import format_inspection, inspect_binary

    result = inspect_binary(file, _load_models(models, "cpu"), timeout_s=timeout)
    click.echo(json.dumps(result.to_dict()) if as_json else format_inspection(result))


def _fleet_source(devices: int, duration: float, seed: int, hz: float):
    """Device ids, their binary ids and a chunk source `step(n) -> {column: (D, n)}` of a
    simulated fleet."""
    from simulator.benchmark import DEFAULT_PRESET, PRESETS, plan_runs
    from simulator.corpus import load_corpus
    from simulator.fleet import Fleet
    from simulator.writer import as_recorded

    cfg = PRESETS[DEFAULT_PRESET].model_copy(
        update={
            "n_runs": devices,
            "short_s": (duration, duration),
            "long_s": (duration, duration),
            "hz": hz,
            "seed": seed,
        }
    )
    specs = plan_runs(cfg, load_corpus())
    sim = Fleet(specs)
    return (
        [s.run_id for s in specs],
        [s.binary_id for s in specs],
        lambda n: as_recorded(sim.step(n)),
    )


def _fleet_publish(
    servers: str, topic: str, devices: int, duration: float, seed: int, speed: str, models: Path
) -> dict:
    from stream.kafka_io import TelemetryPublisher, publish_fleet
    from stream.manifest import load_manifest

    hz = load_manifest(models).hz
    ids, binaries, step = _fleet_source(devices, duration, seed, hz)
    pub = TelemetryPublisher(servers, topic)
    return publish_fleet(
        step, ids, pub, duration_s=duration, hz=hz, speed=_speed(speed), binary_ids=binaries
    )


@main.group()
def fleet() -> None:
    """Fleet detection over Kafka: publish telemetry, run consumer-group detector workers.

    --bootstrap-servers mock starts librdkafka's built-in mock cluster (no broker needed)."""


_servers = click.option(
    "--bootstrap-servers", required=True, help="Kafka bootstrap servers HOST:PORT[,...], or 'mock'."
)
_topic = click.option(
    "--topic", default="fleet.telemetry", show_default=True, help="Telemetry topic."
)
_fleet_models = _models_option("Model directory (its sample rate is used).")


@fleet.command("produce")
@_servers
@_topic
@click.option("--devices", type=int, default=8, show_default=True, callback=_check_positive)
@click.option(
    "--duration",
    type=float,
    default=120.0,
    show_default=True,
    callback=_check_positive,
    help="Seconds of telemetry per device (1 s of samples per message).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Simulation seed.")
@click.option(
    "--speed",
    default="max",
    show_default=True,
    help="1 = real time, 10 = ten times faster, max = as fast as possible.",
)
@_fleet_models
def fleet_produce(
    bootstrap_servers: str,
    topic: str,
    devices: int,
    duration: float,
    seed: int,
    speed: str,
    models: Path,
) -> None:
    """Publish simulated fleet telemetry, keyed by device id. With 'mock', the cluster stays up
    after publishing (until Ctrl-C) so that workers can join it at the printed address."""
    import json
    import time

    from stream.kafka_io import resolve_bootstrap

    servers, cluster = resolve_bootstrap(bootstrap_servers)
    if cluster is not None:
        click.echo(f"mock cluster at {servers}", err=True)
    click.echo(json.dumps(_fleet_publish(servers, topic, devices, duration, seed, speed, models)))
    if cluster is not None:
        click.echo(f"holding the mock cluster at {servers}; Ctrl-C to stop", err=True)
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            cluster.close()


@fleet.command("detect")
@_servers
@click.option("--group", default="fusionstream", show_default=True, help="Consumer group id.")
@_topic
@click.option(
    "--out-topic",
    default="fleet.detections",
    show_default=True,
    help="Detections topic (JSON objects with a deterministic detection_id).",
)
@_fleet_models
@click.option(
    "--commit-every",
    type=float,
    default=2.0,
    show_default=True,
    callback=_check_positive,
    help="Seconds between checkpoints (state + commit).",
)
@click.option(
    "--idle-exit",
    type=float,
    default=None,
    callback=_check_positive,
    help="End of stream after S seconds without data: close intervals and exit.",
)
@click.option(
    "--session-timeout",
    type=float,
    default=10.0,
    show_default=True,
    callback=_check_positive,
    help="Seconds without heartbeat before the group moves this worker's partitions.",
)
@click.option(
    "--events",
    type=click.Path(path_type=Path),
    default=None,
    help="Append worker events (assignments, commits, scored windows) as JSON Lines.",
)
@click.option(
    "--binaries",
    "binaries_csv",
    type=click.Path(path_type=Path),
    default=None,
    help="binaries.csv index (binary_id, binary_path) naming the binaries that messages refer "
    "to, for the static expert [default: the shipped corpus].",
)
@click.option(
    "--devices",
    type=int,
    default=8,
    show_default=True,
    callback=_check_positive,
    help="With 'mock': simulated devices published into the mock cluster first.",
)
@click.option(
    "--duration",
    type=float,
    default=120.0,
    show_default=True,
    callback=_check_positive,
    help="With 'mock': seconds of telemetry per device.",
)
def fleet_detect(
    bootstrap_servers: str,
    group: str,
    topic: str,
    out_topic: str,
    models: Path,
    commit_every: float,
    idle_exit,
    session_timeout: float,
    events,
    binaries_csv,
    devices: int,
    duration: float,
) -> None:
    """Run one detector worker of consumer group GROUP until Ctrl-C (state handed over) or
    --idle-exit; prints detections as JSON Lines and the worker's stats at the end."""
    import json
    import signal

    from stream.binaries import read_binary_index
    from stream.fleet_worker import FleetWorker, WorkerConfig, open_events
    from stream.kafka_io import resolve_bootstrap

    if binaries_csv is None:
        from simulator.corpus import corpus_dir

        binaries_csv = corpus_dir() / "binaries.csv"
    elif not Path(binaries_csv).is_file():
        raise click.UsageError(
            _template("fleet detect", "--binaries", "an existing binaries.csv", binaries_csv)
        )
    binaries = read_binary_index(binaries_csv)

    servers, cluster = resolve_bootstrap(bootstrap_servers)
    if cluster is not None:
        click.echo(
            f"mock cluster at {servers}; publishing {devices} devices x {duration:g} s", err=True
        )
        _fleet_publish(servers, topic, devices, duration, 0, "max", models)
        idle_exit = idle_exit or 5.0
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    cfg = WorkerConfig(
        servers,
        group,
        topic,
        out_topic,
        commit_every_s=commit_every,
        idle_exit_s=idle_exit,
        session_timeout_ms=int(session_timeout * 1000),
    )
    worker = FleetWorker(
        _load_models(models, "cpu"),
        cfg,
        events=open_events(events),
        on_detection=lambda r: click.echo(json.dumps(r)),
        binaries=binaries,
    )
    try:
        stats = worker.run(stop=lambda: bool(stopping))
    except KeyboardInterrupt:
        stats = worker.stats
    click.echo(json.dumps({"stats": stats.to_dict()}), err=True)


@main.command()
@click.option(
    "--split",
    required=True,
    help="Split name (data/splits/NAME.json), 'all' (the benchmark's splits), or 'NAME.dev' "
    "(every development fold of NAME, written by `dev-splits`; needs --train-per-split).",
)
@_data_option("Benchmark root.")
@_models_option("Model directory.")
@_device_option()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Report directory (default reports/<split>; for 'all', reports/).",
)
@click.option(
    "--far-target",
    type=float,
    default=2.0,
    show_default=True,
    help="False alarms per hour allowed when choosing thresholds on validation.",
)
@click.option(
    "--ttd-f1-tolerance",
    type=float,
    default=0.02,
    show_default=True,
    help="Among validation configs within this event F1 of the best (under the FAR target), "
    "take the one with the lowest median time to detect; 0: pure best F1.",
)
@click.option(
    "--train-per-split",
    "per_split",
    type=click.Path(path_type=Path),
    default=None,
    help="Train models on each split's own training runs into DIR/<split> (reused when "
    "present) and evaluate every split with its own models: no training run is tested.",
)
@click.option(
    "--seeds",
    default="0",
    show_default=True,
    help="With --train-per-split: training seeds, comma-separated (e.g. 0,1,2); each seed gets "
    "its own models and reports (seed k > 0 under DIR/seed<k>/), and results.md the spread.",
)
@click.option(
    "--synthetic-runs",
    type=click.IntRange(min=0),
    default=None,
    help="With --train-per-split: synthetic training runs per split, as `train --synthetic-runs` "
    "(default: the training config's).",
)
@click.option(
    "--synthetic-trojans",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="With --train-per-split: as `train --synthetic-trojans` (default: the training config's).",
)
@click.option(
    "--write-decision",
    is_flag=True,
    help="Also ship the full system's frozen decision config in the models' manifest "
    "(only for the split the models were trained on), so replay and simulate --stream use it.",
)
def evaluate(
    split: str,
    data: Path,
    models: Path,
    device: str,
    out,
    far_target: float,
    ttd_f1_tolerance: float,
    per_split,
    seeds: str,
    synthetic_runs: int | None,
    synthetic_trojans: float | None,
    write_decision: bool,
) -> None:
    """Choose thresholds on a split's validation runs, freeze them, and report on its test runs."""
    from rich.progress import Progress

    from stream.binaries import read_binary_index
    from stream.eval_report import evaluate_to_dir
    from stream.evaluate import DecisionGrid, read_split

    if far_target < 0:
        raise click.UsageError(_template("evaluate", "--far-target", ">= 0", far_target))
    if not 0.0 <= ttd_f1_tolerance <= 1.0:
        raise click.UsageError(
            _template("evaluate", "--ttd-f1-tolerance", "in [0, 1]", ttd_f1_tolerance)
        )
    grid = DecisionGrid(ttd_f1_tolerance=ttd_f1_tolerance)
    seed_list = _parse_seeds(seeds)
    if seed_list is None or len(set(seed_list)) != len(seed_list):
        raise click.UsageError(
            _template("evaluate", "--seeds", "distinct integers >= 0, comma-separated", seeds)
        )
    if seed_list != (0,) and per_split is None:
        raise click.UsageError("--seeds needs --train-per-split (models are trained per seed).")
    synthetic = {
        k: v
        for k, v in (("synthetic_runs", synthetic_runs), ("synthetic_trojans", synthetic_trojans))
        if v is not None
    }
    if synthetic and per_split is None:
        raise click.UsageError("--synthetic-runs and --synthetic-trojans need --train-per-split.")
    if split.endswith(".dev"):
        if per_split is None:
            raise click.UsageError(
                "--split NAME.dev needs --train-per-split DIR: each development fold needs models "
                "trained on its own training runs (the split's models were trained on the folds' "
                "test runs)."
            )
        if write_decision:
            raise click.UsageError("--write-decision ships one split's decision, not folds'.")
        _split_names(data, split)  # no folds fails here
    elif split != "all":
        read_split(data, split)  # an unknown split fails here, before models load
    if per_split is not None:
        reports = {}
        for k in seed_list:
            reports[k] = _evaluate_per_split(
                split,
                data,
                per_split if k == 0 else per_split / f"seed{k}",
                out if k == 0 else (out or Path("reports")) / f"seed{k}",
                far_target,
                device,
                write_decision and k == 0,
                seed=k,
                grid=grid,
                synthetic=synthetic,
            )
        if len(seed_list) > 1:
            _write_seed_table(split, out, reports)
        return
    loaded = _load_models(models, device)
    if write_decision and loaded.manifest.training.split != split:
        raise click.UsageError(
            f"--write-decision needs the split the models were trained on "
            f"({loaded.manifest.training.split!r}). Got {split!r} instead."
        )
    tasks: dict[str, object] = {}
    with Progress(transient=False) as bar:

        def progress(stage: str, advance: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.advance(tasks[stage], advance)

        reports, written = evaluate_to_dir(
            data,
            split,
            loaded,
            out,
            far_target=far_target,
            binaries=read_binary_index(data / "binaries" / "binaries.csv"),
            progress=progress,
            grid=grid,
        )
    for path in written:
        click.echo(f"wrote {path}")
    if write_decision:
        _write_decision(models, reports[0])


def _write_decision(model_dir: Path, report: dict) -> None:
    from stream.eval_report import write_frozen_decision

    d = write_frozen_decision(model_dir, report)
    click.echo(
        f"wrote the decision into {model_dir / 'manifest.json'}: on {d['on_threshold']:.4f}, "
        f"off {d['off_threshold']:.4f}, min {d['min_duration_s']:g} s, merge "
        f"{d['merge_gap_s']:g} s, backdate {d['backdate_s']:g} s, fast raise "
        f"{'none' if d.get('raise_threshold') is None else format(d['raise_threshold'], '.4f')}"
    )


def _evaluate_per_split(
    split: str,
    data: Path,
    models_root: Path,
    out,
    far_target: float,
    device: str,
    write_decision: bool = False,
    seed: int = 0,
    grid=None,
    synthetic: dict | None = None,
) -> list[dict]:
    from offline_training.config import TrainConfig
    from offline_training.pipeline import rich_progress, run_training
    from stream.binaries import read_binary_index
    from stream.eval_report import evaluate_to_dir, fold_table, results_table

    names = _split_names(data, split)
    many = split == "all" or split.endswith(".dev")
    root = Path("reports") if out is None else Path(out)
    binaries = read_binary_index(data / "binaries" / "binaries.csv")
    reports = []
    for name in names:
        model_dir = models_root / name
        if not (model_dir / "manifest.json").is_file():
            cfg = TrainConfig(
                data_dir=data, split=name, out_dir=model_dir, seed=seed, **(synthetic or {})
            ).resolved()
            _write_synthetic_runs(cfg)
            with rich_progress() as progress:
                run_training(cfg, progress)
        target = root / name if many else root
        rep, _ = evaluate_to_dir(
            data,
            name,
            _load_models(model_dir, device),
            target,
            far_target=far_target,
            binaries=binaries,
            grid=grid,
        )
        reports += rep
        click.echo(f"wrote {target} (models {model_dir})")
        if write_decision:
            _write_decision(model_dir, rep[0])
    if split == "all":
        (root / "results.md").write_text(
            "# Results (test runs; each split's own models; decision configs chosen on validation "
            "only)\n\n" + results_table(reports) + "\n"
        )
        click.echo(f"wrote {root / 'results.md'}")
    if split.endswith(".dev"):
        parent = split.removesuffix(".dev")
        (root / "dev_folds.md").write_text(
            f"# Development folds of {parent} (each fold's held-out condition; its own models; "
            "decision configs chosen on the fold's validation runs only; no test run of "
            f"{parent} is used)\n\n" + fold_table(parent, reports) + "\n"
        )
        click.echo(f"wrote {root / 'dev_folds.md'}")
    return reports


def _split_names(data: Path, split: str) -> list[str]:
    """'all' -> the benchmark's splits; 'NAME.dev' -> NAME's development folds; else [split]."""
    from stream.evaluate import available_splits
    from stream.splits import dev_fold_names

    if split == "all":
        return available_splits(data)
    if split.endswith(".dev"):
        parent = split.removesuffix(".dev")
        names = dev_fold_names(data, parent)
        if not names:
            raise click.UsageError(
                f"{data / 'splits'}: no development folds of {parent!r}; write them with "
                f"`python cli.py dev-splits --data {data} --split {parent}`."
            )
        return names
    return [split]


def _parse_seeds(text: str) -> tuple[int, ...] | None:
    """ "0,1,2" -> (0, 1, 2); None unless every item is an integer >= 0."""
    try:
        out = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        return None
    return out if out and all(v >= 0 for v in out) else None


def _write_seed_table(split: str, out, reports: dict[int, list[dict]]) -> None:
    from stream.eval_report import seed_table

    root = Path("reports") if out is None else Path(out)
    path = root / ("results_seeds.md" if split == "all" else "seeds.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# Spread across training seeds {', '.join(map(str, sorted(reports)))} (test runs; "
        "decision configs chosen on validation only)\n\n" + seed_table(reports) + "\n"
    )
    click.echo(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
