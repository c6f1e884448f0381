"""`python cli.py simulate` end to end on a tiny benchmark: files, schema, determinism, windows."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import cli
from simulator.meta import RunMeta
from stream.schema import LABEL_COLUMNS, MASK_COLUMNS, TELEMETRY_COLUMNS
from stream.telemetry_io import read_telemetry
from stream.windowing import (
    CausalNormaliser,
    Normalisation,
    OnlineWindower,
    WindowSpec,
    transform_features,
)


def _digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_writes_runs_binaries_splits_and_windows(tiny_data, tiny_cfg):
    runs = sorted((tiny_data / "runs").iterdir())
    assert len(runs) == tiny_cfg.n_runs
    for r in runs:
        assert {p.name for p in r.iterdir()} == {"telemetry.csv", "meta.json", "intervals.csv"}
    assert (tiny_data / "binaries" / "binaries.csv").is_file()
    assert len(list((tiny_data / "splits").glob("*.json"))) == 6
    for split in ("random", "unseen_workload", "binary_disjoint"):
        for part in ("train", "val", "test"):
            assert (tiny_data / "processed" / split / f"windows_{part}.npz").is_file()


def test_telemetry_schema_matches_the_design_and_carries_no_labels(tiny_data):
    for r in sorted((tiny_data / "runs").iterdir()):
        df = pl.read_csv(r / "telemetry.csv")
        assert tuple(df.columns) == TELEMETRY_COLUMNS
        assert not set(LABEL_COLUMNS) & set(df.columns)
        masks = df.select(MASK_COLUMNS).to_numpy()
        assert set(np.unique(masks)) <= {0, 1}
        assert 0 < masks.mean() < 1


def test_meta_json_is_typed_and_intervals_match_it(tiny_data):
    for r in sorted((tiny_data / "runs").iterdir()):
        meta = RunMeta.model_validate_json((r / "meta.json").read_text())
        truth = pl.read_csv(r / "intervals.csv")
        assert tuple(truth.columns) == (
            "t_start_sim_s",
            "t_end_sim_s",
            "trojan_family",
            "trojan_variant",
            "strength",
        )
        assert truth.height == meta.n_activations
        if meta.spec.capability == "benign":
            assert truth.height == 0
        if truth.height:
            assert (truth["t_end_sim_s"] > truth["t_start_sim_s"]).all()
            assert truth["t_end_sim_s"].max() <= meta.duration_s


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path, tiny_cfg):
    cfg = tiny_cfg.model_copy(update={"n_runs": 3})
    cli._write_benchmark(cfg, tmp_path / "a", windows=True)
    cli._write_benchmark(cfg, tmp_path / "b", windows=True)
    cli._write_benchmark(cfg.model_copy(update={"seed": 12}), tmp_path / "c", windows=False)
    a, b, c = (_digest(tmp_path / k) for k in "abc")
    assert a == b
    key = "runs/run_0001/telemetry.csv"
    assert a[key] != c[key]


def test_npz_windows_equal_the_runtime_windows_fed_sample_by_sample(tiny_data):
    npz = np.load(tiny_data / "processed" / "random" / "windows_test.npz")
    run_id = str(npz["run_id"][0])
    sel = npz["run_id"] == run_id
    spec = WindowSpec(
        hz=float(npz["hz"]), window_s=int(npz["window"]) / float(npz["hz"]), stride_s=1.0
    )
    assert spec.window == int(npz["window"])
    norm = Normalisation(
        tuple(npz["norm_scale"].tolist()),
        float(npz["norm_up_tau_s"]),
        float(npz["norm_down_tau_s"]),
        float(npz["norm_clip"]),
        float(npz["norm_spread_tau_s"]),
        tuple(npz["norm_spread_ref"].tolist()),
        float(npz["norm_spread_warm_s"]),
    )
    assert norm.spread_tau_s > 0 and norm.spread_warm_s > 0  # adapt to each device's spread
    tel = read_telemetry(tiny_data / "runs" / run_id / "telemetry.csv")
    normaliser = CausalNormaliser(1, spec.hz, norm)
    windower = OnlineWindower(1, spec, tel.features.shape[1], tel.masks.shape[1])
    online = {}
    rows = np.array([0])
    for i in range(tel.t_sim_s.size):  # the runtime's path: one sample at a time
        r = normaliser.step(transform_features(tel.features[i : i + 1]), rows)
        if windower.push(rows, normaliser.scale_step(r, rows), tel.masks[i : i + 1]).size:
            X, M = windower.windows(rows)
            online[round(float(tel.t_sim_s[i]), 6)] = (X[0], M[0])
    for X, M, t in zip(npz["X"][sel], npz["M"][sel], npz["t_end_s"][sel], strict=True):
        x_on, m_on = online[round(float(t), 6)]
        assert np.array_equal(X, x_on) and np.array_equal(M, m_on)
        assert t <= tel.t_sim_s[-1]


def test_windows_labels_are_overlap_fractions(tiny_data):
    npz = np.load(tiny_data / "processed" / "random" / "windows_train.npz")
    assert npz["X"].dtype == np.float32 and npz["M"].dtype == np.uint8
    assert npz["X"].shape[:2] == npz["M"].shape[:2] == (len(npz["y"]), int(npz["window"]))
    assert ((npz["y_soft"] >= 0) & (npz["y_soft"] <= 1)).all()
    assert np.array_equal(npz["y"], (npz["y_soft"] >= 0.5).astype(np.uint8))


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--duration", "-1"], "The '--duration' parameter of simulate must be > 0. Got -1.0"),
        (["--hz", "0"], "The '--hz' parameter of simulate must be > 0. Got 0.0"),
        (["--preset", "nope"], "The '--preset' parameter of simulate must be one of"),
        (["--runs", "0"], "The '--runs' parameter of simulate must be > 0. Got 0"),
    ],
)
def test_bad_values_get_the_template_and_no_traceback(cli_runner, tmp_path, args, needle):
    res = cli_runner.invoke(cli.main, ["simulate", "--out", str(tmp_path / "x"), *args])
    assert res.exit_code != 0
    assert needle in res.output
    assert "Traceback" not in res.output


def test_simulate_command_runs_end_to_end(cli_runner, tmp_path):
    res = cli_runner.invoke(
        cli.main,
        [
            "simulate",
            "--out",
            str(tmp_path / "d"),
            "--preset",
            "tiny",
            "--runs",
            "2",
            "--duration",
            "40",
            "--seed",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    bench = json.loads((tmp_path / "d" / "benchmark.json").read_text())
    assert bench["n_runs"] == 2 and bench["seed"] == 3
    assert len(list((tmp_path / "d" / "runs").iterdir())) == 2


def test_bench_simulator_writes_its_figures(cli_runner, tmp_path):
    out = tmp_path / "b.json"
    res = cli_runner.invoke(
        cli.main, ["bench-simulator", "--devices", "2", "--seconds", "20", "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    fig = json.loads(out.read_text())
    assert fig["devices"] == 2 and fig["in_memory_samples_per_s"] > 0
    assert fig["end_to_end_csv"]["samples"] > 0


def _linked_copy(src: Path, dst: Path) -> Path:
    """A data root sharing src's runs/ and binaries/, with its own splits/ and no processed/."""
    dst.mkdir()
    for name in ("runs", "binaries"):
        (dst / name).symlink_to(src / name)
    shutil.copytree(src / "splits", dst / "splits")
    return dst


