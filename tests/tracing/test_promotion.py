"""Broadcasting and dtype promotion match NumPy exactly (NEP 50: Python
scalars are weak and take the array's dtype; NumPy scalars are not)."""

from __future__ import annotations

import operator
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import graphc as gc
from graphc.ir import DType, GraphcError

from .helpers import check

DTYPES = [np.bool_, np.int32, np.int64, np.float32, np.float64]

BINARY = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
    "@broadcast-maximum": np.maximum,
    "arctan2": np.arctan2,
    "logaddexp": np.logaddexp,
    "fmod": np.fmod,
    "hypot": np.hypot,
    "where": lambda a, b: np.where(np.greater(a, b), a, b),
    "clip": lambda a, b: np.clip(a, b, 3),
}


def _array(dtype: Any, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 5, size=shape).astype(dtype)


shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)
python_scalars = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([2**31, -(2**31) - 1, 2**40, 2**63 - 1]),
    st.floats(-2.5, 2.5, allow_nan=False).map(lambda v: round(v, 2)),
)
numpy_scalars = st.builds(
    lambda d, v: np.asarray(v).astype(d)[()], st.sampled_from(DTYPES), st.integers(0, 3)
)


def _broadcastable(shape: tuple[int, ...]) -> st.SearchStrategy[tuple[int, ...]]:
    # a suffix of shape, with some dimensions replaced by 1
    return st.integers(0, len(shape)).flatmap(
        lambda k: st.lists(st.booleans(), min_size=len(shape) - k, max_size=len(shape) - k).map(
            lambda ones: tuple(1 if one else d for one, d in zip(ones, shape[k:]))
        )
    )


@st.composite
def operand_pairs(draw: Any) -> tuple[Any, Any, str]:
    shape = draw(shapes)
    x = _array(draw(st.sampled_from(DTYPES)), shape, draw(st.integers(0, 99)))
    kind = draw(st.sampled_from(["array", "python", "numpy"]))
    if kind == "array":
        other_shape = draw(_broadcastable(shape))
        if draw(st.booleans()):
            shape, other_shape = other_shape, shape
            x = _array(x.dtype, shape, 0)
        y: Any = _array(draw(st.sampled_from(DTYPES)), other_shape, draw(st.integers(0, 99)))
    elif kind == "python":
        y = draw(python_scalars)
    else:
        y = draw(numpy_scalars)
    name = draw(st.sampled_from(sorted(BINARY)))
    return (x, y, name) if draw(st.booleans()) else (y, x, name)


def _traced_args(a: Any, b: Any) -> tuple[list[Any], Any]:
    """Trace the array operands; Python and NumPy scalars stay constants in the function."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return [a, b], lambda f: lambda p, q: f(p, q)
    if isinstance(a, np.ndarray):
        return [a], lambda f: lambda p: f(p, b)
    return [b], lambda f: lambda q: f(a, q)


# dtype pairs x scalar kinds x ops is a large space: more examples than the default
@settings(max_examples=max(300, settings().max_examples))
@given(operand_pairs())
def test_binary_promotion_matches_numpy(case: tuple[Any, Any, str]) -> None:
    a, b, name = case
    op = BINARY[name]
    args, wrap = _traced_args(a, b)
    f = wrap(op)
    try:
        with np.errstate(all="ignore"):
            expected = f(*args)
        np.asarray(expected).dtype.name  # noqa: B018
        supported = np.asarray(expected).dtype in [d.np for d in DType]
    except (TypeError, ValueError, OverflowError) as exc:
        # NumPy refuses (bool subtract, int overflow, negative int power): so must graphc
        with pytest.raises((GraphcError, type(exc))):
            check(f, *args)
        return
    if not supported:
        with pytest.raises(GraphcError):
            check(f, *args)
        return
    check(f, *args, rtol=1e-6 if np.asarray(expected).dtype == np.float32 else None)


@pytest.mark.parametrize(
    "dtype, scalar, expected",
    [
        (np.float32, 2.5, np.float32),
        (np.int32, 2, np.int32),
        (np.int32, 2.5, np.float64),
        (np.bool_, 1, np.int64),
        (np.bool_, 1.5, np.float64),
        (np.float32, np.float64(2.0), np.float64),
        (np.int32, np.int64(2), np.int64),
        (np.float32, True, np.float32),
    ],
)
def test_weak_python_scalars(dtype: Any, scalar: Any, expected: Any) -> None:
    g = check(lambda x: x * scalar, np.ones(3, dtype))
    assert g.outputs[0].type.dtype.np == np.dtype(expected)


def test_python_int_out_of_range_is_an_overflow_error_naming_the_line() -> None:
    i32 = np.ones(3, np.int32)
    for f in (
        lambda x: x + 2**40,
        lambda x: np.full_like(x, -(2**40)),
        lambda x: np.clip(x, 2**40, None),
    ):
        with pytest.raises(OverflowError):
            f(i32)  # NumPy's own verdict
        with pytest.raises(
            gc.GraphcOverflowError, match=r"out of bounds for int32[\s\S]*test_promotion.py:"
        ):
            gc.trace(f, i32)


def test_clip_bounds_beyond_the_integer_range_clip_nothing_as_in_numpy() -> None:
    x = np.array([-5, 0, 7], np.int32)
    check(lambda a: (np.clip(a, -(2**40), 2**40), np.clip(a, 0, 2**40), np.clip(a, -(2**40), 3)), x)


def test_comparison_with_out_of_range_int_is_exact() -> None:
    x = np.array([-(2**31), 0, 2**31 - 1], np.int32)
    check(lambda a: (a < 2**40, a > -(2**40), a == 2**40, a != 2**63), x)


def test_traced_python_scalar_arguments_stay_weak() -> None:
    # a Python float argument is traced as a weak f64: with float32 data it stays float32
    check(lambda x, s: x * s, np.ones(3, np.float32), 0.5)
    check(lambda x, s: x + s, np.ones(3, np.int32), 3)
