"""`stream.splits.data_fingerprint`: which benchmark split a set of models was trained on."""

from __future__ import annotations

import json
import shutil

import pytest

from stream.splits import data_fingerprint, read_split_file


@pytest.fixture
def copy(tiny_data, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(tiny_data, out, ignore=shutil.ignore_patterns("processed", "synthetic"))
    return out


def test_a_copy_of_the_benchmark_has_the_same_fingerprint(tiny_data, copy):
    assert data_fingerprint(copy, "random") == data_fingerprint(tiny_data, "random")


def test_splits_of_one_benchmark_have_different_fingerprints(tiny_data):
    assert data_fingerprint(tiny_data, "random") != data_fingerprint(tiny_data, "unseen_workload")


@pytest.mark.parametrize("part", ["train", "val"])
def test_a_changed_training_or_validation_run_changes_it(copy, part):
    before = data_fingerprint(copy, "random")
    run = getattr(read_split_file(copy / "splits" / "random.json"), part)[0]
    meta = copy / "runs" / run / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "simulator_version": "0.0.1"}))
    assert data_fingerprint(copy, "random") != before


def test_a_changed_test_run_does_not_change_it(copy):
    """Models never learn from test runs, so their meta.json is not part of what trained them."""
    before = data_fingerprint(copy, "random")
    run = read_split_file(copy / "splits" / "random.json").test[0]
    meta = copy / "runs" / run / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "seed": 99}))
    assert data_fingerprint(copy, "random") == before


def test_a_missing_split_or_run_gives_none(copy):
    assert data_fingerprint(copy, "no_such_split") is None
    run = read_split_file(copy / "splits" / "random.json").train[0]
    (copy / "runs" / run / "meta.json").unlink()
    assert data_fingerprint(copy, "random") is None
