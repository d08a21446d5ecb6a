"""The on-disk cache of compiled objects.

Two kinds of entry share one directory. ``<key>.gco`` holds the object
code, the runtime layout and the LLVM IR text of one compiled graph, keyed by
everything the code depends on: the graph text, the memory plan, the compile
options, the host CPU (name and features), the BLAS library, the llvmlite
and graphc versions and the backend's own source. ``<key>.gcp`` holds what
the pass pipeline made of a traced graph (``graphc.compiler`` writes it), so
a warm start skips optimization as well. Entries are written atomically (a
temporary file, then ``os.replace``) and carry their own name (the full key)
and a SHA-256 of their contents. An entry that is truncated, corrupted,
holds something other than what its kind stores, or was moved or copied
under another entry's name is damaged: it is reported once with a warning,
compiled again and overwritten. Nothing in an entry is unpickled: the
pipeline's entries are JSON and IR text, and loading one never runs code.

The directory is ``$GRAPHC_CACHE_DIR`` (an empty value turns the cache off),
else ``$XDG_CACHE_HOME/graphc``, else ``~/.cache/graphc``, created private to
the user (mode 0o700). Entries are loaded as native code, so a directory that
belongs to someone else or that group or others may write is not used: the
disk cache is then off, with one warning. So it is, with one warning, when
the path is not a directory (a regular file, say) or cannot be created; an
entry that cannot be read or written (its path is a directory, the disk is
full) is also reported once, not silently compiled again in every process.

The directory is kept under ``$GRAPHC_CACHE_MAX_MB`` megabytes (default 256):
each write removes the least recently used entries past that; loading an
entry counts as a use.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import struct
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

MAGIC = b"graphc-cache-entry\n"
# 3: entries carry their own name; pipeline entries are JSON instead of pickles.
# 4: an object entry may hold a second object, the entry function's.
FORMAT = 4
SUFFIXES = (".gco", ".gcp")
DEFAULT_MAX_MB = 256.0
# A temporary file this old was left by a writer that died; eviction removes it.
_STALE_TMP_SECONDS = 3600.0
_reported: set[str] = set()


class CacheWarning(RuntimeWarning):
    """A cache entry or directory could not be used (compiling goes on without it)."""


@dataclass(frozen=True)
class Entry:
    obj: bytes
    layout: dict[str, Any]
    llvm_ir: str
    # The entry function's own object, when it was compiled apart from the
    # kernels (``target.emit_split``); empty otherwise.
    entry_obj: bytes = b""


def cache_dir() -> Path | None:
    """The cache directory (created if needed), or None when caching is off
    (``GRAPHC_CACHE_DIR`` set to an empty string), impossible, or unsafe (the
    directory is not the user's own or others may write to it)."""
    env = os.environ.get("GRAPHC_CACHE_DIR")
    if env is not None:
        if not env:
            return None
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "graphc"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(path)
    except OSError as exc:
        why = "it is not a directory" if path.exists() and not path.is_dir() else str(exc)
        _warn_once(
            f"dir:{path}",
            f"graphc: cannot use the cache directory {path}: {why}; the disk cache is off "
            "(point GRAPHC_CACHE_DIR at a directory, or set it empty to turn the cache off)",
        )
        return None
    if not stat.S_ISDIR(st.st_mode):
        _warn_once(
            f"dir:{path}",
            f"graphc: cannot use the cache directory {path}: it is not a directory; the disk "
            "cache is off (point GRAPHC_CACHE_DIR at a directory, or set it empty)",
        )
        return None
    problem = _unsafe(st)
    if problem:
        _warn_once(
            f"dir:{path}",
            f"graphc: not using the cache directory {path}: {problem}; the disk cache is off "
            "(make it private with chmod 700, or set GRAPHC_CACHE_DIR)",
        )
        return None
    return path


def _unsafe(st: os.stat_result) -> str:
    """Why a file or directory with this status may hold code planted by another user."""
    getuid = getattr(os, "getuid", None)
    if getuid is not None and st.st_uid != getuid():
        return f"it belongs to user id {st.st_uid}, not {getuid()}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group or others may write to it (mode {stat.S_IMODE(st.st_mode):o})"
    return ""


@functools.cache
def _source_digest() -> str:
    """A digest of this backend's source, so a changed code generator never
    loads objects made by an older one."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@functools.cache
def _graphc_version() -> str:
    # Reading the installed metadata scans sys.path: several ms, asked by every key.
    try:
        return metadata.version("graphc")
    except metadata.PackageNotFoundError:
        return "unknown"


def cache_key(*parts: str) -> str:
    """The name of the entry for ``parts`` (plus the format, graphc version and backend source).

    >>> cache_key("a", "b") == cache_key("a", "b") != cache_key("ab")
    True
    """
    h = hashlib.sha256()
    for part in (f"format {FORMAT}", _graphc_version(), _source_digest(), *parts):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def max_bytes() -> int:
    """The size cap of the directory: ``GRAPHC_CACHE_MAX_MB`` megabytes (default 256)."""
    text = os.environ.get("GRAPHC_CACHE_MAX_MB", "").strip()
    if not text:
        return int(DEFAULT_MAX_MB * 2**20)
    try:
        mb = float(text)
    except ValueError:
        mb = -1.0
    if not 0 <= mb < 2**40:  # also NaN and infinity
        _warn_once(
            f"max:{text}",
            f"graphc: GRAPHC_CACHE_MAX_MB={text!r} is not a number of megabytes; "
            f"using {DEFAULT_MAX_MB:g}",
        )
        mb = DEFAULT_MAX_MB
    return int(mb * 2**20)


def read(directory: Path, name: str) -> bytes | None:
    """The payload of entry ``name``, or None when it is missing or unusable
    (a damaged entry is reported once). Reading marks the entry as used."""
    path = directory / name
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            problem = _unsafe(st)
            if not stat.S_ISREG(st.st_mode):
                problem = "it is not a regular file"
            data = b"" if problem else f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        problem = "it is a directory" if path.is_dir() else str(exc)
    if problem:
        _warn_once(
            str(path),
            f"graphc: ignoring cache entry {path}: {problem}; it is compiled again "
            "(remove that path to let the cache store it)",
        )
        return None
    try:
        payload = _unframe(data, name)
    except ValueError as exc:
        report_unusable(path, exc)
        return None
    try:
        os.utime(path)
    except OSError:
        pass  # only costs its place in the eviction order
    return payload


def write(directory: Path, name: str, payload: bytes) -> None:
    """Write entry ``name`` atomically, then trim the directory to :func:`max_bytes`.
    A failure to write only costs the cache."""
    data = _frame(name, payload)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, directory / name)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        path = directory / name
        why = "it is a directory" if path.is_dir() else str(exc)
        # Once per entry path (a read that already said what is wrong with the
        # path counts): a full disk or a read-only directory would otherwise
        # cost every later process a full compile without a word.
        _warn_once(
            str(path),
            f"graphc: cannot write cache entry {path}: {why}; compiled code is not cached",
        )
        return
    limit = max_bytes()
    # A scan stats every entry (tens of thousands in a full cache): between
    # scans, this process adds what it writes to the last scan's total, and
    # scans again only when that may pass the cap, or after RESCAN_SECONDS
    # (other processes write too).
    known = _totals.get(str(directory))
    if known is not None:
        total, scanned = known[0] + len(data), known[1]
        if total <= limit and time.monotonic() - scanned < RESCAN_SECONDS:
            _totals[str(directory)] = (total, scanned)
            return
    _totals[str(directory)] = (evict(directory, limit, keep=name), time.monotonic())


# directory -> (bytes of entries after this process's last scan, plus what it
# wrote since; when that scan ran)
_totals: dict[str, tuple[int, float]] = {}
RESCAN_SECONDS = 60.0


def evict(directory: Path, limit: int, keep: str = "") -> int:
    """Remove least recently used entries until the directory holds at most
    ``limit`` bytes of them; ``keep`` (the entry just written) stays. Returns
    the bytes of entries left."""
    entries = []
    now = time.time()
    try:
        with os.scandir(directory) as it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if e.name.endswith(SUFFIXES):
                    entries.append((st.st_mtime_ns, st.st_size, e.name))
                elif e.name.endswith(".tmp") and now - st.st_mtime > _STALE_TMP_SECONDS:
                    _remove(directory / e.name)
    except OSError:
        return 0
    total = sum(size for _, size, _ in entries)
    for _, size, name in sorted(entries):
        if total <= limit:
            break
        if name != keep:
            _remove(directory / name)
            total -= size
    return total


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # another process removed it first


def report_unusable(path: Path, exc: BaseException) -> None:
    """Warn once that the entry at ``path`` is damaged (it is compiled again)."""
    _warn_once(str(path), f"graphc: ignoring corrupt cache entry {path} ({exc}); compiling again")


def _warn_once(what: str, message: str) -> None:
    if what not in _reported:
        _reported.add(what)
        warnings.warn(message, CacheWarning, stacklevel=4)


def load(directory: Path, key: str) -> Entry | None:
    """The compiled object stored under ``key``, if any."""
    payload = read(directory, f"{key}.gco")
    if payload is None:
        return None
    try:
        return _decode(payload)
    except (ValueError, KeyError, TypeError, RecursionError, struct.error, zlib.error) as exc:
        report_unusable(directory / f"{key}.gco", exc)
        return None


def store(directory: Path, key: str, entry: Entry) -> None:
    """Store a compiled object under ``key``."""
    write(directory, f"{key}.gco", _encode(entry))


def _frame(name: str, payload: bytes) -> bytes:
    # The entry's own name (its full key) goes inside, so a file moved or
    # copied under another entry's name is caught before its code is loaded.
    body = name.encode() + b"\n" + payload
    return MAGIC + hashlib.sha256(body).digest() + body


def _unframe(data: bytes, name: str) -> bytes:
    if not data.startswith(MAGIC):
        raise ValueError("not a graphc cache entry")
    digest = data[len(MAGIC) : len(MAGIC) + 32]
    body = data[len(MAGIC) + 32 :]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError("checksum mismatch (truncated or corrupted)")
    stored, newline, payload = body.partition(b"\n")
    if not newline or stored != name.encode():
        shown = stored[:80].decode(errors="replace")
        raise ValueError(f"it holds entry {shown!r}: moved or copied from another name")
    return payload


def _encode(entry: Entry) -> bytes:
    header = json.dumps(entry.layout, sort_keys=True).encode()
    text = zlib.compress(entry.llvm_ir.encode(), 1)
    sizes = struct.pack("<QQQQ", len(header), len(entry.obj), len(text), len(entry.entry_obj))
    return sizes + header + entry.obj + text + entry.entry_obj


def _decode(payload: bytes) -> Entry:
    nh, no, nt, ne = struct.unpack_from("<QQQQ", payload)
    start = struct.calcsize("<QQQQ")
    if start + nh + no + nt + ne != len(payload):
        raise ValueError("inconsistent entry sizes")
    header = payload[start : start + nh]
    obj = payload[start + nh : start + nh + no]
    text = payload[start + nh + no : start + nh + no + nt]
    entry_obj = payload[start + nh + no + nt :]
    layout = json.loads(header)
    check_layout(layout)
    check_object(obj)
    if entry_obj:
        check_object(entry_obj)
    return Entry(obj, layout, zlib.decompress(text).decode(), entry_obj)


_MACHO_MAGICS = (b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")
_COFF_MACHINES = (b"\x64\x86", b"\x64\xaa")  # x86-64, arm64


def check_object(obj: bytes) -> None:
    """Raise ValueError unless ``obj`` looks like an object file LLVM wrote: LLVM
    crashes the process on some malformed ones, so they are stopped here.

    >>> check_object(b"garbage")
    Traceback (most recent call last):
    ...
    ValueError: the object code is not an ELF, Mach-O or COFF object file
    """
    if obj.startswith(b"\x7fELF"):
        _check_elf(obj)
    elif not obj.startswith(_MACHO_MAGICS) and obj[:2] not in _COFF_MACHINES:
        raise ValueError("the object code is not an ELF, Mach-O or COFF object file")


def _check_elf(obj: bytes) -> None:
    if len(obj) < 64 or obj[4] != 2 or obj[5] not in (1, 2):
        raise ValueError("the object code is not a 64-bit ELF file")
    order = "<" if obj[5] == 1 else ">"
    (shoff,) = struct.unpack_from(order + "Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from(order + "HH", obj, 0x3A)
    if shentsize != 64 or shoff + shnum * shentsize > len(obj):
        raise ValueError("the object code's section table lies outside it")
    for k in range(shnum):
        start = shoff + k * shentsize
        (kind,) = struct.unpack_from(order + "I", obj, start + 4)
        offset, size = struct.unpack_from(order + "QQ", obj, start + 0x18)
        if kind != 8 and offset + size > len(obj):  # 8: SHT_NOBITS (.bss) has no bytes
            raise ValueError(f"the object code's section {k} lies outside it")


def _is_count(x: Any) -> bool:
    return type(x) is int and x >= 0


def _is_counts(x: Any) -> bool:
    return type(x) is list and all(map(_is_count, x))


def _is_sources(x: Any) -> bool:
    return type(x) is list and all(
        type(s) is list and len(s) == 2 and type(s[0]) is str and _is_count(s[1]) for s in x
    )


# The runtime layout's fields (see buffers.Layout): what each must hold.
_LAYOUT_FIELDS: dict[str, tuple[str, Any]] = {
    "n_inputs": ("a count", _is_count),
    "output_slots": ("a list of counts", _is_counts),
    "output_sources": ("a list of [kind, count] pairs", _is_sources),
    "constant_nodes": (
        "a list of node paths",
        lambda x: type(x) is list and all(_is_counts(p) and p for p in x),
    ),
    "error_paths": (
        "a list of node paths",
        lambda x: type(x) is list and all(_is_counts(p) and len(p) % 2 == 1 for p in x),
    ),
    "arena_bytes": ("a count", _is_count),
    "plan_bytes": ("a count", _is_count),
    "extra_bytes": ("a count", _is_count),
    "scratch_bytes": ("a count", _is_count),
    "parallel_regions": ("a count", _is_count),
    "uses_blas": ("a bool", lambda x: type(x) is bool),
    "profiled": ("a bool", lambda x: type(x) is bool),
}


def check_layout(layout: Any) -> None:
    """Raise ValueError unless ``layout`` is a runtime layout as the code
    generator writes it (or empty: code without an entry function has none).

    >>> check_layout({"n_inputs": -1})
    Traceback (most recent call last):
    ...
    ValueError: the layout has fields ['n_inputs']
    """
    if not isinstance(layout, dict):
        raise ValueError(f"the layout is a {type(layout).__name__}, not a dict")
    if not layout:
        return
    if set(layout) != set(_LAYOUT_FIELDS):
        raise ValueError(f"the layout has fields {sorted(layout)}")
    for name, (what, ok) in _LAYOUT_FIELDS.items():
        if not ok(layout[name]):
            raise ValueError(f"layout field {name!r} is {layout[name]!r:.60}, not {what}")
