"""Hostile binaries: mutated copies of the shipped corpus never crash or hang the parser, the runtime's
static scoring or `inspect-binary`; each one gives features or a reason."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import cli
from simulator.corpus import binary_file, load_corpus
from stream.binary_worker import StaticCache, read_many
from stream.detector import Detector, DeviceInfo, static_scores
from stream.inspect import inspect_binary
from stream.onnx_session import load_models
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.static_features import STATIC_FEATURE_NAMES
from tests.fuzz.mutate import ELF_MUTATIONS, mutate_elf

ROOT = Path(__file__).resolve().parents[1]
N_MUTANTS = 200
TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def models():
    return load_models(ROOT / "exported_models", "cpu")


@pytest.fixture(scope="module")
def mutants(tmp_path_factory) -> list[tuple[str, Path]]:
    """N_MUTANTS damaged copies of the corpus binaries (seeded), as (kind, path)."""
    out_dir = tmp_path_factory.mktemp("mutants")
    corpus = [binary_file(r).read_bytes() for r in load_corpus()]
    rng = np.random.default_rng(np.random.SeedSequence([7, 2024]))
    out = []
    for i in range(N_MUTANTS):
        kind, data = mutate_elf(corpus[i % len(corpus)], rng)
        path = out_dir / f"mutant_{i:04d}_{kind}.elf"
        path.write_bytes(data)
        out.append((kind, path))
    return out


@pytest.fixture(scope="module")
def results(mutants):
    return read_many([p for _, p in mutants], timeout_s=TIMEOUT_S, memory_mb=512, max_workers=2)


def test_the_mutants_cover_every_kind_of_damage(mutants):
    assert set(Counter(kind for kind, _ in mutants)) == set(ELF_MUTATIONS)


def test_every_mutant_gives_features_or_a_reason(results):
    for res in results:
        assert (res.features is None) != (res.reason is None)
        if res.available:
            assert res.features.shape == (len(STATIC_FEATURE_NAMES),)
            assert np.isfinite(res.features).all()
        else:
            assert isinstance(res.reason, str) and res.reason


def test_mutants_are_mostly_refused_and_none_crash_the_parser(results):
    reasons = Counter(r.reason for r in results if not r.available)
    assert sum(reasons.values()) >= N_MUTANTS // 4  # the damage is real, not cosmetic
    assert not [r for r in reasons if r.startswith("cannot start parser process")]


def test_runtime_static_scoring_masks_unreadable_mutants(models, mutants):
    paths = [p for _, p in mutants[:40]]
    scores, res = static_scores(models, paths, StaticCache(timeout_s=TIMEOUT_S, memory_mb=512))
    avail = np.array([r.available for r in res])
    assert np.array_equal(scores.available, avail)
    assert ((scores.p >= 0) & (scores.p <= 1) & (scores.u >= 0) & (scores.u <= 1)).all()
    assert (scores.p[~avail] == 0.5).all() and (scores.u[~avail] == 1.0).all()


def test_runtime_flags_as_seen_exactly_the_binaries_the_static_expert_trained_on(
    models, mutants, results
):
    known = set(models.manifest.static_seen_sha256)
    records = load_corpus()
    assert known and known <= {r.sha256 for r in records}
    readable = [p for (_, p), r in zip(mutants, results, strict=True) if r.available][:10]
    paths = [binary_file(r) for r in records] + readable
    scores, res = static_scores(models, paths, StaticCache(timeout_s=TIMEOUT_S, memory_mb=512))
    want = [r.sha256 in known for r in records] + [False] * len(readable)
    assert scores.seen.tolist() == want  # a changed byte makes a known binary new
    assert not (scores.seen & ~scores.available).any()


def test_runtime_streams_devices_whose_binaries_are_hostile(models, mutants):
    devices = [DeviceInfo(f"d{i}", p) for i, (_, p) in enumerate(mutants[:6])]
    det = Detector(models, devices, cache=StaticCache(timeout_s=TIMEOUT_S, memory_mb=512))
    rng = np.random.default_rng(3)
    rows = np.arange(len(devices))
    for i in range(120):
        raw = rng.normal(100.0, 5.0, (len(devices), len(FEATURE_COLUMNS)))
        det.ingest(rows, np.full(len(devices), i / 10), raw, np.ones((6, len(MASK_COLUMNS))))
    det.finish()
    acc = det.runtime.accounting
    assert acc.balanced and acc.windows_scored > 0


def test_inspect_gives_a_reason_or_scores_for_each_mutant(models, mutants):
    for _, path in mutants[:12]:
        ins = inspect_binary(path, models, timeout_s=TIMEOUT_S, memory_mb=512)
        if ins.available:
            assert set(ins.features) == set(STATIC_FEATURE_NAMES)
            assert 0 <= ins.p_s <= 1 and 0 <= ins.u_s <= 1 and ins.reason is None
        else:
            assert ins.reason and ins.p_s is None and ins.u_s is None


def test_inspect_binary_cli_prints_features_and_scores_as_json(cli_runner, models):
    path = binary_file(load_corpus()[0])
    res = cli_runner.invoke(cli.main, ["inspect-binary", str(path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["available"] and out["reason"] is None
    assert list(out["features"]) == list(STATIC_FEATURE_NAMES)
    assert 0 <= out["p_s"] <= 1 and 0 <= out["u_s"] <= 1
    assert out["seen"] is (out["sha256"] in set(models.manifest.static_seen_sha256))


def test_inspect_binary_cli_says_whether_the_static_expert_trained_on_the_binary(
    cli_runner, models, mutants, results
):
    known = next(r for r in load_corpus() if r.sha256 in set(models.manifest.static_seen_sha256))
    res = cli_runner.invoke(cli.main, ["inspect-binary", str(binary_file(known))])
    assert res.exit_code == 0 and "seen    yes" in res.output, res.output
    new = next(p for (_, p), r in zip(mutants, results, strict=True) if r.available)
    res = cli_runner.invoke(cli.main, ["inspect-binary", str(new)])
    assert res.exit_code == 0 and "seen    no" in res.output, res.output


def test_inspect_binary_cli_reports_the_reason_for_a_hostile_file(cli_runner, mutants):
    kind, path = next((k, p) for k, p in mutants if k == "random_bytes")
    res = cli_runner.invoke(cli.main, ["inspect-binary", str(path)])
    assert res.exit_code == 0, res.output
    assert "static unavailable: corrupt ELF identification bytes" in res.output
    assert "Traceback" not in res.output


def test_inspect_binary_cli_refuses_a_tampered_model_directory(cli_runner, tmp_path):
    import shutil

    models_dir = tmp_path / "m"
    shutil.copytree(ROOT / "exported_models", models_dir)
    data = bytearray((models_dir / "static.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (models_dir / "static.onnx").write_bytes(bytes(data))
    path = binary_file(load_corpus()[0])
    res = cli_runner.invoke(cli.main, ["inspect-binary", str(path), "--models", str(models_dir)])
    assert res.exit_code != 0 and "static.onnx" in res.output and "Traceback" not in res.output
