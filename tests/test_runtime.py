"""The streaming runtime: replay parity with offline scoring, interleaving, causality, labels
unused, accounting and provider reporting. Uses the shipped models and the tiny benchmark."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from offline_training.windows import load_run, run_windows
from stream.binaries import read_binary_index
from stream.detector import Detector, DeviceInfo
from stream.onnx_session import fusion_context, load_models
from stream.replay import replay_runs
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.windowing import Normalisation, WindowSpec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models():
    return load_models(ROOT / "exported_models", "cpu")


def _norm(models) -> Normalisation:
    return models.manifest.normalisation.to_runtime()


def _runs(tiny_data, k=3):
    return sorted((tiny_data / "runs").iterdir())[:k]


def _index(tiny_data):
    return read_binary_index(tiny_data / "binaries" / "binaries.csv")


def _scores(result):
    return {r: result.windows[r].arrays() for r in result.windows}


def test_runtime_scores_equal_offline_batch_scoring_of_the_same_windows(models, tiny_data):
    run_dir = _runs(tiny_data, 1)[0]
    index = _index(tiny_data)
    res = replay_runs([run_dir], models, binaries=index, record_windows=True, adapt=False)
    t_rt, ctx_rt, s_rt = res.windows[res.runs[0].run_id].arrays()
    m = models.manifest
    spec = WindowSpec(hz=m.hz, window_s=m.window_s, stride_s=m.stride_s)
    X, M, _, t_end = run_windows(load_run(run_dir, _norm(models)), _norm(models), spec)
    assert np.allclose(t_rt, t_end)  # every runtime emission, same times
    p_d, u_d = models.dynamic.score(X, M)
    n = len(t_end)
    static_p, static_u = ctx_rt[0, 2], ctx_rt[0, 3]
    ctx = fusion_context(
        p_d,
        u_d,
        np.full(n, static_p),
        np.full(n, static_u),
        np.full(n, bool(ctx_rt[0, 4])),
        np.full(n, bool(ctx_rt[0, 5])),
        M,
        MASK_COLUMNS,
    )
    score = models.fusion.score(ctx)
    assert np.max(np.abs(ctx - ctx_rt)) <= 1e-5
    assert np.max(np.abs(score - s_rt)) <= 1e-5


def test_interleaving_devices_does_not_change_any_device_scores(models, tiny_data):
    dirs = _runs(tiny_data, 3)
    index = _index(tiny_data)
    together = _scores(replay_runs(dirs, models, binaries=index, record_windows=True))
    for d in dirs:
        alone = _scores(replay_runs([d], models, binaries=index, record_windows=True))
        (rid,) = alone
        assert np.array_equal(alone[rid][0], together[rid][0])
        assert np.max(np.abs(alone[rid][2] - together[rid][2])) <= 1e-5


def test_perturbing_the_future_never_changes_past_scores(models, tiny_data, tmp_path):
    src = _runs(tiny_data, 1)[0]
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    df = pl.read_csv(dst / "telemetry.csv")
    cut = float(df["t_sim_s"][df.height // 2])
    late = pl.col("t_sim_s") > cut
    df = df.with_columns(
        [
            pl.when(late).then(pl.col(c) * 3 + 7).otherwise(pl.col(c)).alias(c)
            for c in ("p_cpu_mw", "gpu_util", "delta_cycles", "temp_cpu_c")
        ]
    )
    df.write_csv(dst / "telemetry.csv")
    a = _scores(replay_runs([src], models, record_windows=True))
    b = _scores(replay_runs([dst], models, record_windows=True))
    (rid,) = a
    t, _, sa = a[rid]
    _, _, sb = b[rid]
    early = t <= cut
    assert early.any() and (~early).any()
    assert np.array_equal(sa[early], sb[early])
    assert not np.array_equal(sa[~early], sb[~early])


def test_label_columns_never_change_detections(models, tiny_data, tmp_path):
    src = max(_runs(tiny_data, 10), key=lambda d: (d / "intervals.csv").stat().st_size)
    rng = np.random.default_rng(0)
    outs = []
    for k, extra in enumerate([{}, "real", "scrambled"]):
        dst = tmp_path / f"v{k}" / src.name
        shutil.copytree(src, dst)
        df = pl.read_csv(dst / "telemetry.csv")
        if extra:
            n = df.height
            active = rng.integers(0, 2, n) if extra == "scrambled" else np.zeros(n, np.int64)
            df = df.with_columns(
                pl.Series("trojan_active", active),
                pl.Series("trojan_family", ["cv"] * n),
                pl.Series("trojan_variant", ["x"] * n),
                pl.Series("mode", ["a"] * n),
            )
        df.write_csv(dst / "telemetry.csv")
        res = replay_runs([dst], models)
        outs.append(res.detections[src.name])
    assert outs[0] == outs[1] == outs[2]


def test_accounting_balances_on_clean_input(models, tiny_data):
    res = replay_runs(_runs(tiny_data, 2), models)
    acc = res.accounting
    assert acc.balanced and acc.samples_in == acc.samples_used and not acc.dropped


def test_live_path_masks_drops_and_counts_bad_values_without_crashing(models):
    det = Detector(models, [DeviceInfo("a"), DeviceInfo("b")])
    rng = np.random.default_rng(1)
    F, K = len(FEATURE_COLUMNS), len(MASK_COLUMNS)
    rows = np.array([0, 1])
    n_sent = 0
    for i in range(400):
        raw = rng.normal(1000, 50, (2, F))
        masks = np.ones((2, K), np.uint8)
        t = np.array([i / 10, i / 10])
        if i % 50 == 7:
            raw[0, 3] = np.nan
            raw[1, FEATURE_COLUMNS.index("temp_cpu_c")] = np.inf
        if i % 60 == 11:
            t[1] = (i - 1) / 10  # duplicate timestamp
        if i % 70 == 13:
            t[0] = (i - 5) / 10  # out of order
        if i % 90 == 17:
            t[1] = np.nan
        det.ingest(rows, t, raw, masks)
        n_sent += 2
    det.finish()
    acc = det.runtime.accounting
    assert acc.samples_in == n_sent and acc.balanced
    assert acc.dropped["duplicate_timestamp"] > 0 and acc.dropped["out_of_order"] > 0
    assert acc.dropped["non_finite_time"] > 0
    assert acc.masked_values["temp_cpu_c"] > 0 and acc.masked_values["emc_util"] > 0
    assert acc.windows_scored > 0


def test_unknown_device_rows_are_dropped_and_counted(models):
    det = Detector(models, [DeviceInfo("a")])
    F, K = len(FEATURE_COLUMNS), len(MASK_COLUMNS)
    det.ingest(np.array([0, 5]), np.array([0.0, 0.0]), np.ones((2, F)), np.ones((2, K), np.uint8))
    assert det.runtime.accounting.dropped["unknown_device"] == 1
    assert det.runtime.accounting.balanced


def test_resampled_foreign_runs_are_accounted(models, tiny_data, tmp_path):
    """A 20 Hz run from another tool (no meta.json, label columns present) replays at 10 Hz."""
    src = _runs(tiny_data, 1)[0]
    df = pl.read_csv(src / "telemetry.csv")
    up = pl.concat([df, df.with_columns(pl.col("t_sim_s") + 0.05)]).sort("t_sim_s")
    up = up.with_columns(pl.lit(0).alias("trojan_active"))
    dst = tmp_path / "foreign_run"
    dst.mkdir()
    up.write_csv(dst / "telemetry.csv")
    res = replay_runs([dst], models)
    acc = res.accounting
    assert acc.balanced and acc.samples_in == up.height
    assert acc.samples_used == res.runs[0].t_sim_s.size == df.height + 1  # bins (k-1, k] / 10 Hz
    assert acc.dropped["resampled_to_model_rate"] == up.height - acc.samples_used
    assert res.runs[0].hz_in == pytest.approx(20.0)


def test_missing_binary_gives_static_mask_zero(models, tiny_data):
    res = replay_runs(_runs(tiny_data, 1), models, binaries={}, record_windows=True)
    (log,) = res.windows.values()
    _, ctx, _ = log.arrays()
    assert (ctx[:, 4] == 0).all() and (ctx[:, 5] == 0).all() and (ctx[:, 2] == 0.5).all()


def test_provider_reported_is_the_one_onnx_runtime_uses(models, tiny_data):
    res = replay_runs(_runs(tiny_data, 1), models)
    assert res.provider == models.dynamic.providers[0]
    assert res.provider == "CPUExecutionProvider"


def test_cuda_provider_runs_when_available():
    import onnxruntime as ort

    from stream.onnx_session import choose_provider

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no CUDA provider in this onnxruntime build")
    try:
        m = load_models(ROOT / "exported_models", "cuda")
    except ValueError as exc:
        pytest.skip(f"CUDA not usable here: {exc}")
    assert m.dynamic.providers[0] == "CUDAExecutionProvider"
    assert choose_provider("cuda").device == "cuda"


def test_cuda_scores_match_cpu_scores_on_the_same_windows(models, tiny_data, cuda_works):
    """The GPU path is the same detector: expert and fused scores agree with the CPU's."""
    if not cuda_works:
        pytest.skip("CUDA is not usable by ONNX Runtime here")
    gpu = load_models(ROOT / "exported_models", "cuda")
    run_dir = _runs(tiny_data, 1)[0]
    m = models.manifest
    spec = WindowSpec(hz=m.hz, window_s=m.window_s, stride_s=m.stride_s)
    X, M, _, _ = run_windows(load_run(run_dir, _norm(models)), _norm(models), spec)
    p_cpu, u_cpu = models.dynamic.score(X, M)
    p_gpu, u_gpu = gpu.dynamic.score(X, M)
    assert gpu.dynamic.providers[0] == "CUDAExecutionProvider"
    assert np.max(np.abs(p_cpu - p_gpu)) <= 1e-3
    assert np.max(np.abs(u_cpu - u_gpu)) <= 1e-3


