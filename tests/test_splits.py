"""Split manifests: one definition, run-level, strict (stream.splits)."""

from __future__ import annotations

import json

import pytest

from stream.splits import SplitManifest, available_splits, dev_fold_names, read_split_file

GOOD = {"name": "s", "train": ["a", "b"], "val": ["c"], "test": ["d"], "seed": 1, "rule": "r"}


def _write(tmp_path, body) -> object:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(body))
    return path


def test_a_valid_manifest_reads_back_equal(tmp_path):
    assert read_split_file(_write(tmp_path, GOOD)) == SplitManifest(**GOOD)


@pytest.mark.parametrize("part", ["val", "test"])
def test_a_run_in_two_parts_is_refused_naming_the_file_and_the_run(tmp_path, part):
    path = _write(tmp_path, {**GOOD, part: ["a"]})
    with pytest.raises(ValueError, match=r"s\.json: invalid split manifest.*'a' is in two parts"):
        read_split_file(path)


def test_an_unknown_key_is_refused_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"field 'extra'"):
        read_split_file(_write(tmp_path, {**GOOD, "extra": 1}))


def test_an_empty_part_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"field 'test'"):
        read_split_file(_write(tmp_path, {**GOOD, "test": []}))


def test_a_file_that_is_not_json_is_one_clear_error(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"s\.json: cannot read split manifest"):
        read_split_file(path)


def test_available_splits_lists_canonical_names_first(tmp_path):
    (tmp_path / "splits").mkdir()
    for name in ("zz_custom", "unseen_trojan", "random"):
        (tmp_path / "splits" / f"{name}.json").write_text("{}")
    assert available_splits(tmp_path) == ["random", "unseen_trojan", "zz_custom"]


def test_development_folds_are_not_part_of_all_but_are_listed_per_split(tmp_path):
    (tmp_path / "splits").mkdir()
    names = ("random", "unseen_workload", "unseen_workload.dev-io_heavy", "unseen_regime.dev-MAXN")
    for name in names:
        (tmp_path / "splits" / f"{name}.json").write_text("{}")
    assert available_splits(tmp_path) == ["random", "unseen_workload"]
    assert dev_fold_names(tmp_path, "unseen_workload") == ["unseen_workload.dev-io_heavy"]
    assert dev_fold_names(tmp_path, "random") == []
