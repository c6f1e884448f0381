"""Development folds of the held-out splits (simulator.splits.dev_folds, `cli.py dev-splits`).

A fold holds out one *other* value of its split's key inside the split's train + val runs, so a
method can be tuned against the shift without ever touching the split's test runs.
"""

from __future__ import annotations

import json
import shutil

import pytest

from simulator.splits import HELD_OUT, HELD_OUT_KEYS, dev_folds
from stream.evaluate import DETECTORS


@pytest.fixture(scope="module")
def planned(default_plan):
    _, _, specs, splits, _ = default_plan
    return {s.run_id: s for s in specs}, splits


@pytest.mark.parametrize("name", sorted(HELD_OUT))
def test_no_fold_holds_a_test_run_of_its_split(planned, name):
    specs, splits = planned
    folds, skipped = dev_folds(splits[name], list(specs.values()))
    assert folds and not skipped
    test = set(splits[name].test)
    for fold in folds.values():
        assert not test & set(fold.train + fold.val + fold.test), fold.name


@pytest.mark.parametrize("name", sorted(HELD_OUT))
def test_each_fold_holds_out_one_other_value_of_the_key(planned, name):
    specs, splits = planned
    key = HELD_OUT_KEYS[name]
    folds, _ = dev_folds(splits[name], list(specs.values()))
    held = []
    for fold in folds.values():
        values = {key(specs[r]) for r in fold.test} - {"benign"}
        assert len(values) == 1, fold.name
        value = values.pop()
        assert fold.name == f"{name}.dev-{value}"
        assert all(key(specs[r]) != value for r in fold.train + fold.val)
        held.append(value)
    pool = {key(specs[r]) for r in splits[name].train + splits[name].val} - {"benign"}
    assert sorted(held) == sorted(pool) and HELD_OUT[name] not in held


def test_a_workload_fold_partitions_its_split_s_train_and_val_runs(planned):
    specs, splits = planned
    split = splits["unseen_workload"]
    for fold in dev_folds(split, list(specs.values()))[0].values():
        parts = fold.train + fold.val + fold.test
        assert len(parts) == len(set(parts)) and set(parts) == set(split.train + split.val)


def test_trojan_folds_keep_benign_runs_in_their_held_out_part(planned):
    specs, splits = planned
    for fold in dev_folds(splits["unseen_trojan"], list(specs.values()))[0].values():
        kinds = {specs[r].capability for r in fold.test}
        assert "benign" in kinds and len(kinds) == 2, fold.name


def test_folds_are_deterministic(planned):
    specs, splits = planned
    a = dev_folds(splits["unseen_regime"], list(specs.values()))
    b = dev_folds(splits["unseen_regime"], list(reversed(specs.values())))
    assert a == b


def test_only_held_out_splits_have_folds(planned):
    specs, splits = planned
    with pytest.raises(ValueError, match="held-out splits only"):
        dev_folds(splits["random"], list(specs.values()))


def test_cli_writes_folds_and_evaluates_them_without_the_split_s_test_runs(
    tiny_data, tmp_path, cli_runner
):
    import cli

    data = tmp_path / "fusionbench_sim"
    shutil.copytree(tiny_data, data)
    res = cli_runner.invoke(cli.main, ["dev-splits", "--data", str(data)])
    assert res.exit_code == 0, res.output
    folds = sorted(p.stem for p in (data / "splits").glob("unseen_workload.dev-*.json"))
    assert folds and all((data / "processed" / f / "windows_train.npz").is_file() for f in folds)
    for extra in folds[1:]:  # one fold keeps the test short; the expansion is the same
        (data / "splits" / f"{extra}.json").unlink()
    models, out = tmp_path / "models", tmp_path / "reports"
    args = ["evaluate", "--split", "unseen_workload.dev", "--data", str(data)]
    args += ["--synthetic-runs", "0"]
    res = cli_runner.invoke(cli.main, [*args, "--train-per-split", str(models), "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / folds[0] / "report.json").read_text())
    assert report["models"]["split"] == folds[0] and report["model_train_overlap"] in (None, "")
    test = set(json.loads((data / "splits" / "unseen_workload.json").read_text())["test"])
    fold = json.loads((data / "splits" / f"{folds[0]}.json").read_text())
    assert not test & set(fold["train"] + fold["val"] + fold["test"])
    table = (out / "dev_folds.md").read_text()
    assert all(f"| {folds[0]} | {d} |" in table for d in DETECTORS)
    assert "| unseen_workload (all folds) | fusion |" in table


def test_evaluating_folds_needs_models_trained_per_fold(tiny_data, cli_runner):
    import cli

    res = cli_runner.invoke(
        cli.main, ["evaluate", "--split", "unseen_workload.dev", "--data", str(tiny_data)]
    )
    assert res.exit_code != 0 and "--train-per-split" in res.output


def test_evaluating_folds_that_were_never_written_names_the_command(
    tiny_data, tmp_path, cli_runner
):
    import cli

    args = ["evaluate", "--split", "unseen_regime.dev", "--data", str(tiny_data)]
    res = cli_runner.invoke(cli.main, [*args, "--train-per-split", str(tmp_path / "m")])
    assert res.exit_code != 0 and "cli.py dev-splits" in res.output


def test_dev_splits_without_the_split_manifest_names_the_file(tmp_path, cli_runner):
    import cli

    res = cli_runner.invoke(
        cli.main, ["dev-splits", "--data", str(tmp_path), "--split", "unseen_regime"]
    )
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert str(tmp_path / "splits" / "unseen_regime.json") in res.output
