"""gc.scatter_add, gc.segment_sum and np.bincount: forward against NumPy's
np.add.at on the interpreter and both backends, gradients against finite
differences, indices out of range refused; np.add.at itself is refused with
the functional alternative (an in-place update cannot be traced soundly)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import graphc as gc

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

EXECUTORS = ("interpret", "numpy", "llvm")
RNG = np.random.default_rng(2)
A = RNG.normal(size=(4, 3))
IDX = np.array([1, 3, 1, -1, 0])
V = RNG.normal(size=(5, 3))


def add_at(a: np.ndarray, idx: np.ndarray, v: Any, axis: int = 0) -> np.ndarray:
    out = np.array(a, copy=True)
    np.add.at(out, (slice(None),) * axis + (idx,), v)
    return out


@given(
    st.integers(1, 4),
    st.lists(st.integers(-4, 3), max_size=6),
    st.sampled_from([0, 1]),
)
def test_scatter_add_on_arrays_is_np_add_at(n: int, idx: list[int], axis: int) -> None:
    idx = [i % n for i in idx]
    a = np.arange(2.0 * n).reshape((n, 2) if axis == 0 else (2, n))
    v = np.ones((len(idx), 2) if axis == 0 else (2, len(idx)))
    got = gc.scatter_add(a, np.array(idx, dtype=np.int64), v, axis=axis)
    np.testing.assert_array_equal(got, add_at(a, np.array(idx, dtype=np.int64), v, axis))


@pytest.mark.parametrize("backend", EXECUTORS)
def test_scatter_add_traced_forward(backend: str) -> None:
    def f(a: Any, idx: Any, v: Any) -> Any:
        return (
            gc.scatter_add(a, idx, v),  # traced indices, repeats and a negative one
            gc.scatter_add(a, IDX[:3], 1.0),  # constant indices, broadcast scalar
            gc.scatter_add(a.T, idx[:2], v[:2].T, axis=1),
            gc.scatter_add(np.zeros((2, 3), np.int32), idx[:2] % 2, np.int32(3)),
        )

    got = gc.jit(f, backend=backend)(A, IDX, V)
    want = (
        add_at(A, IDX, V),
        add_at(A, IDX[:3], 1.0),
        add_at(A.T, IDX[:2], V[:2].T, axis=1),
        add_at(np.zeros((2, 3), np.int32), IDX[:2] % 2, np.int32(3)),
    )
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_scatter_add_gradients(backend: str) -> None:
    def loss(a: Any, v: Any, idx: Any) -> Any:
        return np.sum(np.sin(gc.scatter_add(a * a, idx, v * 2.0)))

    gc.check_grads(loss, (A, V, IDX), order=2)
    want = gc.grad(loss, argnums=(0, 1))(A, V, IDX)
    got = gc.jit(gc.grad(loss, argnums=(0, 1)), backend=backend)(A, V, IDX)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_segment_sum_message_passing(backend: str) -> None:
    senders, receivers = np.array([0, 1, 2, 2, 3]), np.array([1, 0, 0, 3, 3])
    h, w = RNG.normal(size=(4, 3)), RNG.normal(size=(3, 3))

    def layer(h: Any, w: Any, s: Any, r: Any) -> Any:
        return np.tanh(gc.segment_sum(h[s] @ w, r, 4))

    want = np.zeros((4, 3))
    np.add.at(want, receivers, h[senders] @ w)
    got = gc.jit(layer, backend=backend)(h, w, senders, receivers)
    np.testing.assert_allclose(got, np.tanh(want))
    np.testing.assert_allclose(gc.segment_sum(h[senders] @ w, receivers, 4), want)

    def loss(h: Any, w: Any) -> Any:
        return np.sum(layer(h, w, senders, receivers) ** 2)

    gc.check_grads(loss, (h, w))
    ref = gc.grad(loss, argnums=(0, 1))(h, w)
    got = gc.jit(gc.grad(loss, argnums=(0, 1)), backend=backend)(h, w)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("bad", [4, -1])
def test_segment_ids_out_of_range_fail_at_run_time(backend: str, bad: int) -> None:
    f = gc.jit(lambda d, ids: gc.segment_sum(d, ids, 4), backend=backend)
    np.testing.assert_allclose(f(np.ones(2), np.array([0, 3])), [1.0, 0.0, 0.0, 1.0])
    with pytest.raises(IndexError):
        f(np.ones(2), np.array([0, bad]))


def test_constant_ids_out_of_range_fail_when_tracing() -> None:
    with pytest.raises(gc.GraphcIndexError, match="out of bounds"):
        gc.trace(lambda d: gc.segment_sum(d, np.array([0, 5]), 4), np.ones(2))
    with pytest.raises(gc.GraphcIndexError):
        gc.segment_sum(np.ones(2), np.array([0, -1]), 4)
    with pytest.raises(gc.OpTypeError, match="1-d"):
        gc.segment_sum(np.ones((2, 2)), np.array([[0, 1]]), 4)


@pytest.mark.parametrize("backend", EXECUTORS)
def test_bincount_traced(backend: str) -> None:
    x, w = np.array([0, 2, 2, 1, 2]), RNG.normal(size=5)

    def f(x: Any, w: Any) -> Any:
        return (
            np.bincount(x, minlength=4),
            np.bincount(x, weights=w, minlength=3),
            np.bincount(np.array([3, 0, 3]), weights=w[:3]),  # constant x: length from data
            np.bincount(x.astype(np.int32), weights=x > 0, minlength=5),
        )

    got = gc.jit(f, backend=backend)(x, w)
    for g, want in zip(got, f(x, w)):
        assert g.dtype == want.dtype and g.shape == want.shape
        np.testing.assert_allclose(g, want, rtol=1e-12)


def test_bincount_weights_gradient() -> None:
    x = np.array([0, 2, 2, 1])

    def loss(w: Any) -> Any:
        return np.sum(np.bincount(x, weights=np.exp(w), minlength=3) ** 2)

    gc.check_grads(loss, (RNG.normal(size=4),))


@pytest.mark.parametrize("bad", [5, -1])
def test_bincount_value_outside_minlength_fails_at_run_time(bad: int) -> None:
    f = gc.jit(lambda x: np.bincount(x, minlength=5), backend="numpy")
    with pytest.raises(IndexError):
        f(np.array([0, bad]))


def test_bincount_needs_minlength_for_traced_values() -> None:
    with pytest.raises(gc.TracingError, match="minlength"):
        gc.trace(lambda x: np.bincount(x), np.array([0, 1]))


@pytest.mark.parametrize(
    "ufunc, words",
    [
        (np.add, r"gc\.scatter_add\(a, idx, v\)"),
        (np.subtract, r"gc\.scatter_add\(a, idx, -v\)"),
        (np.maximum, "only additive updates"),
    ],
)
def test_ufunc_at_is_refused_with_the_alternative(ufunc: Any, words: str) -> None:
    def f(a: Any, v: Any) -> Any:
        ufunc.at(a, np.array([0, 0]), v)
        return a

    with pytest.raises(gc.TracingError, match=words) as info:
        gc.trace(f, np.zeros(3), np.ones(2))
    assert __file__ in str(info.value)
    with pytest.raises(gc.TracingError, match=words):  # into a constant made while tracing
        gc.trace(lambda v: f(np.zeros(3), v), np.ones(2))
