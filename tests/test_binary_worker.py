"""Isolated static parsing: bad files, hangs, crashes and memory blow-ups become reasons, never errors.

The misbehaving parsers below are top-level functions so that the child process can unpickle them.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stream.binary_worker import StaticCache, StaticResult, read_many, read_static
from stream.static_features import STATIC_FEATURE_NAMES, static_features
from tests.test_static_features import BAD_FILES, NET_SRC, PLAIN_SRC, compile_c


def sleeping_parser(path: Path) -> np.ndarray:
    time.sleep(60)
    return np.zeros(3, dtype=np.float32)


def aborting_parser(path: Path) -> np.ndarray:
    os.abort()


def greedy_parser(path: Path) -> np.ndarray:
    hog = bytearray(8 * 1024**3)  # 8 GiB, far above any limit used here
    return np.full(3, len(hog), dtype=np.float32)


def rlimit_parser(path: Path) -> np.ndarray:
    """The address-space limit and the current virtual size of the child, in MiB."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    status = Path("/proc/self/status").read_text()
    vm_kib = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmSize:")
    )
    return np.array([soft / 1024**2, vm_kib / 1024], dtype=np.float32)


def failing_parser(path: Path) -> np.ndarray:
    raise KeyError("unexpected")


def nan_parser(path: Path) -> np.ndarray:
    return np.array([1.0, np.nan], dtype=np.float32)


def counting_parser(path: Path) -> np.ndarray:
    """Real features, and one line per call in `calls.log` beside the binary (calls happen in children)."""
    with (path.parent / "calls.log").open("a") as log:
        log.write(f"{path.name}\n")
    return static_features(path)


def parse_calls(directory: Path) -> list[str]:
    log = directory / "calls.log"
    return log.read_text().split() if log.exists() else []


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_c(tmp_path_factory.mktemp("worker_elf"), "net", NET_SRC, ["-fPIE", "-pie"])


@pytest.fixture(scope="module")
def other_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_c(tmp_path_factory.mktemp("worker_elf2"), "plain", PLAIN_SRC, [])


def test_good_binary_gives_the_in_process_features_and_its_hash(elf: Path) -> None:
    result = read_static(elf)
    assert result.available
    assert result.reason is None
    assert result.sha256 == hashlib.sha256(elf.read_bytes()).hexdigest()
    assert result.features is not None
    assert result.features.shape == (len(STATIC_FEATURE_NAMES),)
    np.testing.assert_array_equal(result.features, static_features(elf))


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_gives_no_features_and_a_reason(kind: str, elf: Path, tmp_path: Path) -> None:
    bad = tmp_path / kind
    bad.write_bytes(BAD_FILES[kind](elf.read_bytes()))
    result = read_static(bad)
    assert not result.available
    assert result.features is None
    assert isinstance(result.reason, str) and result.reason
    assert result.sha256 == hashlib.sha256(bad.read_bytes()).hexdigest()


def test_missing_path_gives_a_reason_without_hash(tmp_path: Path) -> None:
    result = read_static(tmp_path / "does_not_exist")
    assert result == StaticResult(None, "missing file", None)


def test_directory_gives_a_reason_without_hash(tmp_path: Path) -> None:
    result = read_static(tmp_path)
    assert result == StaticResult(None, "not a regular file", None)


def test_hanging_parser_is_killed_at_the_time_limit(elf: Path) -> None:
    result = read_static(elf, timeout_s=0.5, parser=sleeping_parser)
    assert not result.available
    assert result.reason is not None and "timeout" in result.reason


def test_child_runs_under_the_requested_address_space_limit(elf: Path) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux /proc to read the child's address space")
    result = read_static(elf, memory_mb=768, parser=rlimit_parser)
    assert result.features is not None
    limit_mib, used_mib = result.features
    assert 0 < limit_mib - used_mib <= 768


def test_allocation_beyond_the_memory_limit_gives_a_reason(elf: Path) -> None:
    result = read_static(elf, memory_mb=512, parser=greedy_parser)
    assert not result.available
    assert result.reason is not None and "memory" in result.reason


