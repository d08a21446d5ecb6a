"""Shape manipulation on traced arrays: reshape, transpose and friends,
broadcasting, joining (concatenate, stack...) and splitting (split, unstack...)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.ir import OpTypeError, TracingError, UnsupportedError

from .array import TracedArray
from .dispatch import (
    as_tracer,
    error,
    implements,
    no_out,
    normalize_axis,
    static_int,
    static_ints,
)
from .ops import emit, lift, operand, result_dtype, to_dtype, trace_of


def _resolve_shape(shape: Any, size: int) -> tuple[int, ...]:
    if isinstance(shape, TracedArray) or (
        isinstance(shape, (tuple, list)) and any(isinstance(d, TracedArray) for d in shape)
    ):
        raise error(TracingError, "shapes must be static, but a dimension is a traced value")
    dims = static_ints(shape, "shape")
    if dims.count(-1) > 1:
        raise error(OpTypeError, "can only specify one unknown dimension")
    if any(d < -1 for d in dims):
        raise error(OpTypeError, f"negative dimensions not allowed in shape {dims}")
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        if known == 0 or size % known:
            raise error(OpTypeError, f"cannot reshape array of size {size} into shape {dims}")
        dims = tuple(size // known if d == -1 else d for d in dims)
    if math.prod(dims) != size:
        raise error(OpTypeError, f"cannot reshape array of size {size} into shape {dims}")
    return dims


def _check_order(name: str, order: str) -> None:
    if order not in ("C", "K", "A"):
        raise error(UnsupportedError, f"np.{name}: only order='C' (row-major) is supported")


@implements(np.reshape)
def _reshape(
    x: Any, shape: Any = None, order: str = "C", *, newshape: Any = None, copy: Any = None
) -> Any:
    _check_order("reshape", order)
    x = as_tracer(x)
    dims = _resolve_shape(shape if shape is not None else newshape, x.size)
    if dims == x.shape:
        return x
    return emit(x.trace, "reshape", [x.trace.value_of(x)], weak=x.weak, shape=dims)


@implements(np.ravel)
def _ravel(x: Any, order: str = "C") -> Any:
    return _reshape(x, (-1,), order)


@implements(np.transpose, getattr(np, "permute_dims", np.transpose))
def _transpose(x: Any, axes: Any = None) -> Any:
    x = as_tracer(x)
    perm = tuple(reversed(range(x.ndim))) if axes is None else normalize_axis(axes, x.ndim)
    if len(perm) != x.ndim:
        raise error(OpTypeError, "axes don't match array")
    if perm == tuple(range(x.ndim)):
        return x
    return emit(x.trace, "transpose", [x.trace.value_of(x)], weak=x.weak, perm=perm)


@implements(getattr(np, "matrix_transpose", np.transpose))
def _matrix_transpose(x: Any, /) -> Any:
    if np.ndim(x) < 2:
        raise error(OpTypeError, "matrix_transpose needs an array with at least 2 dimensions")
    return np.swapaxes(x, -1, -2)


@implements(np.swapaxes)
def _swapaxes(x: Any, axis1: Any, axis2: Any) -> Any:
    x = as_tracer(x)
    (a,), (b,) = normalize_axis(axis1, x.ndim), normalize_axis(axis2, x.ndim)
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return _transpose(x, perm)


@implements(np.moveaxis)
def _moveaxis(x: Any, source: Any, destination: Any) -> Any:
    x = as_tracer(x)
    src = normalize_axis(source, x.ndim)
    dst = normalize_axis(destination, x.ndim)
    if len(src) != len(dst):
        raise error(OpTypeError, "source and destination must have the same number of elements")
    order = [n for n in range(x.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _transpose(x, order)


@implements(np.rollaxis)
def _rollaxis(x: Any, axis: Any, start: Any = 0) -> Any:
    x = as_tracer(x)
    (a,) = normalize_axis(axis, x.ndim)
    start = static_int(start, "start")
    if not -x.ndim <= start <= x.ndim:
        raise error(OpTypeError, f"start {start} is out of bounds for array of dimension {x.ndim}")
    start %= x.ndim + 1
    if a < start:
        start -= 1
    if a == start:
        return x
    order = [n for n in range(x.ndim) if n != a]
    order.insert(start, a)
    return _transpose(x, order)


@implements(np.expand_dims)
def _expand_dims(x: Any, axis: Any) -> Any:
    x = as_tracer(x)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    ndim = x.ndim + len(axes)
    positions = normalize_axis(axes, ndim)
    dims = iter(x.shape)
    shape = tuple(1 if i in positions else next(dims) for i in range(ndim))
    return _reshape(x, shape)


@implements(np.squeeze)
def _squeeze(x: Any, axis: Any = None) -> Any:
    x = as_tracer(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axis(axis, x.ndim)
        if any(x.shape[a] != 1 for a in axes):
            raise error(
                OpTypeError, "cannot select an axis to squeeze out which has size not equal to one"
            )
    return _reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


@implements(np.broadcast_to)
def _broadcast_to(x: Any, shape: Any, subok: bool = False) -> Any:
    x = as_tracer(x)
    dims = static_ints(shape, "shape")
    if dims == x.shape:
        return x
    lead = len(dims) - x.ndim
    if lead < 0 or any(n not in (1, d) for n, d in zip(x.shape, dims[lead:])):
        raise error(
            OpTypeError,
            f"operands could not be broadcast together with remapped shapes "
            f"[original->remapped]: {x.shape} and requested shape {dims}",
        )
    return emit(
        x.trace,
        "broadcast_in_dim",
        [x.trace.value_of(x)],
        weak=x.weak,
        shape=dims,
        broadcast_dimensions=tuple(range(lead, len(dims))),
    )


@implements(np.broadcast_arrays)
def _broadcast_arrays(*args: Any, subok: bool = False) -> Any:
    try:
        shape = np.broadcast_shapes(*[np.shape(a) for a in args])
    except ValueError as exc:
        raise error(OpTypeError, str(exc)) from None
    return tuple(np.broadcast_to(as_tracer(a, *args), shape) for a in args)


@implements(np.shape)
def _shape(x: Any) -> tuple[int, ...]:
    return tuple(as_tracer(x).shape)


@implements(np.ndim)
def _ndim(x: Any) -> int:
    return as_tracer(x).ndim


@implements(np.size)
def _size(x: Any, axis: Any = None) -> int:
    x = as_tracer(x)
    return x.size if axis is None else x.shape[normalize_axis(axis, x.ndim)[0]]


@implements(np.result_type)
def _result_type(*args: Any) -> np.dtype[Any]:
    # tracers stand in for arrays of their dtype; weak ones for Python scalars
    placeholders = [
        (x.dtype.type(0).item() if x.weak else x.dtype) if isinstance(x, TracedArray) else x
        for x in args
    ]
    return np.result_type(*placeholders)


@implements(np.copy)
def _copy(x: Any, order: str = "K", subok: bool = False) -> Any:
    return as_tracer(x)


# -- joining ------------------------------------------------------------------------------


@implements(np.concatenate, getattr(np, "concat", np.concatenate))
def _concatenate(
    arrays: Sequence[Any],
    axis: Any = 0,
    out: Any = None,
    *,
    dtype: Any = None,
    casting: str = "same_kind",
) -> Any:
    no_out("concatenate", out)
    arrays = list(arrays)
    if not arrays:
        raise error(OpTypeError, "need at least one array to concatenate")
    if axis is None:
        arrays = [np.reshape(a, (-1,)) for a in arrays]
        axis = 0
    trace = trace_of(*arrays)
    common = to_dtype(dtype) if dtype is not None else result_dtype(*arrays)
    lifted = [lift(a, trace) for a in arrays]
    ndim = lifted[0].ndim
    if ndim == 0:
        raise error(OpTypeError, "zero-dimensional arrays cannot be concatenated")
    (a,) = normalize_axis(axis, ndim)
    values = [operand(trace, x, common) for x in lifted]
    if len(values) == 1:
        return TracedArray(trace, trace.builder.materialize(values[0]))
    return emit(trace, "concatenate", values, axis=a)


@implements(np.stack)
def _stack(
    arrays: Sequence[Any],
    axis: Any = 0,
    out: Any = None,
    *,
    dtype: Any = None,
    casting: str = "same_kind",
) -> Any:
    no_out("stack", out)
    arrays = list(arrays)
    if not arrays:
        raise error(OpTypeError, "need at least one array to stack")
    if len({np.shape(a) for a in arrays}) != 1:
        raise error(OpTypeError, "all input arrays must have the same shape")
    (a,) = normalize_axis(axis, np.ndim(arrays[0]) + 1)
    trace = trace_of(*arrays)
    return _concatenate([np.expand_dims(lift(x, trace), a) for x in arrays], axis=a, dtype=dtype)


@implements(np.vstack, getattr(np, "row_stack", np.vstack))
def _vstack(arrays: Sequence[Any], *, dtype: Any = None, casting: str = "same_kind") -> Any:
    return _concatenate([np.atleast_2d(a) for a in arrays], axis=0, dtype=dtype)


@implements(np.hstack)
def _hstack(arrays: Sequence[Any], *, dtype: Any = None, casting: str = "same_kind") -> Any:
    arrays = [np.atleast_1d(a) for a in arrays]
    return _concatenate(arrays, axis=0 if np.ndim(arrays[0]) == 1 else 1, dtype=dtype)


@implements(np.dstack)
def _dstack(arrays: Sequence[Any]) -> Any:
    return _concatenate([np.atleast_3d(a) for a in arrays], axis=2)


@implements(np.column_stack)
def _column_stack(arrays: Sequence[Any]) -> Any:
    columns = [np.reshape(a, (-1, 1)) if np.ndim(a) < 2 else a for a in arrays]
    return _concatenate(columns, axis=1)


def _atleast(arrays: Sequence[Any], shape_of: Any) -> Any:
    out = [np.reshape(a, shape_of(np.shape(a))) for a in arrays]
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.atleast_1d)
def _atleast_1d(*arrays: Any) -> Any:
    return _atleast(arrays, lambda s: s if len(s) >= 1 else (1,))


@implements(np.atleast_2d)
def _atleast_2d(*arrays: Any) -> Any:
    return _atleast(arrays, lambda s: s if len(s) >= 2 else (1,) * (2 - len(s)) + s)


@implements(np.atleast_3d)
def _atleast_3d(*arrays: Any) -> Any:
    def shape_of(s: tuple[int, ...]) -> tuple[int, ...]:
        if len(s) == 0:
            return (1, 1, 1)
        if len(s) == 1:
            return (1, s[0], 1)
        if len(s) == 2:
            return s + (1,)
        return s

    return _atleast(arrays, shape_of)


# -- splitting ------------------------------------------------------------------------------


def _split_at(x: TracedArray, points: Sequence[int], axis: int) -> list[Any]:
    bounds = [0, *points, x.shape[axis]]
    lead = (slice(None),) * axis
    return [x[lead + (slice(start, stop),)] for start, stop in zip(bounds[:-1], bounds[1:])]


@implements(np.array_split)
def _array_split(x: Any, indices_or_sections: Any, axis: Any = 0) -> list[Any]:
    x = as_tracer(x)
    (a,) = normalize_axis(axis, x.ndim)
    if isinstance(indices_or_sections, (tuple, list, np.ndarray)):
        return _split_at(x, static_ints(indices_or_sections, "split index"), a)
    sections = static_int(indices_or_sections, "number of sections")
    if sections <= 0:
        raise error(OpTypeError, "number sections must be larger than 0.")
    each, extras = divmod(x.shape[a], sections)
    sizes = [each + 1] * extras + [each] * (sections - extras)
    return _split_at(x, list(np.cumsum(sizes[:-1], dtype=np.int64)), a)


@implements(np.split)
def _split(x: Any, indices_or_sections: Any, axis: Any = 0) -> list[Any]:
    x = as_tracer(x)
    if not isinstance(indices_or_sections, (tuple, list, np.ndarray)):
        sections = static_int(indices_or_sections, "number of sections")
        (a,) = normalize_axis(axis, x.ndim)
        if sections <= 0 or x.shape[a] % sections:
            raise error(OpTypeError, "array split does not result in an equal division")
    return _array_split(x, indices_or_sections, axis)


def _split_along(name: str, min_ndim: int, axis_of: Any) -> Any:
    def split(x: Any, indices_or_sections: Any) -> list[Any]:
        x = as_tracer(x)
        if x.ndim < min_ndim:
            raise error(OpTypeError, f"np.{name} only works on arrays of {min_ndim} or more dims")
        return _split(x, indices_or_sections, axis_of(x.ndim))

    return split


implements(np.hsplit)(_split_along("hsplit", 1, lambda nd: 1 if nd > 1 else 0))
implements(np.vsplit)(_split_along("vsplit", 2, lambda nd: 0))
implements(np.dsplit)(_split_along("dsplit", 3, lambda nd: 2))


if hasattr(np, "unstack"):

    @implements(np.unstack)
    def _unstack(x: Any, /, *, axis: Any = 0) -> tuple[Any, ...]:
        x = as_tracer(x)
        if x.ndim == 0:
            raise error(OpTypeError, "Input array must be at least 1-d.")
        (a,) = normalize_axis(axis, x.ndim)
        return tuple(x[(slice(None),) * a + (i,)] for i in range(x.shape[a]))


@implements(np.append)
def _append(arr: Any, values: Any, axis: Any = None) -> Any:
    # NumPy makes arrays of both first: a Python number appended is float64/int64
    arr, values = (
        TracedArray(v.trace, v.value, False)
        for v in (as_tracer(arr, values), as_tracer(values, arr))
    )
    if axis is None:
        if arr.ndim != 1:
            arr = np.reshape(arr, (-1,))
        values = np.reshape(values, (-1,))
        axis = arr.ndim - 1
    return np.concatenate((arr, values), axis=axis)
