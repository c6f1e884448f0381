"""`cli.py bench-score`: the scoring benchmark scores what it wrote, through the score command's path."""

from __future__ import annotations

import json

import numpy as np

import cli
from stream.bench_score import bench_scoring, synthetic_runs


def test_synthetic_runs_are_seeded_and_inside_their_hour():
    a, b = synthetic_runs(4, 1.0, seed=3), synthetic_runs(4, 1.0, seed=3)
    assert all(np.array_equal(x.pred, y.pred) for x, y in zip(a, b, strict=True))
    for run in a:
        assert len(run.truth) > 5
        assert run.truth.min() >= 0 and run.truth.max() < 3600.0


def test_scores_read_from_the_written_files_equal_the_in_memory_scores(tmp_path):
    result = bench_scoring(tmp_path, n_runs=6, hours=0.5, seed=1, n_resamples=20)
    assert result["files_equal_in_memory"] is True
    assert result["goal"]["met"] is None  # too small to speak to the 1,000 x 1 h goal
    assert 0.0 < result["report"]["event_f1"] < 1.0


def test_bench_score_command_writes_json(cli_runner, tmp_path):
    out = tmp_path / "b.json"
    res = cli_runner.invoke(
        cli.main, ["bench-score", "--runs", "3", "--hours", "0.25", "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert set(data["timings_s"]) == {
        "read_files_s",
        "join_runs_s",
        "score_s",
        "score_command_s",
        "bootstrap_s",
    }
    assert data["config"]["n_runs"] == 3
