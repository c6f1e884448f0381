"""Offline training: a tiny end-to-end run, honest gate data, real uncertainty, determinism, CLI errors."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import offline_training.pipeline as pipeline
from cli import main
from offline_training.calibrate import ensemble_prob, fit_temperature
from offline_training.config import TrainConfig
from offline_training.data import DataError, load_binaries, load_split
from offline_training.models import ensemble_outputs
from offline_training.train_gate import build_gate_data, fusion_baselines
from offline_training.train_static import _folds, fit_static, read_static_table, train_static
from stream.onnx_session import load_models
from stream.schema import FUSION_INPUTS
from tests.test_training_data import tiny_benchmark, tiny_config, tiny_models


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tiny_benchmark(tmp_path_factory)


def test_tiny_training_writes_a_loadable_checked_model_directory(tmp_path_factory, data_dir):
    out = tiny_models(tmp_path_factory)
    models = load_models(out, device="cpu")
    val = load_split(data_dir, "unseen_workload").val
    p, u = models.dynamic.score(val.X, val.M)
    assert p.shape == (len(val),) and np.isfinite(p).all()
    config = TrainConfig.model_validate_json((out / "train_config.json").read_text())
    assert config.device == "cpu" and config.split == "unseen_workload"
    assert models.manifest.training.members >= 5
    assert models.manifest.metrics["val_dynamic"]["roc_auc"] is not None


def test_shipped_normalisation_is_exactly_the_one_the_training_windows_were_cut_with(
    tmp_path_factory, data_dir
):
    norm = load_split(data_dir, "unseen_workload").norm
    shipped = load_models(tiny_models(tmp_path_factory), device="cpu").manifest.normalisation
    assert norm.spread_tau_s > 0 and norm.spread_ref is not None  # the default windows adapt
    assert tuple(shipped.scale) == norm.scale
    assert (shipped.up_tau_s, shipped.down_tau_s, shipped.clip) == (
        norm.up_tau_s,
        norm.down_tau_s,
        norm.clip,
    )
    assert shipped.spread_tau_s == norm.spread_tau_s
    assert tuple(shipped.spread_ref) == norm.spread_ref


def test_cpu_training_is_deterministic_for_a_seed(data_dir, tmp_path):
    val = load_split(data_dir, "unseen_workload").val
    outs = []
    for name in ("a", "b"):
        pipeline.run_training(tiny_config(data_dir, tmp_path / name, seed=3))
        outs.append(load_models(tmp_path / name, device="cpu").dynamic.score_all(val.X, val.M))
    for key in ("p_members", "p", "u"):
        assert np.array_equal(outs[0][key], outs[1][key])
    fused = [(tmp_path / n / "fusion.onnx").read_bytes() for n in ("a", "b")]
    assert fused[0] == fused[1]


def test_gate_is_fitted_only_on_windows_the_experts_did_not_train_on(
    data_dir, tmp_path, monkeypatch
):
    seen = {}

    def spy(windows, *args, **kw):
        seen["gate"] = build_gate_data(windows, *args, **kw)
        return seen["gate"]

    monkeypatch.setattr(pipeline, "build_gate_data", spy)
    pipeline.run_training(tiny_config(data_dir, tmp_path / "m"))
    split = load_split(data_dir, "unseen_workload")
    gate_runs = set(seen["gate"].run_id.tolist())
    assert gate_runs.isdisjoint(split.train.run_id.tolist())
    assert gate_runs == set(split.val.run_id.tolist())


def test_gate_data_refuses_windows_from_expert_training_runs(data_dir):
    train = load_split(data_dir, "unseen_workload").train
    n = len(train)
    with pytest.raises(ValueError, match="exclude the experts' training runs"):
        build_gate_data(train, np.full(n, 0.5), np.zeros(n), {}, set(train.run_id.tolist()))


def test_gate_sees_a_known_binary_as_served_and_again_as_a_new_one(data_dir):
    val = load_split(data_dir, "unseen_workload").val
    n = len(val)
    known, other = sorted(set(val.binary_id.tolist()))[:2]
    served = {known: (0.9, 0.1), other: (0.3, 0.2)}
    gate = build_gate_data(
        val,
        np.full(n, 0.5),
        np.zeros(n),
        served,
        set(),
        static_new={known: (0.6, 0.4)},
        seen={known},
    )
    is_known = val.binary_id == known
    assert gate.served.sum() == n and (~gate.served).sum() == is_known.sum()
    first = gate.ctx[:n]  # the served rows, in window order
    assert (first[is_known, 2] == np.float32(0.9)).all() and (first[is_known, 5] == 1).all()
    assert (first[val.binary_id == other, 5] == 0).all()  # trained on `known` only
    again = gate.ctx[n:]
    assert (again[:, 2] == np.float32(0.6)).all() and (again[:, 5] == 0).all()
    assert (gate.run_id[n:] == val.run_id[is_known]).all()
    assert np.array_equal(gate.y_soft[n:], val.y_soft[is_known])


def test_manifest_lists_the_binaries_the_static_expert_trained_on(tmp_path_factory, data_dir):
    import hashlib

    models = load_models(tiny_models(tmp_path_factory), device="cpu")
    binaries = load_binaries(data_dir)
    train_ids = set(load_split(data_dir, "unseen_workload").train.binary_id.tolist())
    want = sorted(
        hashlib.sha256(binaries.path[i].read_bytes()).hexdigest()
        for i, b in enumerate(binaries.binary_id.tolist())
        if b in train_ids
    )
    assert models.manifest.static_seen_sha256 == want and want


def test_static_scores_for_training_binaries_come_from_models_that_never_saw_them(data_dir):
    cfg = tiny_config(data_dir, data_dir / "unused")
    table = read_static_table(load_binaries(data_dir))
    ids = [b for b, ok in zip(table.binary_id.tolist(), table.available, strict=True) if ok]
    trained = train_static(table, ids, cfg)
    k = max(trained.fold.values()) + 1
    for f in range(k):
        held = [b for b in trained.train_ids if trained.fold[b] == f]
        rest = [b for b in trained.train_ids if trained.fold[b] != f]
        model = fit_static(
            table.features[table.rows(rest)],
            table.label[table.rows(rest)],
            cfg,
            cfg.seed * 1000 + f + 1,
        )
        model.temperature.fill_(float(trained.model.temperature))
        with torch.no_grad():
            _, p, _ = model(torch.as_tensor(table.features[table.rows(held)]))
        np.testing.assert_allclose(p.numpy(), [trained.oof[b][0] for b in held], atol=1e-6)


def test_static_folds_hold_out_every_build_of_a_program_together():
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1])
    groups = np.array(["a", "a", "b", "c", "c", "d", "e", "e", "f", "f", "g", "h"])
    fold = _folds(labels, groups, 3, seed=0)
    for g in np.unique(groups):
        assert len(set(fold[groups == g].tolist())) == 1, g
    for f in range(3):
        assert set(labels[fold == f].tolist()) == {0, 1}  # still stratified


def test_sibling_builds_get_out_of_fold_scores_from_the_same_fold(data_dir):
    cfg = tiny_config(data_dir, data_dir / "unused")
    table = read_static_table(load_binaries(data_dir))
    table = replace(table, source=np.array([f"prog{i // 4}" for i in range(len(table.binary_id))]))
    ids = [b for b, ok in zip(table.binary_id.tolist(), table.available, strict=True) if ok]
    trained = train_static(table, ids, cfg)
    source = dict(zip(table.binary_id.tolist(), table.source.tolist(), strict=True))
    by_program: dict[str, set[int]] = {}
    for b in trained.train_ids:
        by_program.setdefault(source[b], set()).add(trained.fold[b])
    assert by_program and all(len(f) == 1 for f in by_program.values())


def test_unreadable_binary_gives_a_missing_static_score_not_a_crash(data_dir):
    table = read_static_table(load_binaries(data_dir))
    broken = table.binary_id.tolist().index("bin_08")
    assert not table.available[broken] and "bin_08" in table.reasons
    assert table.available.sum() == len(table.binary_id) - 1


def test_ensemble_u_is_higher_where_members_disagree():
    agree = torch.tensor([[3.0, 3.0, 3.0, 3.0, 3.0], [-2.0] * 5])
    disagree = torch.tensor([[3.0, -3.0, 3.0, -3.0, 0.0], [4.0, -4.0, 4.0, -4.0, 4.0]])
    _, _, u_agree = ensemble_outputs(agree, torch.tensor(0.0), torch.tensor(1.0))
    _, _, u_dis = ensemble_outputs(disagree, torch.tensor(0.0), torch.tensor(1.0))
    assert u_agree.max() < 1e-5 and (u_dis > 0.3).all() and (u_dis <= 1).all()


def test_trained_ensemble_u_is_not_constant_and_tracks_member_spread(tmp_path_factory, data_dir):
    models = load_models(tiny_models(tmp_path_factory), device="cpu")
    val = load_split(data_dir, "unseen_workload").val
    out = models.dynamic.score_all(val.X, val.M)
    u, spread = out["u"], out["p_members"].std(axis=1)
    assert np.ptp(u) > 1e-4
    assert np.corrcoef(u, spread)[0, 1] > 0.5


def test_temperature_fit_recovers_the_generating_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (20000, 1))
    y = (rng.random(20000) < ensemble_prob(logits, 0.0, 2.5)).astype(np.float64)
    assert abs(fit_temperature(logits, y) - 2.5) < 0.15


def test_fusion_baselines_reduce_to_dynamic_when_static_is_missing():
    ctx = np.array([[0.8, 0.1, 0.5, 1.0, 0.0, 1, 1, 1], [0.8, 0.1, 0.9, 0.1, 1.0, 1, 1, 1]])
    b = fusion_baselines(ctx)
    assert b["dynamic_only"][0] == b["product_of_experts"][0] == b["constant_gate"][0] == 0.8
    assert b["product_of_experts"][1] > 0.8 and b["constant_gate"][1] == pytest.approx(0.85)


def _cli(args):
    result = CliRunner().invoke(main, ["train", *args])
    return result.exit_code, result.output.strip().splitlines()


def test_cli_unknown_split_is_one_line_and_nonzero(data_dir, tmp_path):
    code, lines = _cli(["--data", str(data_dir), "--out", str(tmp_path / "m"), "--split", "nope"])
    assert code != 0 and len(lines) == 1 and "'split'" in lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_cuda_without_cuda_is_one_line_and_nonzero(data_dir, tmp_path):
    code, lines = _cli(["--data", str(data_dir), "--out", str(tmp_path / "m"), "--device", "cuda"])
    assert code != 0 and len(lines) == 1 and "'--device'" in lines[0]


def test_cli_corrupt_data_dir_is_one_clear_line(tmp_path):
    bad = tmp_path / "data" / "processed" / "unseen_workload"
    bad.mkdir(parents=True)
    (bad / "windows_train.npz").write_text("not a zip")
    args = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--synthetic-runs", "0"]
    code, lines = _cli(args)
    assert code != 0 and lines[-1].startswith("Error:") and "windows_train.npz" in lines[-1]


def test_load_split_names_a_missing_part(data_dir, tmp_path):
    import shutil

    copy = tmp_path / "d"
    shutil.copytree(data_dir, copy)
    (copy / "processed" / "unseen_workload" / "windows_val.npz").unlink()
    with pytest.raises(DataError, match="windows_val.npz"):
        load_split(copy, "unseen_workload")


def test_resolved_config_refuses_unknown_keys():
    with pytest.raises(ValueError):
        TrainConfig.model_validate(json.loads('{"epochz": 3}'))


def test_colab_notebook_is_valid_and_installs_trains_and_downloads():
    from pathlib import Path

    nb = json.loads((Path(__file__).parents[1] / "offline_training" / "colab.ipynb").read_text())
    assert nb["nbformat"] == 4
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    for step in (
        "git clone",
        'pip install -q -e ".[train]"',
        "cli.py train --device auto",
        "unzip",
        "zip -r",
    ):
        assert step in code


def test_monotone_gate_never_decreases_in_either_expert_probability():
    from offline_training.models import FusionGateNet

    gate = FusionGateNet(len(FUSION_INPUTS), monotone=True, seed=0)
    with torch.no_grad():
        gate.out.weight.copy_(torch.tensor([[0.3, -2.0, 1.5]]))  # softplus keeps weights > 0
    rng = np.random.default_rng(0)
    ctx = rng.random((200, len(FUSION_INPUTS))).astype(np.float32)
    ctx[:, 4] = 1.0
    ctx[:, 5] = rng.random(200) < 0.5  # seen and new binaries alike
    with torch.no_grad():
        base = gate(torch.as_tensor(ctx))
        for col in (0, 2):
            up = ctx.copy()
            up[:, col] = np.minimum(up[:, col] + 0.1, 1.0)
            assert (gate(torch.as_tensor(up)) >= base - 1e-7).all()


def test_window_stats_see_a_pulse_that_leaves_the_window_mean_small():
    from offline_training.models import STAT_NAMES, window_stats

    x = torch.zeros((2, 100, 3))
    x[1, 60:70, 0] = 3.0  # a 1 s pulse on channel 0 of window 1
    s = window_stats(x).reshape(2, len(STAT_NAMES), 3)
    rise = s[:, STAT_NAMES.index("max_rise_1s"), 0]
    assert rise[1] == pytest.approx(3.0) and rise[0] == 0.0
    assert s[1, STAT_NAMES.index("mean"), 0] == pytest.approx(0.3)
