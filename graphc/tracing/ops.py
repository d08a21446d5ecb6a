"""Emitting IR from traced code: operands, promotion, locations.

Everything the NumPy-facing modules (ufuncs, functions, indexing) emit goes
through :func:`emit`, which attaches the user's source line to the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.ir import (
    DType,
    GraphcError,
    GraphcOverflowError,
    Literal,
    Operand,
    UnsupportedError,
    format_message,
)

from .array import TracedArray
from .context import Trace, escaped_error, innermost, user_location

PYTHON_SCALARS = (bool, int, float)


def is_weak(x: Any) -> bool:
    """Python scalars and tracers that came from them take the other operand's dtype."""
    if isinstance(x, TracedArray):
        return x.weak
    return type(x) in PYTHON_SCALARS


def dtype_spec(x: Any) -> Any:
    """What ``ufunc.resolve_dtypes`` should see for ``x``: a dtype, or a Python
    type for weakly typed scalars (NEP 50)."""
    if isinstance(x, TracedArray):
        if x.weak:
            d = x.value.type.dtype
            return bool if d.is_bool else int if d.is_int else float
        return x.dtype
    if type(x) in PYTHON_SCALARS:
        return type(x)
    if x is None:
        from .arguments import none_operand_error

        raise none_operand_error("this operation")
    if isinstance(x, (list, tuple)) and tracers_in(x):
        from .constructors import nested_dtype

        return nested_dtype(x)
    if isinstance(x, complex):
        raise UnsupportedError(
            format_message("complex numbers are not supported", loc=user_location(3))
        )
    return np.asarray(x).dtype


def to_dtype(spec: Any) -> DType:
    try:
        return DType.from_numpy(spec)
    except GraphcError as exc:
        raise type(exc)(format_message(str(exc), loc=user_location(3))) from None


def operand(trace: Trace, x: Any, dtype: DType | None = None) -> Operand:
    """``x`` as an IR operand of ``trace``, converted to ``dtype`` when given.

    Tracers are cast with a ``cast`` node; Python and NumPy scalars become
    literals; arrays become ``constant`` nodes (converted on the host).
    """
    if isinstance(x, TracedArray):
        v = trace.value_of(x)
        if dtype is not None and v.type.dtype != dtype:
            return _emit_raw(trace, "cast", [v], {"dtype": dtype})
        return v
    if type(x) in PYTHON_SCALARS:
        target = dtype if dtype is not None else _scalar_default(x)
        return trace.builder.literal(checked_scalar(x, target), target)
    if x is None:
        from .arguments import none_operand_error

        raise none_operand_error("this operation")
    if isinstance(x, (list, tuple)) and tracers_in(x):
        from .constructors import traced_array

        return operand(trace, lift(traced_array(x), trace), dtype)
    arr = np.asarray(x)
    if arr.dtype == object:
        raise UnsupportedError(
            format_message(
                f"cannot use {type(x).__name__} as an array operand",
                loc=user_location(3),
                hint="only numbers, NumPy arrays and traced arrays can be operands",
            )
        )
    if dtype is not None and arr.dtype != dtype.np:
        arr = arr.astype(dtype.np)
    else:
        to_dtype(arr.dtype)
    if arr.ndim == 0:
        return Literal(arr.item(), DType.from_numpy(arr.dtype))
    return _emit_raw(trace, "constant", [], {"value": arr})


def _scalar_default(x: Any) -> DType:
    return DType.bool if isinstance(x, bool) else DType.i64 if isinstance(x, int) else DType.f64


def checked_scalar(x: Any, dtype: DType) -> Any:
    """``x`` itself, or a GraphcOverflowError at the user's line when it is a
    Python int outside ``dtype``'s range (where NumPy raises OverflowError)."""
    if dtype.is_int and isinstance(x, int) and not isinstance(x, bool):
        info = np.iinfo(dtype.np)
        if not info.min <= x <= info.max:
            raise GraphcOverflowError(
                format_message(
                    f"Python integer {x} is out of bounds for {dtype.np}, the dtype of the "
                    "array it is combined with",
                    loc=user_location(4),
                    hint=f"make the array wider first, e.g. a.astype(np.int64), or use a "
                    f"value within [{info.min}, {info.max}]",
                )
            )
    return x


def _emit_raw(trace: Trace, op: str, operands: Sequence[Operand], attrs: dict[str, Any]) -> Any:
    b = trace.builder
    return b.emit(op, *operands, loc=user_location(3), **attrs)


def emit(
    trace: Trace, op: str, operands: Sequence[Operand], weak: bool = False, **attrs: Any
) -> Any:
    """Emit ``op`` in ``trace`` and wrap the result(s) as tracers."""
    if not trace.active:
        raise escaped_error()
    out = trace.builder.emit(op, *operands, loc=user_location(3), **attrs)
    if isinstance(out, tuple):
        return tuple(TracedArray(trace, v, weak) for v in out)
    return TracedArray(trace, out, weak)


def tracers_in(obj: Any, out: list[TracedArray] | None = None) -> list[TracedArray]:
    """The tracers in ``obj`` and the lists and tuples nested in it."""
    out = [] if out is None else out
    if isinstance(obj, TracedArray):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            tracers_in(o, out)
    return out


def trace_of(*args: Any) -> Trace:
    t = innermost(tracers_in(args))
    assert t is not None, "no traced operand"
    return t


def lift(x: Any, trace: Trace) -> TracedArray:
    """Any array-like as a tracer of ``trace`` (constants are embedded)."""
    if isinstance(x, TracedArray) and x.trace is trace:
        return x
    v = operand(trace, x)
    if isinstance(v, Literal):
        v = trace.builder.materialize(v)
    return TracedArray(trace, v, is_weak(x))


def cast(x: Any, dtype: Any) -> Any:
    """``x.astype(dtype)`` for tracers (a no-op when the dtype already matches)."""
    target = to_dtype(dtype)
    if not isinstance(x, TracedArray):
        return np.asarray(x).astype(target.np)
    if x.value.type.dtype == target:
        return TracedArray(x.trace, x.value, False) if x.weak else x
    return emit(x.trace, "cast", [x.trace.value_of(x)], dtype=target)


def result_dtype(*args: Any) -> DType:
    """NumPy's result dtype for mixing ``args`` (weak scalars per NEP 50)."""
    specs = [dtype_spec(a) for a in args]
    try:
        return to_dtype(
            np.result_type(
                *[
                    0.0 if s is float else 0 if s is int else False if s is bool else s
                    for s in specs
                ]
            )
        )
    except TypeError as exc:
        raise UnsupportedError(format_message(str(exc), loc=user_location(3))) from None
