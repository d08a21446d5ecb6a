"""Arguments graphc cannot take say so, naming the argument: np.matrix and
masked arrays are refused (on every transform, and on a jitted function
already compiled for plain arrays of the same shape); None and Python lists,
which are pytree nodes, get an error naming the argument when the function
uses them as arrays, while their pytree meaning keeps working."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc as gc

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

TRANSFORMS: list[tuple[str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = [
    ("jit-numpy", lambda f: gc.jit(f, backend="numpy")),
    ("jit-llvm", lambda f: gc.jit(f, backend="llvm")),
    ("grad", lambda f: gc.grad(functools.wraps(f)(lambda *a: np.sum(f(*a))))),
    ("trace", lambda f: lambda *a: gc.trace(f, *a)),
]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix's own notice
    MATRIX = np.matrix([[1.0, 2.0]])
REFUSED = [
    ("matrix", MATRIX, "np.matrix", "np.asarray"),
    ("masked", np.ma.array([[1.0, 2.0]], mask=[[False, True]]), "masked array", "filled"),
]


@pytest.mark.parametrize("transform_name, transform", TRANSFORMS, ids=[t[0] for t in TRANSFORMS])
@pytest.mark.parametrize("kind, value, words, hint", REFUSED, ids=[r[0] for r in REFUSED])
def test_matrix_and_masked_arrays_are_refused(
    transform_name: str, transform: Any, kind: str, value: Any, words: str, hint: str
) -> None:
    def f(w: Any, x: Any) -> Any:
        return w * x

    with pytest.raises(gc.InputError, match=words) as info:
        transform(f)(np.ones((1, 2)), value)
    text = str(info.value)
    assert "argument 'x'" in text and hint in text, text
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("kind, value, words, hint", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_after_compiling_for_plain_arrays(
    kind: str, value: Any, words: str, hint: str
) -> None:
    f = gc.jit(lambda x: x * x, backend="numpy")
    f(np.ones((1, 2)))  # same shape and dtype: the signature must still differ
    with pytest.raises(gc.InputError, match=words):
        f(value)


def test_none_argument_named_when_python_uses_it() -> None:
    with pytest.raises(gc.InputError, match="argument 'x' is None") as info:
        gc.jit(lambda x: x * 2, backend="numpy")(None)
    assert "NoneType" in str(info.value) and __file__ in str(info.value)


@pytest.mark.parametrize("transform_name, transform", TRANSFORMS, ids=[t[0] for t in TRANSFORMS])
def test_none_argument_named_when_numpy_uses_it(transform_name: str, transform: Any) -> None:
    def f(w: Any, x: Any) -> Any:
        return np.add(w, x)

    with pytest.raises(gc.InputError, match="argument 'x' is None") as info:
        transform(f)(np.ones(2), None)
    assert "dtype object" not in str(info.value)


def test_none_inside_parameters_is_named_by_its_path() -> None:
    params = {"w": np.ones((2, 2)), "b": None}
    with pytest.raises(gc.InputError, match=r"argument 'p\['b'\]' is None"):
        gc.jit(lambda p, x: x @ p["w"] + p["b"], backend="numpy")(params, np.ones(2))


def test_none_from_elsewhere_says_what_happened() -> None:
    def nothing(x: Any) -> None:
        x * 2  # forgot the return

    with pytest.raises(gc.InputError, match="got None where an array is needed"):
        gc.trace(lambda x: x + nothing(x), np.ones(2))


@pytest.mark.parametrize(
    "f, python_says",
    [
        (lambda x: x**2, "unsupported operand"),
        (lambda x: x.shape[0] * 1.0, "has no attribute 'shape'"),
        (lambda x: x + 1.0, "can only concatenate list"),
    ],
)
def test_list_used_as_an_array_is_named(f: Any, python_says: str) -> None:
    with pytest.raises(gc.InputError, match="argument 'x' is a Python list") as info:
        gc.jit(f, backend="numpy")([1.0, 2.0])
    text = str(info.value)
    assert "np.asarray(x)" in text and python_says in text and __file__ in text, text


def test_lists_keep_their_pytree_meaning() -> None:
    # a list argument is a container of separate values, as in JAX
    grads = gc.grad(lambda p: p[0] * p[1] + np.sum(np.asarray(p) ** 2))([2.0, 3.0])
    assert isinstance(grads, list)
    np.testing.assert_allclose(grads, [3.0 + 4.0, 2.0 + 6.0])
    np.testing.assert_allclose(gc.jit(lambda x: np.mean(x), backend="llvm")([1.0, 2.0]), 1.5)
