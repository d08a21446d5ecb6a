"""Helpers the generated code calls for ops NumPy has no single function for.

Each takes ``out=`` where the op can fill a preallocated buffer, and returns
the result array, so a generated statement stays ``v7 = pad(v3, 0.0, ...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
