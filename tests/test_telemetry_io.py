"""Batch telemetry reading: allow-listed columns, and errors that name file, row and column."""

import numpy as np
import polars as pl
import pytest

from stream.schema import FEATURE_COLUMNS, LABEL_COLUMNS, MASK_COLUMNS
from stream.telemetry_io import TelemetryError, read_telemetry


def _frame(n=6, **over):
    cols = {"t_sim_s": np.arange(n) / 10.0, "run_id": ["run_0007"] * n, "binary_id": ["b"] * n}
    cols |= {c: np.linspace(1, 2, n) for c in FEATURE_COLUMNS}
    cols |= {c: np.ones(n, np.int64) for c in MASK_COLUMNS}
    cols |= over
    return pl.DataFrame(cols)


def test_reads_features_masks_and_rate(tmp_path):
    _frame().write_csv(tmp_path / "t.csv")
    tel = read_telemetry(tmp_path / "t.csv")
    assert tel.features.shape == (6, len(FEATURE_COLUMNS))
    assert tel.masks.dtype == np.uint8 and tel.masks_present
    assert tel.hz == pytest.approx(10.0)
    assert tel.run_id == "run_0007"


def test_label_columns_are_never_read(tmp_path):
    labels = {c: ["x"] * 6 for c in LABEL_COLUMNS}
    _frame().write_csv(tmp_path / "a.csv")
    _frame(**labels).write_csv(tmp_path / "b.csv")
    a, b = read_telemetry(tmp_path / "a.csv"), read_telemetry(tmp_path / "b.csv")
    assert np.array_equal(a.features, b.features) and np.array_equal(a.masks, b.masks)


def test_missing_masks_fall_back_to_fresh(tmp_path):
    _frame().drop(list(MASK_COLUMNS)).write_csv(tmp_path / "t.csv")
    tel = read_telemetry(tmp_path / "t.csv")
    assert not tel.masks_present and tel.masks.min() == 1


def test_missing_feature_column_is_named(tmp_path):
    _frame().drop("gpu_util").write_csv(tmp_path / "t.csv")
    with pytest.raises(TelemetryError, match=r"t\.csv: missing column\(s\) 'gpu_util'"):
        read_telemetry(tmp_path / "t.csv")


def test_non_numeric_cell_names_row_and_column(tmp_path):
    df = _frame().with_columns(pl.col("p_cpu_mw").cast(pl.Utf8))
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit("oops"))
        .otherwise(pl.col("p_cpu_mw"))
        .alias("p_cpu_mw")
    )
    df.write_csv(tmp_path / "t.csv")
    with pytest.raises(TelemetryError, match=r"row 4, column 'p_cpu_mw': not a number \('oops'\)"):
        read_telemetry(tmp_path / "t.csv")


def test_non_finite_value_names_row_and_column(tmp_path):
    v = np.linspace(1, 2, 6)
    v[2] = np.inf
    _frame(temp_cpu_c=v).write_csv(tmp_path / "t.csv")
    with pytest.raises(TelemetryError, match=r"row 3, column 'temp_cpu_c'"):
        read_telemetry(tmp_path / "t.csv")


@pytest.mark.parametrize(
    "kind,times", [("duplicated", [0, 0.1, 0.1, 0.3]), ("out-of-order", [0, 0.2, 0.1, 0.3])]
)
def test_bad_timestamps_name_the_row(tmp_path, kind, times):
    _frame(n=4, t_sim_s=np.array(times)).write_csv(tmp_path / "t.csv")
    with pytest.raises(TelemetryError, match=rf"row 3, column 't_sim_s': {kind}"):
        read_telemetry(tmp_path / "t.csv")


def test_mask_other_than_0_or_1_is_refused(tmp_path):
    m = np.ones(6, np.int64)
    m[5] = 2
    _frame(mask_temp_cpu=m).write_csv(tmp_path / "t.csv")
    with pytest.raises(TelemetryError, match=r"row 6, column 'mask_temp_cpu'"):
        read_telemetry(tmp_path / "t.csv")


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(TelemetryError, match="e.csv"):
        read_telemetry(tmp_path / "e.csv")
    with pytest.raises(TelemetryError, match="no such telemetry file"):
        read_telemetry(tmp_path / "nope.csv")
