"""Checkpoints: pytrees of arrays saved to ``.npz`` without pickle, written atomically.

A checkpoint holds one pytree (typically parameters, optimizer state, the step
and the RNG key together) plus a JSON metadata dict. The archive stores each
leaf as ``leaf_<i>`` and the tree's structure as JSON in ``__graphc__``; it is
read with ``allow_pickle=False``, so loading a checkpoint never runs code.

Saving writes a temporary file in the target's directory, fsyncs it and
renames it over the target, so a crash or error at any point leaves either
the old checkpoint or the new one, never a torn file. A process killed while
saving leaves its temporary file behind (``.<name>.<host>-<pid>.<random>.tmp``,
as large as the checkpoint); the next save or load of the same checkpoint
removes it once its writer is gone (see :func:`remove_stale_temporaries`).
Restoring checks the stored structure, shapes and dtypes against a template
and raises :class:`CheckpointError` on any difference; apart from those
leftovers it never writes to disk.

>>> import tempfile, os
>>> state = {"params": {"w": np.ones((2, 3), np.float32)}, "step": np.int64(7)}
>>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
>>> save(path, state, metadata={"epoch": 3})
>>> restored = restore(path, like=state)
>>> restored["params"]["w"].shape, int(restored["step"]), read_metadata(path)
((2, 3), 7, {'epoch': 3})
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import socket
import tempfile
import time
import zipfile
from typing import Any

import numpy as np

from .ir import GraphcError

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "read_metadata",
    "remove_stale_temporaries",
    "restore",
    "save",
]

_FORMAT = "graphc-checkpoint"
_VERSION = 1
_HEADER = "__graphc__"
_SCALAR_KINDS = {bool: "bool", int: "int", float: "float"}
_MAX_REPORTED = 10
# A leftover temporary whose writer cannot be checked (another host, or a name
# without a pid) is stale once nothing has written to it for this long: a live
# writer keeps touching it until it renames it.
STALE_SECONDS = 3600.0


class CheckpointError(GraphcError, ValueError):
    """A checkpoint could not be written, or read back as what was expected."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """There is no checkpoint file at the given path."""


# -- encoding ----------------------------------------------------------------------


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _encode(tree: Any, leaves: list[np.ndarray], path: str) -> Any:
    """The JSON form of ``tree``'s structure; arrays are appended to ``leaves``."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        for k in tree:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise CheckpointError(
                    f"checkpoint: dict key {k!r} at {path or 'root'} is not a str or int"
                )
        keys = sorted(tree, key=lambda k: (isinstance(k, str), k))
        return {"dict": [[k, _encode(tree[k], leaves, f"{path}[{k!r}]")] for k in keys]}
    if _is_namedtuple(tree):
        children = [_encode(c, leaves, f"{path}.{f}") for f, c in zip(tree._fields, tree)]
        return {"namedtuple": type(tree).__name__, "fields": list(tree._fields), "items": children}
    if isinstance(tree, (list, tuple)):
        kind = "list" if isinstance(tree, list) else "tuple"
        return {kind: [_encode(c, leaves, f"{path}[{i}]") for i, c in enumerate(tree)]}
    kind = _SCALAR_KINDS.get(type(tree), "array")
    try:
        array = np.asarray(tree)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint: leaf at {path or 'root'} ({type(tree).__name__}) is not an array: {exc}"
        ) from exc
    if array.dtype.hasobject or array.dtype.kind not in "biufc":
        raise CheckpointError(
            f"checkpoint: leaf at {path or 'root'} has dtype {array.dtype}; only bool and "
            "numeric arrays can be stored without pickle"
        )
    leaves.append(array)
    return {"leaf": len(leaves) - 1, "kind": kind}


def save(
    path: str | os.PathLike[str], tree: Any, *, metadata: dict[str, Any] | None = None
) -> None:
    """Write ``tree`` (and JSON-serializable ``metadata``) to ``path`` atomically.

    Leaves may be NumPy arrays or scalars and Python bool/int/float; containers
    dict (str or int keys), list, tuple, namedtuple and None. The file is
    written exactly at ``path`` (no extension is added). On any error the
    previous file at ``path``, if any, is left untouched.

    >>> import tempfile, os
    >>> save(os.path.join(tempfile.mkdtemp(), "ckpt.npz"), {"w": np.zeros(3)})
    """
    target = os.fspath(path)
    leaves: list[np.ndarray] = []
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "tree": _encode(tree, leaves, ""),
        "metadata": {} if metadata is None else metadata,
    }
    try:
        header_bytes = json.dumps(header, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint: metadata is not JSON-serializable: {exc}") from exc
    arrays = {f"leaf_{i}": leaf for i, leaf in enumerate(leaves)}
    arrays[_HEADER] = np.frombuffer(header_bytes, np.uint8)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise CheckpointError(f"checkpoint: directory {directory} does not exist")
    remove_stale_temporaries(target)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.{_writer_tag()}.", suffix=".tmp", dir=directory
        )
    except OSError as exc:
        raise CheckpointError(f"checkpoint: cannot write in {directory}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise CheckpointError(f"checkpoint: writing {target} failed: {exc}") from exc
        raise
    _fsync_directory(directory)


# -- leftovers of killed writers ----------------------------------------------------------

# What follows ".<checkpoint name>." in a temporary's name: the writer's host
# and pid (absent in names from older versions), then mkstemp's random part.
_TEMP_TAIL = re.compile(r"(?:(?P<host>[A-Za-z0-9_-]*)-(?P<pid>[0-9]+)\.)?[A-Za-z0-9_]+\.tmp")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64]


