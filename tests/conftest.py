"""Shared fixtures: one tiny benchmark written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.benchmark import PRESETS


@pytest.fixture(scope="session")
def tiny_cfg():
    """A benchmark small enough for CI: 10 runs of 60-90 s."""
    return PRESETS["tiny"].model_copy(
        update={"n_runs": 10, "short_s": (60.0, 90.0), "long_s": (100.0, 120.0), "seed": 11}
    )


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, tiny_cfg) -> Path:
    """runs/, binaries/, splits/ and processed/ of the tiny benchmark, via the CLI's own path."""

    import cli

    out = tmp_path_factory.mktemp("data") / "fusionbench_sim"
    cli._write_benchmark(tiny_cfg, out, windows=True)
    return out


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture(scope="session")
def cuda_works() -> bool:
    """Whether ONNX Runtime really runs the shipped models on CUDA here (never on CI)."""
    from stream.manifest import load_manifest, read_verified
    from stream.onnx_session import choose_provider

    models = Path(__file__).resolve().parents[1] / "exported_models"
    probe = read_verified(models, load_manifest(models).files["fusion"])
    return choose_provider("auto", probe).device == "cuda"


@pytest.fixture(scope="session")
def default_plan():
    """The default benchmark planned, not simulated: (config, corpus, run specs, splits, skipped)."""
    from simulator.benchmark import DEFAULT_PRESET, plan_runs
    from simulator.corpus import load_corpus
    from simulator.splits import make_splits

    cfg = PRESETS[DEFAULT_PRESET]
    corpus = load_corpus()
    specs = plan_runs(cfg, corpus)
    splits, skipped = make_splits(specs, corpus, cfg.seed, cfg.warmup_s)
    return cfg, corpus, specs, splits, skipped
