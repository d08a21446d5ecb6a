"""Elementwise and selection functions that are not ufuncs: where, select,
clip, take, take_along_axis, nan_to_num, sinc, isclose, round, diff,
``*_like`` constructors; and the functions that cannot be traced at all
(data-dependent results, in-place updates), which raise helpful errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from graphc.ir import DType, OpTypeError, TracingError, UnsupportedError

from .array import TracedArray
from .dispatch import (
    as_tracer,
    error,
    implements,
    in_place_error,
    no_out,
    normalize_axis,
    static_int,
    static_ints,
)
from .ops import cast, checked_scalar, emit, is_weak, lift, operand, result_dtype, trace_of

_NO_VALUE = getattr(np, "_NoValue", None)


@implements(np.where)
def _where(cond: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        raise error(
            TracingError,
            "np.where(cond) with one argument has a data-dependent shape",
            hint="use the three-argument form np.where(cond, x, y)",
        )
    if x is None or y is None:
        raise error(OpTypeError, "np.where takes either one or three arguments")
    trace = trace_of(cond, x, y)
    dtype = result_dtype(x, y)
    if dtype.is_int:
        # np.where casts Python ints that do not fit unsafely (2**31 -> -2**31 in int32)
        x, y = (_wrapped(v, dtype.np) for v in (x, y))
    c = operand(trace, cast(cond, np.bool_) if isinstance(cond, TracedArray) else cond, DType.bool)
    weak = is_weak(x) and is_weak(y)
    return emit(trace, "select", [c, operand(trace, x, dtype), operand(trace, y, dtype)], weak=weak)


def _wrapped(v: Any, dtype: Any) -> Any:
    if type(v) is not int:
        return v
    info = np.iinfo(dtype)
    if info.min <= v <= info.max:
        return v
    return np.asarray(v, dtype=np.int64).astype(dtype)[()]


@implements(np.select)
def _select(condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    condlist, choicelist = list(condlist), list(choicelist)
    if len(condlist) != len(choicelist):
        raise error(OpTypeError, "list of cases must be same length as list of conditions")
    if not condlist:
        raise error(OpTypeError, "select with an empty condition list is not possible")
    for i, c in enumerate(condlist):
        if np.result_type(c) != np.bool_:
            raise error(OpTypeError, f"invalid entry {i} in condlist: should be boolean ndarray")
    dtype = result_dtype(*choicelist, default).np
    shape = np.broadcast_shapes(*[np.shape(v) for v in [*condlist, *choicelist, default]])
    trace = trace_of(*condlist, *choicelist, default)
    result = np.broadcast_to(cast(lift(default, trace), dtype), shape)
    # later entries first, so the first matching condition wins
    for cond, choice in zip(condlist[::-1], choicelist[::-1]):
        result = np.where(cond, cast(lift(choice, trace), dtype), result)
    return result


@implements(np.clip)
def _clip(
    x: Any,
    a_min: Any = _NO_VALUE,
    a_max: Any = _NO_VALUE,
    out: Any = None,
    *,
    min: Any = _NO_VALUE,  # noqa: A002
    max: Any = _NO_VALUE,  # noqa: A002
    **kwargs: Any,
) -> Any:
    no_out("clip", out)
    if kwargs:
        raise error(UnsupportedError, f"np.clip: unsupported argument(s) {', '.join(kwargs)}")
    lo = a_min if a_min is not _NO_VALUE else min
    hi = a_max if a_max is not _NO_VALUE else max
    if not isinstance(x, TracedArray):
        x = np.asarray(x)  # NumPy makes the clipped operand an array: not a weak scalar
    # A Python-int bound beyond the integer dtype's range on the side it
    # bounds clips nothing; NumPy accepts it (the other side overflows).
    if np.dtype(x.dtype).kind in "iu":
        info = np.iinfo(x.dtype)
        if type(lo) is int and lo < info.min:
            lo = None
        if type(hi) is int and hi > info.max:
            hi = None
    # Bounds first: np.maximum/np.minimum return the second operand on a tie
    # (+0.0 against -0.0), and np.clip keeps x there.
    if lo is not _NO_VALUE and lo is not None:
        x = np.maximum(lo, x)
    if hi is not _NO_VALUE and hi is not None:
        x = np.minimum(hi, x)
    return x


# -- gathers -----------------------------------------------------------------------------------


def _wrap_indices(indices: Any, n: int, mode: str) -> Any:
    if mode == "raise":
        return indices
    if mode not in ("wrap", "clip"):
        raise error(
            OpTypeError, f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})"
        )
    if n == 0:
        raise error(OpTypeError, "cannot do a non-empty take from an empty axes.")
    if mode == "clip":
        return np.clip(indices, 0, n - 1)
    return np.remainder(indices, n)


@implements(np.take)
def _take(x: Any, indices: Any, axis: Any = None, out: Any = None, mode: str = "raise") -> Any:
    no_out("take", out)
    x = as_tracer(x, indices)
    if axis is None:
        x = np.reshape(x, (-1,))
        axis = 0
    (a,) = normalize_axis(axis, x.ndim)
    indices = _wrap_indices(indices, x.shape[a], mode)
    if isinstance(indices, list):
        indices = np.asarray(indices, dtype=np.int64 if not indices else None)
    return x[(slice(None),) * a + (indices,)]


@implements(np.take_along_axis)
def _take_along_axis(x: Any, indices: Any, axis: Any = -1) -> Any:
    x = as_tracer(x, indices)
    if axis is None:
        x = np.reshape(x, (-1,))
        axis = 0
    (a,) = normalize_axis(axis, x.ndim)
    if np.ndim(indices) != x.ndim:
        raise error(OpTypeError, "`indices` and `arr` must have the same number of dimensions")
    if np.result_type(indices).kind not in "iu":
        raise error(OpTypeError, "`indices` must be an integer array")
    shape = np.broadcast_shapes(
        tuple(1 if i == a else d for i, d in enumerate(x.shape)),
        tuple(1 if i == a else d for i, d in enumerate(np.shape(indices))),
    )
    key: list[Any] = []
    for i in range(x.ndim):
        if i == a:
            key.append(indices)
        else:
            expand = [1] * x.ndim
            expand[i] = shape[i]
            key.append(np.arange(shape[i]).reshape(expand))
    return x[tuple(key)]


# -- elementwise helpers -----------------------------------------------------------------------


@implements(np.nan_to_num)
def _nan_to_num(
    x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None, neginf: Any = None
) -> Any:
    x = as_tracer(x)
    if not x.value.type.dtype.is_float:
        return x
    info = np.finfo(x.dtype)
    hi = info.max if posinf is None else posinf
    lo = info.min if neginf is None else neginf
    # NumPy writes the replacements into x, which casts them to x's dtype
    fill = [np.asarray(v).astype(x.dtype)[()] for v in (nan, hi, lo)]
    x = np.where(np.isnan(x), fill[0], x)
    x = np.where(x == math.inf, fill[1], x)
    return np.where(x == -math.inf, fill[2], x)


@implements(np.sinc)
def _sinc(x: Any) -> Any:
    # the same steps as NumPy's sinc, so the results match to the last bit
    y = np.pi * as_tracer(x)
    eps = np.finfo(y.dtype).eps if y.dtype.kind == "f" else 1e-20
    y = np.where(y != 0, y, eps)
    return np.sin(y) / y


@implements(np.isclose)
def _isclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False) -> Any:
    # the same conversions as NumPy: y becomes inexact, Python scalars stay weak
    x = as_tracer(a, b)
    if type(b) in (bool, int, float):
        y = as_tracer(float(b), a)
    else:
        y = as_tracer(b, a)
        y = cast(y, np.result_type(y.dtype, 1.0))
    result = (np.less_equal(np.abs(x - y), atol + rtol * np.abs(y)) & np.isfinite(y)) | (x == y)
    if equal_nan:
        result = result | (np.isnan(x) & np.isnan(y))
    return result


@implements(np.isposinf)
def _isposinf(x: Any, out: Any = None) -> Any:
    no_out("isposinf", out)
    return as_tracer(x) == math.inf


@implements(np.isneginf)
def _isneginf(x: Any, out: Any = None) -> Any:
    no_out("isneginf", out)
    return as_tracer(x) == -math.inf


@implements(np.round, np.around)
def _round(x: Any, decimals: Any = 0, out: Any = None) -> Any:
    no_out("round", out)
    x = as_tracer(x)
    decimals = static_int(decimals, "decimals")
    is_float = x.value.type.dtype.is_float
    if decimals >= 0 and not is_float:
        return x
    if decimals == 0:
        return np.rint(x)
    # NumPy scales by the exact power of ten, dividing for negative decimals
    scale = 10.0 ** abs(decimals)
    if decimals > 0:
        return np.rint(x * scale) / scale
    rounded = np.rint(x / scale) * scale
    return rounded if is_float else cast(rounded, x.dtype)


@implements(np.fix)
def _fix(x: Any, out: Any = None) -> Any:
    no_out("fix", out)
    return np.trunc(x)


@implements(np.real)
def _real(x: Any) -> Any:
    return as_tracer(x)


@implements(np.imag)
def _imag(x: Any) -> np.ndarray:
    x = as_tracer(x)
    return np.zeros(x.shape, x.dtype)


@implements(np.isreal)
def _isreal(x: Any) -> np.ndarray:
    return np.ones(np.shape(x), bool)


@implements(np.iscomplex)
def _iscomplex(x: Any) -> np.ndarray:
    return np.zeros(np.shape(x), bool)


@implements(np.diff)
def _diff(
    a: Any, n: Any = 1, axis: Any = -1, prepend: Any = _NO_VALUE, append: Any = _NO_VALUE
) -> Any:
    x = as_tracer(a, prepend, append)
    n = static_int(n, "n")
    if n < 0:
        raise error(OpTypeError, f"order must be non-negative but got {n}")
    if x.ndim == 0:
        raise error(OpTypeError, "diff requires input that is at least one dimensional")
    (ax,) = normalize_axis(axis, x.ndim)
    parts = []
    for extra in (prepend, append):
        if extra is _NO_VALUE:
            parts.append(None)
            continue
        extra = as_tracer(extra, x)
        if extra.ndim == 0:
            extra = np.broadcast_to(extra, x.shape[:ax] + (1,) + x.shape[ax + 1 :])
        parts.append(extra)
    if parts[0] is not None or parts[1] is not None:
        x = np.concatenate([p for p in (parts[0], x, parts[1]) if p is not None], axis=ax)
    lead = (slice(None),) * ax
    for _ in range(n):
        upper, lower = x[lead + (slice(1, None),)], x[lead + (slice(None, -1),)]
        x = np.not_equal(upper, lower) if x.dtype == np.bool_ else upper - lower
    return x


@implements(getattr(np, "astype", np.asarray))
def _astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    return cast(as_tracer(x), dtype)


# -- constructors that only need the shape -----------------------------------------------------


def _like(x: Any, dtype: Any, shape: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    t = as_tracer(x)
    if shape is None:
        dims = t.shape
    else:
        dims = tuple(int(d) for d in np.atleast_1d(shape))
    return dims, np.dtype(dtype) if dtype is not None else t.dtype


@implements(np.zeros_like)
def _zeros_like(
    x: Any, dtype: Any = None, order: str = "K", subok: bool = True, shape: Any = None, **kw: Any
) -> np.ndarray:
    return np.zeros(*_like(x, dtype, shape))


@implements(np.ones_like)
def _ones_like(
    x: Any, dtype: Any = None, order: str = "K", subok: bool = True, shape: Any = None, **kw: Any
) -> np.ndarray:
    return np.ones(*_like(x, dtype, shape))


@implements(np.empty_like)
def _empty_like(
    x: Any, dtype: Any = None, order: str = "K", subok: bool = True, shape: Any = None, **kw: Any
) -> np.ndarray:
    # NumPy leaves the contents undefined; zeros are one valid choice
    return np.zeros(*_like(x, dtype, shape))


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
    dims, d = _like(x, dtype, shape)
    if isinstance(fill_value, TracedArray):
        return np.broadcast_to(cast(fill_value, d), dims)
    if type(fill_value) is int:
        checked_scalar(fill_value, DType.from_numpy(d))
    return np.full(dims, fill_value, d)


@implements(np.full)
def _full(shape: Any, fill_value: Any, dtype: Any = None, order: str = "C", **kw: Any) -> Any:
    # reached for a traced fill value (NumPy's np.full only dispatches on like=)
    dims = static_ints(shape, "shape")
    fill = as_tracer(fill_value)
    # np.full makes an array of the fill value first: a Python float is float64
    d = np.dtype(dtype) if dtype is not None else fill.dtype
    return np.broadcast_to(cast(fill, d), dims)


# -- what cannot be traced ---------------------------------------------------------------------


def _data_dependent_bool(name: str) -> Any:
    def reject(*args: Any, **kwargs: Any) -> Any:
        raise error(
            TracingError,
            f"np.{name} returns a Python bool computed from traced data, which only exists "
            "when the graph runs",
            hint="keep the test in the graph (np.all(np.isclose(a, b)), np.all(a == b)) and "
            "use np.where on its result, or compare outside the traced function",
        )

    return reject


for _f in (np.allclose, np.array_equal, np.array_equiv):
    implements(_f)(_data_dependent_bool(_f.__name__))


def _data_dependent_shape(name: str) -> Any:
    def reject(*args: Any, **kwargs: Any) -> Any:
        raise error(
            TracingError,
            f"np.{name} has a result shape that depends on traced data",
            hint="graphs have static shapes: use a mask with np.where(cond, x, 0) and sums "
            "instead of selecting elements",
        )

    return reject


for _f in (np.nonzero, np.argwhere, np.flatnonzero):
    implements(_f)(_data_dependent_shape(_f.__name__))


def _in_place(name: str) -> Any:
    def reject(*args: Any, **kwargs: Any) -> Any:
        raise in_place_error(f"np.{name}")

    return reject


for _f in (np.copyto, np.put, np.put_along_axis, np.place, np.putmask, np.fill_diagonal):
    implements(_f)(_in_place(_f.__name__))
