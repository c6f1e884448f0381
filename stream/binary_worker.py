"""Parse untrusted ELF binaries in isolated child processes, with time and memory limits, and cache.

LIEF is C++: a hostile file can crash it, hang it or make it allocate without bound. Each file is
therefore parsed in its own short-lived child process, forked from a `forkserver` that has already
imported numpy, LIEF and `stream.static_features` (so a parse costs a fork, not a 0.3 s LIEF
import, and the threaded parent is never forked). The child caps its address space with
`RLIMIT_AS`, the parent waits at most `timeout_s` and kills it after that. Whatever goes wrong
(missing file, not an ELF, truncated, timeout, crash, memory) comes back as a `StaticResult` with
`features=None` and a short reason; nothing raises.

`StaticCache` computes each binary once, keyed by the sha256 of its content.

Children are started without the entry script: multiprocessing would otherwise re-run it in every
child (as `__mp_main__`), so a user's script that reads binaries without an
`if __name__ == "__main__":` guard would run again, recursively, in each parse. The parser must
therefore be importable by module name (a parser defined in `__main__` keeps the entry script).
Measured: ~25 ms per file for a fresh child, ~0.5 s once to start the forkserver.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import resource
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from stream.static_features import STATIC_FEATURE_NAMES, StaticParseError, static_features

__all__ = ["StaticCache", "StaticResult", "read_many", "read_static"]

Parser = Callable[[Path], np.ndarray]

_PRELOAD = ["numpy", "lief", "stream.static_features", "stream.binary_worker"]
_KILL_GRACE_S = 5.0
_context_lock = threading.Lock()
_start_lock = threading.Lock()
_Context = multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext
_context: _Context | None = None


@dataclass(frozen=True)
class StaticResult:
    """Static features of one binary, or why there are none.

    `features` is float32 `(len(STATIC_FEATURE_NAMES),)` or None; `reason` is None when features
    are available and a short text otherwise; `sha256` is the content hash (None when unreadable).
    """

    features: np.ndarray | None
    reason: str | None
    sha256: str | None

    @property
    def available(self) -> bool:
        """True when the static features could be read."""
        return self.features is not None


def read_static(
    path: Path,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    parser: Parser = static_features,
) -> StaticResult:
    """Read the static features of `path` in an isolated child process; never raises on bad files.

    `timeout_s` is the wall-clock limit of the parse; `memory_mb` is the address space the parse
    may add on top of what the child has mapped before it starts (about 0.2 GB of Python, numpy
    and LIEF), enforced with `RLIMIT_AS`. `parser` is the
    function the child runs: a picklable top-level callable, `static_features` unless a test
    injects a misbehaving one.
    """
    _check_limits(timeout_s, memory_mb)
    path = Path(path)
    sha, reason = _hash_file(path)
    if sha is None:
        return StaticResult(None, reason, None)
    return _parse_isolated(path, sha, timeout_s, memory_mb, parser)


def read_many(
    paths: Sequence[Path],
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    max_workers: int | None = None,
    parser: Parser = static_features,
) -> list[StaticResult]:
    """`read_static` for many files, `max_workers` children at a time (default: CPU count).

    Results come back in the order of `paths`. Each file still gets its own child, so one
    crashing or hanging file only costs its own result.
    """
    _check_limits(timeout_s, memory_mb)
    if max_workers is not None and max_workers < 1:
        raise ValueError(
            f"The 'max_workers' parameter of read_many must be >= 1. Got {max_workers} instead."
        )
    workers = max_workers or os.cpu_count() or 1
    _get_context()  # start the forkserver once, before the threads race for it
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(
            pool.map(
                lambda p: read_static(p, timeout_s=timeout_s, memory_mb=memory_mb, parser=parser),
                paths,
            )
        )


class StaticCache:
    """Static results computed once per binary, keyed by the sha256 of its content.

    `get(path)` hashes the file (skipped while its size, mtime and inode are unchanged) and parses
    it only when that content has not been seen; a copy or rename of a known binary is free.
    An unreadable path (missing, a directory) is keyed by its path and re-checked on every call,
    which costs a `stat`, never a parse, so a binary that appears later is picked up.
    `n_parsed` counts the child parses made. Thread-safe; concurrent parses are serialised.
    """

    def __init__(self, *, timeout_s: float = 10.0, memory_mb: int = 1024) -> None:
        _check_limits(timeout_s, memory_mb)
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.n_parsed = 0
        self._by_sha: dict[str, StaticResult] = {}
        self._sha_by_stat: dict[tuple[str, int, int, int, int], str] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, *, parser: Parser = static_features) -> StaticResult:
        """The static result of the binary at `path`, parsed at most once per content hash."""
        path = Path(path)
        with self._lock:
            try:
                st = path.stat()
            except OSError as exc:
                return StaticResult(None, _os_reason(exc), None)
            stat_key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
            sha = self._sha_by_stat.get(stat_key)
            if sha is None:
                sha, reason = _hash_file(path)
                if sha is None:
                    return StaticResult(None, reason, None)
                self._sha_by_stat[stat_key] = sha
            cached = self._by_sha.get(sha)
            if cached is None:
                cached = _parse_isolated(path, sha, self.timeout_s, self.memory_mb, parser)
                self.n_parsed += 1
                self._by_sha[sha] = cached
            return cached

    def __len__(self) -> int:
        return len(self._by_sha)


# --- internals -----------------------------------------------------------------------------------
def _check_limits(timeout_s: float, memory_mb: int) -> None:
    if not timeout_s > 0:
        raise ValueError(
            f"The 'timeout_s' parameter of read_static must be > 0. Got {timeout_s} instead."
        )
    if memory_mb < 64:
        raise ValueError(
            f"The 'memory_mb' parameter of read_static must be >= 64. Got {memory_mb} instead."
        )


def _os_reason(exc: OSError) -> str:
    return {
        "FileNotFoundError": "missing file",
        "IsADirectoryError": "not a regular file",
        "PermissionError": "permission denied",
    }.get(type(exc).__name__, f"cannot read file: {exc.strerror or type(exc).__name__}")


def _hash_file(path: Path) -> tuple[str | None, str | None]:
    """sha256 of a regular file, or (None, reason). Devices and FIFOs are refused, not read."""
    try:
        if not path.exists():
            return None, "missing file"
        if not path.is_file():
            return None, "not a regular file"
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        return None, _os_reason(exc)
    return digest.hexdigest(), None


def _get_context() -> _Context:
    """The forkserver context (spawn where fork is unavailable), with the parser preloaded."""
    global _context
    with _context_lock:
        if _context is None:
            ctx: _Context
            if "forkserver" in multiprocessing.get_all_start_methods():
                forkserver = multiprocessing.get_context("forkserver")
                forkserver.set_forkserver_preload(_PRELOAD)
                ctx = forkserver
            else:
                ctx = multiprocessing.get_context("spawn")
            _context = ctx
        return _context


@contextmanager
def _without_entry_script(parser: Parser) -> Iterator[None]:
    """Start a child that does not re-run the entry script (see the module docstring).

    multiprocessing tells a spawn/forkserver child to re-import `sys.modules["__main__"]` when that
    module has a file or a module name; a bare stand-in has neither, so the child imports only
    what unpickling the target and `parser` needs. Starts are serialised while it is in place.
    """
    if getattr(parser, "__module__", None) == "__main__":
        yield  # the child needs the entry script to find the parser
        return
    with _start_lock:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


def _address_space_bytes() -> int:
    """This process's current virtual size (Linux `VmSize`), 0 where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _child_main(path: str, memory_mb: int, parser: Parser, conn: Connection) -> None:
    """Child process: cap the address space, parse, send ("ok", features) or ("error", reason).

    The cap is the child's current address space plus `memory_mb`, so the budget is what the
    parse may add, whatever the interpreter, numpy, LIEF and the entry script mapped before it.
    """
    import warnings

    warnings.simplefilter("ignore")  # LIEF warns about every odd field of a hostile file
    try:
        limit = _address_space_bytes() + memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        try:
            features = np.asarray(parser(Path(path)), dtype=np.float32)
            message: tuple[str, object] = ("ok", features)
        except StaticParseError as exc:
            message = ("error", str(exc) or "unreadable ELF")
        except MemoryError:
            message = ("error", "memory limit exceeded")
        except Exception as exc:  # any other parser failure is a reason, never a crash
            message = ("error", f"parser error: {type(exc).__name__}")
        conn.send(message)
    finally:
        conn.close()


