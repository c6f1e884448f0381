"""Read and write interval files (truth and predictions) with validation at the boundary.

Sources, each read into an `IntervalSet` (intervals per run, optional emission times, durations):

- CSV: ``t_start_sim_s``, ``t_end_sim_s`` (prediction files may say ``t_start_s``/``t_end_s``),
  optional ``run_id`` to hold many runs in one file, optional ``t_emit_s`` (predictions) and
  ``duration_s`` (truth, one value per run). A row whose two times are both empty declares a run
  without intervals (so benign runs of a multi-run file count in false alarms per hour). Truth
  files may label each interval (`TRUTH_LABELS`: ``trojan_family``, ``trojan_variant``,
  ``strength``); the labels are kept per interval, and a ``strength`` that is neither empty nor a
  finite number is an error like any other. Other columns must be in `TRUTH_IGNORED` /
  `PRED_IGNORED` (or, for predictions, look like per-expert scores: ``*_score``, ``score_*``,
  ``p_*``, ``u_*``); anything else is refused, because a misspelled column must not be silently
  dropped.
- JSON Lines detections (``.jsonl``): one object per interval with ``t_start_s``, ``t_end_s`` and
  optional ``run_id``, ``t_emit_s``; other keys (scores, per-expert detail) are ignored.
- A run directory: ``intervals.csv`` as truth, ``detections.jsonl`` or ``intervals_pred.csv`` as
  predictions, and ``meta.json`` read leniently for ``run_id`` and ``duration_s`` only.
- A directory of run directories: every subdirectory holding the file asked for.

Errors are `IntervalFileError` naming the file, the row (1-based data row after the header, or
"header row"; the line number in JSON Lines) and the column. Intervals are
half-open ``[start, end)``; end == start is the empty interval and allowed, end < start is refused.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "IntervalFileError",
    "IntervalSet",
    "TRUTH_IGNORED",
    "TRUTH_LABELS",
    "PRED_IGNORED",
    "TRUTH_FILE",
    "PRED_FILES",
    "META_FILE",
    "read_truth",
    "read_pred",
    "write_intervals_csv",
    "write_intervals_jsonl",
]

START, END = "t_start_sim_s", "t_end_sim_s"
ALIASES = {"t_start_s": START, "t_end_s": END}
TRUTH_FILE = "intervals.csv"
PRED_FILES = ("detections.jsonl", "intervals_pred.csv")
META_FILE = "meta.json"

#: Optional truth columns labelling each interval, kept in `IntervalSet.labels`.
TRUTH_LABELS = ("trojan_family", "trojan_variant", "strength")
#: Extra truth columns that are allowed and ignored.
TRUTH_IGNORED = ("binary_id",)
#: Extra prediction columns that are allowed and ignored.
PRED_IGNORED = (
    "peak_score",
    "mean_score",
    "binary_id",
    "device_id",
    "trojan_family",
    "trojan_variant",
    "strength",
)
_PRED_SCORE_COLUMN = re.compile(r"^(\w+_score|score_\w+|p_\w+|u_\w+)$")


_USED = {
    "truth": (START, END, "run_id", "duration_s", *TRUTH_LABELS),
    "pred": (START, END, "run_id", "t_emit_s"),
}
_PRED_ALLOWED_DOC = ("t_start_s", "t_end_s", *PRED_IGNORED, "*_score", "score_*", "p_*", "u_*")


def _ignored(column: str, kind: str) -> bool:
    """Whether a column is allowed in that kind of file but not read."""
    if kind == "truth":
        return column in TRUTH_IGNORED
    return column in PRED_IGNORED or bool(_PRED_SCORE_COLUMN.match(column))


class IntervalFileError(ValueError):
    """A truth or prediction file that cannot be read; the message names file, row and column."""


@dataclass
class IntervalSet:
    """Intervals per run from one source, in file order of first appearance.

    ``has_run_ids`` is False when the source named no run id (no ``run_id`` column or key, and no
    ``run_id`` in a run directory's meta.json): its one run is keyed ``""`` (or the directory's
    name) and joins whatever single run the other side has.
    """

    source: Path
    intervals: dict[str, np.ndarray] = field(default_factory=dict)  # run -> (n, 2)
    emit_s: dict[str, np.ndarray] = field(default_factory=dict)  # run -> (n,), NaN = unknown
    duration_s: dict[str, float] = field(default_factory=dict)
    has_run_ids: bool = True
    #: run -> label column -> (n,) per interval: object strings ("" when empty) for the family
    #: and variant, float64 (NaN when empty) for the strength. Only the columns a file has.
    labels: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(self.intervals)


class _Builder:
    """Accumulates rows per run, then freezes them into an `IntervalSet`."""

    def __init__(self, source: Path, has_run_ids: bool) -> None:
        self.source, self.has_run_ids = source, has_run_ids
        self.rows: dict[str, list[tuple[float, float, float]]] = {}
        self.labels: dict[str, list[dict[str, object]]] = {}
        self.label_columns: tuple[str, ...] = ()
        self.duration: dict[str, float] = {}

    def declare(self, run: str) -> None:
        self.rows.setdefault(run, [])
        self.labels.setdefault(run, [])

    def add(
        self,
        run: str,
        start: float,
        end: float,
        emit: float,
        labels: dict[str, object] | None = None,
    ) -> None:
        self.rows.setdefault(run, []).append((start, end, emit))
        self.labels.setdefault(run, []).append(labels or {})

    def build(self) -> IntervalSet:
        out = IntervalSet(self.source, has_run_ids=self.has_run_ids, duration_s=dict(self.duration))
        for run, rows in self.rows.items():
            arr = np.array(rows, dtype=np.float64).reshape(-1, 3)  # (n, 3)
            out.intervals[run] = arr[:, :2].copy()
            out.emit_s[run] = arr[:, 2].copy()
            if self.label_columns:
                out.labels[run] = {
                    c: np.array(
                        [lb[c] for lb in self.labels[run]],
                        dtype=np.float64 if c == "strength" else object,
                    )
                    for c in self.label_columns
                }
        return out


def _fail(path: Path, row: int | None, column: str | None, what: str) -> IntervalFileError:
    where = str(path)
    if row == 0:
        where += ", header row"
    elif row is not None:
        where += f", row {row}"
    if column is not None:
        where += f", column '{column}'"
    return IntervalFileError(f"{where}: {what}")


def _number(path: Path, row: int, column: str, text: object, allow_empty: bool) -> float:
    """A finite float from a CSV cell or JSON value; NaN for an allowed empty cell."""
    if text is None or (isinstance(text, str) and text.strip() == ""):
        if allow_empty:
            return math.nan
        raise _fail(path, row, column, "empty value, expected a number")
    if isinstance(text, bool):
        raise _fail(path, row, column, f"{text!r} is not a number")
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _fail(path, row, column, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise _fail(path, row, column, f"{text!r} is not a finite number")
    return value


def _interval(
    path: Path, row: int, start: object, end: object, names: tuple[str, str]
) -> tuple[float, float] | None:
    """Parsed ``(start, end)``; None when both are empty (a run declared without intervals)."""
    s = _number(path, row, names[0], start, allow_empty=True)
    e = _number(path, row, names[1], end, allow_empty=True)
    if math.isnan(s) and math.isnan(e):
        return None
    if math.isnan(s) or math.isnan(e):
        col = names[0] if math.isnan(s) else names[1]
        raise _fail(path, row, col, "empty value while the other end of the interval is given")
    if e < s:
        raise _fail(path, row, names[1], f"reversed interval: end {e!r} is before start {s!r}")
    return s, e


def _resolve_header(path: Path, header: list[str], kind: str) -> dict[str, str]:
    """Map canonical column names to the header's names; refuse unknown and missing columns."""
    names = [h.strip() for h in header]
    seen: set[str] = set()
    canonical: dict[str, str] = {}
    for name in names:
        if name in seen:
            raise _fail(path, 0, name, "duplicated column")
        seen.add(name)
        canon = ALIASES.get(name, name) if kind == "pred" else name
        if _ignored(canon, kind):
            continue
        if canon not in _USED[kind]:
            allowed = [*_USED[kind], *(TRUTH_IGNORED if kind == "truth" else _PRED_ALLOWED_DOC)]
            raise _fail(path, 0, name, f"unknown column (allowed: {', '.join(allowed)})")
        if canon in canonical:
            raise _fail(path, 0, name, f"gives '{canon}' twice (as '{canonical[canon]}' too)")
        canonical[canon] = name
    missing = [c for c in (START, END) if c not in canonical]
    if missing:
        raise _fail(
            path,
            0,
            None,
            f"missing required column(s) {', '.join(missing)} (found: {', '.join(names)})",
        )
    return canonical


