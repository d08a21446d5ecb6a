"""Sequences with traced endpoints and spacings: np.linspace, np.logspace,
np.geomspace, and np.gradient. Each follows NumPy's own steps (and so its
rounding and dtypes); data-dependent branches in NumPy's code become
selects."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from graphc.ir import OpTypeError, UnsupportedError

from .array import TracedArray
from .dispatch import as_tracer, error, implements, normalize_axis, static_int
from .ops import cast, result_dtype


def _float_type(*args: Any) -> Any:
    dt = result_dtype(*args)
    return dt.np if dt.is_float else np.dtype(np.float64)


def _set_ends(y: Any, first: Any, last: Any) -> Any:
    """``y`` (sequence along axis 0) with ``y[0] = first`` and/or ``y[-1] = last``
    (``None`` leaves an end as it is), built without writing in place."""
    parts = []
    body = y
    if first is not None:
        parts.append(np.broadcast_to(cast(first, y.dtype), (1,) + y.shape[1:]))
        body = body[1:]
    if last is not None:
        body = body[:-1]
    parts.append(body)
    if last is not None:
        parts.append(np.broadcast_to(cast(last, y.dtype), (1,) + y.shape[1:]))
    return np.concatenate(parts, axis=0) if len(parts) > 1 else y


@implements(np.linspace)
def _linspace(
    start: Any,
    stop: Any,
    num: Any = 50,
    endpoint: bool = True,
    retstep: bool = False,
    dtype: Any = None,
    axis: Any = 0,
    *,
    device: Any = None,
) -> Any:
    num = static_int(num, "num")
    if num < 0:
        raise error(OpTypeError, f"Number of samples, {num}, must be non-negative.")
    div = num - 1 if endpoint else num
    start, stop = as_tracer(start, stop), as_tracer(stop, start)
    dt = _float_type(start, stop)
    delta = cast(stop, dt) - cast(start, dt)
    y: Any = np.arange(0, num, dtype=dt).reshape((-1,) + (1,) * delta.ndim)
    step: Any
    if div > 0:
        step = delta / div
        # NumPy divides first when a step underflows to zero (denormal spacings)
        any_zero = np.any(step == 0)
        y = np.where(any_zero, y / np.asarray(div, dt) * delta, y * step)
    else:
        step = math.nan
        y = y * delta
    y = cast(y + cast(start, dt), dt)
    if endpoint and num > 1:
        y = _set_ends(y, None, stop)
    if y.ndim:
        (ax,) = normalize_axis(axis, y.ndim)
        y = np.moveaxis(y, 0, ax)
    if dtype is not None and np.issubdtype(np.dtype(dtype), np.integer):
        y = np.floor(y)
    y = cast(y, dtype if dtype is not None else dt)
    return (y, step) if retstep else y


@implements(np.logspace)
def _logspace(
    start: Any,
    stop: Any,
    num: Any = 50,
    endpoint: bool = True,
    base: Any = 10.0,
    dtype: Any = None,
    axis: Any = 0,
) -> Any:
    if not isinstance(base, (float, int)) and np.ndim(base):
        ndmax = len(np.broadcast_shapes(np.shape(start), np.shape(stop), np.shape(base)))
        start, stop, base = (
            np.reshape(v, (1,) * (ndmax - np.ndim(v)) + np.shape(v)) for v in (start, stop, base)
        )
        base = np.expand_dims(base, axis)
    y = _linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    result = np.power(base, y)
    return result if dtype is None else cast(result, dtype)


@implements(np.geomspace)
def _geomspace(
    start: Any, stop: Any, num: Any = 50, endpoint: bool = True, dtype: Any = None, axis: Any = 0
) -> Any:
    num = static_int(num, "num")
    for end in (start, stop):
        if not isinstance(end, TracedArray) and np.any(np.asarray(end) == 0):
            raise error(OpTypeError, "Geometric sequence cannot include zero")
    start, stop = as_tracer(start, stop), as_tracer(stop, start)
    # NumPy's working dtype includes a zero of dtype= (float64 when None)
    dt = np.result_type(
        *[0.0 if v.weak else np.zeros((), v.dtype) for v in (start, stop)], np.zeros((), dtype)
    )
    start, stop = cast(start, dt), cast(stop, dt)
    # a negative start: compute for -start, -stop and flip back, as NumPy does
    sign = np.sign(start)
    start = start / sign
    stop = stop / sign
    result = _logspace(np.log10(start), np.log10(stop), num=num, endpoint=endpoint, dtype=dt)
    if num > 0:
        result = _set_ends(result, start, stop if num > 1 and endpoint else None)
    result = result * sign
    # NumPy refuses a zero endpoint; a traced one is only known when the graph runs: NaN
    result = np.where((start == 0) | (stop == 0), np.nan, result)
    if result.ndim and axis != 0:
        result = np.moveaxis(result, 0, normalize_axis(axis, result.ndim)[0])
    return cast(result, dtype if dtype is not None else dt)


# -- np.gradient -------------------------------------------------------------------------------


def _spacings(varargs: tuple[Any, ...], f: TracedArray, axes: tuple[int, ...]) -> list[Any]:
    if not varargs:
        return [1.0] * len(axes)
    if len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        return list(varargs) * len(axes)
    if len(varargs) != len(axes):
        raise error(OpTypeError, "invalid number of arguments")
    out: list[Any] = []
    for ax, d in zip(axes, varargs):
        if np.ndim(d) == 0:
            out.append(d)
            continue
        if isinstance(d, TracedArray):
            raise error(
                UnsupportedError,
                "np.gradient: traced coordinate arrays are not supported (NumPy picks its "
                "formula by whether they are evenly spaced, which depends on the data)",
                hint="pass constant coordinates, or a (traced) scalar spacing per axis",
            )
        coords = np.asarray(d)
        if coords.ndim != 1:
            raise error(OpTypeError, "distances must be either scalars or 1d")
        if len(coords) != f.shape[ax]:
            raise error(
                OpTypeError,
                "when 1d, distances must match the length of the corresponding dimension",
            )
        if np.issubdtype(coords.dtype, np.integer):
            coords = coords.astype(np.float64)
        diffx = np.diff(coords)
        out.append(diffx[0] if (diffx == diffx[0]).all() else diffx)
    return out


def _along(f: Any, axis: int, index: Any) -> Any:
    key: list[Any] = [slice(None)] * f.ndim
    key[axis] = index
    return f[tuple(key)]


def _shaped(c: Any, ndim: int, axis: int) -> Any:
    shape = [1] * ndim
    shape[axis] = -1
    return np.reshape(c, shape)


@implements(np.gradient)
def _gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    f = as_tracer(f, *varargs)
    axes = normalize_axis(axis, f.ndim)
    dxs = _spacings(varargs, f, axes)
    if edge_order > 2:
        raise error(OpTypeError, "'edge_order' greater than 2 not supported")
    if f.value.type.dtype.is_float:
        otype = f.dtype
    else:
        f, otype = cast(f, np.float64), np.dtype(np.float64)
    outs = []
    for ax, dx in zip(axes, dxs):
        if f.shape[ax] < edge_order + 1:
            raise error(
                OpTypeError,
                "Shape of array too small to calculate a numerical gradient, at least "
                "(edge_order + 1) elements are required.",
            )
        uniform = np.ndim(dx) == 0
        lo, mid, hi = (
            _along(f, ax, slice(None, -2)),
            _along(f, ax, slice(1, -1)),
            _along(f, ax, slice(2, None)),
        )
        if uniform:
            interior = (hi - lo) / (2.0 * dx)
        else:
            dx1, dx2 = dx[0:-1], dx[1:]
            a = _shaped(-(dx2) / (dx1 * (dx1 + dx2)), f.ndim, ax)
            b = _shaped((dx2 - dx1) / (dx1 * dx2), f.ndim, ax)
            c = _shaped(dx1 / (dx2 * (dx1 + dx2)), f.ndim, ax)
            interior = a * lo + b * mid + c * hi

        def point(i: int, ax: int = ax) -> Any:
            return _along(f, ax, slice(i, i + 1 if i != -1 else None))

        if edge_order == 1:
            first = (point(1) - point(0)) / (dx if uniform else dx[0])
            last = (point(-1) - point(-2)) / (dx if uniform else dx[-1])
        else:
            if uniform:
                a, b, c = -1.5 / dx, 2.0 / dx, -0.5 / dx
            else:
                d1, d2 = dx[0], dx[1]
                a = -(2.0 * d1 + d2) / (d1 * (d1 + d2))
                b = (d1 + d2) / (d1 * d2)
                c = -d1 / (d2 * (d1 + d2))
            first = a * point(0) + b * point(1) + c * point(2)
            if uniform:
                a, b, c = 0.5 / dx, -2.0 / dx, 1.5 / dx
            else:
                d1, d2 = dx[-2], dx[-1]
                a = d2 / (d1 * (d1 + d2))
                b = -(d2 + d1) / (d1 * d2)
                c = (2.0 * d2 + d1) / (d2 * (d1 + d2))
            last = a * point(-3) + b * point(-2) + c * point(-1)
        parts = [cast(p, otype) for p in (first, interior, last)]
        outs.append(np.concatenate(parts, axis=ax))
    return outs[0] if len(outs) == 1 else tuple(outs)
