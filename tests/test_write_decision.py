"""`evaluate --write-decision`: the frozen, validation-chosen decision ships in the models' manifest."""

from __future__ import annotations

import json

import pytest

import cli
from stream.detector import decision_from_manifest
from stream.manifest import load_manifest
from stream.onnx_session import load_models
from tests.test_training_data import tiny_config


@pytest.fixture(scope="module")
def written(tiny_data, tmp_path_factory):
    """Tiny models trained on the tiny benchmark, evaluated on their own split with --write-decision."""
    from click.testing import CliRunner

    from offline_training.pipeline import run_training

    data = tiny_data
    models = tmp_path_factory.mktemp("wd") / "models"
    run_training(tiny_config(data, models, split="random"))
    split = load_manifest(models).training.split
    out = models.parent / "report"
    args = ["evaluate", "--split", split, "--data", str(data), "--models", str(models)]
    res = CliRunner().invoke(
        cli.main, [*args, "--device", "cpu", "--out", str(out), "--write-decision"]
    )
    assert res.exit_code == 0, res.output
    return models, json.loads((out / "report.json").read_text()), data


def test_the_manifest_carries_the_fusion_decision_chosen_on_validation(written):
    models, report, _ = written
    chosen = report["detectors"]["fusion"]["decision"]
    d = load_manifest(models).decision
    for key in ("on_threshold", "off_threshold", "min_duration_s", "merge_gap_s", "backdate_s"):
        assert getattr(d, key) == pytest.approx(chosen[key]), key
    assert d.source.startswith("evaluate: best event F1 with FAR/h <= 2")
    assert not any("provisional" in line for line in load_manifest(models).model_card.limits)


def test_models_with_a_written_decision_still_verify_and_the_runtime_uses_it(written):
    models, report, _ = written
    loaded = load_models(models, "cpu")  # every file's checksum still holds
    cfg = decision_from_manifest(loaded)
    assert cfg.on_threshold == pytest.approx(
        report["detectors"]["fusion"]["decision"]["on_threshold"]
    )
    assert cfg.backdate_s == pytest.approx(report["detectors"]["fusion"]["decision"]["backdate_s"])


def test_a_decision_from_another_split_is_refused(written, cli_runner):
    models, _, data = written
    split = load_manifest(models).training.split
    other = next(p.stem for p in (data / "splits").glob("*.json") if p.stem != split)
    before = (models / "manifest.json").read_text()
    args = ["evaluate", "--split", other, "--data", str(data), "--models", str(models)]
    res = cli_runner.invoke(cli.main, [*args, "--write-decision"])
    assert res.exit_code == 2
    assert "--write-decision needs the split the models were trained on" in res.output
    assert (models / "manifest.json").read_text() == before


def test_the_manifest_records_which_benchmark_split_trained_the_models(written):
    from stream.splits import data_fingerprint

    models, report, data = written
    fp = load_manifest(models).training.data_fingerprint
    assert fp is not None and fp == data_fingerprint(data, "random")
    assert report["models"]["trained_on_this_benchmark"] is True


def test_a_decision_for_models_trained_on_another_benchmark_is_refused(
    written, tmp_path, cli_runner
):
    import shutil

    from stream.splits import read_split_file

    models, _, data = written
    other = tmp_path / "other_benchmark"
    shutil.copytree(data, other)
    run = read_split_file(other / "splits" / "random.json").train[0]
    meta = other / "runs" / run / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "seed": 123456}))
    before = (models / "manifest.json").read_text()
    out = tmp_path / "report"
    args = ["evaluate", "--split", "random", "--data", str(other), "--models", str(models)]
    res = cli_runner.invoke(
        cli.main, [*args, "--device", "cpu", "--out", str(out), "--write-decision"]
    )
    assert res.exit_code == 1
    assert "trained on another benchmark's split 'random'" in res.output
    assert (models / "manifest.json").read_text() == before
    report = json.loads((out / "report.json").read_text())
    assert report["models"]["trained_on_this_benchmark"] is False
    assert "overlap with this split's runs unknown" in report["model_train_overlap"]


def test_the_drift_watch_keeps_the_threshold_fixed_at_training(written):
    """A decision written by evaluate changes decisions only: the drift watch, which decides what
    refreshes the baseline and so shapes the scores, keeps its training threshold."""
    from stream.detector import Detector, DeviceInfo

    models, report, _ = written
    manifest = load_manifest(models)
    written_off = report["detectors"]["fusion"]["decision"]["off_threshold"]
    assert manifest.drift_threshold is not None and manifest.drift_threshold != written_off
    det = Detector(load_models(models, "cpu"), [DeviceInfo("d0", None)])
    assert det.decision.off_threshold == pytest.approx(written_off)
    assert det.runtime.drift.off_threshold == manifest.drift_threshold