def _read_csv(path: Path, kind: str, default_run: str | None) -> IntervalSet:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _fail(path, None, None, f"cannot read: {exc}") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise _fail(path, None, None, "empty file (no header row)")
    header = rows[0]
    cols = _resolve_header(path, header, kind)
    stripped = [h.strip() for h in header]
    index = {canon: stripped.index(name) for canon, name in cols.items()}
    has_ids = "run_id" in cols
    build = _Builder(path, has_run_ids=has_ids)
    build.label_columns = tuple(c for c in TRUTH_LABELS if c in index)
    fallback = default_run if default_run is not None else ""
    names = (cols[START], cols[END])
    for k, cells in enumerate(rows[1:], start=1):
        if not cells or all(c.strip() == "" for c in cells):
            continue
        if len(cells) != len(header):
            raise _fail(path, k, None, f"{len(cells)} fields, the header has {len(header)}")
        run = cells[index["run_id"]].strip() if has_ids else fallback
        if has_ids and run == "":
            raise _fail(path, k, cols["run_id"], "empty run_id")
        if "duration_s" in index:
            d = _number(path, k, cols["duration_s"], cells[index["duration_s"]], allow_empty=True)
            if not math.isnan(d):
                if d < 0:
                    raise _fail(path, k, cols["duration_s"], f"negative duration {d!r}")
                if build.duration.setdefault(run, d) != d:
                    raise _fail(
                        path,
                        k,
                        cols["duration_s"],
                        f"duration {d!r} differs from {build.duration[run]!r} given earlier for run {run!r}",
                    )
        iv = _interval(path, k, cells[index[START]], cells[index[END]], names)
        if iv is None:
            build.declare(run)
            continue
        emit = math.nan
        if "t_emit_s" in index:
            emit = _number(path, k, cols["t_emit_s"], cells[index["t_emit_s"]], allow_empty=True)
        labels: dict[str, object] = {}
        for c in build.label_columns:
            cell = cells[index[c]]
            labels[c] = (
                _number(path, k, cols[c], cell, allow_empty=True)
                if c == "strength"
                else cell.strip()
            )
        build.add(run, iv[0], iv[1], emit, labels)
    if not has_ids:
        build.declare(fallback)  # a header-only single-run file is a run without intervals
    return build.build()