def _parse_isolated(
    path: Path, sha: str, timeout_s: float, memory_mb: int, parser: Parser
) -> StaticResult:
    """Run `parser(path)` in a fresh child; map every outcome to a StaticResult."""
    ctx = _get_context()
    recv_conn, send_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child_main,
        args=(str(path), memory_mb, parser, send_conn),
        name="fusionstream-static",
        daemon=True,
    )
    try:
        with _without_entry_script(parser):
            proc.start()
    except Exception as exc:  # e.g. out of processes or file descriptors
        recv_conn.close()
        send_conn.close()
        return StaticResult(None, f"cannot start parser process: {type(exc).__name__}", sha)
    send_conn.close()
    message: tuple[str, object] | None = None
    timed_out = False
    try:
        if recv_conn.poll(timeout_s):
            message = recv_conn.recv()
        else:
            timed_out = True
    except (EOFError, OSError):
        message = None  # the child died before sending anything
    except MemoryError:
        message = ("error", "memory limit exceeded")
    finally:
        recv_conn.close()
    if timed_out:
        proc.kill()
    proc.join(_KILL_GRACE_S)
    if proc.is_alive():
        proc.kill()
        proc.join()
    exitcode = proc.exitcode
    proc.close()
    if timed_out:
        return StaticResult(None, f"timeout after {timeout_s:g} s", sha)
    if message is None:
        return StaticResult(None, _crash_reason(exitcode), sha)
    return _to_result(message, sha, parser)


def _crash_reason(exitcode: int | None) -> str:
    """Reason for a child that died without answering (a signal, or an exit with no result)."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"parser crashed (signal {name})"
    return f"parser crashed (exit code {exitcode})"


def _to_result(message: tuple[str, object], sha: str, parser: Parser) -> StaticResult:
    kind, payload = message
    if kind != "ok":
        return StaticResult(None, str(payload), sha)
    features = np.asarray(payload, dtype=np.float32)
    if features.ndim != 1 or not np.all(np.isfinite(features)):
        return StaticResult(None, "parser returned a malformed feature vector", sha)
    if parser is static_features and features.shape != (len(STATIC_FEATURE_NAMES),):
        return StaticResult(None, "parser returned a malformed feature vector", sha)
    features.setflags(write=False)
    return StaticResult(features, None, sha)
