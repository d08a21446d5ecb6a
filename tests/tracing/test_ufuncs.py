"""Every ufunc the tracer handles, on every dtype, against NumPy itself.

Inputs include the values where formulas usually go wrong: signed zeros,
infinities, NaN, integer extremes. A dtype NumPy rejects, or whose loop
graphc cannot represent (float16, int8), must raise a GraphcError.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

from graphc.ir import DType, GraphcError, UnsupportedError
from graphc.tracing.ufunc_composites import COMPOSITE, MISSING_UFUNC_HINTS
from graphc.tracing.ufuncs import DIRECT

from .helpers import check

DTYPES = [np.bool_, np.int32, np.int64, np.float32, np.float64]
FLOATS = [-math.inf, -3.75, -2.0, -1.0, -0.5, -0.0, 0.0, 0.25, 1.0, 2.5, 7.0, math.inf, math.nan]
INTS = [-7, -3, -2, -1, 0, 1, 2, 3, 8]
BIG_FLOATS = [1e300, -1e300, 1e-300, 3e-320]  # overflow and subnormal traps


def values(dtype: type, *, big: bool = False) -> np.ndarray:
    if dtype is np.bool_:
        return np.array([False, True])
    if np.dtype(dtype).kind == "i":
        info = np.iinfo(dtype)
        return np.array(INTS + ([int(info.min), int(info.max)] if big else []), dtype)
    extra = BIG_FLOATS if big and dtype is np.float64 else []
    return np.array(FLOATS + extra, dtype)


def _name(u: object) -> str:
    return getattr(u, "__name__", str(u))


# gufuncs and matmul are covered with matrices in test_functions
MATRIX_UFUNCS = {np.matmul} | {
    getattr(np, n) for n in ("matvec", "vecmat", "vecdot") if hasattr(np, n)
}
ELEMENTWISE = sorted((u for u in {*DIRECT, *COMPOSITE} if u not in MATRIX_UFUNCS), key=_name)
# composites built from formulas that round differently from NumPy's C code
APPROXIMATE = {np.logaddexp, np.logaddexp2, np.hypot}
# integer ops whose NumPy result is undefined behaviour in C for some inputs
UNDEFINED_FOR = {np.power: "negative integer exponents", np.left_shift: "", np.right_shift: ""}


def _inputs(ufunc: np.ufunc, dtype: type, other: type) -> tuple[np.ndarray, ...]:
    if ufunc.nin == 1:
        return (values(dtype, big=True),)
    x, y = values(dtype, big=True), values(other)
    if ufunc.nin == 3:  # betainc(a, b, x): the third operand varies along a new axis
        return x.reshape(-1, 1, 1), y.reshape(1, -1, 1), values(other).reshape(1, 1, -1)
    if ufunc is np.power and np.dtype(other).kind in "bi":
        y = np.abs(y)[np.abs(y) < 9].astype(other)  # NumPy raises for negative integer powers
    if ufunc in (np.left_shift, np.right_shift):
        y = np.array([-1, 0, 1, 3, 31, 62, 63, 64, 70], other) if other is not np.bool_ else y
    # every pair: x down the rows, y along the columns
    return x.reshape(-1, 1), y.reshape(1, -1)


def _numpy_result(ufunc: np.ufunc, inputs: tuple[np.ndarray, ...]) -> object:
    try:
        with np.errstate(all="ignore"):
            result = ufunc(*inputs)
    except (TypeError, ValueError, OverflowError):
        return None
    loop = ufunc.resolve_dtypes((*[x.dtype for x in inputs], *[None] * ufunc.nout))
    if any(d not in SUPPORTED for d in loop):
        return None  # loops graphc does not represent (complex, object)
    return result


SUPPORTED = {d.np for d in DType}
PAIRS = [(d, d) for d in DTYPES] + [
    (np.int32, np.float32),
    (np.float32, np.int64),
    (np.bool_, np.int32),
    (np.float32, np.float64),
    (np.int32, np.int64),
]


def _cases() -> list[object]:
    cases = []
    for u in ELEMENTWISE:
        pairs = [(d, d) for d in DTYPES] if u.nin == 1 else PAIRS
        for dtype, other in pairs:
            label = np.dtype(dtype).name + ("" if u.nin == 1 else "-" + np.dtype(other).name)
            cases.append(pytest.param(u, dtype, other, id=f"{_name(u)}-{label}"))
    return cases


@pytest.mark.parametrize("ufunc, dtype, other", _cases())
def test_ufunc_matches_numpy(ufunc: np.ufunc, dtype: type, other: type) -> None:
    inputs = _inputs(ufunc, dtype, other)
    if ufunc in (np.copysign, np.signbit) and np.dtype(inputs[-1].dtype).kind == "f":
        # the sign bit of NaN cannot be read by any graph op: refused, not guessed
        with pytest.raises(UnsupportedError, match=ufunc.__name__):
            check(lambda *xs: ufunc(*xs), *inputs)
        return
    want = _numpy_result(ufunc, inputs)
    if want is None:
        with pytest.raises(GraphcError):
            check(lambda *xs: ufunc(*xs), *inputs)
        return
    rtol = None
    if ufunc in APPROXIMATE:
        rtol = 1e-13 if np.dtype(dtype) == np.float64 else None
    check(lambda *xs: ufunc(*xs), *inputs, rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_copysign_with_a_constant_sign_source(dtype: type) -> None:
    signs = np.array([-1.0, -0.0, 0.0, 2.0, -math.inf, math.nan, -math.nan], dtype)
    check(lambda x: np.copysign(x, signs), values(dtype).reshape(-1, 1))


def test_copysign_and_signbit_of_integers() -> None:
    x = values(np.int64)
    check(lambda a: np.copysign(2.5, a), x)
    check(lambda a: np.signbit(a), x)


def test_scipy_special_functions() -> None:
    x = np.linspace(-5.0, 5.0, 23)
    check(lambda a: scipy.special.erf(a), x)
    check(lambda a: scipy.special.expit(a), x)
    check(lambda a: scipy.special.expit(a), x.astype(np.float32))


def test_dtype_argument_and_where_true() -> None:
    x = np.arange(6, dtype=np.int32)
    check(lambda a: np.add(a, 1, dtype=np.float32), x)
    check(lambda a: np.multiply(a, a, where=True), x)


@pytest.mark.parametrize(
    "name, call",
    [
        ("add.reduce", lambda x: np.add.reduce(x, axis=1)),
        ("multiply.reduce", lambda x: np.multiply.reduce(x, axis=0, keepdims=True)),
        ("maximum.reduce", lambda x: np.maximum.reduce(x, axis=None)),
        ("minimum.reduce", lambda x: np.minimum.reduce(x)),
        ("logical_and.reduce", lambda x: np.logical_and.reduce(x > 0, axis=1)),
        ("logical_or.reduce", lambda x: np.logical_or.reduce(x > 1, axis=0)),
        ("add.accumulate", lambda x: np.add.accumulate(x, axis=1)),
        ("multiply.accumulate", lambda x: np.multiply.accumulate(x)),
        ("maximum.accumulate", lambda x: np.maximum.accumulate(x, axis=1)),
        ("minimum.accumulate", lambda x: np.minimum.accumulate(x, axis=0)),
        ("subtract.outer", lambda x: np.subtract.outer(x[0], x[1])),
        ("greater.outer", lambda x: np.greater.outer(x[:, 0], x[0])),
    ],
)
@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.float64])
def test_ufunc_methods(name: str, call: object, dtype: type) -> None:
    x = (np.arange(20).reshape(4, 5) % 7 - 2).astype(dtype)
    check(call, x)


def test_maximum_accumulate_propagates_nan() -> None:
    x = np.array([[1.0, math.nan, 3.0, 0.5, 4.0, -1.0, 9.0]])
    check(lambda a: np.maximum.accumulate(a, axis=1), x)
    check(lambda a: np.minimum.accumulate(a, axis=1), x)


@pytest.mark.parametrize("name", sorted(MISSING_UFUNC_HINTS))
def test_unsupported_ufuncs_name_themselves(name: str) -> None:
    ufunc = getattr(np, name)
    args = [np.arange(1, 4)] * ufunc.nin
    with pytest.raises(UnsupportedError, match=f"np.{name} is not supported"):
        check(lambda *xs: ufunc(*xs), *args)


def test_out_argument_is_rejected() -> None:
    buffer = np.zeros(3)
    with pytest.raises(UnsupportedError, match="out="):
        check(lambda x: np.exp(x, out=buffer), np.ones(3))


def test_reduceat_is_rejected() -> None:
    with pytest.raises(UnsupportedError, match="add.reduceat"):
        check(lambda x: np.add.reduceat(x, [0, 2]), np.ones(4))


def test_every_numpy_ufunc_is_handled_or_explained() -> None:
    """A new NumPy ufunc must either get a traced version or a reason here."""
    every = {getattr(np, n) for n in dir(np) if isinstance(getattr(np, n), np.ufunc)}
    known = set(DIRECT) | set(COMPOSITE) | {getattr(np, n) for n in MISSING_UFUNC_HINTS}
    assert {u.__name__ for u in every - known} <= {"isnat"}  # datetimes only
