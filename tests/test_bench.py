"""`cli.py bench`: the JSON holds every figure of DESIGN.md section 7; structure only, never timings."""

from __future__ import annotations

import json
import shutil
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

import cli
import stream.runtime as runtime_module
from stream.bench import SyntheticTelemetry, parse_counts
from stream.bench_timing import STAGES, StageClock
from stream.detector import Detector, DeviceInfo
from stream.onnx_session import load_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """A private copy, so a concurrent retraining of exported_models/ cannot change it mid-test."""
    out = tmp_path_factory.mktemp("bench") / "models"
    shutil.copytree(ROOT / "exported_models", out)
    return out


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory, models_dir) -> dict:
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("bench") / "bench.json"
    args = ["bench", "--models", str(models_dir), "--streams", "1,2", "--batch", "1,3"]
    args += ["--duration", "0.5", "--provider", "cpu", "--json", str(out)]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_json_has_every_section(bench_json):
    expected = {"schema", "config", "environment", "models", "model_latency", "end_to_end"}
    expected |= {"throughput", "torch_reference", "memory", "goals"}
    assert expected <= set(bench_json)


def test_model_latency_covers_every_expert_and_batch(bench_json):
    cases = {(r["expert"], r["batch"]) for r in bench_json["model_latency"]}
    assert cases == {(e, b) for e in ("dynamic", "static", "fusion") for b in (1, 3)}
    for r in bench_json["model_latency"]:
        assert {"provider", "reps", "p50_ms", "p99_ms", "windows_per_s"} <= set(r)


def test_provider_recorded_is_the_one_onnx_runtime_uses(bench_json, models_dir):
    used = load_models(models_dir, "cpu").dynamic.providers[0]
    assert bench_json["environment"]["provider"] == used
    assert {r["provider"] for r in bench_json["model_latency"]} == {used}


def test_end_to_end_has_percentiles_and_every_stage(bench_json):
    e2e = bench_json["end_to_end"]
    assert e2e["window_ticks"] > 0
    assert {"p50_ms", "p99_ms"} <= set(e2e["decision"])
    assert set(e2e["stages"]) == set(STAGES)


def test_throughput_has_one_row_per_stream_count(bench_json):
    rows = bench_json["throughput"]
    assert [r["streams"] for r in rows] == [1, 2]
    for r in rows:
        keys = {"windows_per_s", "samples_per_s", "cpu_ms_per_window", "realtime", "decision_tick"}
        assert keys <= set(r)
        assert r["samples"] == r["streams"] * 5  # 0.5 s at 10 Hz


def test_torch_reference_is_reported_either_way(bench_json):
    ref = bench_json["torch_reference"]
    if ref["available"]:
        assert [(r["provider"], r["batch"]) for r in ref["rows"]] == [
            (bench_json["environment"]["provider"], b) for b in (1, 3)
        ]
        assert ref["parity_max_abs_diff_p"] < 1e-4  # the exported weights really were loaded
    else:
        assert ref["reason"]


def test_memory_and_environment(bench_json):
    mem, env = bench_json["memory"], bench_json["environment"]
    assert mem["per_stream_bytes"] > 0 and mem["peak_rss_bytes"] > 0
    assert {"windower", "normaliser", "decision"} <= set(mem["breakdown"])
    assert env["cpu_model"] and env["cpu_count"] >= 1
    assert {"numpy", "onnxruntime", "torch", "polars", "river", "lief"} <= set(env["versions"])


@pytest.mark.parametrize(
    "option, value",
    [("--streams", "0,10"), ("--streams", "ten"), ("--batch", ""), ("--provider", "tpu")],
)
def test_bad_values_fail_with_the_one_template(cli_runner, option, value):
    result = cli_runner.invoke(cli.main, ["bench", option, value])
    assert result.exit_code != 0
    assert f"The '{option}' parameter of bench must be" in result.output
    assert "Traceback" not in result.output


def test_negative_duration_fails_with_the_one_template(cli_runner):
    result = cli_runner.invoke(cli.main, ["bench", "--duration", "-1"])
    assert result.exit_code != 0
    assert "The '--duration' parameter of bench must be > 0. Got -1.0 instead." in result.output


@pytest.mark.parametrize("text, expected", [("1,10,100", (1, 10, 100)), ("4096", (4096,))])
def test_parse_counts_reads_comma_separated_positive_integers(text, expected):
    assert parse_counts(text) == expected


def test_stage_clock_times_the_production_path_without_changing_it(models_dir):
    models = load_models(models_dir, "cpu")
    scores: dict[str, list[np.ndarray]] = {"plain": [], "timed": []}
    for name in scores:
        det = Detector(
            models,
            [DeviceInfo("a"), DeviceInfo("b")],
            on_windows=lambda rec, n=name: scores[n].append(rec.score.copy()),
        )
        n = models.manifest.window + 2 * models.manifest.stride  # three emissions
        raw, masks = SyntheticTelemetry(2, seed=3).chunk(n)
        clock = StageClock()
        with clock.installed(det.runtime) if name == "timed" else nullcontext():
            for j in range(n):
                det.ingest(np.arange(2), np.full(2, j / models.manifest.hz), raw[:, j], masks[:, j])
        if name == "timed":
            assert clock.spent["experts"] > 0 and clock.spent["window"] > 0
    assert len(scores["plain"]) == 3
    np.testing.assert_array_equal(np.concatenate(scores["plain"]), np.concatenate(scores["timed"]))
    assert "step" not in vars(det.runtime.normaliser)  # wrappers removed
    assert runtime_module.fusion_context.__name__ == "fusion_context"
