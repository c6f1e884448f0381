"""Builds the ELF corpus: every C source in `src/` under its flag profiles -> `bin/` + index.

The matrix is fixed here (which sources, which capability, which profiles), so rebuilding with the
same toolchain reproduces the committed files bit for bit: sources compile in a fixed order from
their own directory with `-ffile-prefix-map`, `-frandom-seed`, no build id, `SOURCE_DATE_EPOCH` and
`LC_ALL=C`. The cross compiler `aarch64-linux-gnu-gcc` (a Jetson's architecture) is preferred;
native `gcc` is the fallback and the index records which architecture was built.

    python -m simulator.corpus.build [--out DIR] [--cc CC] [--only SOURCE ...]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simulator.corpus import CAPABILITIES, CSV_COLUMNS, BinaryRecord, corpus_dir, sha256_file

__all__ = [
    "PROFILES",
    "SOURCES",
    "SourceSpec",
    "build_corpus",
    "compile_source",
    "compiler_identity",
    "find_compiler",
    "main",
    "write_index",
]

PREFERRED_COMPILERS = ("aarch64-linux-gnu-gcc", "gcc")

#: Flags every build shares: strict warnings (sources must compile cleanly), reproducibility, and
#: 4 KiB segment alignment (Jetson kernels use 4 KiB pages; it keeps aarch64 binaries small).
COMMON_FLAGS = (
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pthread",
    "-Wl,--build-id=none",
    "-Wl,-z,max-page-size=4096",
)

#: Named flag sets spanning optimisation, stripping, PIE, static linking, stack protector,
#: RELRO/BIND_NOW and an executable stack.
PROFILES: dict[str, tuple[str, ...]] = {
    "debug": ("-O0", "-fno-PIE", "-no-pie", "-fno-stack-protector", "-Wl,-z,norelro"),
    "release": (
        "-O2",
        "-s",
        "-fPIE",
        "-pie",
        "-fstack-protector-strong",
        "-D_FORTIFY_SOURCE=2",
        "-Wl,-z,relro,-z,now",
    ),
    "size": ("-Os", "-s", "-fno-PIE", "-no-pie", "-fno-stack-protector", "-Wl,-z,norelro"),
    "hardened": (
        "-O2",
        "-fPIE",
        "-pie",
        "-fstack-protector-strong",
        "-D_FORTIFY_SOURCE=2",
        "-Wl,-z,relro,-z,now",
    ),
    "legacy": (
        "-O0",
        "-fno-PIE",
        "-no-pie",
        "-fno-stack-protector",
        "-Wl,-z,norelro",
        "-z",
        "execstack",
    ),
    "pie_os": ("-Os", "-fPIE", "-pie", "-fstack-protector", "-Wl,-z,relro"),
    # Static glibc binaries are ~0.5 MB each: used for three sources only.
    "static": ("-Os", "-s", "-static", "-fno-stack-protector"),
}


@dataclass(frozen=True)
class SourceSpec:
    """One C program of the corpus: its file stem, ground-truth capability and build profiles."""

    name: str
    capability: str
    profiles: tuple[str, ...]


#: The build matrix, in build order. Hardening varies within every capability on purpose.
SOURCES: tuple[SourceSpec, ...] = (
    # benign: with confounders (sockets, DNS, hashing, ioctl, mmap, threads, high-entropy tables,
    # a systemd unit, reading /proc/self/status, base64)
    SourceSpec("sensor_logger", "benign", ("static", "debug")),
    SourceSpec("infer_server", "benign", ("release", "debug")),
    SourceSpec("telemetry_client", "benign", ("release", "size")),
    SourceSpec("camera_capture", "benign", ("hardened", "legacy")),
    SourceSpec("log_compressor", "benign", ("release", "debug")),
    SourceSpec("config_parser", "benign", ("size", "pie_os")),
    SourceSpec("ota_updater", "benign", ("release", "hardened")),
    SourceSpec("watchdog_daemon", "benign", ("size", "legacy")),
    SourceSpec("gpio_controller", "benign", ("release", "debug")),
    SourceSpec("file_backup", "benign", ("hardened", "size")),
    SourceSpec("secure_store", "benign", ("release", "pie_os")),
    # compute: mining
    SourceSpec("hashd", "compute", ("static", "release", "debug")),
    SourceSpec("kworker_sync", "compute", ("size", "hardened")),
    SourceSpec("updater_helper", "compute", ("release", "legacy")),
    SourceSpec("bench_runner", "compute", ("hardened", "size")),
    # mempressure: memory hammering
    SourceSpec("memtest_svc", "mempressure", ("debug", "release", "size")),
    SourceSpec("cachesync", "mempressure", ("hardened", "pie_os")),
    SourceSpec("pagepool", "mempressure", ("release", "legacy")),
    SourceSpec("zram_tune", "mempressure", ("release", "debug")),
    # cv: accelerator abuse
    SourceSpec("nvsvc", "cv", ("release", "debug", "size")),
    SourceSpec("render_helper", "cv", ("hardened", "debug")),
    SourceSpec("vicd", "cv", ("size", "pie_os")),
    SourceSpec("gst_helper", "cv", ("release", "legacy")),
    # io: exfiltration beacons
    SourceSpec("netcheck", "io", ("static", "release", "debug")),
    SourceSpec("resolvd", "io", ("size", "hardened")),
    SourceSpec("syslog_fwd", "io", ("release", "legacy")),
    SourceSpec("mqtt_bridge", "io", ("pie_os", "debug")),
)


def find_compiler(cc: str | None = None) -> str | None:
    """The compiler to use: `cc` if given (must exist), else the first preferred one on PATH."""
    if cc is not None:
        found = shutil.which(cc)
        if found is None:
            raise FileNotFoundError(
                f"The 'cc' parameter of build_corpus must name an executable compiler. "
                f"Got {cc!r} instead."
            )
        return found
    for name in PREFERRED_COMPILERS:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def compiler_identity(cc: str) -> tuple[str, str]:
    """(target architecture, "name version") of a gcc-compatible compiler, e.g. ("aarch64", ...)."""
    machine = subprocess.run(
        [cc, "-dumpmachine"], check=True, capture_output=True, text=True
    ).stdout.strip()
    version = subprocess.run(
        [cc, "-dumpfullversion", "-dumpversion"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return machine.split("-", 1)[0], f"{Path(cc).name} {version}"


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SOURCE_DATE_EPOCH": "0", "LC_ALL": "C", "TZ": "UTC"})
    return env


def compile_source(source: Path, profile: str, out_path: Path, cc: str) -> None:
    """Compile one C file under one profile into `out_path`; raises with gcc's message on failure."""
    if profile not in PROFILES:
        raise ValueError(
            f"The 'profile' parameter of compile_source must be one of {sorted(PROFILES)}. "
            f"Got {profile!r} instead."
        )
    source = Path(source).resolve()
    cmd = [
        cc,
        *COMMON_FLAGS,
        f"-ffile-prefix-map={source.parent}=.",
        f"-frandom-seed={source.stem}",
        *PROFILES[profile],
        source.name,
        "-o",
        str(Path(out_path).resolve()),
    ]
    done = subprocess.run(cmd, cwd=source.parent, env=_build_env(), capture_output=True, text=True)
    if done.returncode != 0 or done.stderr.strip():
        raise RuntimeError(
            f"compiling {source.name} with profile {profile!r} failed "
            f"(exit {done.returncode}):\n{done.stderr}"
        )


