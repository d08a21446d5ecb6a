"""What a compiled function accepts as an argument: one policy for every backend.

An input of type ``T`` takes an ndarray (or NumPy scalar) of exactly ``T``'s
shape and dtype, in either byte order, or, for a 0-d ``T``, a Python number
that converts to ``T``'s dtype without changing its value or kind: a bool
for ``bool``, an int for an integer or float type (in range), a float for a
float type. Nothing else is converted; mismatches raise :class:`InputError`
naming the input and saying what was expected and what came. A Python int
out of range for the dtype raises :class:`InputOverflowError`, which is
also an ``OverflowError``, as NumPy raises for ``np.int32(2**40)``.

Backends may ask more of the array (the LLVM backend wants it C-contiguous);
they check that on the result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import TensorType
from .dtypes import DType
from .errors import InputError, InputOverflowError, format_message


def scalar_fits(x: bool | int | float, dtype: DType) -> bool:
    """Whether the Python number ``x`` converts to ``dtype`` keeping its value and kind.

    >>> scalar_fits(2**40, DType.i32), scalar_fits(2**40, DType.i64), scalar_fits(1.5, DType.i64)
    (False, True, False)
    """
    if isinstance(x, bool):
        return dtype.is_bool
    if isinstance(x, int):
        bounds = _INT_RANGES.get(dtype)
        if bounds is not None:
            return bounds[0] <= x <= bounds[1]
        return dtype in _FLOATS and abs(x) <= _FLOAT_LIMIT
    return dtype in _FLOATS


def int_in_range(x: int, dtype: DType) -> bool:
    """Whether the integer ``x`` lies in the range of integer type ``dtype``."""
    low, high = _INT_RANGES[dtype]
    return low <= x <= high


# Computed once: np.iinfo costs about a microsecond, which a call would notice.
_INT_RANGES = {d: (int(np.iinfo(d.np).min), int(np.iinfo(d.np).max)) for d in DType if d.is_int}
_FLOATS = frozenset(d for d in DType if d.is_float)
_NUMPY = {d: d.np for d in DType}
# Larger ints do not convert to a float at all (Python raises OverflowError).
_FLOAT_LIMIT = int(np.finfo(np.float64).max)


def coerce_input(a: Any, want: TensorType, label: str) -> np.ndarray:
    """``a`` as an ndarray of exactly ``want``'s shape and (native) dtype, or an InputError.

    ``label`` names the input in messages, e.g. ``"graph f: input 0 (%x)"``.
    No copy is made when ``a`` already is such an array.

    >>> from graphc.ir import f32, i32
    >>> coerce_input(3, f32[()], "input 0").dtype
    dtype('float32')
    >>> coerce_input(2**40, i32[()], "graph f: input 1 (%n)")
    Traceback (most recent call last):
      ...
    graphc.ir.errors.InputOverflowError: graph f: input 1 (%n) expects i32[], got Python int 1099511627776, which is out of range for int32
      hint: NumPy raises OverflowError here too; pass a smaller value or widen the array
    """  # noqa: E501
    kind = type(a)
    if kind is float or kind is int or kind is bool:
        if want.shape == () and scalar_fits(a, want.dtype):  # the common case, kept short
            return np.asarray(a, dtype=_NUMPY[want.dtype])
        return _coerce_scalar(a, want, label)
    if isinstance(a, (bool, int, float)) and not isinstance(a, np.generic):
        return _coerce_scalar(a, want, label)
    if not isinstance(a, (np.ndarray, np.generic)):
        raise InputError(
            format_message(
                f"{label} expects an array of type {want} (dtype {want.dtype.np}), "
                f"got {type(a).__name__}",
                hint=f"pass np.asarray(x, dtype=np.{want.dtype.np})",
            )
        )
    arr = np.asarray(a)
    if arr.shape != want.shape:
        raise InputError(
            format_message(
                f"{label} expects shape {list(want.shape)}, got {list(arr.shape)}",
                hint="compiled code is specialized to shapes; compile again for new ones",
            )
        )
    if arr.dtype.newbyteorder("=") != want.dtype.np:
        raise InputError(
            format_message(
                f"{label} expects dtype {want.dtype} ({want.dtype.np}), got {arr.dtype}",
                hint=f"convert with x.astype(np.{want.dtype.np})",
            )
        )
    return arr.astype(want.dtype.np, copy=False)  # native byte order


def _coerce_scalar(a: bool | int | float, want: TensorType, label: str) -> np.ndarray:
    kind = type(a).__name__
    if want.shape != ():
        raise InputError(f"{label} expects an array of type {want}, got Python {kind} {a!r}")
    if scalar_fits(a, want.dtype):
        return np.asarray(a, dtype=want.dtype.np)
    if isinstance(a, int) and not isinstance(a, bool) and not want.dtype.is_bool:
        raise InputOverflowError(
            format_message(
                f"{label} expects {want}, got Python int {a}, "
                f"which is out of range for {want.dtype.np}",
                hint="NumPy raises OverflowError here too; pass a smaller value or widen the array",
            )
        )
    raise InputError(f"{label} expects {want}, got Python {kind} {a!r}")