def test_windows_command_rebuilds_the_npz_that_simulate_wrote(cli_runner, tiny_data, tmp_path):
    data = _linked_copy(tiny_data, tmp_path / "data")
    res = cli_runner.invoke(cli.main, ["windows", "--data", str(data), "--split", "random"])
    assert res.exit_code == 0, res.output
    for part in ("train", "val", "test"):
        new = np.load(data / "processed" / "random" / f"windows_{part}.npz")
        old = np.load(tiny_data / "processed" / "random" / f"windows_{part}.npz")
        assert sorted(new.files) == sorted(old.files)
        for key in old.files:
            np.testing.assert_array_equal(new[key], old[key], err_msg=f"{part}: {key}")


def test_a_custom_split_gets_windows_of_exactly_its_runs_and_trains(
    cli_runner, tiny_data, tmp_path
):
    data = _linked_copy(tiny_data, tmp_path / "data")
    runs = sorted(p.name for p in (tiny_data / "runs").iterdir())
    parts = {"train": runs[:6], "val": runs[6:8], "test": runs[8:]}
    manifest = {"name": "dev", "seed": 0, "rule": "test: the last runs", **parts}
    (data / "splits" / "dev.json").write_text(json.dumps(manifest))
    res = cli_runner.invoke(cli.main, ["windows", "--data", str(data), "--split", "dev"])
    assert res.exit_code == 0, res.output
    for part, ids in parts.items():
        got = np.load(data / "processed" / "dev" / f"windows_{part}.npz")["run_id"]
        assert sorted(set(got.tolist())) == ids
    assert not (data / "processed" / "random").exists()  # only the split asked for
    out = tmp_path / "models"
    res = cli_runner.invoke(
        cli.main,
        ["train", "--data", str(data), "--split", "dev", "--epochs", "1", "--out", str(out)]
        + ["--synthetic-runs", "0"],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((out / "manifest.json").read_text())["training"]["split"] == "dev"


def test_resimulate_reproduces_benchmark_runs_byte_for_byte(tiny_data, tmp_path, cli_runner):
    from cli import main

    runs = sorted((tiny_data / "runs").iterdir())[:2]
    res = cli_runner.invoke(main, ["resimulate", *map(str, runs), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert [line.split(": ")[1] for line in res.output.splitlines()] == ["identical"] * 2
    assert (tmp_path / runs[0].name / "telemetry.csv").is_file()


def test_resimulate_reports_a_run_that_differs_and_exits_non_zero(tiny_data, tmp_path, cli_runner):
    import shutil

    from cli import main

    run = tmp_path / "copy" / sorted(p.name for p in (tiny_data / "runs").iterdir())[0]
    shutil.copytree(tiny_data / "runs" / run.name, run)
    tel = run / "telemetry.csv"
    lines = tel.read_text().splitlines(keepends=True)
    tel.write_text("".join(lines[:-1]))  # one sample lost
    res = cli_runner.invoke(main, ["resimulate", str(run), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert f"{run.name}: differs (telemetry.csv)" in res.output
    assert "1 of 1 runs differ" in res.output


def test_resimulate_refuses_a_directory_without_our_meta_json(tmp_path, cli_runner):
    from cli import main

    (tmp_path / "r").mkdir()
    res = cli_runner.invoke(main, ["resimulate", str(tmp_path / "r"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert f"{tmp_path / 'r' / 'meta.json'}: not a meta.json of this simulator" in res.output
    assert "Traceback" not in res.output


def test_resimulate_refuses_to_overwrite_the_run_it_checks(tiny_data, tmp_path, cli_runner):
    import shutil

    from cli import main

    runs = tmp_path / "runs"
    name = sorted(p.name for p in (tiny_data / "runs").iterdir())[0]
    shutil.copytree(tiny_data / "runs" / name, runs / name)
    res = cli_runner.invoke(main, ["resimulate", str(runs / name), "--out", str(runs)])
    assert res.exit_code == 2 and "--out would overwrite the run it checks" in res.output
