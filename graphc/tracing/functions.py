"""NumPy functions on traced arrays (NEP 18 ``__array_function__``).

``HANDLERS`` maps each supported NumPy function to its traced
implementation; anything else raises :class:`UnsupportedError` naming it.
Implementations call NumPy functions on tracers, so they compose from the
same primitives the user would get.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.ir import DType, OpTypeError, TracingError, UnsupportedError, format_message

from .array import TracedArray
from .context import user_location
from .ops import cast, emit, lift, operand, result_dtype, to_dtype, trace_of

HANDLERS: dict[Any, Callable[..., Any]] = {}


def implements(*funcs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(impl: Callable[..., Any]) -> Callable[..., Any]:
        for f in funcs:
            HANDLERS[f] = impl
        return impl

    return register


def apply_function(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """Entry point of ``TracedArray.__array_function__``."""
    impl = HANDLERS.get(func)
    if impl is None:
        name = getattr(func, "__qualname__", getattr(func, "__name__", str(func)))
        module = getattr(func, "__module__", "numpy") or "numpy"
        prefix = "np." if module.startswith("numpy") and "." not in name else f"{module}."
        raise UnsupportedError(
            format_message(
                f"{prefix}{name} is not supported on traced arrays",
                loc=user_location(3),
                hint="see the README's table of supported NumPy functions",
            )
        )
    return impl(*args, **kwargs)


def _error(cls: type[Exception], msg: str, hint: str | None = None) -> Exception:
    return cls(format_message(msg, loc=user_location(4), hint=hint))


def normalize_axis(axis: Any, ndim: int, *, allow_none: bool = True) -> tuple[int, ...]:
    """Axes as a tuple of non-negative ints (None means all)."""
    if axis is None:
        if not allow_none:
            raise _error(OpTypeError, "axis must not be None here")
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if isinstance(a, TracedArray):
            raise _error(TracingError, "axis must be a static integer, not a traced value")
        if not -ndim <= int(a) < max(ndim, 1) or (ndim == 0 and int(a) not in (0, -1)):
            raise _error(OpTypeError, f"axis {a} is out of bounds for array of dimension {ndim}")
        out.append(int(a) % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise _error(OpTypeError, f"repeated axis in {axes}")
    return tuple(out)


def _t(x: Any, trace: Any = None) -> TracedArray:
    return lift(x, trace or trace_of(x))


# -- reductions -----------------------------------------------------------------------


def _reduction(op: str, x: Any, axis: Any, keepdims: bool, dtype: Any = None) -> Any:
    x = _t(x)
    if dtype is not None:
        x = cast(x, dtype)
    axes = normalize_axis(axis, x.ndim)
    if (
        not axes
        and op in ("reduce_sum", "reduce_prod")
        and x.value.type.dtype in (DType.bool, DType.i32)
    ):
        # an empty set of axes still widens like NumPy does
        return cast(x, np.int64)
    if not axes:
        return x
    return emit(x.trace, op, [x.trace.value_of(x)], axes=axes, keepdims=bool(keepdims))


@implements(np.sum)
def _sum(
    x: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    keepdims: bool = False,
    initial: Any = None,
    where: Any = None,
) -> Any:
    _no_out(np.sum, out, where)
    result = _reduction("reduce_sum", x, axis, keepdims, dtype)
    return result if initial is None else result + initial


@implements(np.prod)
def _prod(
    x: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    keepdims: bool = False,
    initial: Any = None,
    where: Any = None,
) -> Any:
    _no_out(np.prod, out, where)
    result = _reduction("reduce_prod", x, axis, keepdims, dtype)
    return result if initial is None else result * initial


@implements(np.max, np.amax)
def _max(
    x: Any,
    axis: Any = None,
    out: Any = None,
    keepdims: bool = False,
    initial: Any = None,
    where: Any = None,
) -> Any:
    _no_out(np.max, out, where)
    result = _reduction("reduce_max", x, axis, keepdims)
    return result if initial is None else np.maximum(result, initial)


@implements(np.min, np.amin)
def _min(
    x: Any,
    axis: Any = None,
    out: Any = None,
    keepdims: bool = False,
    initial: Any = None,
    where: Any = None,
) -> Any:
    _no_out(np.min, out, where)
    result = _reduction("reduce_min", x, axis, keepdims)
    return result if initial is None else np.minimum(result, initial)


def _count(x: TracedArray, axes: tuple[int, ...]) -> int:
    return math.prod(x.shape[a] for a in axes)


@implements(np.mean)
def _mean(
    x: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    keepdims: bool = False,
    where: Any = None,
) -> Any:
    _no_out(np.mean, out, where)
    x = _t(x)
    if dtype is None and not x.value.type.dtype.is_float:
        dtype = np.float64  # NumPy averages integers in float64
    total = _reduction("reduce_sum", x, axis, keepdims, dtype)
    return total / _count(x, normalize_axis(axis, x.ndim))


@implements(np.var)
def _var(
    x: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    ddof: float = 0,
    keepdims: bool = False,
    where: Any = None,
    mean: Any = None,
    correction: Any = None,
) -> Any:
    _no_out(np.var, out, where)
    if mean is not None:
        raise _error(UnsupportedError, "np.var: the 'mean=' argument is not supported")
    ddof = correction if correction is not None else ddof
    x = _t(x)
    if dtype is None and not x.value.type.dtype.is_float:
        dtype = np.float64
    if dtype is not None:
        x = cast(x, dtype)
    centered = x - np.mean(x, axis=axis, keepdims=True)
    n = _count(x, normalize_axis(axis, x.ndim))
    return np.sum(centered * centered, axis=axis, keepdims=keepdims) / max(n - ddof, 0)


@implements(np.std)
def _std(
    x: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    ddof: float = 0,
    keepdims: bool = False,
    where: Any = None,
    mean: Any = None,
    correction: Any = None,
) -> Any:
    return np.sqrt(_var(x, axis, dtype, out, ddof, keepdims, where, mean, correction))


def _arg_reduction(op: str, x: Any, axis: Any, keepdims: bool) -> Any:
    x = _t(x)
    if axis is None:
        flat = np.reshape(x, (-1,))
        result = emit(x.trace, op, [x.trace.value_of(flat)], axis=0)
        return np.reshape(result, (1,) * x.ndim) if keepdims else result
    (a,) = normalize_axis(axis, x.ndim)
    return emit(x.trace, op, [x.trace.value_of(x)], axis=a, keepdims=bool(keepdims))


@implements(np.argmax)
def _argmax(x: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
    _no_out(np.argmax, out, None)
    return _arg_reduction("argmax", x, axis, keepdims)


@implements(np.argmin)
def _argmin(x: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
    _no_out(np.argmin, out, None)
    return _arg_reduction("argmin", x, axis, keepdims)


@implements(np.all)
def _all(
    x: Any, axis: Any = None, out: Any = None, keepdims: bool = False, *, where: Any = None
) -> Any:
    _no_out(np.all, out, where)
    x = _t(x)
    n = _count(x, normalize_axis(axis, x.ndim))
    return np.sum(cast(x, np.bool_), axis=axis, keepdims=keepdims) == n


@implements(np.any)
def _any(
    x: Any, axis: Any = None, out: Any = None, keepdims: bool = False, *, where: Any = None
) -> Any:
    _no_out(np.any, out, where)
    return np.sum(cast(_t(x), np.bool_), axis=axis, keepdims=keepdims) > 0


@implements(np.cumsum)
def _cumsum(x: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    _no_out(np.cumsum, out, None)
    x = _t(x)
    if dtype is not None:
        x = cast(x, dtype)
    if axis is None:
        x = np.reshape(x, (-1,))
        axis = 0
    (a,) = normalize_axis(axis, x.ndim)
    return emit(x.trace, "cumsum", [x.trace.value_of(x)], axis=a)


def _no_out(func: Any, out: Any, where: Any) -> None:
    if out is not None:
        raise _error(
            UnsupportedError,
            f"np.{func.__name__}: out= is not supported on traced arrays",
            hint="assign the result instead",
        )
    if where is not None and where is not True:
        raise _error(
            UnsupportedError,
            f"np.{func.__name__}: where= is not supported on traced arrays",
            hint="mask with np.where first",
        )


# -- shape manipulation -------------------------------------------------------------------


def _resolve_shape(shape: Any, size: int) -> tuple[int, ...]:
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if any(isinstance(d, TracedArray) for d in dims):
        raise _error(TracingError, "shapes must be static, but a dimension is a traced value")
    dims = tuple(int(d) for d in dims)
    if dims.count(-1) > 1:
        raise _error(OpTypeError, "can only specify one unknown dimension")
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        if known == 0 or size % known:
            raise _error(OpTypeError, f"cannot reshape array of size {size} into shape {dims}")
        dims = tuple(size // known if d == -1 else d for d in dims)
    if math.prod(dims) != size:
        raise _error(OpTypeError, f"cannot reshape array of size {size} into shape {dims}")
    return dims


@implements(np.reshape)
def _reshape(
    x: Any, shape: Any = None, order: str = "C", *, newshape: Any = None, copy: Any = None
) -> Any:
    if order != "C":
        raise _error(UnsupportedError, "np.reshape: only order='C' is supported")
    x = _t(x)
    dims = _resolve_shape(shape if shape is not None else newshape, x.size)
    if dims == x.shape:
        return x
    return emit(x.trace, "reshape", [x.trace.value_of(x)], weak=x.weak, shape=dims)


@implements(np.ravel)
def _ravel(x: Any, order: str = "C") -> Any:
    return _reshape(x, (-1,), order)


@implements(np.transpose)
def _transpose(x: Any, axes: Any = None) -> Any:
    x = _t(x)
    perm = tuple(reversed(range(x.ndim))) if axes is None else normalize_axis(axes, x.ndim)
    if len(perm) != x.ndim:
        raise _error(OpTypeError, "axes don't match array")
    if perm == tuple(range(x.ndim)):
        return x
    return emit(x.trace, "transpose", [x.trace.value_of(x)], weak=x.weak, perm=perm)


@implements(np.swapaxes)
def _swapaxes(x: Any, axis1: int, axis2: int) -> Any:
    x = _t(x)
    a, b = normalize_axis(axis1, x.ndim)[0], normalize_axis(axis2, x.ndim)[0]
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return _transpose(x, perm)


@implements(np.moveaxis)
def _moveaxis(x: Any, source: Any, destination: Any) -> Any:
    x = _t(x)
    src = normalize_axis(source, x.ndim)
    dst = normalize_axis(destination, x.ndim)
    if len(src) != len(dst):
        raise _error(OpTypeError, "source and destination must have the same number of elements")
    order = [n for n in range(x.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _transpose(x, order)


@implements(np.expand_dims)
def _expand_dims(x: Any, axis: Any) -> Any:
    x = _t(x)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    ndim = x.ndim + len(axes)
    positions = normalize_axis(axes, ndim)
    dims = iter(x.shape)
    shape = tuple(1 if i in positions else next(dims) for i in range(ndim))
    return _reshape(x, shape)


@implements(np.squeeze)
def _squeeze(x: Any, axis: Any = None) -> Any:
    x = _t(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axis(axis, x.ndim)
        for a in axes:
            if x.shape[a] != 1:
                raise _error(
                    OpTypeError,
                    "cannot select an axis to squeeze out which has size not equal to one",
                )
    return _reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


@implements(np.broadcast_to)
def _broadcast_to(x: Any, shape: Any, subok: bool = False) -> Any:
    trace = trace_of(x)
    x = lift(x, trace)
    dims = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    if dims == x.shape:
        return x
    if len(dims) < x.ndim:
        raise _error(OpTypeError, f"cannot broadcast a {x.ndim}-d array to shape {dims}")
    lead = len(dims) - x.ndim
    return emit(
        trace,
        "broadcast_in_dim",
        [trace.value_of(x)],
        weak=x.weak,
        shape=dims,
        broadcast_dimensions=tuple(range(lead, len(dims))),
    )


@implements(np.broadcast_arrays)
def _broadcast_arrays(*args: Any, subok: bool = False) -> Any:
    shape = np.broadcast_shapes(*[np.shape(a) for a in args])
    return tuple(np.broadcast_to(a, shape) for a in args)


@implements(np.shape)
def _shape(x: Any) -> tuple[int, ...]:
    return tuple(_t(x).shape)


@implements(np.ndim)
def _ndim(x: Any) -> int:
    return _t(x).ndim


@implements(np.size)
def _size(x: Any, axis: Any = None) -> int:
    x = _t(x)
    return x.size if axis is None else x.shape[normalize_axis(axis, x.ndim)[0]]


@implements(np.result_type)
def _result_type(*args: Any) -> np.dtype[Any]:
    return result_dtype(*args).np


@implements(np.copy)
def _copy(x: Any, order: str = "K", subok: bool = False) -> Any:
    return _t(x)


# -- combining ------------------------------------------------------------------------------


def _common(arrays: Sequence[Any]) -> tuple[Any, list[TracedArray], DType]:
    trace = trace_of(*arrays)
    dtype = result_dtype(*arrays)
    return trace, [lift(a, trace) if not isinstance(a, TracedArray) else a for a in arrays], dtype


@implements(np.concatenate)
def _concatenate(
    arrays: Sequence[Any],
    axis: Any = 0,
    out: Any = None,
    *,
    dtype: Any = None,
    casting: str = "same_kind",
) -> Any:
    _no_out(np.concatenate, out, None)
    arrays = list(arrays)
    if not arrays:
        raise _error(OpTypeError, "need at least one array to concatenate")
    if axis is None:
        arrays = [np.reshape(a, (-1,)) for a in arrays]
        axis = 0
    trace, lifted, common = _common(arrays)
    if dtype is not None:
        common = to_dtype(dtype)
    ndim = lifted[0].ndim
    if ndim == 0:
        raise _error(OpTypeError, "zero-dimensional arrays cannot be concatenated")
    (a,) = normalize_axis(axis, ndim)
    values = [operand(trace, x, common) for x in lifted]
    if len(values) == 1:
        return TracedArray(trace, trace.builder.materialize(values[0]))
    return emit(trace, "concatenate", values, axis=a)


@implements(np.stack)
def _stack(
    arrays: Sequence[Any],
    axis: int = 0,
    out: Any = None,
    *,
    dtype: Any = None,
    casting: str = "same_kind",
) -> Any:
    _no_out(np.stack, out, None)
    arrays = list(arrays)
    if not arrays:
        raise _error(OpTypeError, "need at least one array to stack")
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1:
        raise _error(OpTypeError, "all input arrays must have the same shape")
    ndim = len(shapes.pop()) + 1
    (a,) = normalize_axis(axis, ndim)
    trace = trace_of(*arrays)
    expanded = [np.expand_dims(lift(x, trace), a) for x in arrays]
    return _concatenate(expanded, axis=a, dtype=dtype)


@implements(np.vstack)
def _vstack(arrays: Sequence[Any], *, dtype: Any = None, casting: str = "same_kind") -> Any:
    return _concatenate([np.atleast_2d(a) for a in arrays], axis=0, dtype=dtype)


@implements(np.hstack)
def _hstack(arrays: Sequence[Any], *, dtype: Any = None, casting: str = "same_kind") -> Any:
    arrays = [np.atleast_1d(a) for a in arrays]
    return _concatenate(arrays, axis=0 if np.ndim(arrays[0]) == 1 else 1, dtype=dtype)


@implements(np.atleast_1d)
def _atleast_1d(*arrays: Any) -> Any:
    out = [a if np.ndim(a) >= 1 else np.reshape(a, (1,)) for a in arrays]
    return out[0] if len(out) == 1 else out


@implements(np.atleast_2d)
def _atleast_2d(*arrays: Any) -> Any:
    out = [
        a if np.ndim(a) >= 2 else np.reshape(a, (1,) * (2 - np.ndim(a)) + np.shape(a))
        for a in arrays
    ]
    return out[0] if len(out) == 1 else out


# -- selection and products --------------------------------------------------------------------


@implements(np.where)
def _where(cond: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        raise _error(
            TracingError,
            "np.where(cond) with one argument has a data-dependent shape",
            hint="use the three-argument form np.where(cond, x, y)",
        )
    if x is None or y is None:
        raise _error(OpTypeError, "np.where takes either one or three arguments")
    trace = trace_of(cond, x, y)
    dtype = result_dtype(x, y)
    c = operand(
        trace, cond if not isinstance(cond, TracedArray) else cast(cond, np.bool_), DType.bool
    )
    weak = all(
        isinstance(v, (bool, int, float)) or (isinstance(v, TracedArray) and v.weak) for v in (x, y)
    )
    return emit(trace, "select", [c, operand(trace, x, dtype), operand(trace, y, dtype)], weak=weak)


@implements(np.clip)
def _clip(
    x: Any,
    a_min: Any = None,
    a_max: Any = None,
    out: Any = None,
    *,
    min: Any = None,
    max: Any = None,
    **kwargs: Any,
) -> Any:  # noqa: A002
    _no_out(np.clip, out, None)
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if lo is not None:
        x = np.maximum(x, lo)
    if hi is not None:
        x = np.minimum(x, hi)
    return x


@implements(np.dot)
def _dot(a: Any, b: Any, out: Any = None) -> Any:
    _no_out(np.dot, out, None)
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return np.multiply(a, b)
    if np.ndim(b) <= 2:
        return np.matmul(a, b)
    raise _error(
        UnsupportedError,
        "np.dot with an operand of more than 2 dimensions is not supported",
        hint="use np.matmul or np.einsum",
    )


@implements(np.vdot)
def _vdot(a: Any, b: Any) -> Any:
    return np.sum(np.reshape(a, (-1,)) * np.reshape(b, (-1,)))


@implements(np.inner)
def _inner(a: Any, b: Any) -> Any:
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return np.multiply(a, b)
    return np.matmul(a, np.swapaxes(b, -1, -2)) if np.ndim(b) >= 2 else np.matmul(a, b)


@implements(np.outer)
def _outer(a: Any, b: Any, out: Any = None) -> Any:
    _no_out(np.outer, out, None)
    return np.reshape(a, (-1, 1)) * np.reshape(b, (1, -1))


@implements(np.take)
def _take(x: Any, indices: Any, axis: Any = None, out: Any = None, mode: str = "raise") -> Any:
    _no_out(np.take, out, None)
    if mode != "raise":
        raise _error(UnsupportedError, f"np.take: mode='{mode}' is not supported")
    if axis is None:
        x = np.reshape(x, (-1,))
        axis = 0
    x = _t(x) if isinstance(x, TracedArray) else lift(x, trace_of(x, indices))
    (a,) = normalize_axis(axis, x.ndim)
    key = (slice(None),) * a + (indices,)
    return x[key]


@implements(np.take_along_axis)
def _take_along_axis(x: Any, indices: Any, axis: Any) -> Any:
    trace = trace_of(x, indices)
    x = lift(x, trace)
    if axis is None:
        x = np.reshape(x, (-1,))
        axis = 0
    (a,) = normalize_axis(axis, x.ndim)
    if np.ndim(indices) != x.ndim:
        raise _error(OpTypeError, "`indices` and `arr` must have the same number of dimensions")
    shape = np.broadcast_shapes(
        tuple(1 if i == a else d for i, d in enumerate(x.shape)),
        tuple(1 if i == a else d for i, d in enumerate(np.shape(indices))),
    )
    key = []
    for i in range(x.ndim):
        if i == a:
            key.append(indices)
        else:
            expand = [1] * x.ndim
            expand[i] = shape[i]
            key.append(np.arange(shape[i]).reshape(expand))
    return x[tuple(key)]


# -- constructors that only need the shape -------------------------------------------------------


def _like(x: Any, dtype: Any, shape: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    t = _t(x)
    return (
        t.shape
        if shape is None
        else tuple(np.atleast_1d(shape).tolist())
        if not isinstance(shape, int)
        else (shape,)
    ), (np.dtype(dtype) if dtype is not None else t.dtype)


@implements(np.zeros_like)
def _zeros_like(
    x: Any, dtype: Any = None, order: str = "K", subok: bool = True, shape: Any = None, **kw: Any
) -> np.ndarray:
    s, d = _like(x, dtype, shape)
    return np.zeros(s, d)


@implements(np.ones_like)
def _ones_like(
    x: Any, dtype: Any = None, order: str = "K", subok: bool = True, shape: Any = None, **kw: Any
) -> np.ndarray:
    s, d = _like(x, dtype, shape)
    return np.ones(s, d)


@implements(np.empty_like)
def _empty_like(
    x: Any, dtype: Any = None, order: str = "K", subok: bool = True, shape: Any = None, **kw: Any
) -> np.ndarray:
    s, d = _like(x, dtype, shape)
    return np.zeros(s, d)


@implements(np.full_like)
def _full_like(
    x: Any,
    fill_value: Any,
    dtype: Any = None,
    order: str = "K",
    subok: bool = True,
    shape: Any = None,
    **kw: Any,
) -> Any:
    s, d = _like(x, dtype, shape)
    if isinstance(fill_value, TracedArray):
        return np.broadcast_to(cast(fill_value, d), s)
    return np.full(s, fill_value, d)


@implements(np.round, np.around)
def _round(x: Any, decimals: int = 0, out: Any = None) -> Any:
    _no_out(np.round, out, None)
    x = _t(x)
    if not x.value.type.dtype.is_float:
        return x
    if decimals == 0:
        return np.rint(x)
    scale = 10.0**decimals
    return np.rint(x * scale) / scale
