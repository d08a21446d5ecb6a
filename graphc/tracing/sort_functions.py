"""Sorting and order statistics: sort, argsort, partition, argpartition,
searchsorted, median, nanmedian, quantile, percentile (and the nan- and
array-API spellings that reduce to them).

Everything is built on one IR op, ``argsort`` (stable, NaNs last, along the
last axis): sorted values are ``take_along_axis`` of the permutation, so
gradients flow back through the permutation to the elements that were
picked; ties go where NumPy's stable order puts them. ``partition`` and
``argpartition`` return a full sort, which meets their contract (the k-th
element in place, smaller ones before it, larger after) though the order of
the other elements may differ from NumPy's.

>>> import numpy as np, graphc as gc
>>> gc.grad(lambda x: np.sort(x)[-1])(np.array([3.0, 1.0, 2.0]))
array([1., 0., 0.])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from graphc.ir import OpTypeError, UnsupportedError

from .array import TracedArray
from .dispatch import as_tracer, error, implements, no_out, normalize_axis, static_ints
from .ops import cast, emit


def argsort_last(x: TracedArray) -> TracedArray:
    """The ``argsort`` op on the last axis (bools sort as 0/1)."""
    if x.value.type.dtype.is_bool:
        x = cast(x, np.int64)
    return emit(x.trace, "argsort", [x.trace.value_of(x)])


def _axis_last(x: Any, axis: Any) -> tuple[TracedArray, int]:
    x = as_tracer(x)
    if axis is None:
        return np.reshape(x, (-1,)), 0
    if x.ndim == 0:
        raise error(OpTypeError, f"axis {axis} is out of bounds for array of dimension 0")
    (a,) = normalize_axis(axis, x.ndim, allow_none=False)
    return x, a


@implements(np.argsort)
def _argsort(
    a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *, stable: Any = None
) -> Any:
    _no_order("argsort", order)
    x, ax = _axis_last(a, axis)
    idx = argsort_last(np.moveaxis(x, ax, -1))
    return np.moveaxis(idx, -1, ax)


@implements(np.sort)
def _sort(
    a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *, stable: Any = None
) -> Any:
    _no_order("sort", order)
    x, ax = _axis_last(a, axis)
    last = np.moveaxis(x, ax, -1)
    return np.moveaxis(np.take_along_axis(last, argsort_last(last), -1), -1, ax)


def _check_kth(kth: Any, n: int) -> None:
    for k in static_ints(kth, "kth"):
        if not -n <= k < n:
            raise error(OpTypeError, f"kth(={k}) out of bounds ({n})")


@implements(np.partition)
def _partition(a: Any, kth: Any, axis: Any = -1, kind: Any = None, order: Any = None) -> Any:
    x, ax = _axis_last(a, axis)
    _check_kth(kth, x.shape[ax])
    return _sort(x, ax, order=order)


@implements(np.argpartition)
def _argpartition(a: Any, kth: Any, axis: Any = -1, kind: Any = None, order: Any = None) -> Any:
    x, ax = _axis_last(a, axis)
    _check_kth(kth, x.shape[ax])
    return _argsort(x, ax, order=order)


def _no_order(name: str, order: Any) -> None:
    if order is not None:
        raise error(UnsupportedError, f"np.{name}: order= (structured arrays) is not supported")


@implements(np.searchsorted)
def _searchsorted(a: Any, v: Any, side: str = "left", sorter: Any = None) -> Any:
    a = as_tracer(a, v)
    if a.ndim != 1:
        raise error(OpTypeError, "np.searchsorted needs a 1-d sorted array")
    if side not in ("left", "right"):
        raise error(OpTypeError, f"side must be 'left' or 'right', got {side!r}")
    if sorter is not None:
        a = np.take(a, sorter)
    v = as_tracer(v, a)
    col = np.expand_dims(v, -1)
    # The insertion point is the count of elements before it: O(len(a)) per
    # query, but branch-free. NaN sorts after every number, as in NumPy.
    if side == "left":
        before = (a < col) | (np.isnan(col) & ~np.isnan(a))
    else:
        before = (a <= col) | np.isnan(col)
    return np.sum(before, axis=-1, dtype=np.int64)


# -- quantiles ------------------------------------------------------------------------------


def _sorted_last(x: TracedArray, axis: Any) -> tuple[TracedArray, tuple[int, ...]]:
    """``x`` with the reduced axes folded into one last axis, sorted there;
    also the reduced axes."""
    axes = normalize_axis(axis, x.ndim)
    rest = tuple(i for i in range(x.ndim) if i not in axes)
    moved = np.transpose(x, rest + axes)
    folded = np.reshape(moved, tuple(x.shape[i] for i in rest) + (-1,))
    if not folded.value.type.dtype.is_float:
        folded = cast(folded, np.float64)
    return np.take_along_axis(folded, argsort_last(folded), -1), axes


def _pick(s: TracedArray, index: Any) -> TracedArray:
    """``s[..., index]`` for an index array broadcast over the leading dims."""
    index = np.broadcast_to(np.expand_dims(index, -1), s.shape[:-1] + (1,))
    return np.take_along_axis(s, index, -1)[..., 0]


def _lerp(lo_val: Any, hi_val: Any, t: Any) -> Any:
    # NumPy's form: exact at both ends and monotone.
    diff = hi_val - lo_val
    return np.where(t >= 0.5, hi_val - diff * (1 - t), lo_val + diff * t)


def _finish(result: Any, x: TracedArray, axes: tuple[int, ...], keepdims: bool, lead: int) -> Any:
    if keepdims:
        shape = result.shape[:lead]
        kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        result = np.reshape(result, shape + kept)
    return result


def _quantile_sorted(s: TracedArray, q: Any, count: Any) -> TracedArray:
    """Linear-interpolation quantiles of the first ``count`` entries of each
    sorted row (count: a static int or an int tracer per row)."""
    q = np.asarray(q, dtype=s.dtype) if not isinstance(q, TracedArray) else q
    qs = np.reshape(q, q.shape + (1,) * (s.ndim - 1))  # q's dims lead, as in NumPy
    last = cast(count - 1, s.dtype) if isinstance(count, TracedArray) else count - 1
    position = qs * last
    lo = np.floor(position)
    t = position - lo
    top = np.maximum(count - 1, 0)
    lo_i = np.minimum(np.maximum(cast(lo, np.int64), 0), top)
    hi_i = np.minimum(lo_i + 1, top)
    if not isinstance(lo_i, TracedArray):
        lo_i, hi_i = np.asarray(lo_i), np.asarray(hi_i)
    lead = s.shape[:-1]
    sb = np.broadcast_to(s, q.shape + s.shape) if q.ndim else s
    lo_b = np.broadcast_to(lo_i, q.shape + lead)
    hi_b = np.broadcast_to(hi_i, q.shape + lead)
    return _lerp(_pick(sb, lo_b), _pick(sb, hi_b), np.broadcast_to(t, q.shape + lead))


def _check_q(q: Any, scale: float) -> Any:
    if isinstance(q, TracedArray):
        return q / scale if scale != 1 else q
    arr = np.asarray(q, dtype=np.float64) / scale
    if np.any((arr < 0) | (arr > 1)) or np.any(np.isnan(arr)):
        what = "Percentiles must be in the range [0, 100]" if scale != 1 else "Quantiles"
        raise error(OpTypeError, what if scale != 1 else f"{what} must be in the range [0, 1]")
    return arr


def _quantile(
    a: Any, q: Any, axis: Any, method: str, keepdims: bool, name: str, scale: float,
    out: Any = None, **unsupported: Any,
) -> Any:  # fmt: skip
    no_out(name, out)
    if method != "linear":
        raise error(
            UnsupportedError,
            f"np.{name}: method={method!r} is not supported on traced arrays",
            hint="use the default method='linear'",
        )
    for key, value in unsupported.items():
        if value is not None and value is not False:
            raise error(UnsupportedError, f"np.{name}: {key}= is not supported on traced arrays")
    x = as_tracer(a)
    s, axes = _sorted_last(x, axis)
    if not isinstance(q, (float, int, TracedArray)):
        # A q array takes part in dtype promotion (float32 data, float64 q -> float64).
        s = cast(s, np.result_type(s.dtype, np.asarray(q).dtype))
    q = _check_q(q, scale)
    result = _quantile_sorted(s, q, s.shape[-1])
    # NaN anywhere in a row makes its quantiles NaN (NaNs sort last).
    has_nan = np.isnan(s[..., -1])
    result = np.where(has_nan, np.asarray(math.nan, result.dtype), result)
    return _finish(result, x, axes, keepdims, np.ndim(q))


@implements(np.quantile)
def _np_quantile(
    a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
    method: str = "linear", keepdims: bool = False, *, weights: Any = None,
    interpolation: Any = None,
) -> Any:  # fmt: skip
    return _quantile(
        a, q, axis, method, keepdims, "quantile", 1.0, out, weights=weights,
        interpolation=interpolation,
    )  # fmt: skip


@implements(np.percentile)
def _np_percentile(
    a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
    method: str = "linear", keepdims: bool = False, *, weights: Any = None,
    interpolation: Any = None,
) -> Any:  # fmt: skip
    return _quantile(
        a, q, axis, method, keepdims, "percentile", 100.0, out, weights=weights,
        interpolation=interpolation,
    )  # fmt: skip


@implements(np.median)
def _median(
    a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
    keepdims: bool = False,
) -> Any:  # fmt: skip
    return _quantile(a, 0.5, axis, "linear", keepdims, "median", 1.0, out)


@implements(np.nanmedian)
def _nanmedian(
    a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
    keepdims: bool = False,
) -> Any:  # fmt: skip
    no_out("nanmedian", out)
    x = as_tracer(a)
    s, axes = _sorted_last(x, axis)
    # NaNs sort last: the median of the first `count` entries ignores them.
    count = np.sum(~np.isnan(s), axis=-1, dtype=np.int64)
    result = _quantile_sorted(s, 0.5, count)
    result = np.where(count == 0, np.asarray(math.nan, result.dtype), result)
    return _finish(result, x, axes, keepdims, 0)


def _nan_quantile(
    a: Any, q: Any, axis: Any, method: str, keepdims: bool, name: str, scale: float, out: Any
) -> Any:
    no_out(name, out)
    if method != "linear":
        raise error(
            UnsupportedError,
            f"np.{name}: method={method!r} is not supported on traced arrays",
            hint="use the default method='linear'",
        )
    x = as_tracer(a)
    s, axes = _sorted_last(x, axis)
    if not isinstance(q, (float, int, TracedArray)):
        s = cast(s, np.result_type(s.dtype, np.asarray(q).dtype))
    q = _check_q(q, scale)
    # NaNs sort last: the quantiles of the first `count` entries ignore them.
    count = np.sum(~np.isnan(s), axis=-1, dtype=np.int64)
    result = _quantile_sorted(s, q, count)
    result = np.where(count == 0, np.asarray(math.nan, result.dtype), result)
    return _finish(result, x, axes, keepdims, np.ndim(q))


@implements(np.nanquantile)
def _np_nanquantile(
    a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
    method: str = "linear", keepdims: bool = False, **options: Any,
) -> Any:  # fmt: skip
    _no_options("nanquantile", options)
    return _nan_quantile(a, q, axis, method, keepdims, "nanquantile", 1.0, out)


@implements(np.nanpercentile)
def _np_nanpercentile(
    a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
    method: str = "linear", keepdims: bool = False, **options: Any,
) -> Any:  # fmt: skip
    _no_options("nanpercentile", options)
    return _nan_quantile(a, q, axis, method, keepdims, "nanpercentile", 100.0, out)


def _no_options(name: str, options: dict[str, Any]) -> None:
    for key, value in options.items():
        if value is not None:
            raise error(UnsupportedError, f"np.{name}: {key}= is not supported on traced arrays")
