"""The committed ELF corpus: one validated record per binary, and where its file lives.

Each simulated run executes one binary from this corpus, and the binary decides the run's
capability (`benign` or a trojan family). The files are real executables compiled from the C
sources in `src/` by `simulator.corpus.build`; they are committed so that no compiler is needed at
run time. `binaries.csv` starts with the data-contract columns (`binary_id, binary_path, sha256,
capability`) followed by provenance columns. `binary_id` is opaque (`bin_` + sha256 prefix) because
it appears in telemetry; `source` names the C program a binary was built from, so a binary-disjoint
split can keep every build of one program on the same side.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "CAPABILITIES",
    "CONTRACT_COLUMNS",
    "CSV_COLUMNS",
    "BinaryRecord",
    "CorpusError",
    "binary_file",
    "corpus_dir",
    "load_corpus",
    "sha256_file",
]

CAPABILITIES = ("benign", "compute", "mempressure", "cv", "io")
Capability = Literal["benign", "compute", "mempressure", "cv", "io"]
#: The columns every binaries index starts with (DESIGN.md section 3.2).
CONTRACT_COLUMNS = ("binary_id", "binary_path", "sha256", "capability")
#: The columns this package writes: the contract, then provenance.
CSV_COLUMNS = (*CONTRACT_COLUMNS, "source", "profile", "flags", "arch", "compiler")


class CorpusError(ValueError):
    """A binaries index that cannot be trusted: bad header, bad row, missing file, wrong hash."""


class BinaryRecord(BaseModel):
    """One binary of the corpus: identity, file, ground-truth capability and build provenance.

    `binary_path` is relative to the directory holding the index. Provenance fields default to
    "unknown" so that a contract-only index (four columns) still loads; `source` then defaults to
    the binary's own id, which keeps such binaries apart in a binary-disjoint split.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    binary_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    binary_path: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    capability: Capability
    source: str = Field(min_length=1)
    profile: str = "unknown"
    flags: str = ""
    arch: str = "unknown"
    compiler: str = "unknown"

    @model_validator(mode="before")
    @classmethod
    def _default_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("source"):
            data = {**data, "source": data.get("binary_id")}
        return data

    @property
    def is_trojan(self) -> bool:
        """True for every capability except `benign`."""
        return self.capability != "benign"


def corpus_dir() -> Path:
    """The directory of the committed corpus (holds `binaries.csv`, `bin/` and `src/`)."""
    return Path(__file__).resolve().parent


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def binary_file(record: BinaryRecord, root: Path | None = None) -> Path:
    """The ELF file of `record`; `root` is the index's directory (default: the committed corpus)."""
    return (corpus_dir() if root is None else Path(root)) / record.binary_path


def _row_error(path: Path, line: int, message: str) -> CorpusError:
    return CorpusError(f"{path}, line {line}: {message}")


def load_corpus(path: Path | None = None, *, verify: bool = True) -> list[BinaryRecord]:
    """Read and validate a binaries index (default: the committed `binaries.csv`).

    Checks the header starts with the contract columns, validates every row, refuses duplicate ids,
    and (when `verify`) that each file exists and its sha256 matches. Errors name the file and line.
    """
    path = corpus_dir() / "binaries.csv" if path is None else Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: binaries index not found")
    root = path.parent
    records: list[BinaryRecord] = []
    seen: set[str] = set()
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = tuple(reader.fieldnames or ())
        if header[: len(CONTRACT_COLUMNS)] != CONTRACT_COLUMNS:
            raise CorpusError(
                f"{path}, line 1: header must start with {', '.join(CONTRACT_COLUMNS)}. "
                f"Got {', '.join(header) or 'nothing'} instead."
            )
        for line, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise _row_error(path, line, f"expected {len(header)} fields")
            try:
                record = BinaryRecord(**row)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'row'}: {err['msg']}"
                    for err in exc.errors()
                )
                raise _row_error(path, line, problems) from None
            if record.binary_id in seen:
                raise _row_error(path, line, f"duplicate binary_id {record.binary_id!r}")
            seen.add(record.binary_id)
            if verify:
                file = binary_file(record, root)
                if not file.is_file():
                    raise _row_error(path, line, f"binary file {file} does not exist")
                actual = sha256_file(file)
                if actual != record.sha256:
                    raise _row_error(
                        path,
                        line,
                        f"sha256 of {record.binary_path} is {actual}, the index says "
                        f"{record.sha256}",
                    )
            records.append(record)
    return records