def _read_jsonl(path: Path, default_run: str | None) -> IntervalSet:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, None, None, f"cannot read: {exc}") from None
    objects: list[tuple[int, dict[str, object]]] = []
    for k, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, k, None, f"not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise _fail(path, k, None, "expected a JSON object")
        objects.append((k, obj))
    has_ids = any("run_id" in obj for _, obj in objects)
    build = _Builder(path, has_run_ids=has_ids)
    fallback = default_run if default_run is not None else ""
    for k, obj in objects:
        keys = {}
        for canon, alias in ((START, "t_start_s"), (END, "t_end_s")):
            present = [n for n in (canon, alias) if n in obj]
            if not present:
                raise _fail(path, k, alias, "missing key")
            if len(present) == 2:
                raise _fail(path, k, alias, f"given twice (as '{canon}' too)")
            keys[canon] = present[0]
        rid = obj.get("run_id")
        if has_ids and (isinstance(rid, bool) or not isinstance(rid, (str, int)) or rid == ""):
            raise _fail(
                path, k, "run_id", f"expected a non-empty string, got {obj.get('run_id')!r}"
            )
        run = str(obj["run_id"]) if has_ids else fallback
        iv = _interval(path, k, obj[keys[START]], obj[keys[END]], (keys[START], keys[END]))
        if iv is None:
            build.declare(run)
            continue
        build.add(run, iv[0], iv[1], _number(path, k, "t_emit_s", obj.get("t_emit_s"), True))
    if not has_ids:
        build.declare(fallback)
    return build.build()


def _read_meta(run_dir: Path) -> tuple[str | None, float | None]:
    """``run_id`` and ``duration_s`` from a run's meta.json, if present; other keys are ignored."""
    path = run_dir / META_FILE
    if not path.is_file():
        return None, None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, None, None, f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _fail(path, None, None, "expected a JSON object")
    run_id, duration = meta.get("run_id"), meta.get("duration_s")
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise _fail(path, None, "run_id", f"expected a non-empty string, got {run_id!r}")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, (int, float)):
            raise _fail(path, None, "duration_s", f"expected a number, got {duration!r}")
        if not math.isfinite(duration) or duration < 0:
            raise _fail(
                path, None, "duration_s", f"expected a finite number >= 0, got {duration!r}"
            )
        duration = float(duration)
    return run_id, duration


def _read_file(path: Path, kind: str, default_run: str | None) -> IntervalSet:
    if kind == "pred" and path.suffix.lower() in (".jsonl", ".ndjson"):
        return _read_jsonl(path, default_run)
    return _read_csv(path, kind, default_run)


def _read_run_dir(run_dir: Path, kind: str) -> IntervalSet | None:
    """One run directory; None when it holds no file of that kind."""
    names = (TRUTH_FILE,) if kind == "truth" else PRED_FILES
    found = next((run_dir / n for n in names if (run_dir / n).is_file()), None)
    if found is None:
        return None
    meta_id, duration = _read_meta(run_dir)
    run_id = meta_id or run_dir.name
    got = _read_file(found, kind, run_id)
    if duration is not None and kind == "truth":
        for run in got.run_ids:
            if run in got.duration_s and got.duration_s[run] != duration:
                raise _fail(
                    found,
                    None,
                    "duration_s",
                    f"{got.duration_s[run]!r} differs from meta.json's {duration!r}",
                )
            got.duration_s[run] = duration
    got.has_run_ids = got.has_run_ids or meta_id is not None
    return got