def _writer_tag() -> str:
    return f"{_host()}-{os.getpid()}"


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill would end the process there; rely on age alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, but belongs to someone else
    return True


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[str]:
    """Remove temporary files that killed saves of the checkpoint at ``path`` left
    behind; returns their paths. A temporary is stale when the process that wrote
    it (named in the file name) is gone from this host, or when nothing has
    written to it for :data:`STALE_SECONDS` (its writer is on another host, or
    its pid now belongs to another process). Temporaries of other checkpoints
    in the directory, and of saves still running, stay.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> left = os.path.join(os.path.dirname(path), ".run.npz.kx3_9q2z.tmp")
    >>> open(left, "wb").close(); os.utime(left, (0, 0))  # last written in 1970
    >>> [os.path.basename(p) for p in remove_stale_temporaries(path)]
    ['.run.npz.kx3_9q2z.tmp']
    """
    target = os.path.abspath(os.fspath(path))
    directory, base = os.path.split(target)
    prefix = f".{base}."
    host, now = _host(), time.time()
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix)]
    except OSError:
        return removed
    for name in names:
        m = _TEMP_TAIL.fullmatch(name[len(prefix) :])
        if m is None:
            continue  # another checkpoint's (".run.npz.bak.<...>.tmp") or not ours
        candidate = os.path.join(directory, name)
        try:
            stale = now - os.stat(candidate).st_mtime > STALE_SECONDS
        except OSError:
            continue
        if not stale and m["pid"] is not None and m["host"] == host:
            stale = not _alive(int(m["pid"]))
        if stale:
            with contextlib.suppress(OSError):  # gone already, or a read-only directory
                os.unlink(candidate)
                removed.append(candidate)
    return removed


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- decoding ----------------------------------------------------------------------


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and every leaf array, fully read into memory."""
    source = os.fspath(path)
    remove_stale_temporaries(source)
    if not os.path.exists(source):
        raise CheckpointNotFoundError(f"checkpoint: no file at {source}")

    def corrupt(why: str) -> CheckpointError:
        return CheckpointError(f"checkpoint: {source} is not a readable graphc checkpoint ({why})")

    try:
        archive = np.load(source, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise corrupt("not an .npz archive")
        with archive:
            names = set(archive.files)
            if _HEADER not in names:
                raise corrupt(f"no {_HEADER} entry")
            arrays = {name: np.array(archive[name]) for name in names}
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise corrupt(f"{type(exc).__name__}: {exc}") from exc
    try:
        header = json.loads(arrays.pop(_HEADER).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise corrupt(f"bad header: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise corrupt("bad header")
    if header.get("version") != _VERSION:
        raise corrupt(f"format version {header.get('version')}, this graphc reads {_VERSION}")
    return header, arrays


def _decode(node: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    """Rebuild the stored tree (namedtuples become fresh namedtuple classes)."""
    if node is None:
        return None
    if "leaf" in node:
        return _leaf(node, arrays, path)
    if "dict" in node:
        return {k: _decode(c, arrays, f"{path}[{k!r}]") for k, c in node["dict"]}
    if "namedtuple" in node:
        cls = collections.namedtuple(node["namedtuple"], node["fields"])  # type: ignore[misc]
        return cls(
            *(_decode(c, arrays, f"{path}.{f}") for f, c in zip(node["fields"], node["items"]))
        )
    kind = "list" if "list" in node else "tuple"
    children = [_decode(c, arrays, f"{path}[{i}]") for i, c in enumerate(node[kind])]
    return children if kind == "list" else tuple(children)


def _leaf(node: dict[str, Any], arrays: dict[str, np.ndarray], path: str) -> Any:
    name = f"leaf_{node['leaf']}"
    if name not in arrays:
        raise CheckpointError(f"checkpoint: the archive lacks {name} (for {path or 'root'})")
    array = arrays[name]
    if node.get("kind") in ("bool", "int", "float"):
        return {"bool": bool, "int": int, "float": float}[node["kind"]](array)
    return array


def _structure_name(node: Any) -> str:
    if node is None:
        return "None"
    for kind in ("dict", "list", "tuple", "namedtuple"):
        if kind in node:
            return kind
    return "leaf"


def _match(
    template: Any, node: Any, arrays: dict[str, np.ndarray], path: str, errors: list[str]
) -> Any:
    """Rebuild ``node`` in the shape of ``template``; differences go to ``errors``."""
    where = path or "root"
    if template is None:
        if node is not None:
            errors.append(f"{where}: file has a {_structure_name(node)}, expected None")
        return None
    if isinstance(template, dict):
        if node is None or "dict" not in node:
            errors.append(f"{where}: file has a {_structure_name(node)}, expected a dict")
            return None
        stored = {k: c for k, c in node["dict"]}
        missing = [k for k in template if k not in stored]
        extra = [k for k in stored if k not in template]
        if missing or extra:
            errors.append(f"{where}: keys differ (missing {missing}, unexpected {extra})")
            return None
        return {
            k: _match(template[k], stored[k], arrays, f"{path}[{k!r}]", errors) for k in template
        }
    if _is_namedtuple(template):
        if node is None or "namedtuple" not in node or node["fields"] != list(template._fields):
            errors.append(
                f"{where}: file has a {_structure_name(node)}, expected "
                f"{type(template).__name__}{tuple(template._fields)}"
            )
            return None
        items = [
            _match(t, c, arrays, f"{path}.{f}", errors)
            for f, t, c in zip(template._fields, template, node["items"])
        ]
        return type(template)(*items)
    if isinstance(template, (list, tuple)):
        kind = "list" if isinstance(template, list) else "tuple"
        if node is None or kind not in node or len(node[kind]) != len(template):
            length = len(node[kind]) if node is not None and kind in node else None
            shown = _structure_name(node) + (f" of length {length}" if length is not None else "")
            errors.append(
                f"{where}: file has a {shown}, expected a {kind} of length {len(template)}"
            )
            return None
        items = [
            _match(t, c, arrays, f"{path}[{i}]", errors)
            for i, (t, c) in enumerate(zip(template, node[kind]))
        ]
        return items if kind == "list" else tuple(items)
    if node is None or "leaf" not in node:
        errors.append(f"{where}: file has a {_structure_name(node)}, expected an array")
        return None
    value = _leaf(node, arrays, path)
    found = np.asarray(value)
    want_shape, want_dtype = _template_type(template)
    if found.shape != want_shape or found.dtype != want_dtype:
        errors.append(
            f"{where}: file has {found.dtype}{list(found.shape)}, "
            f"expected {want_dtype}{list(want_shape)}"
        )
        return None
    return type(template)(found) if type(template) in _SCALAR_KINDS else found


def _template_type(template: Any) -> tuple[tuple[int, ...], np.dtype]:
    if type(template) in _SCALAR_KINDS:
        return (), np.asarray(template).dtype
    if hasattr(template, "shape") and hasattr(template, "dtype"):
        return tuple(int(d) for d in template.shape), np.dtype(template.dtype)
    array = np.asarray(template)
    return array.shape, array.dtype


def restore(path: str | os.PathLike[str], like: Any = None) -> Any:
    """Read the pytree saved at ``path``.

    With ``like`` (a pytree of arrays, scalars, or anything with ``shape`` and
    ``dtype``), the stored structure, shapes and dtypes must match it exactly,
    and the result uses ``like``'s containers (and namedtuple classes);
    otherwise :class:`CheckpointError` lists the differences. Without it the
    stored structure is rebuilt as is. A missing file raises
    :class:`CheckpointNotFoundError`; a damaged one :class:`CheckpointError`.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> save(path, {"w": np.zeros(3)})
    >>> restore(path, like={"w": np.zeros(4)})
    Traceback (most recent call last):
    ...
    graphc.checkpoint.CheckpointError: checkpoint: ... does not match the expected structure:
      ['w']: file has float64[3], expected float64[4]
    """
    header, arrays = _read(path)
    errors: list[str] = []
    try:
        if like is None:
            return _decode(header["tree"], arrays, "")
        result = _match(like, header["tree"], arrays, "", errors)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint: {os.fspath(path)} has a damaged structure: {exc}"
        ) from exc
    if errors:
        shown = errors[:_MAX_REPORTED]
        if len(errors) > _MAX_REPORTED:
            shown.append(f"... and {len(errors) - _MAX_REPORTED} more")
        raise CheckpointError(
            f"checkpoint: {os.fspath(path)} does not match the expected structure:\n"
            + "\n".join(f"  {e}" for e in shown)
        )
    return result


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata dict saved with the checkpoint at ``path``.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> save(path, [], metadata={"loss": 0.25})
    >>> read_metadata(path)
    {'loss': 0.25}
    """
    header, _ = _read(path)
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise CheckpointError(f"checkpoint: {os.fspath(path)} has damaged metadata")
    return metadata
