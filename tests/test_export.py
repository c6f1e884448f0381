"""ONNX export: parity with torch on random and real windows, dynamic batch, nothing written on failure."""

import numpy as np
import pytest
import torch

from offline_training import export as export_mod
from offline_training.data import load_split
from offline_training.export import ExportError, ExportSpec, export_onnx, onnx_parity
from offline_training.models import DynamicEnsemble, FusionGateNet, StaticEnsemble
from stream.schema import FUSION_INPUTS
from tests.test_training_data import tiny_benchmark


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return load_split(tiny_benchmark(tmp_path_factory), "unseen_workload")


def _dynamic_spec(split, seed=0):
    rng = np.random.default_rng(seed)
    val = split.val
    model = DynamicEnsemble(val.X.shape[2], val.M.shape[2], val.X.shape[1], channels=8, seed=seed)
    model.temperature.fill_(1.7)
    model.logit_offset.fill_(-0.4)
    shape = (16,) + val.X.shape[1:]
    feeds = [
        {
            "x": rng.normal(0, 3, shape).astype(np.float32),
            "m": (rng.random(shape[:2] + val.M.shape[2:]) < 0.5).astype(np.float32),
        },
        {"x": val.X[:64], "m": val.M[:64].astype(np.float32)},
    ]
    return ExportSpec("dynamic", model, ("x", "m"), ("p_members", "p", "u"), feeds)


def test_dynamic_onnx_matches_torch_on_random_and_real_windows(split, tmp_path):
    spec = _dynamic_spec(split)
    export_onnx(spec, tmp_path / "dynamic.onnx", opset=17)
    assert onnx_parity(spec, (tmp_path / "dynamic.onnx").read_bytes()) <= 1e-5


def test_static_and_fusion_onnx_match_torch(tmp_path):
    rng = np.random.default_rng(1)
    static = StaticEnsemble(12, members=5, hidden=4, seed=3)
    static.set_standardisation(rng.random((20, 12)) * 5)
    gate = FusionGateNet(len(FUSION_INPUTS), hidden=8, seed=3)
    ctx = rng.random((32, len(FUSION_INPUTS))).astype(np.float32)
    specs = [
        ExportSpec(
            "static",
            static,
            ("s",),
            ("p_members", "p", "u"),
            [{"s": (rng.random((9, 12)) * 5).astype(np.float32)}],
        ),
        ExportSpec("fusion", gate, ("ctx",), ("score",), [{"ctx": ctx}]),
    ]
    for spec in specs:
        export_onnx(spec, tmp_path / f"{spec.name}.onnx", opset=17)
        assert onnx_parity(spec, (tmp_path / f"{spec.name}.onnx").read_bytes()) <= 1e-5


def test_exported_dynamic_graph_accepts_any_batch_size(split, tmp_path):
    import onnxruntime as ort

    spec = _dynamic_spec(split)
    export_onnx(spec, tmp_path / "d.onnx", opset=17)
    sess = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    for b in (1, 7):
        p_members, p, u = sess.run(
            None, {"x": split.val.X[:b], "m": split.val.M[:b].astype(np.float32)}
        )
        assert p_members.shape == (b, 5) and p.shape == (b,) and u.shape == (b,)


def test_all_members_live_in_one_graph_and_p_is_their_mean(split):
    spec = _dynamic_spec(split)
    with torch.no_grad():
        members, p, _ = spec.module(*(torch.as_tensor(spec.feeds[1][n]) for n in ("x", "m")))
    assert members.shape[1] == 5
    np.testing.assert_allclose(p.numpy(), members.numpy().mean(axis=1), atol=1e-6)


def test_failed_parity_writes_nothing(split, tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "onnx_parity", lambda spec, data: 1.0)
    out = tmp_path / "models"
    with pytest.raises(ExportError, match="dynamic.onnx"):
        export_mod.write_model_dir(out, [_dynamic_spec(split)], {}, "{}", 17, 1e-5)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_to_replace_a_directory_that_is_not_a_model_directory(split, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not a model directory"):
        export_mod.write_model_dir(tmp_path, [_dynamic_spec(split)], {}, "{}", 17, 1e-5)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
