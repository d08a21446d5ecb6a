"""A constant 0-d index is folded into its node as a literal operand
(``gather %x, 2:i64``); every backend must compile it, forward and backward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc as gc

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

BACKENDS = ["numpy", "llvm", "interpret"]
X = np.arange(12.0).reshape(3, 4) / 7.0

CASES: list[tuple[str, Callable[[Any], Any]]] = [
    ("getitem-0d", lambda x: x[np.array(2)]),
    ("getitem-0d-negative", lambda x: x[np.array(-1)]),
    ("getitem-0d-second-axis", lambda x: x[:, np.array(1)]),
    ("take-0d", lambda x: np.take(x, np.array(2), axis=0)),
    ("take-0d-int32-axis1", lambda x: np.take(x, np.array(3, np.int32), axis=1)),
    ("getitem-numpy-int", lambda x: x[:, np.int64(1)] * x[np.array(0), np.array(2)]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, f", CASES, ids=[c[0] for c in CASES])
def test_constant_0d_index_forward(backend: str, name: str, f: Any) -> None:
    got = gc.jit(f, backend=backend)(X)
    want = f(X)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, f", CASES, ids=[c[0] for c in CASES])
def test_constant_0d_index_backward(backend: str, name: str, f: Any) -> None:
    def loss(x: Any) -> Any:
        return np.sum(np.sin(f(x)))

    gc.check_grads(loss, (X,))
    got = gc.jit(gc.grad(loss), backend=backend)(X)
    np.testing.assert_allclose(got, gc.grad(loss)(X), rtol=1e-12)
