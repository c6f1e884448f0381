"""CLI user errors (missing paths, bad option values, bad files) exit non-zero with one error line
and no traceback, for every command."""

from __future__ import annotations

import json
import shutil

import pytest

import cli


def _one_error_line(res, needle: str) -> None:
    assert res.exit_code != 0, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    assert needle in errors[0], res.output


CASES = {
    "fleet-binaries-missing": (
        ["fleet", "detect", "--bootstrap-servers", "localhost:1", "--binaries", "{tmp}/none.csv"],
        "The '--binaries' parameter of fleet detect must be an existing binaries.csv",
    ),
    "windows-unknown-split": (
        ["windows", "--data", "{tmp}", "--split", "nope"],
        "The '--split' parameter of windows must be one of",
    ),
    "simulate-devices": (
        ["simulate", "--stream", "--devices", "0"],
        "The '--devices' parameter of simulate must be > 0. Got 0 instead.",
    ),
    "simulate-speed": (
        ["simulate", "--stream", "--speed", "fast", "--duration", "1"],
        "The '--speed' parameter of simulate must be a positive number or 'max'",
    ),
    "simulate-models": (
        ["simulate", "--stream", "--duration", "1", "--models", "{tmp}/none"],
        "manifest.json missing",
    ),
    "train-split": (
        ["train", "--data", "{tmp}/none", "--split", "nope"],
        "The '--split' parameter of train must be one of",
    ),
    "train-epochs": (["train", "--epochs", "0"], "The '--epochs' parameter of train must be > 0"),
    "train-device": (["train", "--device", "tpu"], "Invalid value for '--device'"),
    "train-data-file": (["train", "--data", "{tmp}/file.txt"], "Not a directory"),
    "replay-missing": (["replay", "{tmp}/nope", "--data", "{tmp}"], "no such run directory"),
    "score-missing": (
        ["score", "--truth", "{tmp}/nope.csv", "--pred", "{tmp}/file.txt"],
        "does not exist",
    ),
    "score-duration": (
        ["score", "--truth", "{tmp}/file.txt", "--pred", "{tmp}/file.txt", "--duration-s", "-1"],
        "The '--duration-s' parameter of score must be > 0",
    ),
    "bench-simulator-devices": (
        ["bench-simulator", "--devices", "0"],
        "The '--devices' parameter of bench-simulator must be > 0",
    ),
    "bench-simulator-seconds": (
        ["bench-simulator", "--seconds", "-5"],
        "The '--seconds' parameter of bench-simulator must be > 0",
    ),
    "bench-streams": (["bench", "--streams", "abc"], "The '--streams' parameter of bench"),
    "bench-provider": (["bench", "--provider", "tpu"], "The '--provider' parameter of bench"),
    "bench-models": (
        ["bench", "--models", "{tmp}/none", "--duration", "1"],
        "manifest.json missing",
    ),
    "evaluate-split": (
        ["evaluate", "--split", "nope", "--data", "{tmp}/none"],
        "The 'split' parameter of evaluate must be one of",
    ),
    "evaluate-far": (
        ["evaluate", "--split", "random", "--far-target", "-1", "--data", "{tmp}/none"],
        "The '--far-target' parameter of evaluate must be >= 0",
    ),
    "evaluate-missing-split": (["evaluate"], "Missing option '--split'"),
    "inspect-missing": (["inspect-binary", "{tmp}/nope.elf"], "does not exist"),
    "inspect-directory": (["inspect-binary", "{tmp}"], "is a directory"),
    "inspect-timeout": (
        ["inspect-binary", "{tmp}/file.txt", "--timeout", "0"],
        "The '--timeout' parameter of inspect-binary must be > 0",
    ),
    "inspect-models": (
        ["inspect-binary", "{tmp}/file.txt", "--models", "{tmp}/none"],
        "manifest.json missing",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_error_is_one_line_without_traceback(case, cli_runner, tmp_path):
    (tmp_path / "file.txt").write_text("not telemetry\n")
    args, needle = CASES[case]
    res = cli_runner.invoke(cli.main, [a.replace("{tmp}", str(tmp_path)) for a in args])
    _one_error_line(res, needle)


def test_user_error_cases_name_existing_commands():
    """A renamed command must take its cases along; new ones get the generic checks below."""
    covered = {args[0] for args, _ in CASES.values()}
    assert covered <= set(cli.main.commands)


@pytest.mark.parametrize("command", sorted(cli.main.commands))
def test_every_command_refuses_an_unknown_option_in_one_line(command, cli_runner):
    res = cli_runner.invoke(cli.main, [command, "--no-such-option"])
    _one_error_line(res, "No such option")


@pytest.mark.parametrize("command", sorted(cli.main.commands))
def test_every_command_has_help(command, cli_runner):
    res = cli_runner.invoke(cli.main, [command, "--help"])
    assert res.exit_code == 0 and "Usage:" in res.output


def test_replay_of_a_run_whose_meta_json_has_an_unknown_key_names_the_file(
    cli_runner, tiny_data, tmp_path
):
    run = tmp_path / "run_meta"
    shutil.copytree(sorted((tiny_data / "runs").iterdir())[0], run)
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps(meta | {"surprise": True}))
    res = cli_runner.invoke(cli.main, ["replay", str(run)])
    _one_error_line(res, "meta.json: field 'surprise'")


def test_replay_of_a_run_with_a_gap_names_row_and_column(cli_runner, tiny_data, tmp_path):
    import polars as pl

    run = tmp_path / "run_gap"
    shutil.copytree(sorted((tiny_data / "runs").iterdir())[0], run)
    df = pl.read_csv(run / "telemetry.csv")
    t = df["t_sim_s"].to_numpy().copy()
    t[100:] += 300.0
    df.with_columns(pl.Series("t_sim_s", t)).write_csv(run / "telemetry.csv")
    res = cli_runner.invoke(cli.main, ["replay", str(run)])
    _one_error_line(res, "row 101, column 't_sim_s': sampling interval")


def test_replay_of_a_run_with_a_reversed_truth_interval_names_file_and_row(
    cli_runner, tiny_data, tmp_path
):
    run = tmp_path / "run_truth"
    shutil.copytree(sorted((tiny_data / "runs").iterdir())[0], run)
    lines = (run / "intervals.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = dict.fromkeys(header, "")
    row |= {"t_start_sim_s": "50.0", "t_end_sim_s": "40.0"}
    (run / "intervals.csv").write_text("\n".join([lines[0], ",".join(row.values())]) + "\n")
    res = cli_runner.invoke(cli.main, ["replay", str(run)])
    _one_error_line(res, "intervals.csv, row 1")