def test_loading_models_keeps_the_console_quiet_without_cuda(capfd):
    from stream import onnx_session

    onnx_session._CHOICES.clear()
    load_models(ROOT / "exported_models", "auto")
    err = capfd.readouterr().err
    assert "onnxruntime" not in err and "libcublas" not in err


def test_state_per_device_stays_under_64_kb(models):
    import pickle

    D = 4
    det = Detector(models, [DeviceInfo(str(i)) for i in range(D)])
    det.runtime.drift.off_threshold = 1.0  # every window feeds the drift watch: its largest state
    rng = np.random.default_rng(2)
    F, K = len(FEATURE_COLUMNS), len(MASK_COLUMNS)
    for i in range(600):
        det.ingest(
            np.arange(D), np.full(D, i / 10), rng.normal(500, 20, (D, F)), np.ones((D, K), np.uint8)
        )
    rt = det.runtime
    arrays = [
        rt.windower.values,
        rt.windower.masks,
        rt.windower.count,
        rt.normaliser.baseline,
        rt.normaliser.started,
        rt.last_t,
        rt.first_window_t,
    ]
    arrays += [v for v in vars(rt.decisions).values() if isinstance(v, np.ndarray)]
    per_device = sum(a.nbytes for a in arrays) / D
    adwin = [len(pickle.dumps(d)) for d in rt.drift._detectors.values()]
    assert adwin, "drift detectors were fed"
    assert per_device + max(adwin) <= 64 * 1024


