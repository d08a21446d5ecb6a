"""Scans: cumsum, cumprod, cumulative_sum/prod and ufunc.accumulate.

cumsum is an IR op. The others are built from slices, pads and the
elementwise op: by doubling where regrouping is exact (integer products,
max, min) and in NumPy's left-to-right order where it is not (float products).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.ir import OpTypeError

from .array import TracedArray
from .dispatch import as_tracer, error, implements, no_out, normalize_axis
from .ops import cast, emit


def _scan_input(x: Any, axis: Any, dtype: Any) -> tuple[TracedArray, int]:
    x = as_tracer(x)
    if dtype is not None:
        x = cast(x, dtype)
    if axis is None:
        x = np.reshape(x, (-1,))
        axis = 0
    (a,) = normalize_axis(axis, x.ndim)
    return x, a


def _take_range(x: TracedArray, axis: int, start: int, stop: int) -> Any:
    return x[(slice(None),) * axis + (slice(start, stop),)]


def associative_scan(x: TracedArray, axis: int, combine: Callable[..., Any], identity: Any) -> Any:
    """Inclusive scan by doubling (Hillis-Steele): log2(n) steps of ``combine``.

    Only for operations that are exactly associative (integer products,
    max, min): the grouping differs from NumPy's left-to-right order.
    """
    n = x.shape[axis]
    step = 1
    while step < n:
        shifted = _take_range(x, axis, 0, n - step)
        low = tuple(step if i == axis else 0 for i in range(x.ndim))
        padded = emit(
            x.trace,
            "pad",
            [x.trace.value_of(shifted), x.trace.builder.literal(identity, x.value.type.dtype)],
            low=low,
            high=(0,) * x.ndim,
            interior=(0,) * x.ndim,
        )
        x = combine(x, padded)
        step *= 2
    return x


def sequential_scan(x: TracedArray, axis: int, combine: Callable[..., Any]) -> Any:
    """Inclusive scan in NumPy's left-to-right order (one node pair per element)."""
    n = x.shape[axis]
    if n <= 1:
        return x
    parts = [_take_range(x, axis, 0, 1)]
    for i in range(1, n):
        parts.append(combine(parts[-1], _take_range(x, axis, i, i + 1)))
    return np.concatenate(parts, axis=axis)


def _accumulating(x: TracedArray) -> TracedArray:
    dtype = x.value.type.dtype
    return cast(x, dtype.accumulator.np) if dtype.accumulator != dtype else x


@implements(np.cumsum)
def _cumsum(x: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    no_out("cumsum", out)
    x, a = _scan_input(x, axis, dtype)
    result = emit(x.trace, "cumsum", [x.trace.value_of(x)], axis=a)
    return cast(result, dtype) if dtype is not None else result


@implements(np.cumprod)
def _cumprod(x: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    no_out("cumprod", out)
    x, a = _scan_input(x, axis, dtype)
    x = _accumulating(x) if dtype is None else x
    if x.value.type.dtype.is_float:
        # float products round differently when regrouped: keep NumPy's order
        return sequential_scan(x, a, np.multiply)
    return associative_scan(x, a, np.multiply, True if x.dtype == np.bool_ else 1)


def extremum_scan(ufunc: Any, x: Any, axis: Any = 0, dtype: Any = None) -> Any:
    """``np.maximum.accumulate`` / ``np.minimum.accumulate``: exact under regrouping."""
    x, a = _scan_input(x, 0 if axis is None else axis, dtype)
    d = x.value.type.dtype
    is_max = ufunc is np.maximum
    if d.is_float:
        identity: Any = -math.inf if is_max else math.inf
    elif d.is_int:
        info = np.iinfo(d.np)
        identity = int(info.min if is_max else info.max)
    else:
        identity = not is_max
    return associative_scan(x, a, ufunc, identity)


@implements(getattr(np, "cumulative_sum", np.cumsum))
def _cumulative_sum(
    x: Any,
    /,
    *,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    include_initial: bool = False,
) -> Any:
    return _cumulative(np.cumsum, 0, x, axis, dtype, out, include_initial)


@implements(getattr(np, "cumulative_prod", np.cumprod))
def _cumulative_prod(
    x: Any,
    /,
    *,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    include_initial: bool = False,
) -> Any:
    return _cumulative(np.cumprod, 1, x, axis, dtype, out, include_initial)


def _cumulative(
    scan: Any, identity: int, x: Any, axis: Any, dtype: Any, out: Any, include_initial: bool
) -> Any:
    no_out(scan.__name__, out)
    x = as_tracer(x)
    if axis is None:
        if x.ndim > 1:
            raise error(OpTypeError, "axis must be given for arrays with more than one dimension")
        axis = 0
    result = scan(x, axis=axis, dtype=dtype)
    if not include_initial:
        return result
    (a,) = normalize_axis(axis, result.ndim)
    pad = [(0, 0)] * result.ndim
    pad[a] = (1, 0)
    return np.pad(result, pad, constant_values=identity)
