"""Static features of an ELF executable, read with LIEF and from the raw bytes, for the static expert.

`static_features(path)` turns one binary into a fixed-length float32 vector whose order is
`STATIC_FEATURE_NAMES`. Every feature is read from the file itself (header, sections, segments,
symbols, dynamic entries, strings, raw `svc` sites): never from a hash, a name or an id. Counts are
`log1p`-scaled and entropies divided by 8 bits, so that values stay within a few units.

The raw ELF header is validated strictly before LIEF sees the file, because LIEF happily "parses"
truncated or header-corrupted files; such files raise `StaticParseError` with a short reason.
This module parses in the calling process: use `stream.binary_worker.read_static` to parse
untrusted files in an isolated child process with time and memory limits.

Feature groups, in order (see `STATIC_FEATURE_NAMES`):
- header: aarch64, ELF64, ET_EXEC, ET_DYN, entry inside `.text`, entry inside an executable segment;
- structure: log1p counts of sections and segments, section headers present, overlay after the image;
- sizes: log1p bytes of the file, `.text`, `.data`, `.rodata`, `.bss`;
- entropy / 8: max and mean over sections, `.text`, `.rodata`, `.data`; fraction of 1 KiB file
  blocks above 7 bits per byte; printable fraction of `.rodata` (XOR-obfuscated strings lower it);
- segments: any writable+executable segment, executable stack (PT_GNU_STACK with X);
- hardening: PIE, NX, RELRO (0 none, 0.5 partial, 1 full), stack canary, FORTIFY (`__*_chk`),
  stripped (no `.symtab`), static (no PT_INTERP), dynamic section present;
- libraries: log1p count of DT_NEEDED, and libpthread, libcrypto/libssl, libcurl, libm flags;
- symbols: log1p distinct imported functions, log1p distinct `.symtab` functions, which sources fed
  the API families (imports, `.symtab`, strings when a binary has neither);
- API families (network, process, crypto, file, timing, memory, device): log1p of the distinct
  matching function names, and their fraction of all distinct function names;
- raw syscalls (aarch64 only): log1p of `svc #0` sites and, per family, log1p of distinct syscall
  numbers loaded into x8 just before an `svc` (what a static, stripped binary really calls);
- strings (printable runs >= 5 bytes): log1p counts of strings, URLs, IPv4 addresses, `/dev/`,
  `/proc/`, `/etc/` paths, long base64-like strings, and suspicious tokens grouped as mining,
  credential, persistence and anti-debug.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["API_FAMILIES", "STATIC_FEATURE_NAMES", "StaticParseError", "static_features"]

API_FAMILIES = ("network", "process", "crypto", "file", "timing", "memory", "device")

_HEADER = (
    "is_aarch64",
    "is_elf64",
    "is_exec",
    "is_dyn",
    "entry_in_text",
    "entry_in_exec_segment",
)
_STRUCTURE = ("n_sections_log", "n_segments_log", "has_section_headers", "overlay_size_log")
_SIZES = ("file_size_log", "text_size_log", "data_size_log", "rodata_size_log", "bss_size_log")
_ENTROPY = (
    "entropy_max",
    "entropy_mean",
    "entropy_text",
    "entropy_rodata",
    "entropy_data",
    "high_entropy_block_frac",
    "rodata_printable_frac",
)
_SEGMENTS = ("has_wx_segment", "exec_stack")
_HARDENING = (
    "pie",
    "nx",
    "relro",
    "canary",
    "fortify",
    "stripped",
    "static",
    "has_dynamic",
)
_LIBRARIES = ("n_libraries_log", "lib_pthread", "lib_crypto", "lib_curl", "lib_m")
_SYMBOLS = (
    "n_imports_log",
    "n_symtab_funcs_log",
    "api_from_imports",
    "api_from_symtab",
    "api_from_strings",
)
_API = tuple(f"api_{f}_log" for f in API_FAMILIES) + tuple(f"api_{f}_frac" for f in API_FAMILIES)
_SYSCALLS = ("svc_sites_log",) + tuple(f"sys_{f}_log" for f in API_FAMILIES)
_TOKEN_GROUPS: dict[str, tuple[bytes, ...]] = {
    "mining": (b"stratum", b"xmrig", b"wallet", b"miner", b"mining", b"hashrate", b"pool"),
    "credential": (
        b"shadow",
        b"passwd",
        b"password",
        b"authorized_keys",
        b"id_rsa",
        b"root:",
    ),
    "persistence": (b"crontab", b"systemd", b"rc.local", b"init.d", b".bashrc", b"ld.so.preload"),
    "antidebug": (b"tracerpid", b"ptrace", b"/proc/self/status", b"ld_preload"),
}
_STRINGS = (
    "n_strings_log",
    "url_count_log",
    "ipv4_count_log",
    "dev_path_log",
    "proc_path_log",
    "etc_path_log",
    "base64_count_log",
) + tuple(f"tok_{g}_log" for g in _TOKEN_GROUPS)

STATIC_FEATURE_NAMES: tuple[str, ...] = (
    _HEADER
    + _STRUCTURE
    + _SIZES
    + _ENTROPY
    + _SEGMENTS
    + _HARDENING
    + _LIBRARIES
    + _SYMBOLS
    + _API
    + _SYSCALLS
    + _STRINGS
)

# --- API families: exact names, and name prefixes (library families) ---------------------------
_API_EXACT: dict[str, frozenset[str]] = {
    "network": frozenset(
        [
            "socket",
            "socketpair",
            "connect",
            "bind",
            "listen",
            "accept",
            "accept4",
            "send",
            "sendto",
            "sendmsg",
            "sendmmsg",
            "sendfile",
            "recv",
            "recvfrom",
            "recvmsg",
            "recvmmsg",
            "getaddrinfo",
            "freeaddrinfo",
            "getnameinfo",
            "gethostbyname",
            "gethostbyname2",
            "gethostbyname_r",
            "gethostbyaddr",
            "setsockopt",
            "getsockopt",
            "shutdown",
            "getpeername",
            "getsockname",
        ]
    ),
    "process": frozenset(
        [
            "fork",
            "vfork",
            "clone",
            "clone3",
            "execve",
            "execv",
            "execvp",
            "execvpe",
            "execl",
            "execlp",
            "execle",
            "execveat",
            "fexecve",
            "system",
            "popen",
            "pclose",
            "ptrace",
            "kill",
            "tkill",
            "tgkill",
            "prctl",
            "setsid",
            "daemon",
            "pthread_create",
            "posix_spawn",
            "posix_spawnp",
            "waitpid",
            "wait",
            "wait4",
            "setuid",
            "setgid",
            "seteuid",
            "setresuid",
            "chroot",
        ]
    ),
    "crypto": frozenset(
        ["getrandom", "getentropy", "arc4random", "crypt", "crypt_r", "randombytes"]
    ),
    "file": frozenset(
        [
            "open",
            "open64",
            "openat",
            "openat64",
            "creat",
            "creat64",
            "fopen",
            "fopen64",
            "fdopen",
            "freopen",
            "read",
            "pread",
            "pread64",
            "readv",
            "write",
            "pwrite",
            "pwrite64",
            "writev",
            "fread",
            "fwrite",
            "unlink",
            "unlinkat",
            "remove",
            "rename",
            "renameat",
            "renameat2",
            "chmod",
            "fchmod",
            "fchmodat",
            "chown",
            "fchown",
            "lchown",
            "opendir",
            "fdopendir",
            "readdir",
            "readdir64",
            "closedir",
            "scandir",
            "stat",
            "stat64",
            "lstat",
            "lstat64",
            "fstat",
            "fstat64",
            "fstatat",
            "fstatat64",
            "statx",
            "access",
            "faccessat",
            "mkdir",
            "mkdirat",
            "rmdir",
            "truncate",
            "ftruncate",
            "link",
            "symlink",
            "readlink",
            "fsync",
            "getline",
            "__xstat",
            "__lxstat",
            "__fxstat",
            "__open_2",
            "__open64_2",
            "__read_chk",
        ]
    ),
    "timing": frozenset(
        [
            "sleep",
            "usleep",
            "nanosleep",
            "clock_nanosleep",
            "clock_gettime",
            "gettimeofday",
            "time",
            "alarm",
            "setitimer",
            "getitimer",
        ]
    ),
    "memory": frozenset(
        [
            "mmap",
            "mmap64",
            "munmap",
            "mprotect",
            "madvise",
            "posix_madvise",
            "mlock",
            "mlock2",
            "mlockall",
            "munlock",
            "munlockall",
            "mremap",
            "shm_open",
            "shmget",
            "shmat",
            "memfd_create",
            "brk",
            "sbrk",
            "posix_memalign",
            "aligned_alloc",
        ]
    ),
    "device": frozenset(("ioctl", "__ioctl")),
}
_API_PREFIX: dict[str, tuple[str, ...]] = {
    "network": ("inet_", "curl_"),
    "process": (),
    "crypto": (
        "EVP_",
        "AES_",
        "RAND_",
        "SHA1",
        "SHA224",
        "SHA256",
        "SHA384",
        "SHA512",
        "MD4",
        "MD5",
        "HMAC",
        "RSA_",
        "EC_KEY_",
        "BN_",
        "DES_",
        "SSL_",
        "mbedtls_",
        "gcry_",
        "crypto_",
    ),
    "file": (),
    "timing": ("timer_", "timerfd_"),
    "memory": (),
    "device": (),
}

# --- aarch64 (asm-generic) syscall numbers per family -------------------------------------------
_SYSCALL_FAMILY_NUMBERS: dict[str, tuple[int, ...]] = {
    "network": (198, 199, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 242)
    + (243, 269),
    "process": (220, 221, 129, 130, 131, 117, 167, 157, 260, 281, 435, 146, 144, 147, 51),
    "crypto": (278,),
    "file": (56, 57, 63, 64, 35, 38, 276, 53, 52, 61, 79, 80, 34, 62, 65, 66, 67, 68, 291, 48),
    "timing": (101, 115, 113, 103, 102, 107, 110, 111, 169, 85, 86),
    "memory": (222, 226, 215, 233, 228, 230, 216, 214, 229, 231, 279, 284),
    "device": (29,),
}
_SYSCALL_TABLE = np.full(512, -1, dtype=np.int64)  # syscall number -> family index
for _i, _fam in enumerate(API_FAMILIES):
    _SYSCALL_TABLE[list(_SYSCALL_FAMILY_NUMBERS[_fam])] = _i
_SVC0 = 0xD4000001
_SVC_LOOKBACK = 6

# --- raw strings ---------------------------------------------------------------------------------
_STRING_RE = re.compile(rb"[\x20-\x7e\t]{5,}")
_URL_RE = re.compile(rb"(?:https?|ftp|tcp|udp|wss?|stratum\+(?:tcp|ssl|tls))://[^\s\"'<>]+", re.I)
_IPV4_RE = re.compile(
    rb"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
_DEV_RE = re.compile(rb"/dev/[A-Za-z0-9_.-]+")
_PROC_RE = re.compile(rb"/proc/[A-Za-z0-9_.%/-]+")
_ETC_RE = re.compile(rb"/etc/[A-Za-z0-9_.-]+")
_BASE64_RE = re.compile(rb"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{32,}={0,2}")
_IDENT_RE = re.compile(rb"[A-Za-z_][A-Za-z0-9_]{1,63}")

_EM_AARCH64 = 183
_ET_EXEC, _ET_DYN = 2, 3
_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_PT_GNU_STACK, _PT_GNU_RELRO = 0x6474E551, 0x6474E552
_PF_X, _PF_W = 1, 2
_SHT_NOBITS = 8
_DT_FLAGS, _DT_BIND_NOW, _DT_FLAGS_1 = 30, 24, 0x6FFFFFFB
_DF_BIND_NOW, _DF_1_NOW, _DF_1_PIE = 0x8, 0x1, 0x08000000
_ENTROPY_BLOCK = 1024
_HIGH_ENTROPY_BITS = 7.0
_MIN_ENTROPY_SECTION = 64  # bytes; smaller sections say little about packing or encryption


class StaticParseError(Exception):
    """The file is not a readable ELF executable; the message is a short reason."""


def static_features(path: Path) -> np.ndarray:
    """Return the static feature vector of the ELF executable at `path`, shape (F,), float32.

    Raises `StaticParseError` when the file cannot be read, is not an ELF executable, or is
    truncated or header-corrupted. Deterministic: the same bytes always give the same vector.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StaticParseError(f"cannot read file: {exc.strerror or type(exc).__name__}") from exc
    hdr = _check_header(raw)
    binary = _parse_lief(path)
    feats: dict[str, float] = {}
    feats.update(_header_features(hdr, binary))
    feats.update(_section_features(raw, binary))
    feats.update(_segment_and_hardening_features(binary, hdr))
    names, sources, strings = _symbol_sources(raw, binary)
    feats.update(sources)
    feats.update(_api_features(names))
    feats.update(_syscall_features(raw, binary, hdr))
    feats.update(_string_features(strings))
    vec = np.array([feats[name] for name in STATIC_FEATURE_NAMES], dtype=np.float32)  # (F,)
    return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)