def test_crashing_parser_gives_a_reason_naming_the_signal(elf: Path) -> None:
    result = read_static(elf, parser=aborting_parser)
    assert not result.available
    assert result.reason is not None and "SIGABRT" in result.reason


def test_parser_exception_gives_a_reason(elf: Path) -> None:
    result = read_static(elf, parser=failing_parser)
    assert result.features is None
    assert result.reason == "parser error: KeyError"


def test_non_finite_features_are_refused(elf: Path) -> None:
    result = read_static(elf, parser=nan_parser)
    assert result.features is None
    assert result.reason is not None and "malformed" in result.reason


def test_read_many_keeps_order_and_isolates_each_file(
    elf: Path, other_elf: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not an elf at all")
    paths = [elf, junk, tmp_path / "missing", other_elf, elf]
    results = read_many(paths, max_workers=2)
    assert [r.available for r in results] == [True, False, False, True, True]
    for path, result in zip(paths, results, strict=True):
        single = read_static(path)
        assert (result.reason, result.sha256) == (single.reason, single.sha256)
        if result.features is not None:
            np.testing.assert_array_equal(result.features, static_features(path))


def test_cache_parses_each_content_once(elf: Path, other_elf: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copy(elf, a)
    shutil.copy(other_elf, b)
    cache = StaticCache()
    first = cache.get(a, parser=counting_parser)
    again = cache.get(a, parser=counting_parser)
    other = cache.get(b, parser=counting_parser)
    assert parse_calls(tmp_path) == ["a", "b"]
    assert cache.n_parsed == 2
    assert again is first
    assert other.sha256 != first.sha256


def test_cache_shares_one_parse_between_copies_of_the_same_binary(
    elf: Path, tmp_path: Path
) -> None:
    a, copy = tmp_path / "a", tmp_path / "copy_of_a"
    shutil.copy(elf, a)
    shutil.copy(elf, copy)
    cache = StaticCache()
    first = cache.get(a, parser=counting_parser)
    second = cache.get(copy, parser=counting_parser)
    assert parse_calls(tmp_path) == ["a"]
    assert second is first


def test_cache_reparses_a_binary_whose_content_changed(
    elf: Path, other_elf: Path, tmp_path: Path
) -> None:
    target = tmp_path / "bin"
    shutil.copy(elf, target)
    cache = StaticCache()
    before = cache.get(target, parser=counting_parser)
    target.write_bytes(other_elf.read_bytes())
    after = cache.get(target, parser=counting_parser)
    assert parse_calls(tmp_path) == ["bin", "bin"]
    assert after.sha256 == hashlib.sha256(other_elf.read_bytes()).hexdigest()
    assert after.sha256 != before.sha256


def test_cache_reports_a_missing_binary_and_finds_it_once_it_appears(
    elf: Path, tmp_path: Path
) -> None:
    target = tmp_path / "late"
    cache = StaticCache()
    assert cache.get(target).reason == "missing file"
    shutil.copy(elf, target)
    assert cache.get(target).available


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout_s": 0}, "The 'timeout_s' parameter of read_static must be > 0. Got 0 instead."),
        (
            {"memory_mb": 1},
            "The 'memory_mb' parameter of read_static must be >= 64. Got 1 instead.",
        ),
    ],
)
def test_bad_limits_are_refused_with_the_house_template(
    kwargs: dict[str, float], message: str, elf: Path
) -> None:
    with pytest.raises(ValueError) as info:
        read_static(elf, **kwargs)
    assert str(info.value) == message


def test_a_script_without_main_guard_runs_once_when_it_reads_binaries(
    elf: Path, tmp_path: Path
) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from stream.binary_worker import read_static\n"
        "print('top level ran', flush=True)\n"
        f"print(read_static({str(elf)!r}).available, flush=True)\n"
    )
    root = Path(__file__).resolve().parents[1]
    extra = os.environ.get("PYTHONPATH")  # where the packages were installed beside the system's
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), extra]))}
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["top level ran", "True"]
