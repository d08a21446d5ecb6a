"""Helpers the generated code calls for ops NumPy has no single function for.

Each takes ``out=`` where the op can fill a preallocated buffer, and returns
the result array, so a generated statement stays ``v7 = pad(v3, 0.0, ...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir.ops.collective import group_communicator, round_to_16

from ..donation import overlapping

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # NumPy 1.x
    byte_bounds = np.byte_bounds  # type: ignore[attr-defined]

# select is a bitwise blend on the elements' bits: branch-free, so it does not
# slow down on unpredictable conditions as np.where does (about 10x here), and
# it copies values exactly, NaN payloads and signed zeros included.
INT_OF_SIZE = {
    1: np.dtype(np.int8),
    2: np.dtype(np.int16),
    4: np.dtype(np.int32),
    8: np.dtype(np.int64),
}


def select(cond: Any, x: Any, y: Any, itype: np.dtype, out: np.ndarray) -> np.ndarray:
    """``np.where(cond, x, y)`` into ``out``; ``x``, ``y`` already have ``out``'s dtype.

    ``y ^ ((x ^ y) & mask)``, with mask all ones where ``cond`` holds."""
    mask = np.negative(cond.view(np.int8), dtype=itype)
    bits = out.view(itype)
    y_bits = y.view(itype)
    np.bitwise_xor(x.view(itype), y_bits, out=bits)
    np.bitwise_and(bits, mask, out=bits)
    np.bitwise_xor(bits, y_bits, out=bits)
    return out


def blend(cond: Any, step: Any, base: Any, out: np.ndarray) -> np.ndarray:
    """``base + cond * step``: a select between two constants where the code
    generator checked that this arithmetic gives both exactly."""
    np.multiply(cond, step, out=out)
    np.add(out, base, out=out)
    return out


def select_or_zero(cond: Any, x: Any, itype: np.dtype, out: np.ndarray) -> np.ndarray:
    """``np.where(cond, x, 0)`` into ``out`` (zero: all bits clear, so +0.0)."""
    mask = np.negative(cond.view(np.int8), dtype=itype)
    np.bitwise_and(x.view(itype), mask, out=out.view(itype))
    return out


def zero_or_select(cond: Any, y: Any, itype: np.dtype, out: np.ndarray) -> np.ndarray:
    """``np.where(cond, 0, y)`` into ``out``."""
    mask = np.negative(cond.view(np.int8), dtype=itype)
    np.bitwise_and(y.view(itype), np.invert(mask), out=out.view(itype))
    return out


def cast_into(x: Any, out: np.ndarray) -> np.ndarray:
    """``x.astype(out.dtype)`` written into ``out``."""
    np.copyto(out, x, casting="unsafe")
    return out


def cumsum_reverse(x: Any, axis: int, dtype: np.dtype) -> np.ndarray:
    """Inclusive cumulative sum from the end of ``axis``."""
    return np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=dtype), axis)


def pad(
    x: Any,
    value: Any,
    low: tuple[int, ...],
    high: tuple[int, ...],
    interior: tuple[int, ...],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``x`` padded with ``value``: ``low``/``high`` at the edges (negative
    crops), ``interior`` between elements."""
    x = np.asarray(x)
    grown = [n + max(n - 1, 0) * it for n, it in zip(x.shape, interior)]
    # Cropping (negative padding) removes part of the grown operand.
    placed = []
    src = []
    for n, g, lo, hi, it in zip(x.shape, grown, low, high, interior):
        first = max(lo, 0)
        skip = max(-lo, 0)  # grown elements cut from the front
        last = g - max(-hi, 0)  # grown elements kept, counted from the front
        step = it + 1
        # Operand elements sit at grown positions 0, step, 2*step...; keep those in [skip, last).
        i0 = -(-skip // step)
        i1 = -(-last // step) if last > 0 else 0
        i1 = min(i1, n)
        count = max(i1 - i0, 0)
        start = first + i0 * step - skip
        placed.append(slice(start, start + (count - 1) * step + 1 if count else start, step))
        src.append(slice(i0, i0 + count))
    shape = tuple(lo + g + hi for g, lo, hi in zip(grown, low, high))
    if out is None:
        out = np.empty(shape, x.dtype)
    out[...] = value
    out[tuple(placed)] = x[tuple(src)]
    return out


def scatter_add(
    x: Any, indices: Any, updates: Any, axis: int, out: np.ndarray | None = None
) -> np.ndarray:
    """A copy of ``x`` with ``updates`` added at ``indices`` along ``axis``;
    repeated indices accumulate; out-of-range indices raise IndexError."""
    x = np.asarray(x)
    axis %= x.ndim
    if out is None:
        out = x.copy()
    else:
        np.copyto(out, x)
    where: Any = (slice(None),) * axis + (np.asarray(indices),)
    np.add.at(out, where, updates)
    return out


def all_reduce(
    x: Any, reduction: str, group: int, compress: str = "", out: np.ndarray | None = None
) -> np.ndarray:
    """The group's allreduce of ``x`` (a copy when this process is alone in it).
    The communicator is looked up per call, so an executable follows a
    re-registered group."""
    comm = group_communicator(group)
    x = np.require(x, requirements="C")
    if comm is None or comm.size == 1:
        if compress:
            x = round_to_16(x, compress)
        if out is None:
            return np.array(x, copy=True)
        np.copyto(out, x)
        return out
    return comm.all_reduce(x, reduction, out=out, compress=compress)


# Requests of started reductions, by the id of the array they fill.
_PENDING: dict[int, Any] = {}


def all_reduce_start(x: Any, reduction: str, group: int) -> np.ndarray:
    """Start the group's allreduce of ``x`` into a new array (filled when
    :func:`all_reduce_done` returns it)."""
    comm = group_communicator(group)
    out = np.array(x, copy=True)
    alone = comm is None or comm.size == 1
    _PENDING[id(out)] = None if alone else comm.start_all_reduce(out, reduction)
    return out


def all_reduce_done(r: np.ndarray, *after: Any) -> np.ndarray:
    """Wait for the reduction :func:`all_reduce_start` began into ``r``."""
    if id(r) not in _PENDING:  # not a started buffer: a fresh result all the same
        return np.array(r, copy=True)
    request = _PENDING.pop(id(r))
    if request is not None:
        request.Wait()
    return r


def take_donations(arrays: tuple[Any, ...], donated: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The donated ``arrays`` (by position), each replaced by a private copy when it
    may not be written over: read-only, a view of other memory, or overlapping
    another argument.

    >>> a = np.zeros(4)
    >>> take_donations((a, np.ones(2)), (0,))[0] is a
    True
    >>> take_donations((a, a[1:]), (0,))[0] is a  # a view of it is read too
    False
    """
    shared = overlapping(
        (*byte_bounds(a), k) for k, a in enumerate(arrays) if isinstance(a, np.ndarray) and a.size
    )
    out = []
    for k in donated:
        a = arrays[k]
        if k in shared or not (a.flags.writeable and a.flags.owndata):
            a = a.copy()
        out.append(a)
    return tuple(out)
