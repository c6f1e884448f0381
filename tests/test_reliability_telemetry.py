"""Broken telemetry: the batch path refuses it with a TelemetryError naming the file (and row and
column), the live path masks, drops and counts instead and never stops; the meta.json and split
manifests refuse unknown keys."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_training.windows import load_run
from simulator.meta import RunMeta
from simulator.splits import read_split
from stream.detector import Detector, DeviceInfo
from stream.live import run_live
from stream.onnx_session import load_models
from stream.run_meta import MetaError, _OwnMeta, read_run_info
from stream.schema import FEATURE_COLUMNS, MASK_COLUMNS
from stream.sources import live_arrays, load_replay
from stream.telemetry_io import MAX_RATE_CHANGE, TelemetryError, read_telemetry
from stream.windowing import Normalisation

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("t_sim_s",) + FEATURE_COLUMNS
_MODELS = {}


def _models():
    if "m" not in _MODELS:
        _MODELS["m"] = load_models(ROOT / "exported_models", "cpu")
    return _MODELS["m"]


# --- generated frames: columns of cells, each cell a float or a string ---------------------------
BAD_TEXT = ("abc", "", "true", "0x10", "1.2.3", "--")
DEFECTS = ("drop", "nan", "inf", "huge", "text", "shuffle", "duplicate", "gap", "bad_mask")


@st.composite
def frames(draw) -> dict[str, list]:
    """A small valid telemetry frame at 10 Hz (t from 10 s), then up to 3 drawn defects."""
    n = draw(st.integers(2, 12))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {"t_sim_s": list(10.0 + np.arange(n) / 10.0)}
    cols |= {c: list(rng.uniform(0.0, 100.0, n)) for c in FEATURE_COLUMNS}
    cols |= {c: [1.0] * n for c in MASK_COLUMNS}
    for defect in draw(st.lists(st.sampled_from(DEFECTS), max_size=3)):
        row = draw(st.integers(0, n - 1))
        col = draw(st.sampled_from(REQUIRED))
        if defect == "drop":
            cols.pop(draw(st.sampled_from(sorted(cols))), None)
        elif col not in cols:
            continue
        elif defect in ("nan", "inf", "huge", "text"):
            cols[col][row] = {
                "nan": math.nan,
                "inf": draw(st.sampled_from((math.inf, -math.inf))),
                "huge": draw(st.sampled_from((1e308, -1e308, 1e300))),
                "text": draw(st.sampled_from(BAD_TEXT)),
            }[defect]
        elif defect == "shuffle" and "t_sim_s" in cols:
            order = draw(st.permutations(range(n)))
            cols = {c: [v[i] for i in order] for c, v in cols.items()}
        elif defect == "duplicate" and "t_sim_s" in cols and row > 0:
            cols["t_sim_s"][row] = cols["t_sim_s"][row - 1]
        elif defect == "gap" and "t_sim_s" in cols and row > 0:
            jump = draw(st.floats(2.0, 500.0))
            cols["t_sim_s"][row:] = [  # a text defect drawn earlier stays text
                v + jump if isinstance(v, int | float) else v for v in cols["t_sim_s"][row:]
            ]
        elif defect == "bad_mask":
            mask = draw(st.sampled_from(MASK_COLUMNS))
            if mask in cols:
                cols[mask][row] = draw(st.sampled_from((2.0, 0.5, -1.0, math.nan, "x")))
    return cols


def _write(cols: dict[str, list], path: Path) -> Path:
    names = list(cols)
    n = len(next(iter(cols.values()))) if cols else 0
    lines = [",".join(names)] + [",".join(str(cols[c][i]) for c in names) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _number(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _valid(cols: dict[str, list]) -> bool:
    """The documented contract of read_telemetry, stated independently of its code."""
    if any(c not in cols for c in REQUIRED):
        return False
    for c in REQUIRED:
        values = [_number(v) for v in cols[c]]
        if any(v is None or not math.isfinite(v) for v in values):
            return False
    masks_present = all(c in cols for c in MASK_COLUMNS)
    if masks_present and any(_number(v) not in (0.0, 1.0) for c in MASK_COLUMNS for v in cols[c]):
        return False
    t = np.array([float(v) for v in cols["t_sim_s"]])
    step = np.diff(t)
    if (step <= 0).any():
        return False
    if step.size:
        ratio = np.maximum(step / np.median(step), np.median(step) / step)
        if (ratio > MAX_RATE_CHANGE).any():
            return False
    return True


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cols=frames())
def test_batch_path_reads_valid_frames_and_refuses_the_rest_naming_the_file(cols, tmp_path):
    path = _write(cols, tmp_path / "telemetry.csv")
    if _valid(cols):
        tel = read_telemetry(path)
        assert tel.features.shape == (len(cols["t_sim_s"]), len(FEATURE_COLUMNS))
    else:
        with pytest.raises(TelemetryError) as err:
            read_telemetry(path)
        assert str(path) in str(err.value)


@settings(max_examples=60, deadline=None)
@given(cols=frames())
def test_live_path_never_stops_and_accounts_for_every_sample(cols):
    """A clean 10 s prefix fills the window, so every later sample that is used is also scored."""
    models = _models()
    scores: list[np.ndarray] = []
    det = Detector(models, [DeviceInfo("dev")], on_windows=lambda rec: scores.append(rec.score))
    rng = np.random.default_rng(0)
    rows = np.zeros(1, np.intp)
    for i in range(100):
        det.ingest(
            rows,
            np.array([i / 10]),
            rng.uniform(0, 100, (1, len(FEATURE_COLUMNS))),
            np.ones((1, len(MASK_COLUMNS)), np.uint8),
        )
    n = len(next(iter(cols.values()))) if cols else 0
    arrays = {c: np.array(v, dtype=object).reshape(1, -1) for c, v in cols.items()}
    t, raw, masks = live_arrays(arrays, (1, n))
    for j in range(n):
        det.ingest(rows, t[:, j], raw[:, j], masks[:, j])
    det.finish()
    acc = det.runtime.accounting
    assert acc.samples_in == 100 + n and acc.balanced
    s = np.concatenate(scores)
    assert np.isfinite(s).all() and ((s >= 0) & (s <= 1)).all()


def test_live_arrays_turn_missing_and_non_numeric_cells_into_counted_gaps():
    cols = {"t_sim_s": np.array([[1.0, "x"]], dtype=object), "cpu_util_avg": [["5", None]]}
    t, raw, masks = live_arrays(cols, (1, 2))
    assert np.isnan(t[0, 1]) and t[0, 0] == 1.0
    i = FEATURE_COLUMNS.index("cpu_util_avg")
    assert raw[0, 0, i] == 5.0 and np.isnan(raw[0, 1, i])
    assert np.isnan(np.delete(raw, i, axis=-1)).all()  # absent feature columns
    assert masks.shape == (1, 2, len(MASK_COLUMNS)) and masks.min() == 1  # absent masks: fresh


def test_run_live_keeps_going_on_a_source_with_missing_and_text_columns_and_samples_rss():
    models = _models()
    hz, n_dev = models.manifest.hz, 2
    rng = np.random.default_rng(4)
    clock = {"k": 0}

    def step(n: int) -> dict[str, np.ndarray]:
        k = clock["k"] + np.arange(n)
        clock["k"] += n
        cols: dict[str, np.ndarray] = {"t_sim_s": np.tile(k / hz, (n_dev, 1))}
        cols |= {c: rng.uniform(0, 100, (n_dev, n)) for c in FEATURE_COLUMNS[1:]}  # one missing
        text = cols["gpu_util"].astype(object)
        text[:, k % 3 == 0] = "n/a"  # every third sample of the run
        return cols | {"gpu_util": text}  # no mask columns at all

    res = run_live(
        step, [DeviceInfo("a"), DeviceInfo("b")], models, duration_s=30.0, rss_every_s=10.0
    )
    acc = res.accounting
    assert acc.balanced and acc.samples_in == acc.samples_used == n_dev * 300
    assert acc.masked_values[FEATURE_COLUMNS[0]] == n_dev * 300
    assert acc.masked_values["gpu_util"] == n_dev * 100
    assert acc.windows_scored > 0
    times = [t for t, _ in res.rss]
    assert times == [1.0, 10.0, 20.0, 30.0] and all(mb > 0 for _, mb in res.rss)


# --- rate changes -----------------------------------------------------------------------------------
def _frame(t: np.ndarray) -> pl.DataFrame:
    n = t.size
    cols = {"t_sim_s": t} | {c: np.linspace(1, 2, n) for c in FEATURE_COLUMNS}
    return pl.DataFrame(cols | {c: np.ones(n, np.int64) for c in MASK_COLUMNS})


def test_a_gap_beyond_the_rate_change_limit_names_its_row(tmp_path):
    t = np.arange(50) / 10.0
    t[30:] += 60.0  # one minute without samples in a 10 Hz run
    _frame(t).write_csv(tmp_path / "t.csv")
    with pytest.raises(TelemetryError, match=r"row 31, column 't_sim_s': sampling interval"):
        read_telemetry(tmp_path / "t.csv")


def test_a_switch_to_a_much_faster_rate_is_refused(tmp_path):
    t = np.concatenate([np.arange(40) / 10.0, 3.9 + np.arange(1, 60) / 200.0])  # 10 Hz, 200 Hz
    _frame(t).write_csv(tmp_path / "t.csv")
    with pytest.raises(TelemetryError, match="rate change beyond 10x"):
        read_telemetry(tmp_path / "t.csv")


def test_other_constant_rates_and_jitter_are_accepted(tmp_path):
    rng = np.random.default_rng(5)
    for name, t in {
        "50hz": np.arange(100) / 50.0,
        "1hz": np.arange(20) * 1.0,
        "jitter": np.cumsum(rng.uniform(0.05, 0.15, 100)),
        "doubled": np.concatenate([np.arange(40) / 10.0, 3.9 + np.arange(1, 40) / 20.0]),
    }.items():
        _frame(t).write_csv(tmp_path / f"{name}.csv")
        assert read_telemetry(tmp_path / f"{name}.csv").t_sim_s.size == t.size


def _broken_run(tiny_data: Path, dst: Path) -> Path:
    run = sorted((tiny_data / "runs").iterdir())[0]
    shutil.copytree(run, dst)
    df = pl.read_csv(dst / "telemetry.csv")
    t = df["t_sim_s"].to_numpy().copy()
    t[200:] += 120.0
    df.with_columns(pl.Series("t_sim_s", t)).write_csv(dst / "telemetry.csv")
    return dst


def test_replay_and_training_paths_refuse_a_gap_with_the_same_message(tiny_data, tmp_path):
    run = _broken_run(tiny_data, tmp_path / "run_gap")
    with pytest.raises(TelemetryError, match="row 201, column 't_sim_s'") as replay_err:
        load_replay(run, 10.0)
    with pytest.raises(TelemetryError) as train_err:
        load_run(run, Normalisation.unit())
    assert str(replay_err.value) == str(train_err.value)


# --- meta.json and split manifests ----------------------------------------------------------------
def test_own_meta_format_has_exactly_the_simulator_keys():
    assert set(_OwnMeta.model_fields) == set(RunMeta.model_fields)


def _own_meta(tiny_data: Path, dst: Path) -> Path:
    run = sorted((tiny_data / "runs").iterdir())[0]
    dst.mkdir()
    shutil.copy(run / "meta.json", dst / "meta.json")
    return dst


def test_simulated_meta_json_is_read_as_own_format(tiny_data, tmp_path):
    info = read_run_info(_own_meta(tiny_data, tmp_path / "r"))
    assert info.own_format and info.hz == 10.0 and info.duration_s > 0


def test_unknown_key_in_own_meta_json_is_refused_naming_file_and_key(tiny_data, tmp_path):
    run = _own_meta(tiny_data, tmp_path / "r")
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps(meta | {"surprise": 1}))
    with pytest.raises(MetaError, match=r"meta.json: field 'surprise': Extra inputs"):
        read_run_info(run)


def test_wrong_type_in_own_meta_json_is_refused(tiny_data, tmp_path):
    run = _own_meta(tiny_data, tmp_path / "r")
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps(meta | {"hz": "fast"}))
    with pytest.raises(MetaError, match="field 'hz'"):
        read_run_info(run)


def test_seed_schema_meta_json_is_still_read_leniently(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "meta.json").write_text(json.dumps({"run_id": "x", "sampling_hz": 20}))
    info = read_run_info(tmp_path / "r")
    assert (info.run_id, info.hz, info.own_format) == ("x", 20.0, False)


def test_split_manifest_with_an_unknown_key_is_refused(tiny_data, tmp_path):
    split = json.loads((tiny_data / "splits" / "random.json").read_text())
    (tmp_path / "s.json").write_text(json.dumps(split | {"leak": ["run_0001"]}))
    with pytest.raises(
        ValueError,
        match=r"s\.json: invalid split manifest, field .leak.: Extra inputs are not permitted",
    ):
        read_split(tmp_path / "s.json")
    assert read_split(tiny_data / "splits" / "random.json").name == "random"