# --- validation ----------------------------------------------------------------------------------
def _check_header(raw: bytes) -> dict[str, int]:
    """Validate the ELF header, program headers and section header table against the file size."""
    size = len(raw)
    if size < 16 or raw[:4] != b"\x7fELF":
        raise StaticParseError("not an ELF file")
    ei_class, ei_data, ei_version = raw[4], raw[5], raw[6]
    if ei_class not in (1, 2) or ei_data not in (1, 2) or ei_version != 1:
        raise StaticParseError("corrupt ELF identification bytes")
    is64 = ei_class == 2
    end = "<" if ei_data == 1 else ">"
    ehsize_expected = 64 if is64 else 52
    if size < ehsize_expected:
        raise StaticParseError("truncated ELF header")
    fmt = end + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH")
    (e_type, e_machine, _, e_entry, e_phoff, e_shoff, _, e_ehsize, e_phentsize, e_phnum) = (
        struct.unpack_from(fmt, raw, 16)[:10]
    )
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from(fmt, raw, 16)[10:]
    if e_type not in (_ET_EXEC, _ET_DYN):
        raise StaticParseError(f"not an executable ELF (e_type {e_type})")
    if e_ehsize != ehsize_expected:
        raise StaticParseError("corrupt ELF header (e_ehsize)")
    if e_phnum == 0 or e_phentsize != (56 if is64 else 32):
        raise StaticParseError("corrupt ELF header (program header table)")
    if e_phoff + e_phnum * e_phentsize > size:
        raise StaticParseError("truncated or corrupt: program headers beyond end of file")
    if e_shnum > 0:
        if e_shentsize != (64 if is64 else 40) or e_shstrndx >= e_shnum:
            raise StaticParseError("corrupt ELF header (section header table)")
        if e_shoff + e_shnum * e_shentsize > size:
            raise StaticParseError("truncated or corrupt: section headers beyond end of file")
    ph_fmt = end + ("IIQQQQQQ" if is64 else "IIIIIIII")
    for k in range(e_phnum):
        fields = struct.unpack_from(ph_fmt, raw, e_phoff + k * e_phentsize)
        if is64:
            p_type, _, p_offset, _, _, p_filesz, _, _ = fields
        else:
            p_type, p_offset, _, _, p_filesz, _, _, _ = fields
        if p_type == _PT_LOAD and p_offset + p_filesz > size:
            raise StaticParseError("truncated or corrupt: loadable segment beyond end of file")
    return {
        "is64": int(is64),
        "type": e_type,
        "machine": e_machine,
        "entry": e_entry,
        "shnum": e_shnum,
    }


