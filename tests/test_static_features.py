"""Static ELF features: fixed layout, read from the file itself, and bad files refused with a reason."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from stream.static_features import STATIC_FEATURE_NAMES, StaticParseError, static_features

CROSS_CC = "aarch64-linux-gnu-gcc"

NET_SRC = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *POOL = "stratum+tcp://pool.example.com:3333";
static const char *HOST = "10.20.30.40";
static const char *DEV = "/dev/nvhost-ctrl-gpu";

int main(int argc, char **argv) {
    char buf[128];
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(3333);
    inet_pton(AF_INET, HOST, &a.sin_addr);
    connect(s, (struct sockaddr *)&a, sizeof a);
    strcpy(buf, argc > 1 ? argv[1] : POOL);
    send(s, buf, strlen(buf), 0);
    printf("%s\n", DEV);
    close(s);
    return 0;
}
"""

PLAIN_SRC = r"""
#include <stdio.h>
int main(int argc, char **argv) {
    char buf[64];
    snprintf(buf, sizeof buf, "hello %d", argc);
    puts(buf);
    return 0;
}
"""


def _compiler() -> str | None:
    for cc in (CROSS_CC, "gcc"):
        if shutil.which(cc):
            return cc
    return None


def compile_c(out_dir: Path, name: str, src: str, flags: list[str]) -> Path:
    """Compile `src` with the aarch64 cross compiler (native gcc as fallback); skip if impossible."""
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler (aarch64-linux-gnu-gcc or gcc) available")
    source = out_dir / f"{name}.c"
    source.write_text(src)
    binary = out_dir / name
    proc = subprocess.run(
        [cc, "-O1", *flags, "-o", str(binary), str(source)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"{cc} {' '.join(flags)} failed: {proc.stderr.strip()[:200]}")
    return binary


def feature(vec: np.ndarray, name: str) -> float:
    return float(vec[STATIC_FEATURE_NAMES.index(name)])


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("elf")
    hardened = ["-fPIE", "-pie", "-fstack-protector-strong"]
    soft = ["-no-pie", "-fno-stack-protector"]
    return {
        "net_pie": compile_c(out, "net_pie", NET_SRC, [*hardened, "-Wl,-z,relro,-z,now"]),
        "net_nopie": compile_c(out, "net_nopie", NET_SRC, [*soft, "-Wl,-z,norelro"]),
        "net_partial_relro": compile_c(out, "net_partial", NET_SRC, ["-Wl,-z,relro,-z,lazy"]),
        "net_stripped": compile_c(out, "net_stripped", NET_SRC, [*hardened, "-s"]),
        "plain": compile_c(out, "plain", PLAIN_SRC, hardened),
        "execstack": compile_c(out, "execstack", PLAIN_SRC, ["-z", "execstack"]),
    }


@pytest.fixture(scope="module")
def static_binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("elf_static")
    return {
        "static": compile_c(out, "net_static", NET_SRC, ["-static"]),
        "static_stripped": compile_c(out, "net_static_stripped", NET_SRC, ["-static", "-s"]),
    }


def test_feature_names_are_unique_and_match_the_vector_length(binaries: dict[str, Path]) -> None:
    vec = static_features(binaries["net_pie"])
    assert len(set(STATIC_FEATURE_NAMES)) == len(STATIC_FEATURE_NAMES)
    assert vec.shape == (len(STATIC_FEATURE_NAMES),)
    assert vec.dtype == np.float32


def test_every_feature_is_finite_for_every_build(
    binaries: dict[str, Path], static_binaries: dict[str, Path]
) -> None:
    for path in [*binaries.values(), *static_binaries.values()]:
        assert np.all(np.isfinite(static_features(path))), path.name


def test_features_are_deterministic_and_independent_of_the_file_name(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "renamed_elsewhere"
    shutil.copy(binaries["net_pie"], copy)
    first = static_features(binaries["net_pie"])
    np.testing.assert_array_equal(first, static_features(binaries["net_pie"]))
    np.testing.assert_array_equal(first, static_features(copy))


def test_socket_imports_count_in_the_network_family(binaries: dict[str, Path]) -> None:
    assert feature(static_features(binaries["net_pie"]), "api_network_log") > 0
    assert feature(static_features(binaries["plain"]), "api_network_log") == 0


def test_hardened_build_reads_as_pie_with_canary_and_full_relro(binaries: dict[str, Path]) -> None:
    vec = static_features(binaries["net_pie"])
    assert feature(vec, "pie") == 1
    assert feature(vec, "is_dyn") == 1
    assert feature(vec, "canary") == 1
    assert feature(vec, "nx") == 1
    assert feature(vec, "relro") == 1.0


def test_soft_build_reads_as_non_pie_without_canary_or_relro(binaries: dict[str, Path]) -> None:
    vec = static_features(binaries["net_nopie"])
    assert feature(vec, "pie") == 0
    assert feature(vec, "is_exec") == 1
    assert feature(vec, "canary") == 0
    assert feature(vec, "relro") == 0.0


def test_lazy_binding_reads_as_partial_relro(binaries: dict[str, Path]) -> None:
    assert feature(static_features(binaries["net_partial_relro"]), "relro") == 0.5


def test_executable_stack_is_flagged_and_clears_nx(binaries: dict[str, Path]) -> None:
    vec = static_features(binaries["execstack"])
    assert feature(vec, "exec_stack") == 1
    assert feature(vec, "nx") == 0
    assert feature(static_features(binaries["plain"]), "exec_stack") == 0


def test_stripped_binary_has_no_symtab_but_keeps_its_imports(binaries: dict[str, Path]) -> None:
    stripped = static_features(binaries["net_stripped"])
    full = static_features(binaries["net_pie"])
    assert feature(stripped, "stripped") == 1
    assert feature(full, "stripped") == 0
    assert feature(stripped, "n_symtab_funcs_log") == 0
    assert feature(stripped, "api_network_log") > 0


def test_dynamic_binary_is_not_static_and_needs_libc(binaries: dict[str, Path]) -> None:
    vec = static_features(binaries["net_pie"])
    assert feature(vec, "static") == 0
    assert feature(vec, "has_dynamic") == 1
    assert feature(vec, "n_libraries_log") > 0


def test_static_binary_takes_api_families_from_its_symtab(
    static_binaries: dict[str, Path],
) -> None:
    vec = static_features(static_binaries["static"])
    assert feature(vec, "static") == 1
    assert feature(vec, "has_dynamic") == 0
    assert feature(vec, "n_imports_log") == 0
    assert feature(vec, "api_from_symtab") == 1
    assert feature(vec, "api_network_log") > 0


def test_stripped_static_binary_still_shows_network_capability(
    static_binaries: dict[str, Path],
) -> None:
    vec = static_features(static_binaries["static_stripped"])
    assert feature(vec, "stripped") == 1
    assert feature(vec, "n_imports_log") == 0
    assert feature(vec, "n_symtab_funcs_log") == 0
    if feature(vec, "is_aarch64") == 1:  # raw svc decoding is aarch64 only
        assert feature(vec, "svc_sites_log") > 0
        assert feature(vec, "sys_network_log") > 0
    else:
        assert feature(vec, "api_from_strings") == 1


def test_strings_reveal_urls_addresses_device_paths_and_mining_tokens(
    binaries: dict[str, Path],
) -> None:
    net = static_features(binaries["net_pie"])
    plain = static_features(binaries["plain"])
    for name in ("url_count_log", "ipv4_count_log", "dev_path_log", "tok_mining_log"):
        assert feature(net, name) > 0, name
        assert feature(plain, name) == 0, name


def test_appended_random_bytes_raise_entropy_and_overlay(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    packed = tmp_path / "with_overlay"
    noise = np.random.default_rng(7).integers(0, 256, size=64 * 1024, dtype=np.uint8).tobytes()
    packed.write_bytes(binaries["plain"].read_bytes() + noise)
    before, after = static_features(binaries["plain"]), static_features(packed)
    assert feature(before, "high_entropy_block_frac") == 0
    assert feature(after, "high_entropy_block_frac") > 0
    assert feature(before, "overlay_size_log") == 0
    assert feature(after, "overlay_size_log") > 0


def test_machine_flag_follows_the_elf_header(binaries: dict[str, Path]) -> None:
    ours = feature(static_features(binaries["plain"]), "is_aarch64")
    assert ours == float(_compiler() == CROSS_CC)


def test_system_binary_parses(tmp_path: Path) -> None:
    ls = Path("/bin/ls")
    if not ls.is_file():
        pytest.skip("/bin/ls not present")
    vec = static_features(ls)
    assert feature(vec, "is_elf64") == 1
    assert feature(vec, "api_file_log") > 0


def _corrupt_header(data: bytes) -> bytes:
    out = bytearray(data)
    out[0x20:0x28] = (2**40).to_bytes(8, "little")  # e_phoff far beyond the file
    return bytes(out)


BAD_FILES = {
    "empty": lambda real: b"",
    "random_bytes": lambda real: (
        np.random.default_rng(0).integers(0, 256, 4096).astype("u1").tobytes()
    ),
    "text": lambda real: b"#!/bin/sh\necho this is not an ELF file\n" * 20,
    "truncated_64": lambda real: real[:64],
    "truncated_1000": lambda real: real[:1000],
    "truncated_half": lambda real: real[: len(real) // 2],
    "corrupt_phoff": _corrupt_header,
    "bad_class": lambda real: real[:4] + b"\x07" + real[5:],
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_raise_static_parse_error(
    kind: str, binaries: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / kind
    bad.write_bytes(BAD_FILES[kind](binaries["net_pie"].read_bytes()))
    with pytest.raises(StaticParseError) as info:
        static_features(bad)
    assert str(info.value)


def test_missing_path_and_directory_raise_static_parse_error(tmp_path: Path) -> None:
    for path in (tmp_path / "missing", tmp_path):
        with pytest.raises(StaticParseError):
            static_features(path)
