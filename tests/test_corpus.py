"""Specification of the committed ELF corpus (`simulator/corpus`) and of its builder."""

from __future__ import annotations

import csv
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import lief
import pytest

from simulator.corpus import (
    CAPABILITIES,
    BinaryRecord,
    CorpusError,
    binary_file,
    corpus_dir,
    load_corpus,
    sha256_file,
)
from simulator.corpus.build import (
    SOURCES,
    build_corpus,
    compile_source,
    compiler_identity,
    find_compiler,
)

lief.logging.disable()

NETWORK_IMPORTS = {"socket", "connect"}
MACHINES = {"aarch64": lief.ELF.ARCH.AARCH64, "x86_64": lief.ELF.ARCH.X86_64}
#: Tell-tale plain-text strings a naive string scanner would look for.
INDICATORS = (
    b"stratum",
    b"/etc/shadow",
    b"/dev/nvhost",
    b"/dev/nvmap",
    b"/dev/dri",
    b"/etc/systemd/system",
    b"crontab",
    b"/etc/cron",
    b"TracerPid",
    b".ssh/",
)


@pytest.fixture(scope="module")
def records() -> list[BinaryRecord]:
    return load_corpus()


@pytest.fixture(scope="module")
def parsed(records: list[BinaryRecord]) -> dict[str, lief.ELF.Binary]:
    return {r.binary_id: lief.ELF.parse(str(binary_file(r))) for r in records}


def _imports(binary: lief.ELF.Binary) -> set[str]:
    return {f.name for f in binary.imported_functions}


def _bind_now(binary: lief.ELF.Binary) -> bool:
    flags = binary.get(lief.ELF.DynamicEntry.TAG.FLAGS)
    return flags is not None and flags.has(lief.ELF.DynamicEntryFlags.FLAG.BIND_NOW)


def _by_source(records: list[BinaryRecord]) -> dict[str, list[BinaryRecord]]:
    groups: dict[str, list[BinaryRecord]] = defaultdict(list)
    for r in records:
        groups[r.source].append(r)
    return groups


# --- the committed corpus -------------------------------------------------------------------


def test_counts_per_capability(records):
    counts = Counter(r.capability for r in records)
    assert len(records) >= 44
    assert counts["benign"] >= 18
    for family in CAPABILITIES[1:]:
        assert counts[family] >= 6, family


def test_several_sources_per_capability_each_built_more_than_once(records):
    sources = defaultdict(set)
    for r in records:
        sources[r.capability].add(r.source)
    assert len(sources["benign"]) >= 6
    for family in CAPABILITIES[1:]:
        assert len(sources[family]) >= 3, family
    groups = _by_source(records)
    assert all(len({r.capability for r in group}) == 1 for group in groups.values())
    assert sum(len(group) >= 2 for group in groups.values()) >= len(groups) // 2


def test_total_size_stays_small(records):
    total = sum(binary_file(r).stat().st_size for r in records)
    assert total < 3_000_000


def test_every_sha256_matches_the_index(records):
    for r in records:
        assert sha256_file(binary_file(r)) == r.sha256, r.binary_id


def test_bin_directory_holds_exactly_the_indexed_files(records):
    on_disk = {p.name for p in (corpus_dir() / "bin").iterdir()}
    assert on_disk == {Path(r.binary_path).name for r in records}


def test_every_file_is_an_elf_of_the_recorded_architecture(records, parsed):
    for r in records:
        binary = parsed[r.binary_id]
        assert binary is not None, r.binary_id
        assert binary.header.machine_type == MACHINES[r.arch], r.binary_id


def test_ids_and_paths_are_opaque(records):
    telling = {*CAPABILITIES, "trojan", "malware", *(s.name for s in SOURCES)}
    for r in records:
        assert r.binary_id == f"bin_{r.sha256[:10]}"
        assert r.binary_path == f"bin/{r.binary_id}.elf"
        for word in telling:
            assert word not in r.binary_id.lower() and word not in r.binary_path.lower()


def test_flag_variety_is_present(parsed):
    binaries = list(parsed.values())
    stripped = [len(b.symtab_symbols) == 0 for b in binaries]
    static = [not b.has_interpreter for b in binaries]
    pie = [b.is_pie for b in binaries]
    nx = [b.has_nx for b in binaries]
    relro = [b.has(lief.ELF.Segment.TYPE.GNU_RELRO) for b in binaries]
    bind_now = [_bind_now(b) for b in binaries]
    for name, values in {
        "stripped": stripped,
        "static": static,
        "pie": pie,
        "nx": nx,
        "relro": relro,
        "bind_now": bind_now,
    }.items():
        assert any(values) and not all(values), name


def test_hardening_varies_within_every_capability(records, parsed):
    for capability in CAPABILITIES:
        pie = {parsed[r.binary_id].is_pie for r in records if r.capability == capability}
        assert pie == {True, False}, capability


def test_some_benign_binaries_use_networking_ioctl_and_threads(records, parsed):
    benign = [_imports(parsed[r.binary_id]) for r in records if r.capability == "benign"]
    assert any(imports >= NETWORK_IMPORTS for imports in benign)
    assert any("ioctl" in imports for imports in benign)
    assert any("pthread_create" in imports for imports in benign)


