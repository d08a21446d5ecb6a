"""NumPy functions users reach for with traced values: np.append, np.gradient,
np.linspace/np.logspace/np.geomspace with traced endpoints, and np.vecdot's
``axis=``/``axes=``/``keepdims=``: forward against NumPy on the interpreter
and both backends, gradients against finite differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc as gc

from .backend_checks import check_compiled, check_interpreted

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

RNG = np.random.default_rng(8)
X = np.array([0.5, 1.5, 3.0])
A = RNG.normal(size=(3, 4))
B = RNG.normal(size=(3, 4))

CASES: list[tuple[str, Callable[..., Any]]] = [
    ("append-flat", lambda x, a: np.append(x, 1.0)),
    ("append-2d-flattens", lambda x, a: np.append(a, x)),
    ("append-axis0", lambda x, a: np.append(a, a[:1] * x[0], axis=0)),
    ("append-axis1-list", lambda x, a: np.append(a[:1], [[x[0], 2.0]], axis=1)),
    ("gradient-1d", lambda x, a: np.gradient(x * x)),
    ("gradient-2d", lambda x, a: np.gradient(a)),
    ("gradient-spacing", lambda x, a: np.gradient(a, 0.5, axis=1)),
    ("gradient-traced-spacing", lambda x, a: np.gradient(a[0], x[0])),
    ("gradient-coordinates", lambda x, a: np.gradient(a[0], np.array([0.0, 0.5, 2.0, 2.5]))),
    ("gradient-order2", lambda x, a: np.gradient(a, edge_order=2, axis=1)),
    (
        "gradient-coordinates-order2",
        lambda x, a: np.gradient(a, np.array([0.0, 1.0, 1.5, 3.0]), axis=1, edge_order=2),
    ),
    ("linspace", lambda x, a: np.linspace(x[0], x[2], 5)),
    ("linspace-no-endpoint", lambda x, a: np.linspace(0.0, x[1], 4, endpoint=False)),
    ("linspace-arrays-axis", lambda x, a: np.linspace(x, 2.0 * x, 3, axis=1)),
    ("linspace-retstep", lambda x, a: np.linspace(x[0], x[1], 3, retstep=True)),
    ("linspace-one", lambda x, a: np.linspace(x[0], x[1], 1)),
    ("logspace", lambda x, a: np.logspace(x[0], x[2], 4)),
    ("logspace-base", lambda x, a: np.logspace(0.0, x[1], 3, base=2.0)),
    ("logspace-array-base", lambda x, a: np.logspace(x[:2], x[1:], 3, base=np.array([2.0, 3.0]))),
    ("geomspace", lambda x, a: np.geomspace(x[0], x[2], 4)),
    ("geomspace-negative", lambda x, a: np.geomspace(-x[2], -x[0], 3)),
    ("geomspace-arrays-axis", lambda x, a: np.geomspace(x, 2.0 * x, 3, axis=1)),
    ("geomspace-no-endpoint", lambda x, a: np.geomspace(x[0], 8.0, 5, endpoint=False)),
]
if hasattr(np, "vecdot"):  # NumPy >= 2.0
    CASES += [
        ("vecdot", lambda x, a: np.vecdot(a, a * x[0])),
        ("vecdot-axis", lambda x, a: np.vecdot(a, a[::-1], axis=0)),
        ("vecdot-axis-keepdims", lambda x, a: np.vecdot(a, 2.0 * a, axis=0, keepdims=True)),
        ("vecdot-axes", lambda x, a: np.vecdot(a, a.T, axes=[(1,), (0,), ()])),
        ("vecdot-broadcast", lambda x, a: np.vecdot(a[:, :3], x, axis=-1)),
    ]


@pytest.mark.parametrize("name, f", CASES, ids=[c[0] for c in CASES])
def test_function_with_traced_values(name: str, f: Any) -> None:
    check_interpreted(f, X, A, argnums=(0, 1))


# one case per function and option family: an LLVM compile costs seconds per hundred nodes
COMPILED = [
    "append-axis1-list",
    "gradient-coordinates-order2",
    "gradient-traced-spacing",
    "linspace-arrays-axis",
    "logspace-array-base",
    "geomspace-negative",
    "vecdot-axis-keepdims",
]


def test_functions_compile_on_both_backends() -> None:
    check_compiled([f for name, f in CASES if name in COMPILED], X, A, argnums=(0, 1))


def test_integer_and_float32_dtypes_follow_numpy() -> None:
    x32 = X.astype(np.float32)

    def f(x: Any) -> Any:
        return (
            np.linspace(x[0], 7, 6, dtype=np.int64),
            np.linspace(x[0], 1.0, 3),
            np.geomspace(x[0], 4.0, 3),  # NumPy works in float64 here
            np.append(x, 1.0),  # a Python float appended is float64
            np.gradient(np.array([1, 4, 9]) * 1 + x.astype(np.int32)),
        )

    got = gc.jit(f, backend="numpy")(x32)
    for g, w in zip(got, f(x32)):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_geomspace_zero_endpoint() -> None:
    with pytest.raises(ValueError, match="cannot include zero"):
        gc.trace(lambda x: np.geomspace(0.0, x[0], 3), X)
    got = gc.jit(lambda s: np.geomspace(s, 4.0, 3), backend="numpy")(0.0)
    assert np.isnan(got).all()  # a traced zero is only seen when the graph runs


def test_gradient_refuses_what_numpy_refuses() -> None:
    with pytest.raises(ValueError, match="too small"):
        gc.trace(lambda a: np.gradient(a[:, :2], axis=1, edge_order=2), A)
    with pytest.raises(gc.UnsupportedError, match="coordinate"):
        gc.trace(lambda x, a: np.gradient(a[0, :3], x), X, A)
