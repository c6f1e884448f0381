"""Training targets from each window's last seconds (offline_training/labels.py)."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from offline_training.data import DataError, WindowSet, load_split
from offline_training.labels import recent_labels, relabel_recent
from offline_training.pipeline import run_training
from tests.test_training_data import tiny_benchmark, tiny_config


def _windows(run_ids, t_end):
    n = len(t_end)
    return WindowSet(
        X=np.zeros((n, 1, 1), np.float32),
        M=np.zeros((n, 1, 1), np.uint8),
        y_soft=np.zeros(n, np.float32),
        run_id=np.asarray(run_ids),
        binary_id=np.asarray(["b"] * n),
        t_end_s=np.asarray(t_end, float),
    )


def test_label_is_the_covered_fraction_of_the_windows_last_seconds():
    # at 10 Hz a window whose last sample is at 9.9 s covers up to 10.0 s: its last 2 s are [8, 10)
    ws = _windows(["a", "a", "a", "b"], [9.9, 10.9, 11.9, 10.9])
    truth = {"a": np.array([[9.0, 11.5]]), "b": np.zeros((0, 2))}
    y = recent_labels(ws, truth, 2.0, 10.0)
    np.testing.assert_allclose(y, [0.5, 1.0, 0.75, 0.0], rtol=1e-6)


def test_an_onset_labels_a_window_long_before_its_whole_window_overlap_would():
    ws = _windows(["a"], [101.9])  # a 10 s window ending 2 s after the onset at 100 s
    y = recent_labels(ws, {"a": np.array([[100.0, 200.0]])}, 2.0, 10.0)
    assert y[0] == 1.0  # the whole-window overlap would be 0.2


def test_a_run_without_truth_is_a_data_error():
    with pytest.raises(DataError, match="'zz'"):
        recent_labels(_windows(["zz"], [5.0]), {}, 2.0, 10.0)


def test_non_positive_seconds_are_refused_with_the_template():
    with pytest.raises(ValueError, match="'recent_s' parameter of recent_labels must be > 0"):
        recent_labels(_windows(["a"], [5.0]), {"a": np.zeros((0, 2))}, 0.0, 10.0)


def test_relabelled_split_keeps_its_windows_and_changes_only_the_targets(tmp_path_factory):
    data_dir = tiny_benchmark(tmp_path_factory)
    data = load_split(data_dir, "unseen_workload")
    new = relabel_recent(data, data_dir, 2.0)
    for part in ("train", "val", "test"):
        a, b = data.parts[part], new.parts[part]
        assert np.array_equal(a.X, b.X) and np.array_equal(a.t_end_s, b.t_end_s)
        assert b.y_soft.min() >= 0.0 and b.y_soft.max() <= 1.0
    assert not np.array_equal(data.train.y_soft, new.train.y_soft)


def test_a_missing_intervals_file_is_named(tmp_path_factory, tmp_path):
    src = tiny_benchmark(tmp_path_factory)
    copy = tmp_path / "bench"
    shutil.copytree(src, copy)
    data = load_split(copy, "unseen_workload")
    run = sorted(set(data.train.run_id.tolist()))[0]
    (copy / "runs" / run / "intervals.csv").unlink()
    with pytest.raises(DataError, match=f"{run}/intervals.csv: missing"):
        relabel_recent(data, copy, 2.0)


def test_training_learns_the_configured_target(tmp_path_factory, tmp_path, monkeypatch):
    import offline_training.pipeline as pipeline

    data_dir = tiny_benchmark(tmp_path_factory)
    seen = []
    real = pipeline.train_dynamic

    def spy(data, cfg, **kw):
        seen.append(data.train.y_soft.copy())
        return real(data, cfg, **kw)

    monkeypatch.setattr(pipeline, "train_dynamic", spy)
    stored = load_split(data_dir, "unseen_workload")
    expected = {None: stored.train.y_soft, 2.0: relabel_recent(stored, data_dir, 2.0).train.y_soft}
    for recent, want in expected.items():
        run_training(tiny_config(data_dir, tmp_path / str(recent), label_recent_s=recent))
        np.testing.assert_array_equal(seen[-1], want)
        saved = json.loads((tmp_path / str(recent) / "train_config.json").read_text())
        assert saved["label_recent_s"] == recent
    assert not np.array_equal(expected[None], expected[2.0])


def test_cli_train_refuses_negative_seconds(tmp_path_factory, tmp_path):
    data_dir = tiny_benchmark(tmp_path_factory)
    args = [
        "train",
        "--data",
        str(data_dir),
        "--out",
        str(tmp_path / "m"),
        "--label-recent-s",
        "-1",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "--label-recent-s" in result.output