def write_index(records: Sequence[BinaryRecord], path: Path) -> None:
    """Write `records` as a binaries index with the contract columns first."""
    with Path(path).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow(record.model_dump())


def build_corpus(
    out_dir: Path, cc: str | None = None, *, only: Sequence[str] | None = None
) -> list[BinaryRecord]:
    """Compile the matrix (or the sources named in `only`) into `out_dir`.

    Writes `out_dir/bin/<binary_id>.elf` and `out_dir/binaries.csv`, and returns the records. A full
    build also removes `.elf` files left in `out_dir/bin` by an earlier build. Raises when no
    compiler is found, a source does not compile cleanly, or two builds give identical bytes.
    """
    specs = SOURCES
    if only is not None:
        known = {s.name for s in SOURCES}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(
                f"The 'only' parameter of build_corpus must name sources from {sorted(known)}. "
                f"Got {unknown} instead."
            )
        specs = tuple(s for s in SOURCES if s.name in set(only))
    compiler = find_compiler(cc)
    if compiler is None:
        raise FileNotFoundError(
            f"No C compiler found (tried {', '.join(PREFERRED_COMPILERS)}); pass cc=..."
        )
    arch, compiler_name = compiler_identity(compiler)
    src_dir = corpus_dir() / "src"
    out_dir = Path(out_dir)
    bin_dir = out_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    records: list[BinaryRecord] = []
    with tempfile.TemporaryDirectory(prefix="corpus_build_") as tmp:
        for spec in specs:
            assert spec.capability in CAPABILITIES, spec
            for profile in spec.profiles:
                tmp_out = Path(tmp) / f"{spec.name}.{profile}.elf"
                compile_source(src_dir / f"{spec.name}.c", profile, tmp_out, compiler)
                digest = sha256_file(tmp_out)
                binary_id = f"bin_{digest[:10]}"
                if any(r.binary_id == binary_id for r in records):
                    raise RuntimeError(f"{spec.name}/{profile} duplicates binary {binary_id}")
                rel = f"bin/{binary_id}.elf"
                shutil.copyfile(tmp_out, out_dir / rel)
                records.append(
                    BinaryRecord(
                        binary_id=binary_id,
                        binary_path=rel,
                        sha256=digest,
                        capability=spec.capability,
                        source=spec.name,
                        profile=profile,
                        flags=" ".join(PROFILES[profile]),
                        arch=arch,
                        compiler=compiler_name,
                    )
                )
    if only is None:
        keep = {Path(r.binary_path).name for r in records}
        for stale in bin_dir.glob("*.elf"):
            if stale.name not in keep:
                stale.unlink()
    write_index(records, out_dir / "binaries.csv")
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints a per-capability summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=corpus_dir(), help="output directory")
    parser.add_argument(
        "--cc", default=None, help="C compiler (default: aarch64 cross gcc, else gcc)"
    )
    parser.add_argument("--only", nargs="+", default=None, help="build only these sources")
    args = parser.parse_args(argv)
    records = build_corpus(args.out, args.cc, only=args.only)
    total = sum((args.out / r.binary_path).stat().st_size for r in records)
    for capability in CAPABILITIES:
        mine = [r for r in records if r.capability == capability]
        sources = sorted({r.source for r in mine})
        print(f"{capability:12s} {len(mine):3d} binaries from {len(sources)} sources")
    print(
        f"{len(records)} binaries, {total / 1e6:.2f} MB, arch {records[0].arch if records else '-'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