def _parse_lief(path: Path):  # -> lief.ELF.Binary
    """Parse with LIEF, logging silenced; any LIEF failure becomes a StaticParseError."""
    import lief

    lief.logging.disable()
    try:
        binary = lief.ELF.parse(str(path))
    except Exception as exc:  # LIEF raises assorted types on hostile input
        raise StaticParseError(f"LIEF failed: {type(exc).__name__}") from exc
    if binary is None:
        raise StaticParseError("LIEF could not parse the file")
    return binary


# --- header, sections, segments ------------------------------------------------------------------
def _header_features(hdr: dict[str, int], binary) -> dict[str, float]:
    entry = hdr["entry"]
    text = _section(binary, ".text")
    in_text = text is not None and text.virtual_address <= entry < text.virtual_address + text.size
    in_exec = any(
        int(seg.type) == _PT_LOAD
        and (int(seg.flags) & _PF_X)
        and seg.virtual_address <= entry < seg.virtual_address + seg.virtual_size
        for seg in binary.segments
    )
    return {
        "is_aarch64": float(hdr["machine"] == _EM_AARCH64),
        "is_elf64": float(hdr["is64"]),
        "is_exec": float(hdr["type"] == _ET_EXEC),
        "is_dyn": float(hdr["type"] == _ET_DYN),
        "entry_in_text": float(in_text),
        "entry_in_exec_segment": float(in_exec),
    }


