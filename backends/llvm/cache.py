"""The on-disk cache of compiled objects.

An entry holds the object code, the runtime layout and the LLVM IR text of
one compiled graph, keyed by everything the code depends on: the graph text,
the memory plan, the compile options, the host CPU (name and features), the
llvmlite and graphc versions and the backend's own source. Entries are
written atomically (a temporary file, then ``os.replace``) and carry a
SHA-256 of their contents; a truncated or corrupted entry is reported once
with a warning and compiled again.

The directory is ``$GRAPHC_CACHE_DIR``, else ``$XDG_CACHE_HOME/graphc``, else
``~/.cache/graphc``, created private to the user (mode 0o700).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import struct
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

MAGIC = b"graphc-llvm-object\n"
FORMAT = 1
_reported: set[str] = set()


class CacheWarning(RuntimeWarning):
    """A cache entry could not be used (it is recompiled)."""


@dataclass(frozen=True)
class Entry:
    obj: bytes
    layout: dict[str, Any]
    llvm_ir: str


def cache_dir() -> Path | None:
    """The cache directory (created if needed), or None when caching is off
    (``GRAPHC_CACHE_DIR`` set to an empty string) or impossible."""
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
    except OSError:
        return None
    return path


@functools.cache
def _source_digest() -> str:
    """A digest of this backend's source, so a changed code generator never
    loads objects made by an older one."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _graphc_version() -> str:
    try:
        return metadata.version("graphc")
    except metadata.PackageNotFoundError:
        return "unknown"


def cache_key(*parts: str) -> str:
    h = hashlib.sha256()
    for part in (f"format {FORMAT}", _graphc_version(), _source_digest(), *parts):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def load(directory: Path, key: str) -> Entry | None:
    path = directory / f"{key}.gco"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return _decode(data)
    except (ValueError, KeyError, struct.error, zlib.error, UnicodeDecodeError) as exc:
        if str(path) not in _reported:
            _reported.add(str(path))
            warnings.warn(
                f"graphc: ignoring corrupt cache entry {path} ({exc}); compiling again",
                CacheWarning,
                stacklevel=3,
            )
        return None


def store(directory: Path, key: str, entry: Entry) -> None:
    """Write ``entry`` atomically; a failure to write only costs the cache."""
    data = _encode(entry)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, directory / f"{key}.gco")
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


def _encode(entry: Entry) -> bytes:
    header = json.dumps(entry.layout, sort_keys=True).encode()
    text = zlib.compress(entry.llvm_ir.encode(), 1)
    payload = (
        struct.pack("<QQQ", len(header), len(entry.obj), len(text)) + header + entry.obj + text
    )
    return MAGIC + hashlib.sha256(payload).digest() + payload


def _decode(data: bytes) -> Entry:
    if not data.startswith(MAGIC):
        raise ValueError("not a graphc cache entry")
    digest = data[len(MAGIC) : len(MAGIC) + 32]
    payload = data[len(MAGIC) + 32 :]
    if hashlib.sha256(payload).digest() != digest:
        raise ValueError("checksum mismatch (truncated or corrupted)")
    nh, no, nt = struct.unpack_from("<QQQ", payload)
    start = struct.calcsize("<QQQ")
    header = payload[start : start + nh]
    obj = payload[start + nh : start + nh + no]
    text = payload[start + nh + no : start + nh + no + nt]
    return Entry(obj, json.loads(header), zlib.decompress(text).decode())
