"""Reductions: sum, prod, max, min, mean, var, std, arg*, all, any, ptp,
count_nonzero, average and the nan* family (scans are in :mod:`.scans`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.ir import GraphcError, OpTypeError, UnsupportedError

from .array import TracedArray
from .dispatch import as_tracer, error, implements, no_out, normalize_axis
from .ops import cast, emit


def _emit_reduce(op: str, x: TracedArray, axes: tuple[int, ...], keepdims: bool) -> Any:
    return emit(x.trace, op, [x.trace.value_of(x)], axes=axes, keepdims=bool(keepdims))


def _reduction(op: str, x: Any, axis: Any, keepdims: bool, dtype: Any = None) -> Any:
    x = as_tracer(x)
    if dtype is not None:
        x = cast(x, dtype)
    axes = normalize_axis(axis, x.ndim)
    dt = x.value.type.dtype
    widens = op in ("reduce_sum", "reduce_prod") and dt.accumulator != dt
    if not axes:
        # an empty set of axes still widens small integers, as NumPy's sum does
        result = cast(x, dt.accumulator.np) if widens else x
    else:
        result = _emit_reduce(op, x, axes, keepdims)
    if dtype is not None and result.dtype != np.dtype(dtype):
        # dtype= fixes the accumulator type; integer wrap-around is the same after the cast
        result = cast(result, dtype)
    return result


def _reduced_shape(x: TracedArray, axes: tuple[int, ...], keepdims: bool) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return tuple(d for i, d in enumerate(x.shape) if i not in axes)


def _extremum(
    op: str, ufunc: Any, x: Any, axis: Any, keepdims: bool, initial: Any, name: str
) -> Any:
    x = as_tracer(x)
    axes = normalize_axis(axis, x.ndim)
    if any(x.shape[a] == 0 for a in axes):
        if initial is None:
            raise error(
                OpTypeError,
                f"zero-size array to reduction operation {name} which has no identity",
                hint="pass initial=... or reduce a non-empty axis",
            )
        return np.broadcast_to(
            cast(as_tracer(initial, x), x.dtype), _reduced_shape(x, axes, keepdims)
        )
    result = _emit_reduce(op, x, axes, keepdims) if axes else x
    if initial is None:
        return result
    # NumPy converts initial to the array's dtype (np.max(bools, initial=0) stays bool)
    start = (
        cast(initial, x.dtype) if isinstance(initial, TracedArray) else np.asarray(initial, x.dtype)
    )
    return ufunc(result, start)


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
    no_out("sum", out, where)
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
    no_out("prod", out, where)
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
    no_out("max", out, where)
    return _extremum("reduce_max", np.maximum, x, axis, keepdims, initial, "maximum")


@implements(np.min, np.amin)
def _min(
    x: Any,
    axis: Any = None,
    out: Any = None,
    keepdims: bool = False,
    initial: Any = None,
    where: Any = None,
) -> Any:
    no_out("min", out, where)
    return _extremum("reduce_min", np.minimum, x, axis, keepdims, initial, "minimum")


@implements(np.ptp)
def _ptp(x: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
    no_out("ptp", out)
    return np.max(x, axis=axis, keepdims=keepdims) - np.min(x, axis=axis, keepdims=keepdims)


def _count(x: TracedArray, axis: Any) -> int:
    return math.prod(x.shape[a] for a in normalize_axis(axis, x.ndim))


def _float_dtype(x: TracedArray, dtype: Any) -> Any:
    # NumPy averages integers and bools in float64
    return np.float64 if dtype is None and not x.value.type.dtype.is_float else dtype


@implements(np.mean)
def _mean(
    x: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    keepdims: bool = False,
    *,
    where: Any = None,
) -> Any:
    no_out("mean", out, where)
    x = as_tracer(x)
    total = _reduction("reduce_sum", x, axis, keepdims, _float_dtype(x, dtype))
    # NumPy divides the sum in place: an integer or bool dtype= truncates the mean
    return _divide_by_count(total, _count(x, axis))


def _variance_signature(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give ``impl(x, axis, dtype, ddof, keepdims)`` the signature of ``np.<name>``
    (var, std and their nan forms share it): ``out=``, ``where=`` and ``mean=``
    are refused, and ``correction=`` stands in for ``ddof``."""

    def wrap(impl: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(impl)
        def variance(
            x: Any,
            axis: Any = None,
            dtype: Any = None,
            out: Any = None,
            ddof: float = 0,
            keepdims: bool = False,
            *,
            where: Any = None,
            mean: Any = None,
            correction: Any = None,
        ) -> Any:
            no_out(name, out, where)
            if mean is not None:
                raise error(UnsupportedError, f"np.{name}: the 'mean=' argument is not supported")
            ddof = correction if correction is not None else ddof
            return impl(x, axis, dtype, ddof, keepdims)

        return variance

    return wrap


def _variance(x: Any, axis: Any, dtype: Any, ddof: float, keepdims: bool) -> Any:
    # NumPy's steps and dtypes: the mean in dtype= (truncated when it is an
    # integer type), the deviations in the promoted type, their squares summed
    # in dtype= again and divided in place.
    x = as_tracer(x)
    dtype = _float_dtype(x, dtype)
    n = _count(x, axis)
    mean = _divide_by_count(_reduction("reduce_sum", x, axis, True, dtype), n)
    centered = x - mean
    total = _reduction("reduce_sum", centered * centered, axis, keepdims, dtype)
    return _divide_by_count(total, max(n - ddof, 0))


def _root(variance: TracedArray, name: str) -> Any:
    """The square root kept in the variance's dtype, as np.std does."""
    if variance.value.type.dtype.is_float:
        return np.sqrt(variance)
    if variance.ndim:
        # NumPy takes this root in place, and an integer array cannot hold it
        raise error(
            OpTypeError,
            f"np.{name}: the square root of an array of dtype {variance.dtype} cannot be stored "
            "in that dtype (NumPy raises UFuncTypeError here)",
            hint="pass a float dtype=, or none",
        )
    # a NumPy scalar result is converted instead: truncated
    return cast(np.sqrt(cast(variance, np.float64)), variance.dtype)


_var = implements(np.var)(_variance_signature("var")(_variance))


@implements(np.std)
@_variance_signature("std")
def _std(x: Any, axis: Any, dtype: Any, ddof: float, keepdims: bool) -> Any:
    return _root(_variance(x, axis, dtype, ddof, keepdims), "std")


def _arg_reduction(op: str, x: Any, axis: Any, keepdims: bool) -> Any:
    x = as_tracer(x)
    if axis is None and x.size == 0:  # with an axis, the op's type rule checks its length
        raise error(OpTypeError, f"attempt to get {op} of an empty sequence")
    if axis is None:
        flat = np.reshape(x, (-1,))
        result = emit(x.trace, op, [x.trace.value_of(flat)], axis=0)
        return np.reshape(result, (1,) * x.ndim) if keepdims else result
    (a,) = normalize_axis(axis, x.ndim)
    return emit(x.trace, op, [x.trace.value_of(x)], axis=a, keepdims=bool(keepdims))


@implements(np.argmax)
def _argmax(x: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
    no_out("argmax", out)
    return _arg_reduction("argmax", x, axis, keepdims)


@implements(np.argmin)
def _argmin(x: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
    no_out("argmin", out)
    return _arg_reduction("argmin", x, axis, keepdims)


@implements(np.all)
def _all(
    x: Any, axis: Any = None, out: Any = None, keepdims: bool = False, *, where: Any = None
) -> Any:
    no_out("all", out, where)
    x = as_tracer(x)
    return np.sum(cast(x, np.bool_), axis=axis, keepdims=keepdims) == _count(x, axis)


@implements(np.any)
def _any(
    x: Any, axis: Any = None, out: Any = None, keepdims: bool = False, *, where: Any = None
) -> Any:
    no_out("any", out, where)
    return np.sum(cast(as_tracer(x), np.bool_), axis=axis, keepdims=keepdims) > 0


@implements(np.count_nonzero)
def _count_nonzero(x: Any, axis: Any = None, *, keepdims: bool = False) -> Any:
    return np.sum(as_tracer(x) != 0, axis=axis, keepdims=keepdims)


# -- NaN-ignoring variants -------------------------------------------------------------


def _replace_nan(x: Any, value: float) -> tuple[TracedArray, Any]:
    x = as_tracer(x)
    if not x.value.type.dtype.is_float:
        return x, None
    mask = np.isnan(x)
    return np.where(mask, value, x), mask


@implements(np.nansum)
def _nansum(
    x: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    keepdims: bool = False,
    initial: Any = None,
    where: Any = None,
) -> Any:
    return _sum(_replace_nan(x, 0)[0], axis, dtype, out, keepdims, initial, where)


@implements(np.nanprod)
def _nanprod(
    x: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    keepdims: bool = False,
    initial: Any = None,
    where: Any = None,
) -> Any:
    return _prod(_replace_nan(x, 1)[0], axis, dtype, out, keepdims, initial, where)


def _nan_extremum(reduce: Any, fill: float, x: Any, axis: Any, keepdims: bool, initial: Any) -> Any:
    filled, mask = _replace_nan(x, fill)
    result = reduce(filled, axis=axis, keepdims=keepdims, initial=initial)
    if mask is None:
        return result
    # an all-NaN slice gives NaN in NumPy (with a warning), not the fill value
    return np.where(np.all(mask, axis=axis, keepdims=keepdims), np.nan, result)


@implements(np.nanmax)
def _nanmax(
    x: Any,
    axis: Any = None,
    out: Any = None,
    keepdims: bool = False,
    initial: Any = None,
    where: Any = None,
) -> Any:
    no_out("nanmax", out, where)
    return _nan_extremum(np.max, -math.inf, x, axis, keepdims, initial)


@implements(np.nanmin)
def _nanmin(
    x: Any,
    axis: Any = None,
    out: Any = None,
    keepdims: bool = False,
    initial: Any = None,
    where: Any = None,
) -> Any:
    no_out("nanmin", out, where)
    return _nan_extremum(np.min, math.inf, x, axis, keepdims, initial)


def _require_inexact(dtype: Any) -> None:
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise error(
            OpTypeError,
            f"If a is inexact, then dtype must be inexact (got dtype={np.dtype(dtype)})",
            hint="NaN-ignoring means of float arrays need a float dtype=",
        )


def _divide_by_count(total: TracedArray, count: Any) -> Any:
    # NumPy divides in place, so the quotient keeps the numerator's dtype
    return cast(total / count, total.dtype)


@implements(np.nanmean)
def _nanmean(
    x: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    keepdims: bool = False,
    *,
    where: Any = None,
) -> Any:
    no_out("nanmean", out, where)
    filled, mask = _replace_nan(x, 0)
    if mask is None:
        return _mean(filled, axis, dtype, keepdims=keepdims)
    _require_inexact(dtype)
    count = np.sum(~mask, axis=axis, keepdims=keepdims)
    return _divide_by_count(np.sum(filled, axis=axis, dtype=dtype, keepdims=keepdims), count)


def _nan_variance(x: Any, axis: Any, dtype: Any, ddof: float, keepdims: bool) -> Any:
    filled, mask = _replace_nan(x, 0)
    if mask is None:
        return _variance(filled, axis, dtype, ddof, keepdims)
    _require_inexact(dtype)
    count = np.sum(~mask, axis=axis, keepdims=True)
    avg = _divide_by_count(np.sum(filled, axis=axis, dtype=dtype, keepdims=True), count)
    centered = cast(np.where(mask, 0, filled - avg), filled.dtype)
    var = np.sum(centered * centered, axis=axis, dtype=dtype, keepdims=keepdims)
    dof = (count if keepdims else np.reshape(count, var.shape)) - ddof
    return np.where(dof <= 0, np.nan, _divide_by_count(var, dof))


_nanvar = implements(np.nanvar)(_variance_signature("nanvar")(_nan_variance))


@implements(np.nanstd)
@_variance_signature("nanstd")
def _nanstd(x: Any, axis: Any, dtype: Any, ddof: float, keepdims: bool) -> Any:
    return _root(_nan_variance(x, axis, dtype, ddof, keepdims), "nanstd")


@implements(np.nancumsum)
def _nancumsum(x: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    return np.cumsum(_replace_nan(x, 0)[0], axis, dtype, out)


@implements(np.nancumprod)
def _nancumprod(x: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    return np.cumprod(_replace_nan(x, 1)[0], axis, dtype, out)


@implements(np.average)
def _average(
    x: Any,
    axis: Any = None,
    weights: Any = None,
    returned: bool = False,
    *,
    keepdims: bool = False,
) -> Any:
    x = as_tracer(x, weights)
    if weights is None:
        avg = np.mean(x, axis=axis, keepdims=keepdims)
        scale = avg.dtype.type(_count(x, axis)) if returned else None
        return (avg, np.broadcast_to(scale, avg.shape)) if returned else avg
    if not isinstance(weights, TracedArray) and np.any(
        np.sum(weights, axis=_weights_axis(x, weights, axis)) == 0
    ):
        raise error(WeightsSumToZero, "Weights sum to zero, can't be normalized")
    w = as_tracer(weights, x)
    if x.dtype.kind in "biu":
        dtype = np.result_type(x.dtype, w.dtype, "f8")
    else:
        dtype = np.result_type(x.dtype, w.dtype)
    if w.shape != x.shape:
        if axis is None:
            raise error(OpTypeError, "axis must be specified when shapes of a and weights differ")
        axes = normalize_axis(axis, x.ndim)
        if w.shape != tuple(x.shape[a] for a in axes):
            raise error(
                OpTypeError, "shape of weights must be consistent with shape of a along axis"
            )
        # lay the weights along the averaged axes so they broadcast
        order = sorted(range(len(axes)), key=lambda i: axes[i])
        w = np.transpose(w, order)
        w = np.reshape(w, tuple(x.shape[i] if i in axes else 1 for i in range(x.ndim)))
    w = np.broadcast_to(w, x.shape)
    scale = np.sum(cast(w, dtype), axis=axis, keepdims=keepdims)
    avg = np.sum(cast(x, dtype) * cast(w, dtype), axis=axis, keepdims=keepdims) / scale
    return (avg, scale) if returned else avg


class WeightsSumToZero(GraphcError, ZeroDivisionError):
    """np.average with constant weights whose total is zero (NumPy raises too)."""


def _weights_axis(x: TracedArray, weights: Any, axis: Any) -> Any:
    # constant weights: NumPy refuses a zero total, and so can we, before running
    return axis if np.shape(weights) == x.shape else None
