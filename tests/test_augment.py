"""Synthetic-workload domain randomisation: the profiles, the cloned specs and the training windows."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from offline_training.data import DataError, load_split
from offline_training.synthetic import synthetic_train_windows, with_synthetic
from simulator.augment import (
    SYNTHETIC_PREFIX,
    synthetic_dir,
    synthetic_specs,
    write_synthetic,
)
from simulator.config import SYNTHETIC_WORKLOAD, WORKLOAD_FAMILIES, RunSpec, WorkloadSpec
from simulator.meta import SIMULATOR_VERSION
from simulator.workloads import PROFILES, profile_of, synthetic_profile
from stream.schema import SYNTHETIC_STAMP


def _cos(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_a_synthetic_profile_is_a_function_of_its_seed():
    assert synthetic_profile(7) == synthetic_profile(7)
    assert synthetic_profile(7).base != synthetic_profile(8).base


def test_synthetic_profiles_load_every_engine_from_idle_to_heavy():
    base = np.array([synthetic_profile(s).base for s in range(300)])  # (300, 7)
    for c in (2, 3, 4, 5):  # gpu, emc, cv, mem: no engine is reserved to trojans
        assert base[:, c].min() < 0.1 and base[:, c].max() > 0.6
    assert (base[:, 0] >= 0.1).all()  # the CPU always does some work


def test_most_synthetic_bursts_are_more_of_the_profiles_own_work():
    prof = synthetic_profile(3)
    own = [(w, a) for w, a in prof.bursts if abs(_cos(a, prof.base)) > 0.999]
    assert sum(w for w, _ in own) == pytest.approx(0.85)


def test_a_runs_profile_is_its_familys_or_its_own_randomised_one(default_plan):
    _, _, specs, _, _ = default_plan
    spec = specs[0]
    assert profile_of(spec) == PROFILES[spec.workload.family]
    syn = spec.model_copy(
        update={"workload": WorkloadSpec(family=SYNTHETIC_WORKLOAD, intensity=0.5)}
    )
    assert profile_of(syn) == synthetic_profile(spec.seed)


def test_the_benchmark_never_draws_a_synthetic_workload(default_plan):
    _, _, specs, _, _ = default_plan
    assert SYNTHETIC_WORKLOAD not in WORKLOAD_FAMILIES
    assert {s.workload.family for s in specs} == set(WORKLOAD_FAMILIES)


def test_synthetic_specs_change_only_the_workload_seed_id_and_duration(default_plan):
    _, _, specs, _, _ = default_plan
    sources = specs[:40]
    by_id = {s.run_id: s for s in sources}
    out = synthetic_specs(sources, 25, seed=1, max_duration_s=300.0)
    assert [s.run_id for s in out] == [f"{SYNTHETIC_PREFIX}{k:04d}" for k in range(1, 26)]
    for s in out:
        assert s.workload.family == SYNTHETIC_WORKLOAD and 0.1 <= s.workload.intensity <= 1.0
        assert s.duration_s <= 300.0
        twins = [
            src
            for src in by_id.values()
            if (src.binary_id, src.trojan, src.schedule, src.regime, src.device_seed)
            == (s.binary_id, s.trojan, s.schedule, s.regime, s.device_seed)
        ]
        assert twins, f"{s.run_id} is not a clone of a source run"
        assert s.seed not in {src.seed for src in sources}


def test_synthetic_specs_never_bring_a_condition_the_sources_lack(default_plan):
    _, _, specs, splits, _ = default_plan
    held = splits["unseen_trojan"]
    train = [s for s in specs if s.run_id in set(held.train)]
    families = {s.trojan.family for s in train if s.trojan}
    out = synthetic_specs(train, 200, seed=0)
    assert {s.trojan.family for s in out if s.trojan} <= families
    assert {s.regime.power_mode for s in out} <= {s.regime.power_mode for s in train}


def test_a_synthetic_payload_mix_is_a_function_of_its_seed_and_peaks_at_one():
    from simulator.trojans import synthetic_weights

    w = synthetic_weights(11)
    assert np.array_equal(w, synthetic_weights(11)) and not np.array_equal(w, synthetic_weights(12))
    assert w.max() == 1.0 and (w >= 0).all() and w[0] == w[1]  # the peak core load moves with it


def test_synthetic_payload_mixes_can_lean_on_any_engine():
    from simulator.trojans import synthetic_weights

    main = {int(np.argmax(synthetic_weights(s)[1:])) + 1 for s in range(300)}
    assert main == {1, 2, 3, 4, 5, 6}  # cpu, gpu, emc, cv, mem, io: none is left out


def test_a_synthetic_payload_adds_its_own_mix_at_the_familys_scale():
    from simulator.config import TrojanSpec
    from simulator.trojans import GAIN, NOISE_REF_DEMAND, amplitude, synthetic_weights

    t = TrojanSpec(family="synthetic", variant="steady", strength=0.5)
    want = GAIN * 0.25 * synthetic_weights(5) * NOISE_REF_DEMAND
    assert np.allclose(amplitude(t, seed=5), want)
    assert not np.allclose(amplitude(t, seed=5), amplitude(t, seed=6))


def test_a_trojan_share_gives_that_share_of_trojan_clones_a_synthetic_payload(default_plan):
    _, _, specs, _, _ = default_plan
    sources = specs[:60]
    plain = synthetic_specs(sources, 1000, seed=3)
    mixed = synthetic_specs(sources, 1000, seed=3, trojan_share=0.5)
    assert plain == synthetic_specs(sources, 1000, seed=3, trojan_share=0.0)
    changed = 0
    for a, b in zip(plain, mixed, strict=True):
        assert a.model_copy(update={"trojan": None}) == b.model_copy(update={"trojan": None})
        if a.trojan is None:
            assert b.trojan is None
        elif b.trojan.family == "synthetic":
            changed += 1
            assert (b.trojan.variant, b.trojan.strength) == (a.trojan.variant, a.trojan.strength)
        else:
            assert b.trojan == a.trojan
    n_trojan = sum(a.trojan is not None for a in plain)
    assert 0.4 * n_trojan < changed < 0.6 * n_trojan  # binomial sd ~0.02 of n_trojan


def test_a_trojan_share_outside_0_1_is_refused(default_plan):
    with pytest.raises(ValueError, match="'trojan_share' parameter of synthetic_specs"):
        synthetic_specs(default_plan[2][:3], 2, seed=0, trojan_share=1.5)


def test_a_synthetic_payload_still_needs_a_trojan_binary(default_plan):
    from pydantic import ValidationError

    from simulator.config import TrojanSpec

    spec = next(s for s in default_plan[2] if s.trojan is None)
    with pytest.raises(ValidationError, match="a benign binary carries no trojan"):
        RunSpec.model_validate(
            {
                **spec.model_dump(),
                "trojan": TrojanSpec(family="synthetic", variant="steady", strength=0.5),
            }
        )


def test_synthetic_specs_are_deterministic_and_order_free(default_plan):
    _, _, specs, _, _ = default_plan
    a = synthetic_specs(specs[:30], 10, seed=4)
    assert a == synthetic_specs(list(reversed(specs[:30])), 10, seed=4)
    assert a != synthetic_specs(specs[:30], 10, seed=5)
    assert synthetic_specs(specs[:30], 0, seed=4) == []


def test_synthetic_specs_refuse_a_negative_count(default_plan):
    with pytest.raises(ValueError, match="'n' parameter of synthetic_specs must be >= 0"):
        synthetic_specs(default_plan[2][:3], -1, seed=0)


@pytest.fixture
def data_copy(tiny_data, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(tiny_data, out, ignore=shutil.ignore_patterns("synthetic"))
    return out


def test_synthetic_runs_are_written_as_ordinary_run_directories(data_copy):
    root = write_synthetic(data_copy, "random", 2, seed=0)
    assert root == synthetic_dir(data_copy, "random")
    for rid in ("syn_0001", "syn_0002"):
        assert {p.name for p in (root / "runs" / rid).iterdir()} >= {
            "telemetry.csv",
            "meta.json",
            "intervals.csv",
        }
    assert json.loads((root / SYNTHETIC_STAMP).read_text())["run_ids"] == ["syn_0001", "syn_0002"]


def test_synthetic_runs_are_simulated_once_per_request(data_copy, monkeypatch):
    write_synthetic(data_copy, "random", 2, seed=0)

    def refuse(*a, **k):
        raise AssertionError("simulated again")

    monkeypatch.setattr("simulator.augment.write_runs", refuse)
    write_synthetic(data_copy, "random", 2, seed=0)  # same request: reused
    with pytest.raises(AssertionError, match="simulated again"):
        write_synthetic(data_copy, "random", 3, seed=0)


def test_synthetic_windows_are_cut_like_the_splits_own(data_copy):
    write_synthetic(data_copy, "random", 3, seed=0)
    split = load_split(data_copy, "random")
    extra = synthetic_train_windows(data_copy, split, 3, seed=0, label_recent_s=2.0)
    assert set(extra.run_id.tolist()) == {"syn_0001", "syn_0002", "syn_0003"}
    assert extra.X.shape[1:] == split.train.X.shape[1:]
    assert extra.M.shape[1:] == split.train.M.shape[1:]
    assert np.isfinite(extra.X).all() and (np.abs(extra.X) <= split.norm.clip).all()
    assert ((extra.y_soft >= 0) & (extra.y_soft <= 1)).all()
    assert set(extra.binary_id.tolist()) <= set(split.train.binary_id.tolist())
    grown = with_synthetic(split, extra)
    assert len(grown.train) == len(split.train) + len(extra)
    assert grown.val is split.val and grown.test is split.test


def test_training_refuses_synthetic_runs_written_for_another_request(data_copy):
    split = load_split(data_copy, "random")
    with pytest.raises(DataError, match="synthetic.json: missing; write them with"):
        synthetic_train_windows(data_copy, split, 2, seed=0, label_recent_s=None)
    write_synthetic(data_copy, "random", 2, seed=1)
    with pytest.raises(DataError, match="written for split 'random', 2 runs, seed 1"):
        synthetic_train_windows(data_copy, split, 2, seed=0, label_recent_s=None)


def test_training_refuses_synthetic_runs_from_another_simulator_version(data_copy):
    split = load_split(data_copy, "random")
    stamp = write_synthetic(data_copy, "random", 2, seed=0) / SYNTHETIC_STAMP
    request = json.loads(stamp.read_text())
    assert request["simulator_version"] == SIMULATOR_VERSION
    stamp.write_text(json.dumps({**request, "simulator_version": "0.0.1"}))
    with pytest.raises(DataError, match="written by simulator 0.0.1, the benchmark's runs by"):
        synthetic_train_windows(data_copy, split, 2, seed=0, label_recent_s=None)


def test_training_refuses_synthetic_runs_written_with_another_trojan_share(data_copy):
    split = load_split(data_copy, "random")
    write_synthetic(data_copy, "random", 2, seed=0, trojan_share=0.5)
    with pytest.raises(DataError, match="synthetic-trojan share of 0.5, not 0"):
        synthetic_train_windows(data_copy, split, 2, seed=0, label_recent_s=None)
    extra = synthetic_train_windows(
        data_copy, split, 2, seed=0, label_recent_s=None, trojan_share=0.5
    )
    assert set(extra.run_id.tolist()) == {"syn_0001", "syn_0002"}


def test_a_new_simulator_version_simulates_the_synthetic_runs_again(data_copy, monkeypatch):
    stamp = write_synthetic(data_copy, "random", 2, seed=0) / SYNTHETIC_STAMP
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "simulator_version": "0.0.1"}))

    def refuse(*a, **k):
        raise AssertionError("simulated again")

    monkeypatch.setattr("simulator.augment.write_runs", refuse)
    with pytest.raises(AssertionError, match="simulated again"):
        write_synthetic(data_copy, "random", 2, seed=0)


def test_cli_train_with_synthetic_runs_trains_on_them_and_on_nothing_else_new(
    data_copy, tmp_path, monkeypatch, cli_runner
):
    import offline_training.pipeline as pipeline
    from cli import main

    seen = {}
    real = pipeline.train_dynamic

    def spy(data, cfg, **kw):
        seen["train"] = set(data.train.run_id.tolist())
        seen["val"] = set(data.val.run_id.tolist())
        return real(data, cfg, **kw)

    monkeypatch.setattr(pipeline, "train_dynamic", spy)
    out = tmp_path / "models"
    args = ["train", "--data", str(data_copy), "--split", "random", "--out", str(out)]
    res = cli_runner.invoke(main, [*args, "--epochs", "1", "--synthetic-runs", "2"])
    assert res.exit_code == 0, res.output
    assert {"syn_0001", "syn_0002"} <= seen["train"]
    assert not any(r.startswith(SYNTHETIC_PREFIX) for r in seen["val"])
    assert (out / "manifest.json").is_file()


def test_cli_train_refuses_a_negative_synthetic_count(cli_runner, tmp_path):
    from cli import main

    res = cli_runner.invoke(main, ["train", "--synthetic-runs", "-1", "--out", str(tmp_path / "m")])
    assert res.exit_code != 0 and "--synthetic-runs" in res.output


def test_a_synthetic_run_spec_round_trips_through_json(default_plan):
    spec = synthetic_specs(default_plan[2][:5], 1, seed=0)[0]
    assert RunSpec.model_validate_json(spec.model_dump_json()) == spec
