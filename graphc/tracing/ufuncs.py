"""NumPy ufuncs on traced arrays (NEP 13).

Dtypes come from NumPy itself: ``ufunc.resolve_dtypes`` picks the loop NumPy
would run (with Python scalars weak, NEP 50), operands are cast to the loop's
dtypes, and the IR op (``DIRECT``) or the composite (``COMPOSITE``, in
:mod:`.ufunc_composites`) runs on the loop's dtypes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.special

from graphc.ir import DType, InputError, TracingError, UnsupportedError, format_message

from .array import TracedArray
from .context import user_location
from .ops import cast, dtype_spec, emit, is_weak, lift, operand, to_dtype, trace_of
from .scans import extremum_scan
from .ufunc_composites import CHECKS, COMPOSITE, MISSING_UFUNC_HINTS

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
    out = kwargs.pop("out", None)
    where = kwargs.pop("where", True)
    for key, given in (
        ("out", out is not None and any(o is not None for o in out)),
        ("where", where is not True),
    ):
        if given:
            raise UnsupportedError(
                format_message(
                    f"{ufunc_name(ufunc)}: the '{key}=' argument is not supported on traced arrays",
                    loc=user_location(3),
                    hint="write the result to a new array (y = np.f(x)) or use np.where",
                )
            )
    for key in ("casting", "order", "subok"):
        kwargs.pop(key, None)
    core = {k: kwargs.pop(k) for k in ("axis", "axes", "keepdims") if k in kwargs}
    if core and getattr(ufunc, "__name__", "") == "vecdot":
        return _vecdot(inputs, dtype, **core)
    kwargs.update(core)
    if kwargs:
        raise UnsupportedError(
            format_message(
                f"{ufunc_name(ufunc)}: unsupported argument(s) {', '.join(kwargs)}",
                loc=user_location(3),
            )
        )
    if dtype is not None:
        inputs = [
            cast(x, dtype) if isinstance(x, TracedArray) else np.asarray(x, dtype) for x in inputs
        ]
    op = DIRECT.get(ufunc)
    if op is not None:
        return _direct(ufunc, op, inputs)
    composite = COMPOSITE.get(ufunc)
    if composite is not None:
        return _composite(ufunc, composite, inputs)
    raise UnsupportedError(
        format_message(
            f"{ufunc_name(ufunc)} is not supported on traced arrays",
            loc=user_location(3),
            hint=MISSING_UFUNC_HINTS.get(
                getattr(ufunc, "__name__", ""), "see the README's table of supported NumPy API"
            ),
        )
    )


def _vecdot(
    inputs: Sequence[Any], dtype: Any, axis: Any = None, axes: Any = None, keepdims: bool = False
) -> Any:
    """np.vecdot with the generalized ufunc's ``axis=``, ``axes=`` and ``keepdims=``."""
    from .linalg_functions import vecdot

    a, b = inputs
    if dtype is not None:
        a, b = cast(a, dtype), cast(b, dtype)
    if axes is not None:
        if axis is not None:
            raise UnsupportedError(
                format_message(
                    "np.vecdot: cannot specify both 'axis' and 'axes'", loc=user_location(4)
                )
            )
        (ia,), (ib,) = axes[0], axes[1]
        a, b = np.moveaxis(a, ia, -1), np.moveaxis(b, ib, -1)
        kept = axes[2][0] if len(axes) > 2 and len(axes[2]) else -1
    else:
        kept = -1 if axis is None else axis
    out = vecdot(a, b, -1 if axes is not None or axis is None else axis)
    # keepdims puts the summed axis back, length 1, where the core axis was
    return np.expand_dims(out, kept) if keepdims else out


def ufunc_name(ufunc: Any) -> str:
    """``np.exp``, ``scipy.special.gammaln``: how users spell a ufunc."""
    name = getattr(ufunc, "__name__", str(ufunc))
    if getattr(np, name, None) is ufunc:
        return f"np.{name}"
    if getattr(scipy.special, name, None) is ufunc:
        return f"scipy.special.{name}"
    return name


def _loop(ufunc: Any, inputs: Sequence[Any]) -> list[DType]:
    """The dtypes of the loop NumPy would pick: inputs, then outputs."""
    try:
        loop = ufunc.resolve_dtypes((*[_spec(x) for x in inputs], *[None] * ufunc.nout))
    except InputError:
        raise
    except (TypeError, np.exceptions.DTypePromotionError) as exc:
        shown = ", ".join(str(_describe(x)) for x in inputs)
        raise UnsupportedError(
            format_message(
                f"{ufunc_name(ufunc)} is not defined for ({shown})",
                loc=user_location(5),
                hint=str(exc),
            )
        ) from None
    return [to_dtype(d) for d in loop]


def _direct(ufunc: Any, op: str, inputs: Sequence[Any]) -> Any:
    trace = trace_of(*inputs)
    if ufunc in _COMPARISONS:
        constant = _compare_out_of_range(ufunc, inputs)
        if constant is not None:
            return constant
    dtypes = _loop(ufunc, inputs)
    operands = [operand(trace, x, d) for x, d in zip(inputs, dtypes)]
    weak = all(is_weak(x) for x in inputs)
    return emit(trace, op, operands, weak=weak)


