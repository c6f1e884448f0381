"""Model manifests: hashes and signatures match the files; tampered or mismatched models are refused."""

import json
import shutil

import numpy as np
import pytest

from stream.manifest import ModelError, load_manifest, sha256_bytes
from stream.onnx_session import choose_provider, load_models
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from tests.test_training_data import tiny_models


@pytest.fixture()
def model_dir(tmp_path_factory, tmp_path):
    """A private copy of the session's tiny model directory, free to tamper with."""
    dst = tmp_path / "models"
    shutil.copytree(tiny_models(tmp_path_factory), dst)
    return dst


def _edit_manifest(model_dir, edit):
    path = model_dir / "manifest.json"
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


def test_manifest_hashes_match_the_files(model_dir):
    manifest = load_manifest(model_dir)
    for entry in manifest.files.values():
        assert sha256_bytes((model_dir / entry.path).read_bytes()) == entry.sha256


def test_manifest_signatures_match_the_sessions(model_dir):
    models = load_models(model_dir, device="cpu")
    m = models.manifest
    assert m.files["dynamic"].inputs == {
        "x": ["batch", m.window, len(FEATURE_COLUMNS)],
        "m": ["batch", m.window, len(MASK_COLUMNS)],
    }
    assert list(m.files["dynamic"].outputs) == ["p_members", "p", "u"]
    assert m.files["fusion"].inputs == {"ctx": ["batch", len(m.fusion_inputs)]}
    assert m.stride == round(m.hz) and m.stride_s == 1.0


def test_one_changed_byte_in_an_onnx_file_is_refused(model_dir):
    path = model_dir / "dynamic.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="dynamic.onnx"):
        load_manifest(model_dir)
    with pytest.raises(ModelError, match="dynamic.onnx"):
        load_models(model_dir, device="cpu")


def test_a_wrong_hash_in_the_manifest_is_refused(model_dir):
    _edit_manifest(model_dir, lambda r: r["files"]["static"].update(sha256="0" * 64))
    with pytest.raises(ModelError, match="static.onnx"):
        load_manifest(model_dir)


def test_unknown_manifest_keys_are_refused(model_dir):
    _edit_manifest(model_dir, lambda r: r.update(surprise=1))
    with pytest.raises(ModelError, match="manifest.json"):
        load_manifest(model_dir)


def test_a_signature_that_disagrees_with_the_graph_is_refused(model_dir):
    _edit_manifest(model_dir, lambda r: r["files"]["dynamic"]["inputs"]["x"].__setitem__(1, 999))
    load_manifest(model_dir)  # hashes still match: only the signature check can catch this
    with pytest.raises(ModelError, match="dynamic.onnx: inputs"):
        load_models(model_dir, device="cpu")


def test_an_opset_that_disagrees_with_the_graph_is_refused(model_dir):
    _edit_manifest(model_dir, lambda r: r.update(opset=13))
    with pytest.raises(ModelError, match="opset"):
        load_models(model_dir, device="cpu")


def test_a_feature_order_other_than_the_schema_is_refused(model_dir):
    _edit_manifest(model_dir, lambda r: r["feature_names"].reverse())
    with pytest.raises(ModelError, match="feature_names"):
        load_manifest(model_dir)


def test_experts_score_batches_in_range(model_dir):
    models = load_models(model_dir, device="cpu")
    w, f, k = models.manifest.window, len(FEATURE_COLUMNS), len(MASK_COLUMNS)
    rng = np.random.default_rng(0)
    p, u = models.dynamic.score(
        rng.normal(size=(4, w, f)).astype(np.float32),
        (rng.random((4, w, k)) < 0.5).astype(np.uint8),
    )
    assert p.shape == u.shape == (4,)
    assert ((p >= 0) & (p <= 1) & (u >= 0) & (u <= 1)).all()
    ps, us = models.static.score(np.zeros((2, len(models.manifest.static_feature_names))))
    assert ps.shape == us.shape == (2,)
    score = models.fusion.score(rng.random((3, len(models.manifest.fusion_inputs))))
    assert score.shape == (3,) and ((score >= 0) & (score <= 1)).all()


def test_cpu_request_is_reported_as_cpu():
    choice = choose_provider("cpu")
    assert (choice.provider, choice.device) == ("CPUExecutionProvider", "cpu")


def test_auto_never_reports_gpu_unless_a_cuda_session_really_ran(model_dir):
    models = load_models(model_dir, device="auto")
    really_cuda = models.dynamic.providers[0] == "CUDAExecutionProvider"
    assert (models.provider.device == "cuda") == really_cuda