def test_some_dynamic_trojans_import_no_networking(records, parsed):
    trojans = [
        _imports(parsed[r.binary_id])
        for r in records
        if r.capability != "benign" and parsed[r.binary_id].has_interpreter
    ]
    assert any(not imports & {"socket", "connect", "sendto", "getaddrinfo"} for imports in trojans)


def test_some_benign_binaries_carry_high_entropy_data(records, parsed):
    def max_entropy(binary: lief.ELF.Binary) -> float:
        return max(s.entropy for s in binary.sections if s.size >= 128)

    benign = [max_entropy(parsed[r.binary_id]) for r in records if r.capability == "benign"]
    assert max(benign) > 7.5


def test_indicator_strings_are_neither_necessary_nor_sufficient(records):
    def has_indicator(r: BinaryRecord) -> bool:
        data = binary_file(r).read_bytes()
        return any(s in data for s in INDICATORS)

    groups = _by_source(records)
    hidden = [
        s
        for s, g in groups.items()
        if g[0].capability != "benign" and not any(map(has_indicator, g))
    ]
    benign_with = [
        s for s, g in groups.items() if g[0].capability == "benign" and any(map(has_indicator, g))
    ]
    assert len(hidden) >= 2
    assert benign_with


# --- loading and validation -----------------------------------------------------------------


def _copy_index(records: list[BinaryRecord], tmp_path: Path, n: int = 2) -> Path:
    (tmp_path / "bin").mkdir()
    for r in records[:n]:
        shutil.copyfile(binary_file(r), tmp_path / r.binary_path)
    index = tmp_path / "binaries.csv"
    shutil.copyfile(corpus_dir() / "binaries.csv", index)
    lines = index.read_text().splitlines(keepends=True)
    index.write_text("".join(lines[: n + 1]))
    return index


def test_load_corpus_reads_a_copied_index(records, tmp_path):
    index = _copy_index(records, tmp_path)
    assert load_corpus(index) == records[:2]


def test_load_corpus_names_file_and_line_on_sha_mismatch(records, tmp_path):
    index = _copy_index(records, tmp_path)
    victim = tmp_path / records[1].binary_path
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(CorpusError, match=r"binaries\.csv, line 3: sha256 of"):
        load_corpus(index)


def test_load_corpus_names_file_and_line_on_bad_row(records, tmp_path):
    index = _copy_index(records, tmp_path)
    text = index.read_text().replace(f",{records[0].capability},", ",rootkit,", 1)
    index.write_text(text)
    with pytest.raises(CorpusError, match=r"binaries\.csv, line 2: capability"):
        load_corpus(index)


def test_load_corpus_refuses_a_header_without_the_contract_columns(tmp_path):
    index = tmp_path / "binaries.csv"
    index.write_text("id,path,sha256,capability\n")
    with pytest.raises(CorpusError, match="line 1: header must start with binary_id"):
        load_corpus(index)


def test_load_corpus_accepts_contract_only_index_and_defaults_source_to_id(records, tmp_path):
    index = _copy_index(records, tmp_path, n=1)
    rows = list(csv.DictReader(index.open()))
    with index.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["binary_id", "binary_path", "sha256", "capability"])
        writer.writerow([rows[0][k] for k in ("binary_id", "binary_path", "sha256", "capability")])
    (loaded,) = load_corpus(index)
    assert loaded.source == loaded.binary_id


# --- the builder ----------------------------------------------------------------------------


def test_builder_refuses_unknown_sources(tmp_path):
    with pytest.raises(ValueError, match="The 'only' parameter of build_corpus"):
        build_corpus(tmp_path, only=["no_such_program"])


def test_compile_source_refuses_unknown_profiles(tmp_path):
    with pytest.raises(ValueError, match="The 'profile' parameter of compile_source"):
        compile_source(corpus_dir() / "src" / "config_parser.c", "turbo", tmp_path / "x", "gcc")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, list[BinaryRecord], str]:
    compiler = find_compiler()
    if compiler is None:
        pytest.skip("no C compiler available")
    out = tmp_path_factory.mktemp("corpus")
    return out, build_corpus(out, only=["config_parser"]), compiler


def test_builder_produces_parseable_elf_files_and_a_valid_index(built):
    out, recs, compiler = built
    arch, _ = compiler_identity(compiler)
    assert len(recs) == len(next(s for s in SOURCES if s.name == "config_parser").profiles)
    assert load_corpus(out / "binaries.csv") == recs
    for r in recs:
        binary = lief.ELF.parse(str(binary_file(r, out)))
        assert binary is not None
        assert binary.header.machine_type == MACHINES[arch]


def test_builder_reproduces_the_committed_files_with_the_same_toolchain(built, records):
    _, recs, compiler = built
    if compiler_identity(compiler)[1] != records[0].compiler:
        pytest.skip("a different toolchain built the committed corpus")
    committed = {(r.source, r.profile): r.sha256 for r in records}
    assert {(r.source, r.profile): r.sha256 for r in recs}.items() <= committed.items()