def _composite(ufunc: Any, impl: Callable[..., Any], inputs: Sequence[Any]) -> Any:
    dtypes = _loop(ufunc, inputs)
    check = CHECKS.get(ufunc)
    if check is not None:
        check(*inputs)
    converted = [
        cast(x, d.np) if isinstance(x, TracedArray) else np.asarray(x, dtype=d.np)
        for x, d in zip(inputs, dtypes)
    ]
    result = impl(*converted)
    results = result if isinstance(result, tuple) else (result,)
    weak = all(is_weak(x) for x in inputs)
    out = []
    for r, d in zip(results, dtypes[ufunc.nin :]):
        assert np.dtype(r.dtype) == d.np, f"{ufunc.__name__} composite gave {r.dtype}, not {d.np}"
        out.append(
            TracedArray(r.trace, r.value, weak) if weak and isinstance(r, TracedArray) else r
        )
    return tuple(out) if isinstance(result, tuple) else out[0]


_COMPARISONS = (np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal)


def _compare_out_of_range(ufunc: Any, inputs: Sequence[Any]) -> Any:
    """NumPy compares integer arrays with out-of-range Python ints exactly
    (``x_int32 < 2**40`` is all True); the answer does not depend on the data."""
    x, y = inputs
    for a, b in ((x, y), (y, x)):
        if type(b) is int and isinstance(a, TracedArray) and a.value.type.dtype.is_int:
            info = np.iinfo(a.dtype)
            if not info.min <= b <= info.max:
                sample = np.zeros((), a.dtype)
                value = ufunc(sample, b) if a is x else ufunc(b, sample)
                return np.broadcast_to(lift(np.asarray(value), a.trace), a.shape)
    return None


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
    if method == "accumulate" and ufunc in _ACCUMULATORS and len(inputs) == 1:
        kwargs = dict(kwargs)
        if kwargs.pop("out", None) not in (None, (None,)):
            raise UnsupportedError(
                format_message(
                    f"{ufunc_name(ufunc)}.accumulate: out= is not supported on traced arrays",
                    loc=user_location(3),
                )
            )
        return _ACCUMULATORS[ufunc](inputs[0], kwargs.pop("axis", 0), kwargs.pop("dtype", None))
    if method == "outer" and len(inputs) == 2:
        x, y = inputs
        y_nd = np.ndim(y)
        return apply_ufunc(ufunc, (np.reshape(x, np.shape(x) + (1,) * y_nd), y), kwargs)
    if method == "at":
        raise _in_place_at(ufunc)
    raise UnsupportedError(
        format_message(
            f"{ufunc_name(ufunc)}.{method} is not supported on traced arrays",
            loc=user_location(3),
            hint="for reductions use np.sum, np.max, ...; for outer products ufunc.outer",
        )
    )


def _in_place_at(ufunc: Any) -> TracingError:
    """``ufunc.at`` updates its first argument in place. Recording that on a
    traced value would be unsound: a NumPy view of the array taken earlier
    would see the update, the traced one could not; so it is refused, with
    the functional form that returns the result."""
    name = ufunc_name(ufunc)
    if ufunc is np.add:
        hint = (
            "write a = gc.scatter_add(a, idx, v): the same sums, returned as a new array; "
            "for sums by segment gc.segment_sum(v, idx, n), for counts "
            "np.bincount(idx, minlength=n)"
        )
    elif ufunc is np.subtract:
        hint = "write a = gc.scatter_add(a, idx, -v): the same result, returned as a new array"
    else:
        hint = (
            "only additive updates have a traced form (gc.scatter_add(a, idx, v)); build "
            "others with np.where over a one-hot mask"
        )
    return TracingError(
        format_message(
            f"{name}.at updates an array in place, which is not supported while tracing",
            loc=user_location(4),
            hint=hint,
        )
    )


_ACCUMULATORS: dict[Any, Callable[..., Any]] = {
    np.add: lambda x, axis, dtype: np.cumsum(x, axis=axis, dtype=dtype),
    np.multiply: lambda x, axis, dtype: np.cumprod(x, axis=axis, dtype=dtype),
    np.maximum: lambda x, axis, dtype: extremum_scan(np.maximum, x, axis, dtype),
    np.minimum: lambda x, axis, dtype: extremum_scan(np.minimum, x, axis, dtype),
}

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
                f"{ufunc_name(ufunc)}.reduce is not supported on traced arrays",
                loc=user_location(3),
            )
        )
    kwargs = dict(kwargs)
    axis = kwargs.pop("axis", 0)
    if kwargs.pop("out", None) not in (None, (None,)):
        raise UnsupportedError(
            format_message(
                f"{ufunc_name(ufunc)}.reduce: out= is not supported on traced arrays",
                loc=user_location(3),
            )
        )
    return reducer(inputs[0], axis=axis, **kwargs)
