"""Ufuncs without an IR op of their own, written with other NumPy calls.

Each composite receives its inputs already cast to the dtypes of the loop
NumPy would run and must return that loop's output dtype(s). Every formula
here reproduces NumPy's result exactly, signed zeros, infinities and NaNs
included; where that is impossible with the IR's ops (the sign bit of a NaN,
bit-level float functions) the ufunc is rejected instead, with a hint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.ir import UnsupportedError, format_message

from .array import TracedArray
from .context import user_location
from .linalg_functions import matvec, vecdot, vecmat


def _is_float(x: Any) -> bool:
    return np.dtype(x.dtype).kind == "f"


def _trunc(x: Any) -> Any:
    if not _is_float(x):
        return x
    # floor keeps -0.0 (floor(-0.0) == -0.0) and ceil(-0.5) is -0.0, like C's trunc
    return np.where(x < 0, np.ceil(x), np.floor(x))


def _fmax(x: Any, y: Any) -> Any:
    return np.where(np.isnan(y), x, np.where(np.isnan(x), y, np.maximum(x, y)))


def _fmin(x: Any, y: Any) -> Any:
    return np.where(np.isnan(y), x, np.where(np.isnan(x), y, np.minimum(x, y)))


# Smooth functions computed stably by cases (logaddexp, hypot) are written as
# np.where between two formulas that are each exact, and analytic, on a
# neighbourhood of the boundary, with the tie on one side. Derivatives of every
# order then come from one analytic formula. Building them from kinked pieces
# instead (max(x, y) and |x - y|, whose tie rules pick a midpoint subgradient)
# gets the first derivative right at x == y but silently zeroes the second.


def _log_add(x: Any, y: Any, log1p_exp: Callable[[Any], Any]) -> Any:
    x_bigger = x > y
    # Both infinite and equal: x - y is nan; the sum is the infinity itself.
    d = np.where((x == y) & np.isinf(x), 0.0, x - y)
    # y - x == -(x - y) exactly, so this is -|x - y| on both sides, but each
    # side keeps the derivative of its own formula (the tie takes y's side).
    return np.where(x_bigger, x, y) + log1p_exp(np.where(x_bigger, -d, d))


def _logaddexp(x: Any, y: Any) -> Any:
    return _log_add(x, y, lambda d: np.log1p(np.exp(d)))


def _logaddexp2(x: Any, y: Any) -> Any:
    return _log_add(x, y, lambda d: np.log1p(np.exp2(d)) / math.log(2))


def _hypot(x: Any, y: Any) -> Any:
    # |big| * sqrt(1 + (small / big)^2), so x*x cannot overflow or underflow.
    # Each case divides by its own larger operand; the other case's inputs are
    # replaced by harmless constants so its (unused) derivative stays finite.
    x_bigger = np.abs(x) >= np.abs(y)
    over_x = np.where(x_bigger, y, 0.0) / np.where(x_bigger & (x != 0), x, 1.0)
    over_y = np.where(x_bigger, 0.0, x) / np.where(x_bigger, 1.0, y)
    result = np.where(
        x_bigger,
        np.abs(x) * np.sqrt(1.0 + over_x * over_x),
        np.abs(y) * np.sqrt(1.0 + over_y * over_y),
    )
    # hypot(inf, nan) is inf
    return np.where(np.isinf(x) | np.isinf(y), math.inf, result)


def _heaviside(x: Any, h0: Any) -> Any:
    return np.where(x < 0, 0.0, np.where(x > 0, 1.0, np.where(x == 0, h0, x)))


def _reciprocal(x: Any) -> Any:
    if _is_float(x):
        return 1.0 / x
    # integer 1 // x: 0 unless |x| == 1. NumPy's 1 / 0 gives the most negative
    # integer for int32 and int64 (the x86 division fault value) and 0 for the
    # narrower and the unsigned types.
    if np.dtype(x.dtype).kind == "u":
        return np.where(x == 1, x, 0)
    lowest = int(np.iinfo(x.dtype).min) if np.dtype(x.dtype).itemsize >= 4 else 0
    return np.where((x == 1) | (x == -1), x, np.where(x == 0, lowest, 0))


def _fmod(x: Any, y: Any) -> Any:
    if _is_float(x):
        # remainder of non-negative operands needs no sign fix-up, so it is C's fmod
        r = np.remainder(np.abs(x), np.abs(y))
        # x - r keeps the sign of a zero x (and turns r = nan into nan)
        return np.where(x == 0, x - r, np.where(x < 0, -r, r))
    r = np.remainder(x, y)
    return np.where((r != 0) & ((x < 0) != (y < 0)), r - y, r)


def _divmod(x: Any, y: Any) -> tuple[Any, Any]:
    return np.floor_divide(x, y), np.remainder(x, y)


def _modf(x: Any) -> tuple[Any, Any]:
    a = np.abs(x)
    frac = np.where(np.isinf(x), 0.0, a - np.floor(a))
    # the fractional part carries x's sign, -0.0 included (modf(-2.0) == (-0.0, -2.0))
    frac = np.where(x == 0, x, np.where(x < 0, -frac, frac))
    return frac, _trunc(x)


def _bits(x: Any) -> int:
    return int(np.dtype(x.dtype).itemsize * 8)


def _left_shift(x: Any, s: Any) -> Any:
    # multiplying by 2**s wraps exactly like shifting; NumPy gives 0 for shifts
    # outside [0, bits)
    inside = (s >= 0) & (s < _bits(x))
    return np.where(inside, x * np.power(2, np.where(inside, s, 0)), 0)


def _right_shift(x: Any, s: Any) -> Any:
    # an arithmetic shift is floor division by 2**s; shifts outside [0, bits)
    # act like bits - 1. Split 2**s in two factors so neither overflows.
    bits = _bits(x)
    s = np.where((s < 0) | (s >= bits), bits - 1, s)
    half = s // 2
    return np.floor_divide(np.floor_divide(x, np.power(2, half)), np.power(2, s - half))


def _copysign(x: Any, y: Any) -> Any:
    magnitude = np.abs(x)
    # checked in _check_copysign: y is concrete here, or came from integers
    negative = np.signbit(y) if not isinstance(y, TracedArray) else y < 0
    return np.where(negative, -magnitude, magnitude)


def _signbit(x: Any) -> Any:
    return x < 0


def _logical(ufunc: Any) -> Callable[..., Any]:
    def apply(*xs: Any) -> Any:
        return ufunc(*[x.astype(np.bool_) for x in xs])

    return apply


COMPOSITE: dict[Any, Callable[..., Any]] = {
    np.positive: lambda x: x,
    np.conjugate: lambda x: x,
    np.square: lambda x: x * x,
    np.reciprocal: _reciprocal,
    np.fabs: np.absolute,
    np.trunc: _trunc,
    np.fmax: _fmax,
    np.fmin: _fmin,
    np.hypot: _hypot,
    np.logaddexp: _logaddexp,
    np.logaddexp2: _logaddexp2,
    # NumPy multiplies by the rounded constant, so these match bit for bit
    np.deg2rad: lambda x: x * (math.pi / 180),
    np.radians: lambda x: x * (math.pi / 180),
    np.rad2deg: lambda x: x * (180 / math.pi),
    np.degrees: lambda x: x * (180 / math.pi),
    np.logical_and: _logical(np.bitwise_and),
    np.logical_or: _logical(np.bitwise_or),
    np.logical_xor: _logical(np.bitwise_xor),
    np.logical_not: _logical(np.invert),
    np.float_power: np.power,
    np.heaviside: _heaviside,
    np.fmod: _fmod,
    np.divmod: _divmod,
    np.modf: _modf,
    np.left_shift: _left_shift,
    np.right_shift: _right_shift,
    np.copysign: _copysign,
    np.signbit: _signbit,
}
for _name, _impl in (("matvec", matvec), ("vecmat", vecmat), ("vecdot", vecdot)):
    if hasattr(np, _name):
        COMPOSITE[getattr(np, _name)] = _impl


def _sign_of_traced_float(name: str, x: Any) -> None:
    if isinstance(x, TracedArray) and x.value.type.dtype.is_float:
        raise UnsupportedError(
            format_message(
                f"np.{name} of a traced float array is not supported: it depends on the sign "
                "bit of NaN values, which no graph op can read",
                loc=user_location(5),
                hint="use x < 0 (np.where(y < 0, -np.abs(x), np.abs(x)) for copysign) if NaNs "
                "and -0.0 do not matter",
            )
        )


# Checks on the original inputs, before they are cast to the loop's dtypes.
CHECKS: dict[Any, Callable[..., None]] = {
    np.copysign: lambda x, y: _sign_of_traced_float("copysign", y),
    np.signbit: lambda x: _sign_of_traced_float("signbit", x),
}

_BIT_LEVEL = (
    "it works on the bits of floats (exponent, mantissa, neighbours), which the IR's ops "
    "cannot express exactly"
)
MISSING_UFUNC_HINTS: dict[str, str] = {
    **dict.fromkeys(["frexp", "ldexp", "nextafter", "spacing"], _BIT_LEVEL),
    **dict.fromkeys(
        ["gcd", "lcm", "bitwise_count"],
        "it needs a data-dependent loop per element; compute it outside the traced function",
    ),
}
