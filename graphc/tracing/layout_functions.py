"""Rearranging elements: tile, repeat, flip, rot90, roll, pad, tril/triu,
diag/diagonal, meshgrid. All exact: they move or copy elements, never compute."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import OpTypeError, TracingError, UnsupportedError

from .array import TracedArray
from .dispatch import as_tracer, error, implements, normalize_axis, static_int, static_ints
from .ops import emit, operand


@implements(np.tile)
def _tile(x: Any, reps: Any) -> Any:
    x = as_tracer(x)
    reps = static_ints(reps, "reps")
    ndim = max(len(reps), x.ndim)
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - x.ndim) + x.shape
    # interleave a repeat axis before every axis, broadcast it, then merge the pairs
    spread = np.reshape(x, tuple(d for n in shape for d in (1, n)))
    tiled = np.broadcast_to(spread, tuple(d for r, n in zip(reps, shape) for d in (r, n)))
    return np.reshape(tiled, tuple(r * n for r, n in zip(reps, shape)))


@implements(np.repeat)
def _repeat(x: Any, repeats: Any, axis: Any = None) -> Any:
    x = as_tracer(x)
    if isinstance(repeats, TracedArray):
        raise error(
            TracingError,
            "np.repeat needs static repeat counts, but they are a traced value",
            hint="the output shape depends on the counts; pass them as a static argument",
        )
    if axis is None:
        x = np.reshape(x, (-1,))
        axis = 0
    (a,) = normalize_axis(axis, x.ndim)
    counts = static_ints(repeats, "repeats")
    n = x.shape[a]
    if any(c < 0 for c in counts):
        raise error(OpTypeError, "repeats may not contain negative values")
    if len(counts) == 1 and np.ndim(repeats) == 0:
        r = counts[0]
        expanded = np.expand_dims(x, a + 1)
        shape = x.shape[: a + 1] + (r,) + x.shape[a + 1 :]
        return np.reshape(
            np.broadcast_to(expanded, shape), x.shape[:a] + (n * r,) + x.shape[a + 1 :]
        )
    if len(counts) == 1:
        counts = counts * n
    if len(counts) != n:
        raise error(
            OpTypeError, f"operands could not be broadcast together: {len(counts)} repeats for {n}"
        )
    return np.take(x, np.repeat(np.arange(n), counts), axis=a)


@implements(np.flip)
def _flip(x: Any, axis: Any = None) -> Any:
    x = as_tracer(x)
    axes = normalize_axis(axis, x.ndim)
    if not axes:
        return x
    return emit(x.trace, "reverse", [x.trace.value_of(x)], weak=x.weak, axes=tuple(sorted(axes)))


@implements(np.fliplr)
def _fliplr(x: Any) -> Any:
    if np.ndim(x) < 2:
        raise error(OpTypeError, "Input must be >= 2-d.")
    return _flip(x, 1)


@implements(np.flipud)
def _flipud(x: Any) -> Any:
    if np.ndim(x) < 1:
        raise error(OpTypeError, "Input must be >= 1-d.")
    return _flip(x, 0)


@implements(np.rot90)
def _rot90(x: Any, k: Any = 1, axes: Any = (0, 1)) -> Any:
    x = as_tracer(x)
    axes = static_ints(axes, "axes")
    if len(axes) != 2:
        raise error(OpTypeError, "len(axes) must be 2.")
    a0, a1 = normalize_axis(axes[0], x.ndim)[0], normalize_axis(axes[1], x.ndim)[0]
    if a0 == a1:
        raise error(OpTypeError, "Axes must be different.")
    k = static_int(k, "k") % 4
    if k == 0:
        return x
    if k == 2:
        return _flip(_flip(x, a0), a1)
    perm = list(range(x.ndim))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return np.transpose(_flip(x, a1), perm)
    return _flip(np.transpose(x, perm), a1)


@implements(np.roll)
def _roll(x: Any, shift: Any, axis: Any = None) -> Any:
    x = as_tracer(x)
    if isinstance(shift, TracedArray):
        raise error(
            TracingError,
            "np.roll needs a static shift, but it is a traced value",
            hint="pass the shift as a static argument, or gather with (np.arange(n) - s) % n",
        )
    if axis is None:
        return np.reshape(_roll(np.reshape(x, (-1,)), shift, 0), x.shape)
    shifts = static_ints(shift, "shift")
    axes = [normalize_axis(a, x.ndim)[0] for a in static_ints(axis, "axis")]
    if len(shifts) == 1:
        shifts = shifts * len(axes)
    elif len(axes) == 1:
        axes = axes * len(shifts)
    if len(shifts) != len(axes):
        raise error(OpTypeError, "'shift' and 'axis' should be scalars or 1D sequences")
    total: dict[int, int] = {}
    for a, s in zip(axes, shifts):
        total[a] = total.get(a, 0) + s
    for a, s in sorted(total.items()):
        n = x.shape[a]
        s = s % n if n else 0
        if s:
            lead = (slice(None),) * a
            x = np.concatenate([x[lead + (slice(n - s, None),)], x[lead + (slice(0, n - s),)]], a)
    return x


# -- pad ------------------------------------------------------------------------------------


def _as_pairs(x: Any, ndim: int, what: str, as_index: bool) -> list[tuple[Any, Any]]:
    if isinstance(x, TracedArray) or (
        isinstance(x, (tuple, list)) and any(isinstance(v, TracedArray) for v in np.ravel(x))
    ):
        raise error(TracingError, f"np.pad: {what} must be static, but it is a traced value")
    arr = np.asarray(x)
    if as_index:
        if arr.dtype.kind not in "iu" and not np.all(arr == np.round(arr)):
            raise error(OpTypeError, f"np.pad: {what} must be integers")
        arr = np.round(arr).astype(np.int64)
        if (arr < 0).any():
            raise error(OpTypeError, "index can't contain negative values")
    if arr.size == 1:
        v = arr.ravel()[0]
        return [(v, v)] * ndim
    if arr.size == 2 and arr.shape != (2, 1):
        lo, hi = arr.ravel()
        return [(lo, hi)] * ndim
    try:
        pairs = np.broadcast_to(arr, (ndim, 2))
    except ValueError:
        raise error(OpTypeError, f"np.pad: {what} cannot be broadcast to ({ndim}, 2)") from None
    return [(lo, hi) for lo, hi in pairs]


def _pad_op(x: TracedArray, value: Any, low: list[int], high: list[int]) -> Any:
    dtype = x.value.type.dtype
    if isinstance(value, TracedArray):
        if value.ndim:
            raise error(UnsupportedError, "np.pad: a traced constant_values must be a scalar")
        v = operand(x.trace, value, dtype)
    else:
        # NumPy assigns the value into the result, which casts it unsafely
        v = operand(x.trace, np.asarray(value).astype(dtype.np)[()])
    return emit(
        x.trace,
        "pad",
        [x.trace.value_of(x), v],
        low=tuple(low),
        high=tuple(high),
        interior=(0,) * x.ndim,
    )


def _edge_parts(x: TracedArray, axis: int, lo: int, hi: int, mode: str) -> tuple[Any, Any]:
    n = x.shape[axis]
    lead = (slice(None),) * axis

    def take(s: slice) -> Any:
        return x[lead + (s,)]

    def widen(part: Any, width: int) -> Any:
        shape = part.shape[:axis] + (width,) + part.shape[axis + 1 :]
        return np.broadcast_to(part, shape)

    if n == 0 and (lo or hi):
        raise error(
            OpTypeError,
            f"np.pad: can't extend empty axis {axis} using modes other than 'constant' or 'empty'",
        )
    if mode == "reflect" and n == 1:
        mode = "edge"
    if mode == "edge":
        return widen(take(slice(0, 1)), lo), widen(take(slice(n - 1, n)), hi)
    if mode in ("maximum", "minimum", "mean"):
        stat = {"maximum": np.max, "minimum": np.min, "mean": np.mean}[mode]
        value = stat(x, axis=axis, keepdims=True)
        return widen(value, lo), widen(value, hi)
    limit = {"reflect": n - 1, "symmetric": n, "wrap": n}[mode]
    if max(lo, hi) > limit:
        raise error(
            UnsupportedError,
            f"np.pad: mode '{mode}' with a pad width ({max(lo, hi)}) larger than the axis "
            f"allows ({limit}) is not supported on traced arrays",
        )

    def backwards(first: int, count: int) -> slice:
        # `count` elements from index `first` down; a negative stop would wrap around
        stop = first - count
        return slice(first, stop if stop >= 0 else None, -1) if count else slice(0, 0)

    if mode == "reflect":
        return take(backwards(lo, lo)), take(backwards(n - 2, hi))
    if mode == "symmetric":
        return take(backwards(lo - 1, lo)), take(backwards(n - 1, hi))
    return take(slice(n - lo, n)), take(slice(0, hi))


_STAT_MODES = ("maximum", "minimum", "mean")


@implements(np.pad)
def _pad(x: Any, pad_width: Any, mode: Any = "constant", **kwargs: Any) -> Any:
    x = as_tracer(x)
    widths = _as_pairs(pad_width, x.ndim, "pad_width", as_index=True)
    if not isinstance(mode, str):
        raise error(UnsupportedError, "np.pad with a callable mode is not supported")
    if mode in ("constant", "empty"):
        values = kwargs.pop("constant_values", 0)
        _check_kwargs(mode, kwargs)
        if isinstance(values, TracedArray) or np.size(values) == 1:
            value = values if isinstance(values, TracedArray) else np.ravel(values)[0]
            return _pad_op(x, value, [int(lo) for lo, _ in widths], [int(hi) for _, hi in widths])
        for axis, ((lo, hi), (vlo, vhi)) in enumerate(
            zip(widths, _as_pairs(values, x.ndim, "constant_values", as_index=False))
        ):
            for value, before, after in ((vlo, lo, 0), (vhi, 0, hi)):
                if before or after:
                    low, high = [0] * x.ndim, [0] * x.ndim
                    low[axis], high[axis] = int(before), int(after)
                    x = _pad_op(x, value, low, high)
        return x
    if mode not in ("edge", "reflect", "symmetric", "wrap", *_STAT_MODES):
        raise error(UnsupportedError, f"np.pad: mode '{mode}' is not supported on traced arrays")
    if kwargs.pop("reflect_type", "even") != "even":
        raise error(UnsupportedError, "np.pad: reflect_type='odd' is not supported")
    if mode in _STAT_MODES and kwargs.pop("stat_length", None) is not None:
        raise error(UnsupportedError, "np.pad: stat_length is not supported")
    if mode == "mean" and not x.value.type.dtype.is_float:
        raise error(UnsupportedError, "np.pad: mode 'mean' is only supported for float arrays")
    _check_kwargs(mode, kwargs)
    for axis, (lo, hi) in enumerate(widths):
        if lo or hi:
            left, right = _edge_parts(x, axis, int(lo), int(hi), mode)
            x = np.concatenate([left, x, right], axis=axis)
    return x


def _check_kwargs(mode: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise error(
            UnsupportedError,
            f"np.pad: unsupported keyword(s) for mode '{mode}': {', '.join(kwargs)}",
        )


# -- triangles and diagonals ------------------------------------------------------------------


@implements(np.tril)
def _tril(m: Any, k: Any = 0) -> Any:
    m = as_tracer(m)
    if m.ndim == 0:
        raise error(OpTypeError, "np.tril needs an array with at least 1 dimension")
    mask = np.tri(*m.shape[-2:], k=static_int(k, "k"), dtype=bool)
    return np.where(mask, m, np.zeros(1, m.dtype))


@implements(np.triu)
def _triu(m: Any, k: Any = 0) -> Any:
    m = as_tracer(m)
    if m.ndim == 0:
        raise error(OpTypeError, "np.triu needs an array with at least 1 dimension")
    mask = np.tri(*m.shape[-2:], k=static_int(k, "k") - 1, dtype=bool)
    return np.where(mask, np.zeros(1, m.dtype), m)


@implements(np.diagonal)
def _diagonal(x: Any, offset: Any = 0, axis1: Any = 0, axis2: Any = 1) -> Any:
    x = as_tracer(x)
    if x.ndim < 2:
        raise error(OpTypeError, "diag requires an array of at least two dimensions")
    (a1,), (a2,) = normalize_axis(axis1, x.ndim), normalize_axis(axis2, x.ndim)
    if a1 == a2:
        raise error(OpTypeError, "axis1 and axis2 cannot be the same")
    k = static_int(offset, "offset")
    x = np.moveaxis(x, (a1, a2), (-2, -1))
    n, m = x.shape[-2:]
    batch = x.shape[:-2]
    # element (i, i + k) of the flattened matrix sits at start + i * (m + 1)
    length = max(0, min(n, m - k)) if k >= 0 else max(0, min(n + k, m))
    start = (k if k >= 0 else -k * m) if length else 0
    flat = np.reshape(x, batch + (n * m,))
    limit = start + (length - 1) * (m + 1) + 1 if length else 0
    return emit(
        x.trace,
        "slice",
        [x.trace.value_of(flat)],
        weak=x.weak,
        start=(0,) * len(batch) + (start,),
        limit=batch + (limit,),
        stride=(1,) * len(batch) + (m + 1,),
    )


@implements(np.diag)
def _diag(v: Any, k: Any = 0) -> Any:
    v = as_tracer(v)
    k = static_int(k, "k")
    if v.ndim == 2:
        return _diagonal(v, k)
    if v.ndim != 1:
        raise error(OpTypeError, "Input must be 1- or 2-d.")
    n = v.shape[0]
    size = n + abs(k)
    if n == 0:
        return np.broadcast_to(np.zeros((), v.dtype), (size, size))
    # lay v out with `size` zeros between neighbours: exactly the flattened diagonal
    start = k if k >= 0 else -k * size
    high = size * size - start - n - (n - 1) * size
    flat = emit(
        v.trace,
        "pad",
        [v.trace.value_of(v), operand(v.trace, np.zeros((), v.dtype))],
        low=(start,),
        high=(high,),
        interior=(size,),
    )
    return np.reshape(flat, (size, size))


@implements(np.diagflat)
def _diagflat(v: Any, k: Any = 0) -> Any:
    return _diag(np.ravel(v), k)


@implements(np.meshgrid)
def _meshgrid(*xi: Any, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> Any:
    if indexing not in ("xy", "ij"):
        raise error(OpTypeError, "Valid values for `indexing` are 'xy' and 'ij'.")
    ndim = len(xi)
    ones = (1,) * ndim
    shapes = [ones[:i] + (-1,) + ones[i + 1 :] for i in range(ndim)]
    if indexing == "xy" and ndim > 1:
        shapes[0] = (1, -1) + ones[2:]
        shapes[1] = (-1, 1) + ones[2:]
    output = [np.reshape(as_tracer(x, *xi), s) for x, s in zip(xi, shapes)]
    if not sparse:
        output = list(np.broadcast_arrays(*output))
    return tuple(output)