def _merge(sets: Iterable[IntervalSet], source: Path) -> IntervalSet:
    out = IntervalSet(source)
    for s in sets:
        for run in s.run_ids:
            if run in out.intervals:
                raise _fail(
                    s.source, None, "run_id", f"run {run!r} also appears in another run directory"
                )
            out.intervals[run] = s.intervals[run]
            out.emit_s[run] = s.emit_s[run]
            if run in s.labels:
                out.labels[run] = s.labels[run]
        out.duration_s.update(s.duration_s)
    return out


def _read(path: Path | str, kind: str) -> IntervalSet:
    path = Path(path)
    if path.is_file():
        return _read_file(path, kind, None)
    if not path.is_dir():
        raise _fail(path, None, None, "no such file or directory")
    single = _read_run_dir(path, kind)
    if single is not None:
        return single
    found = [
        s for d in sorted(p for p in path.iterdir() if p.is_dir()) if (s := _read_run_dir(d, kind))
    ]
    if not found:
        wanted = TRUTH_FILE if kind == "truth" else " or ".join(PRED_FILES)
        raise _fail(path, None, None, f"directory holds no {wanted}, nor run directories with one")
    return _merge(found, path)


def read_truth(path: Path | str) -> IntervalSet:
    """Ground truth from a CSV, a run directory or a directory of run directories."""
    return _read(path, "truth")


def read_pred(path: Path | str) -> IntervalSet:
    """Predictions from a CSV, a JSON Lines file, a run directory or a directory of runs."""
    return _read(path, "pred")


def _rows(
    intervals: Mapping[str, np.ndarray], emit_s: Mapping[str, np.ndarray] | None
) -> Iterable[tuple[str, float, float, float | None]]:
    for run, arr in intervals.items():
        arr = np.asarray(arr, dtype=np.float64).reshape(-1, 2)
        emit = None if emit_s is None else np.asarray(emit_s[run], dtype=np.float64).reshape(-1)
        for k in range(len(arr)):
            e = None if emit is None or math.isnan(emit[k]) else float(emit[k])
            yield run, float(arr[k, 0]), float(arr[k, 1]), e


def write_intervals_csv(
    path: Path | str,
    intervals: Mapping[str, np.ndarray],
    emit_s: Mapping[str, np.ndarray] | None = None,
    duration_s: Mapping[str, float] | None = None,
) -> None:
    """Write runs' intervals with the ground-truth column names (plus t_emit_s, duration_s if given).

    ``emit_s`` is for prediction files, ``duration_s`` for truth files (readers refuse the other).
    A run without intervals gets one row with empty times, so it is still declared.
    """
    if emit_s is not None and duration_s is not None:
        raise ValueError(
            "The 'duration_s' parameter of write_intervals_csv must be None when emit_s is given "
            "(a prediction file has no durations). Got both instead."
        )
    header = ["run_id", START, END]
    if emit_s is not None:
        header.append("t_emit_s")
    if duration_s is not None:
        header.append("duration_s")
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for run, arr in intervals.items():
            extra_d = [] if duration_s is None else [repr(float(duration_s[run]))]
            rows = list(_rows({run: arr}, None if emit_s is None else {run: emit_s[run]}))
            if not rows:
                w.writerow([run, "", ""] + ([""] if emit_s is not None else []) + extra_d)
            for _, s, e, t in rows:
                extra_e = [] if emit_s is None else ["" if t is None else repr(t)]
                w.writerow([run, repr(s), repr(e)] + extra_e + extra_d)


def write_intervals_jsonl(
    path: Path | str,
    intervals: Mapping[str, np.ndarray],
    emit_s: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Write one JSON object per interval: run_id, t_start_s, t_end_s and t_emit_s when known.

    A run without intervals gets one object with null times, so it is still declared.
    """
    with Path(path).open("w", encoding="utf-8") as fh:
        for run, arr in intervals.items():
            rows = list(_rows({run: arr}, None if emit_s is None else {run: emit_s[run]}))
            if not rows:
                fh.write(json.dumps({"run_id": run, "t_start_s": None, "t_end_s": None}) + "\n")
            for _, s, e, t in rows:
                obj: dict[str, object] = {"run_id": run, "t_start_s": s, "t_end_s": e}
                if t is not None:
                    obj["t_emit_s"] = t
                fh.write(json.dumps(obj) + "\n")