def test_replay_with_delayed_feedback_runs(cli_runner, tiny_data):
    import json

    import cli

    run = sorted((tiny_data / "runs").iterdir())[0]
    res = cli_runner.invoke(cli.main, ["replay", str(run), "--feedback-delay", "5", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["accounting"]["balanced"]


def test_a_device_repeated_within_one_tick_is_dropped_and_counted(models):
    det = Detector(models, [DeviceInfo("a"), DeviceInfo("b")])
    F, K = len(FEATURE_COLUMNS), len(MASK_COLUMNS)
    det.ingest(np.array([0, 1, 0]), np.zeros(3), np.ones((3, F)), np.ones((3, K), np.uint8))
    acc = det.runtime.accounting
    assert acc.dropped["repeated_in_tick"] == 1 and acc.samples_used == 2 and acc.balanced


def test_every_per_device_array_of_the_runtime_is_in_fleet_snapshots(models):
    """Kafka hand-over snapshots must carry all per-device state: a new array added to the
    runtime without being listed in Runtime.DEVICE_STATE would be silently lost on rebalance."""
    from stream.fleet_state import _STATE_ARRAYS
    from stream.runtime import Runtime

    assert _STATE_ARRAYS == Runtime.DEVICE_STATE

    D = 7
    det = Detector(models, [DeviceInfo(str(i)) for i in range(D)])
    rt = det.runtime
    found = set()
    for prefix, obj in (
        ("", rt),
        ("normaliser.", rt.normaliser),
        ("windower.", rt.windower),
        ("decisions.", rt.decisions),
    ):
        for name, v in vars(obj).items():
            if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == D:
                found.add(prefix + name)
    found |= {f"static.{n}" for n in ("p", "u", "available") if getattr(rt.static, n).size == D}
    assert found <= set(_STATE_ARRAYS), found - set(_STATE_ARRAYS)
    assert {"static.p", "static.u", "static.available"} <= found