def _section(binary, name: str):
    for sec in binary.sections:
        if sec.name == name:
            return sec
    return None


def _section_bytes(raw: bytes, sec) -> bytes:
    """The file bytes of a section (empty for NOBITS), clipped to the file."""
    if int(sec.type) == _SHT_NOBITS:
        return b""
    start = min(int(sec.offset), len(raw))
    return raw[start : min(start + int(sec.size), len(raw))]


def _entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte divided by 8, so in [0, 1]; 0 for empty data."""
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)  # (256,)
    p = counts[counts > 0] / len(data)
    return max(0.0, float(-(p * np.log2(p)).sum() / 8.0))  # max() turns -0.0 into 0.0


def _high_entropy_block_frac(raw: bytes) -> float:
    """Fraction of whole 1 KiB blocks of the file above 7 bits per byte (packed or encrypted)."""
    n_blocks = len(raw) // _ENTROPY_BLOCK
    if n_blocks == 0:
        return 0.0
    data = np.frombuffer(raw, dtype=np.uint8, count=n_blocks * _ENTROPY_BLOCK)
    idx = np.repeat(np.arange(n_blocks) * 256, _ENTROPY_BLOCK) + data  # (n_blocks * block,)
    counts = np.bincount(idx, minlength=n_blocks * 256).reshape(n_blocks, 256)  # (n_blocks, 256)
    p = counts / _ENTROPY_BLOCK
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)  # (n_blocks,)
    return float((ent > _HIGH_ENTROPY_BITS).mean())


def _section_features(raw: bytes, binary) -> dict[str, float]:
    sections = list(binary.sections)
    entropies = [
        _entropy(content)
        for content in (_section_bytes(raw, s) for s in sections)
        if len(content) >= _MIN_ENTROPY_SECTION
    ]
    last_mapped = max(
        [int(s.file_offset) + int(s.physical_size) for s in binary.segments]
        + [int(s.offset) + int(s.size) for s in sections if int(s.type) != _SHT_NOBITS]
        + [
            int(binary.header.section_header_offset)
            + int(binary.header.section_header_size) * len(sections)
        ],
        default=0,
    )

    def size_of(name: str) -> float:
        sec = _section(binary, name)
        return float(np.log1p(sec.size)) if sec is not None else 0.0

    def entropy_of(name: str) -> float:
        sec = _section(binary, name)
        return _entropy(_section_bytes(raw, sec)) if sec is not None else 0.0

    rodata = _section(binary, ".rodata")
    rodata_bytes = _section_bytes(raw, rodata) if rodata is not None else b""
    printable = np.frombuffer(rodata_bytes, dtype=np.uint8)
    printable_frac = (
        float(((printable >= 0x20) & (printable < 0x7F) | (printable == 0)).mean())
        if printable.size
        else 0.0
    )
    return {
        "n_sections_log": float(np.log1p(len(sections))),
        "n_segments_log": float(np.log1p(len(binary.segments))),
        "has_section_headers": float(len(sections) > 0),
        "overlay_size_log": float(np.log1p(max(0, len(raw) - last_mapped))),
        "file_size_log": float(np.log1p(len(raw))),
        "text_size_log": size_of(".text"),
        "data_size_log": size_of(".data"),
        "rodata_size_log": size_of(".rodata"),
        "bss_size_log": size_of(".bss"),
        "entropy_max": max(entropies, default=0.0),
        "entropy_mean": float(np.mean(entropies)) if entropies else 0.0,
        "entropy_text": entropy_of(".text"),
        "entropy_rodata": entropy_of(".rodata"),
        "entropy_data": entropy_of(".data"),
        "high_entropy_block_frac": _high_entropy_block_frac(raw),
        "rodata_printable_frac": printable_frac,
    }


def _segment_and_hardening_features(binary, hdr: dict[str, int]) -> dict[str, float]:
    segments = list(binary.segments)
    seg_types = {int(s.type) for s in segments}
    wx = any(
        (int(s.flags) & (_PF_W | _PF_X)) == (_PF_W | _PF_X)
        for s in segments
        if int(s.type) == _PT_LOAD
    )
    exec_stack = any(int(s.type) == _PT_GNU_STACK and int(s.flags) & _PF_X for s in segments)
    has_dynamic = _PT_DYNAMIC in seg_types
    bind_now = False
    flags_1 = 0
    if has_dynamic:
        for entry in binary.dynamic_entries:
            tag, value = int(entry.tag), int(entry.value)
            if tag == _DT_BIND_NOW or (tag == _DT_FLAGS and value & _DF_BIND_NOW):
                bind_now = True
            if tag == _DT_FLAGS_1:
                flags_1 = value
                bind_now = bind_now or bool(value & _DF_1_NOW)
    relro = 0.0
    if _PT_GNU_RELRO in seg_types:
        relro = 1.0 if bind_now else 0.5
    libraries = [str(lib) for lib in binary.libraries] if has_dynamic else []
    names = _all_names(binary)
    return {
        "has_wx_segment": float(wx),
        "exec_stack": float(exec_stack),
        "pie": float(
            hdr["type"] == _ET_DYN and (_PT_INTERP in seg_types or bool(flags_1 & _DF_1_PIE))
        ),
        "nx": float(_PT_GNU_STACK in seg_types and not exec_stack),
        "relro": relro,
        "canary": float(bool(names & {"__stack_chk_fail", "__stack_chk_guard"})),
        "fortify": float(
            any(n.endswith("_chk") and not n.startswith("__stack_chk") for n in names)
        ),
        "stripped": float(_section(binary, ".symtab") is None),
        "static": float(_PT_INTERP not in seg_types),
        "has_dynamic": float(has_dynamic),
        "n_libraries_log": float(np.log1p(len(libraries))),
        "lib_pthread": float(any(lib.startswith("libpthread") for lib in libraries)),
        "lib_crypto": float(any(lib.startswith(("libcrypto", "libssl")) for lib in libraries)),
        "lib_curl": float(any(lib.startswith("libcurl") for lib in libraries)),
        "lib_m": float(any(lib.startswith("libm.") for lib in libraries)),
    }


# --- symbols and API families --------------------------------------------------------------------
def _bare(name: str | bytes) -> str:
    """Symbol name without its version suffix (`socket@GLIBC_2.17` -> `socket`).

    LIEF hands back bytes for names that are not valid UTF-8 (hostile files): decode leniently.
    """
    if isinstance(name, bytes):
        name = name.decode("utf-8", errors="replace")
    return name.split("@", 1)[0]


def _all_names(binary) -> set[str]:
    """Every imported and `.symtab` symbol name (functions and objects), version stripped."""
    names = {_bare(s.name) for s in binary.imported_symbols}
    names.update(_bare(s.name) for s in binary.symtab_symbols)
    names.discard("")
    return names


def _symbol_sources(raw: bytes, binary) -> tuple[set[str], dict[str, float], list[bytes]]:
    """Function names from imports and `.symtab`, or from string identifiers when both are empty."""
    imports = {_bare(f.name) for f in binary.imported_functions} - {""}
    symtab = {_bare(s.name) for s in binary.symtab_symbols if s.is_function} - {""}
    strings = _STRING_RE.findall(raw)
    from_strings: set[str] = set()
    if not imports and not symtab:
        from_strings = {tok.decode() for s in strings for tok in _IDENT_RE.findall(s)}
        from_strings = {n for n in from_strings if _family_of(n) is not None}
    sources = {
        "n_imports_log": float(np.log1p(len(imports))),
        "n_symtab_funcs_log": float(np.log1p(len(symtab))),
        "api_from_imports": float(bool(imports)),
        "api_from_symtab": float(bool(symtab)),
        "api_from_strings": float(bool(from_strings)),
    }
    return imports | symtab | from_strings, sources, strings


def _family_of(name: str) -> str | None:
    for fam in API_FAMILIES:
        if name in _API_EXACT[fam] or (_API_PREFIX[fam] and name.startswith(_API_PREFIX[fam])):
            return fam
    return None


def _api_features(all_names: set[str]) -> dict[str, float]:
    counts = dict.fromkeys(API_FAMILIES, 0)
    for name in all_names:
        fam = _family_of(name)
        if fam is not None:
            counts[fam] += 1
    total = max(len(all_names), 1)
    out = {f"api_{f}_log": float(np.log1p(counts[f])) for f in API_FAMILIES}
    out.update({f"api_{f}_frac": counts[f] / total for f in API_FAMILIES})
    return out


# --- raw syscalls --------------------------------------------------------------------------------
def _exec_regions(raw: bytes, binary) -> Iterable[bytes]:
    """Executable code: SHF_EXECINSTR sections, or executable PT_LOAD segments without sections."""
    sections = [s for s in binary.sections if int(s.flags) & 0x4 and int(s.type) != _SHT_NOBITS]
    if sections:
        return [_section_bytes(raw, s) for s in sections]
    out = []
    for seg in binary.segments:
        if int(seg.type) == _PT_LOAD and int(seg.flags) & _PF_X:
            start = min(int(seg.file_offset), len(raw))
            out.append(raw[start : min(start + int(seg.physical_size), len(raw))])
    return out


def _syscall_features(raw: bytes, binary, hdr: dict[str, int]) -> dict[str, float]:
    """Count `svc #0` sites and the syscall numbers moved into x8 just before them (aarch64)."""
    out = {"svc_sites_log": 0.0} | {f"sys_{f}_log": 0.0 for f in API_FAMILIES}
    if hdr["machine"] != _EM_AARCH64:
        return out
    n_sites = 0
    numbers: list[np.ndarray] = []
    for code in _exec_regions(raw, binary):
        words = np.frombuffer(code, dtype="<u4", count=len(code) // 4)  # (n,)
        sites = np.flatnonzero(words == _SVC0)  # (s,)
        n_sites += sites.size
        found = np.full(sites.size, -1, dtype=np.int64)  # (s,)
        for back in range(1, _SVC_LOOKBACK + 1):
            prev = words[np.maximum(sites - back, 0)].astype(np.int64)  # (s,)
            # MOVZ w8/x8, #imm16 (hw = 0): sf 10 100101 00 imm16 01000
            is_mov = ((prev & 0x7FE0001F) == 0x52800008) & (sites - back >= 0) & (found < 0)
            found = np.where(is_mov, (prev >> 5) & 0xFFFF, found)
        numbers.append(found[(found >= 0) & (found < _SYSCALL_TABLE.size)])
    nums = np.unique(np.concatenate(numbers)) if numbers else np.zeros(0, dtype=np.int64)
    fams = _SYSCALL_TABLE[nums]  # (u,)
    counts = np.bincount(fams[fams >= 0], minlength=len(API_FAMILIES))  # (families,)
    out["svc_sites_log"] = float(np.log1p(n_sites))
    out.update({f"sys_{f}_log": float(np.log1p(counts[i])) for i, f in enumerate(API_FAMILIES)})
    return out


# --- strings -------------------------------------------------------------------------------------
def _is_base64_like(token: bytes) -> bool:
    """Long alphabet runs mixing upper case, lower case and digits (not tables like `abc...z`)."""
    return (
        any(c.isupper() for c in token.decode())
        and any(c.islower() for c in token.decode())
        and any(c.isdigit() for c in token.decode())
    )


def _string_features(strings: list[bytes]) -> dict[str, float]:
    blob = b"\n".join(strings)
    lower = blob.lower()
    out = {
        "n_strings_log": float(np.log1p(len(strings))),
        "url_count_log": float(np.log1p(len(_URL_RE.findall(blob)))),
        "ipv4_count_log": float(np.log1p(len(_IPV4_RE.findall(blob)))),
        "dev_path_log": float(np.log1p(len(_DEV_RE.findall(blob)))),
        "proc_path_log": float(np.log1p(len(_PROC_RE.findall(blob)))),
        "etc_path_log": float(np.log1p(len(_ETC_RE.findall(blob)))),
        "base64_count_log": float(
            np.log1p(sum(_is_base64_like(t) for t in _BASE64_RE.findall(blob)))
        ),
    }
    for group, tokens in _TOKEN_GROUPS.items():
        out[f"tok_{group}_log"] = float(np.log1p(sum(lower.count(t) for t in tokens)))
    return out
