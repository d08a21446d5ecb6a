"""TracedArray's Python surface: operators (forward, reflected, with arrays and
scalars), properties, methods, len/iteration, and attributes it refuses."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pytest

from graphc.ir import TracingError, UnsupportedError

from .helpers import check

rng = np.random.default_rng(3)
X = rng.normal(size=(3, 4))
Y = rng.normal(size=(4,)) + 3.0
I = rng.integers(1, 9, size=(3, 4))
K = rng.integers(0, 4, size=(4,)).astype(np.int32)

ARITHMETIC = [
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
    operator.floordiv,
    operator.mod,
    operator.pow,
    operator.lt,
    operator.le,
    operator.gt,
    operator.ge,
    operator.eq,
    operator.ne,
]
BITWISE = [operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift]


@pytest.mark.parametrize("op", ARITHMETIC, ids=lambda o: o.__name__)
@pytest.mark.parametrize(
    "x, y", [(X, Y), (I, K), (X, I)], ids=["float-float", "int-int32", "float-int"]
)
def test_binary_operators(op: Any, x: np.ndarray, y: np.ndarray) -> None:
    check(lambda a, b: (op(a, b), op(b, a), op(a, 2), op(3, a), op(a, 1.5), op(y, a)), x, y)


@pytest.mark.parametrize("op", BITWISE, ids=lambda o: o.__name__)
def test_bitwise_operators(op: Any) -> None:
    check(lambda a, b: (op(a, b), op(b, a), op(a, 2), op(5, a)), I, K)
    if op not in (operator.lshift, operator.rshift):
        check(lambda a, b: (op(a, b), op(a, True)), X > 0, Y > 3)


def test_matmul_and_divmod_operators() -> None:
    check(lambda a, b: (a @ b, b @ a.T, X @ b, divmod(a, 0.7), divmod(2.5, b)), X, Y)


def test_unary_operators() -> None:
    check(lambda a, i, b: (-a, +a, abs(a), ~i, ~b, -i, abs(i)), X, I, X > 0)


def test_properties() -> None:
    def f(a: Any) -> Any:
        # the same answers from the ndarray and from its tracer
        assert a.shape == (3, 4) and a.ndim == 2 and a.size == 12 and len(a) == 3
        assert a.dtype == np.float64 and a.itemsize == 8 and a.nbytes == 96
        return a.T, a.mT, a.real, a.imag, a.T.shape[0] * a

    check(f, X)


def test_methods() -> None:
    def f(a: Any) -> Any:
        return (
            a.reshape(4, 3),
            a.reshape((2, 6)),
            a.reshape(-1),
            a.astype(np.float32),
            a.transpose(),
            a.transpose(1, 0),
            a.transpose((1, 0)),
            a.swapaxes(0, 1),
            a[None].squeeze(),
            a.flatten(),
            a.ravel(),
            a.copy(),
            a.sum(),
            a.prod(axis=1),
            a.mean(axis=0, keepdims=True),
            a.var(ddof=1),
            a.std(axis=1),
            a.max(),
            a.min(axis=1),
            a.argmax(axis=0),
            a.argmin(),
            (a > 0).all(axis=1),
            (a > 0).any(),
            a.cumsum(axis=1),
            a.cumprod(axis=0),
            a.clip(-0.5, 0.5),
            a.dot(np.ones(4)),
            a.round(2),
            a.take([0, 2], axis=1),
            a.repeat(2, axis=0),
            a.conj(),
            a.conjugate(),
            a.diagonal(),
        )

    check(f, X)


def test_iteration_and_len() -> None:
    check(lambda a: [row * i for i, row in enumerate(a)] + [len(a)], X)


def test_ndarray_on_the_left_defers_to_the_tracer() -> None:
    # ndarray.__add__ etc. go through __array_ufunc__, so the result is traced
    check(lambda a: (Y + a, Y * a, Y > a, Y @ a.T), X)


def test_numpy_scalars_on_the_left() -> None:
    check(lambda a: (np.float32(2.0) * a, np.int32(3) + a, np.float64(1) / a), X.astype(np.float32))


def test_in_place_operators_rebind() -> None:
    def f(a: Any) -> Any:
        a = a * 1
        a += 1.0
        a *= 2
        a /= 3
        a **= 2
        return a

    check(f, X)


def test_missing_ndarray_methods_are_unsupported_but_still_attribute_errors() -> None:
    def f(a: Any) -> Any:
        assert not hasattr(a, "searchsorted")
        assert getattr(a, "searchsorted", None) is None
        with pytest.raises(AttributeError):
            a.no_such_attribute  # noqa: B018
        return a.searchsorted(0.0)

    with pytest.raises(UnsupportedError, match="ndarray.searchsorted is not supported") as info:
        check(f, X)
    assert __file__ in str(info.value)


@pytest.mark.parametrize("method", ["sort", "fill", "put", "resize", "partition"])
def test_in_place_methods_are_tracing_errors(method: str) -> None:
    with pytest.raises(TracingError, match=f"ndarray.{method} modifies an array in place"):
        check(lambda a: getattr(a, method)(0), X)


def test_tracers_are_unhashable() -> None:
    with pytest.raises(TypeError, match="unhashable"):
        check(lambda a: {a: 1}, X)


def test_ndarray_trace_method_points_to_np_trace() -> None:
    # x.trace is taken by the tracer's bookkeeping; calling it explains what to use
    with pytest.raises(UnsupportedError, match="np.trace") as info:
        check(lambda a: a.trace(), X[:, :3])
    assert __file__ in str(info.value)
