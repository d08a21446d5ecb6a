"""NumPy ufuncs on traced arrays (NEP 13).

Dtypes come from NumPy itself: ``ufunc.resolve_dtypes`` picks the loop NumPy
would run (with Python scalars weak, NEP 50), operands are cast to the loop's
dtypes, and the IR op runs on equal dtypes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.special

from graphc.ir import UnsupportedError, format_message

from .array import TracedArray
from .context import user_location
from .ops import dtype_spec, emit, is_weak, operand, to_dtype, trace_of

# ufunc -> IR op with the same elementwise semantics
DIRECT: dict[Any, str] = {
    np.add: "add",
    np.subtract: "sub",
    np.multiply: "mul",
    np.true_divide: "div",
    np.floor_divide: "floordiv",
    np.remainder: "rem",
    np.power: "pow",
    np.maximum: "max",
    np.minimum: "min",
    np.arctan2: "atan2",
    np.bitwise_and: "and",
    np.bitwise_or: "or",
    np.bitwise_xor: "xor",
    np.equal: "eq",
    np.not_equal: "ne",
    np.less: "lt",
    np.less_equal: "le",
    np.greater: "gt",
    np.greater_equal: "ge",
    np.negative: "neg",
    np.exp: "exp",
    np.exp2: "exp2",
    np.expm1: "expm1",
    np.log: "log",
    np.log2: "log2",
    np.log10: "log10",
    np.log1p: "log1p",
    np.sqrt: "sqrt",
    np.cbrt: "cbrt",
    np.tanh: "tanh",
    np.sin: "sin",
    np.cos: "cos",
    np.tan: "tan",
    np.arcsin: "asin",
    np.arccos: "acos",
    np.arctan: "atan",
    np.sinh: "sinh",
    np.cosh: "cosh",
    np.arcsinh: "asinh",
    np.arccosh: "acosh",
    np.arctanh: "atanh",
    np.absolute: "abs",
    np.sign: "sign",
    np.floor: "floor",
    np.ceil: "ceil",
    np.rint: "round",
    np.invert: "not",
    np.isnan: "isnan",
    np.isinf: "isinf",
    np.isfinite: "isfinite",
    np.matmul: "matmul",
    scipy.special.erf: "erf",
    scipy.special.expit: "sigmoid",
}


def apply_ufunc(ufunc: Any, inputs: Sequence[Any], kwargs: dict[str, Any] | None = None) -> Any:
    """Apply ``ufunc`` to ``inputs`` (at least one a tracer), NumPy-style."""
    kwargs = dict(kwargs or {})
    dtype = kwargs.pop("dtype", None)
    for key in ("out", "where"):
        value = kwargs.pop(key, None)
        if value is not None and not (key == "out" and value == (None,) * len(value)):
            raise UnsupportedError(
                format_message(
                    f"np.{ufunc.__name__}: the '{key}=' argument is not supported on traced arrays",
                    loc=user_location(3),
                    hint="write the result to a new array (y = np.f(x)) or use np.where",
                )
            )
    kwargs.pop("casting", None)
    kwargs.pop("order", None)
    kwargs.pop("subok", None)
    if kwargs:
        raise UnsupportedError(
            format_message(
                f"np.{ufunc.__name__}: unsupported argument(s) {', '.join(kwargs)}",
                loc=user_location(3),
            )
        )
    if dtype is not None:
        from .ops import cast

        inputs = [
            cast(x, dtype) if isinstance(x, TracedArray) else np.asarray(x, dtype) for x in inputs
        ]
    op = DIRECT.get(ufunc)
    if op is not None:
        return _direct(ufunc, op, inputs)
    composite = COMPOSITE.get(ufunc)
    if composite is not None:
        return composite(*inputs)
    raise UnsupportedError(
        format_message(
            f"np.{getattr(ufunc, '__name__', ufunc)} is not supported on traced arrays",
            loc=user_location(3),
            hint="see the README's table of supported NumPy functions",
        )
    )


def _direct(ufunc: Any, op: str, inputs: Sequence[Any]) -> Any:
    trace = trace_of(*inputs)
    try:
        loop = ufunc.resolve_dtypes((*[_spec(x) for x in inputs], None))
    except (TypeError, np.exceptions.DTypePromotionError) as exc:
        shown = ", ".join(str(_describe(x)) for x in inputs)
        raise UnsupportedError(
            format_message(
                f"np.{ufunc.__name__} is not defined for ({shown})",
                loc=user_location(4),
                hint=str(exc),
            )
        ) from None
    dtypes = [to_dtype(d) for d in loop]
    operands = [operand(trace, x, d) for x, d in zip(inputs, dtypes)]
    weak = all(is_weak(x) for x in inputs)
    return emit(trace, op, operands, weak=weak)


def _spec(x: Any) -> Any:
    spec = dtype_spec(x)
    return np.dtype(bool) if spec is bool else spec


def _describe(x: Any) -> Any:
    if isinstance(x, TracedArray):
        return x.value.type
    return type(x).__name__


def apply_ufunc_method(
    ufunc: Any, method: str, inputs: Sequence[Any], kwargs: dict[str, Any]
) -> Any:
    """Entry point of ``TracedArray.__array_ufunc__``."""
    if method == "__call__":
        return apply_ufunc(ufunc, inputs, kwargs)
    if method == "reduce":
        return _reduce(ufunc, inputs, kwargs)
    if method == "accumulate" and ufunc is np.add:
        (x,) = inputs
        return np.cumsum(x, axis=kwargs.get("axis", 0), dtype=kwargs.get("dtype"))
    if method == "outer":
        x, y = inputs
        y_nd = np.ndim(y)
        return apply_ufunc(ufunc, (np.reshape(x, np.shape(x) + (1,) * y_nd), y), kwargs)
    raise UnsupportedError(
        format_message(
            f"np.{ufunc.__name__}.{method} is not supported on traced arrays",
            loc=user_location(3),
            hint="for np.add.at use gc.scatter_add; for reductions use np.sum, np.max, ...",
        )
    )


_REDUCERS: dict[Any, Callable[..., Any]] = {
    np.add: np.sum,
    np.multiply: np.prod,
    np.maximum: np.max,
    np.minimum: np.min,
    np.logical_and: np.all,
    np.logical_or: np.any,
}


def _reduce(ufunc: Any, inputs: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    reducer = _REDUCERS.get(ufunc)
    if reducer is None or len(inputs) != 1:
        raise UnsupportedError(
            format_message(
                f"np.{ufunc.__name__}.reduce is not supported on traced arrays",
                loc=user_location(3),
            )
        )
    kwargs = dict(kwargs)
    axis = kwargs.pop("axis", 0)
    kwargs.pop("out", None)
    return reducer(inputs[0], axis=axis, **kwargs)


# -- composites: ufuncs written with other ops -----------------------------------


def _trunc(x: Any) -> Any:
    return np.where(x < 0, np.ceil(x), np.floor(x))


def _fmax(x: Any, y: Any) -> Any:
    return np.where(np.isnan(y), x, np.where(np.isnan(x), y, np.maximum(x, y)))


def _fmin(x: Any, y: Any) -> Any:
    return np.where(np.isnan(y), x, np.where(np.isnan(x), y, np.minimum(x, y)))


def _logaddexp(x: Any, y: Any) -> Any:
    m = np.maximum(x, y)
    # equal arguments (including both -inf) would give inf - inf below
    d = np.where(x == y, 0.0, -np.abs(x - y))
    return m + np.log1p(np.exp(d))


def _logaddexp2(x: Any, y: Any) -> Any:
    m = np.maximum(x, y)
    d = np.where(x == y, 0.0, -np.abs(x - y))
    return m + np.log1p(np.exp2(d)) / math.log(2)


def _logical(ufunc: Any) -> Callable[..., Any]:
    def apply(*xs: Any) -> Any:
        from .ops import cast

        return ufunc(
            *[cast(x, np.bool_) if isinstance(x, TracedArray) else np.asarray(x, bool) for x in xs]
        )

    return apply


def _heaviside(x: Any, h0: Any) -> Any:
    return np.where(x < 0, 0.0 * h0, np.where(x > 0, 1.0 + 0.0 * h0, h0 + 0.0 * x))


COMPOSITE: dict[Any, Callable[..., Any]] = {
    np.positive: lambda x: x,
    np.conjugate: lambda x: x,
    np.square: lambda x: x * x,
    np.reciprocal: lambda x: 1.0 / x,
    np.fabs: lambda x: np.absolute(x),
    np.trunc: _trunc,
    np.fmax: _fmax,
    np.fmin: _fmin,
    np.hypot: lambda x, y: np.sqrt(x * x + y * y),
    np.logaddexp: _logaddexp,
    np.logaddexp2: _logaddexp2,
    np.deg2rad: lambda x: x * (math.pi / 180),
    np.radians: lambda x: x * (math.pi / 180),
    np.rad2deg: lambda x: x * (180 / math.pi),
    np.degrees: lambda x: x * (180 / math.pi),
    np.logical_and: _logical(np.bitwise_and),
    np.logical_or: _logical(np.bitwise_or),
    np.logical_xor: _logical(np.bitwise_xor),
    np.logical_not: _logical(np.invert),
    np.float_power: lambda x, y: np.power(
        np.asarray(x, np.float64) if not isinstance(x, TracedArray) else x.astype(np.float64), y
    ),
    np.heaviside: _heaviside,
}
