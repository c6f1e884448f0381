"""End-to-end tests of each CLI command on tiny data, and one-line errors for user mistakes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl

import cli

ROOT = Path(__file__).resolve().parents[1]


def _run(tiny_data) -> Path:
    return sorted((tiny_data / "runs").iterdir())[0]


def test_replay_prints_metrics_as_json(cli_runner, tiny_data):
    res = cli_runner.invoke(cli.main, ["replay", str(_run(tiny_data)), "--json", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["provider"] == "CPUExecutionProvider"
    assert out["accounting"]["balanced"]
    assert {"event_f1", "far_per_hour", "ttd_median_s"} <= set(out["metrics"])


def test_replay_on_cuda_fails_in_one_line_where_cuda_does_not_work(
    cli_runner, tiny_data, cuda_works
):
    res = cli_runner.invoke(
        cli.main, ["replay", str(_run(tiny_data)), "--json", "--device", "cuda"]
    )
    if cuda_works:
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["provider"] == "CUDAExecutionProvider"
    else:
        assert res.exit_code == 1
        assert "CUDA was requested but ONNX Runtime cannot use it" in res.output
        assert "Traceback" not in res.output


def test_replay_resolves_relative_run_paths_under_the_data_root(cli_runner, tiny_data):
    res = cli_runner.invoke(
        cli.main, ["replay", f"runs/{_run(tiny_data).name}", "--data", str(tiny_data), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["run_id"] == _run(tiny_data).name


def test_replay_writes_detections_that_score_reads(cli_runner, tiny_data, tmp_path):
    run = _run(tiny_data)
    res = cli_runner.invoke(cli.main, ["replay", str(run), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "intervals_pred.csv").is_file()
    res = cli_runner.invoke(
        cli.main,
        [
            "score",
            "--truth",
            str(run),
            "--pred",
            str(tmp_path / "o" / "intervals_pred.csv"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    for k in (
        "event_precision",
        "event_recall",
        "event_f1",
        "far_per_hour",
        "ttd_median_s",
        "ttd_p90_s",
        "miss_rate",
        "range_precision",
        "range_recall",
        "n_true",
        "n_pred",
    ):
        assert k in report


def test_simulate_stream_reports_against_the_simulated_truth(cli_runner):
    res = cli_runner.invoke(
        cli.main,
        ["simulate", "--stream", "--devices", "3", "--duration", "40", "--seed", "5"]
        + ["--device", "cpu"],
    )
    assert res.exit_code == 0, res.output
    assert "interval-level report" in res.output
    assert "CPUExecutionProvider" in res.output
    flat = " ".join(res.output.split())
    assert "1200 samples in, 1200 used" in flat


def test_simulate_stream_writes_jsonl(cli_runner, tmp_path):
    out = tmp_path / "d.jsonl"
    res = cli_runner.invoke(
        cli.main,
        ["simulate", "--stream", "--devices", "4", "--duration", "60", "--jsonl", str(out)],
    )
    assert res.exit_code == 0, res.output
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        assert {"run_id", "t_start_s", "t_end_s", "t_emit_s", "peak_score", "mean_score"} <= set(
            rec
        )
        assert rec["t_emit_s"] >= rec["t_start_s"]


def _one_line_error(res, needle):
    assert res.exit_code != 0
    assert "Traceback" not in res.output
    assert needle in res.output, res.output


def test_replay_of_a_missing_run_is_one_line(cli_runner, tmp_path):
    res = cli_runner.invoke(cli.main, ["replay", str(tmp_path / "nope"), "--data", str(tmp_path)])
    _one_line_error(res, "no such run directory")


def test_replay_without_telemetry_names_the_file(cli_runner, tmp_path):
    (tmp_path / "run_x").mkdir()
    res = cli_runner.invoke(cli.main, ["replay", str(tmp_path / "run_x")])
    _one_line_error(res, "telemetry.csv: no such telemetry file")


def test_replay_names_file_row_and_column_of_a_bad_cell(cli_runner, tiny_data, tmp_path):
    dst = tmp_path / "run_bad"
    shutil.copytree(_run(tiny_data), dst)
    df = pl.read_csv(dst / "telemetry.csv").with_columns(pl.col("p_gpu_mw").cast(pl.Utf8))
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 41)
        .then(pl.lit("n/a"))
        .otherwise(pl.col("p_gpu_mw"))
        .alias("p_gpu_mw")
    )
    df.write_csv(dst / "telemetry.csv")
    res = cli_runner.invoke(cli.main, ["replay", str(dst)])
    _one_line_error(res, "row 42, column 'p_gpu_mw': not a number")


def test_replay_names_a_missing_column(cli_runner, tiny_data, tmp_path):
    dst = tmp_path / "run_cols"
    shutil.copytree(_run(tiny_data), dst)
    pl.read_csv(dst / "telemetry.csv").drop("temp_gpu_c").write_csv(dst / "telemetry.csv")
    res = cli_runner.invoke(cli.main, ["replay", str(dst)])
    _one_line_error(res, "missing column(s) 'temp_gpu_c'")


def test_a_tampered_model_directory_is_refused(cli_runner, tiny_data, tmp_path):
    models = tmp_path / "m"
    shutil.copytree(ROOT / "exported_models", models)
    data = bytearray((models / "fusion.onnx").read_bytes())
    data[-10] ^= 0xFF
    (models / "fusion.onnx").write_bytes(bytes(data))
    res = cli_runner.invoke(cli.main, ["replay", str(_run(tiny_data)), "--models", str(models)])
    _one_line_error(res, "fusion.onnx")


def test_missing_model_directory_is_one_line(cli_runner, tiny_data, tmp_path):
    res = cli_runner.invoke(
        cli.main, ["replay", str(_run(tiny_data)), "--models", str(tmp_path / "none")]
    )
    _one_line_error(res, "manifest.json missing")


def test_bad_speed_gets_the_template(cli_runner, tiny_data):
    res = cli_runner.invoke(cli.main, ["replay", str(_run(tiny_data)), "--speed", "-2"])
    _one_line_error(res, "The '--speed' parameter of replay must be a positive number or 'max'")
