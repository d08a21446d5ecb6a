"""scipy.linalg.expm and scipy.linalg.lu against SciPy and closed forms
(interpreter, both backends, float64 and float32, batched), gradients
against finite differences, and their error cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl

import graphc as gc
from graphc.ir import interpret
from graphc.tracing import trace_flat

from .helpers import BACKENDS, check_all

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

RNG = np.random.default_rng(8)
STACK = RNG.normal(size=(2, 3, 3))
ODD = RNG.normal(size=(5, 5)) / 2


def _runs(f, *args):  # noqa: ANN001, ANN202
    """f's results from the interpreter and each backend, by name."""
    g = trace_flat(f, args).graph
    out = {"interpreter": interpret(g, *args)[0]}
    for backend in BACKENDS:
        out[backend] = gc.jit(f, backend=backend)(*args)
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_expm_matches_scipy(dtype: type) -> None:
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    nonfinite = [np.diag([1.0, -np.inf, np.inf]), [[np.inf, 1], [0, 1]], [[np.nan, 1], [1, 1]]]
    for a in (STACK, ODD, STACK[:, :1, :1], np.zeros((3, 3)), np.triu(ODD), *nonfinite):
        check_all(sl.expm, np.asarray(a, dtype), rtol=rtol)


def test_expm_needing_many_squarings() -> None:
    # |a|_1 of about 60 and 1e4: the Padé step runs on a / 2^4 and a / 2^11.
    for scale in (20.0, 3000.0):
        a = scale * RNG.normal(size=(2, 3, 3)) / 3
        a[1] *= 0.01  # the stack's matrices need different numbers of squarings
        want = sl.expm(a)
        for name, got in _runs(sl.expm, a).items():
            # normwise: SciPy itself is only this close to the exact exponential
            error = np.abs(got - want).max(axis=(1, 2)) / np.abs(want).max(axis=(1, 2))
            assert np.all(error < 1e-11), (name, scale, error)


def test_expm_closed_forms() -> None:
    # A rotation generator (exp = rotation by t) and a symmetric matrix
    # (exp through its eigenvectors), both with large norms.
    t = 40.0
    rotation = np.array([[0.0, -t], [t, 0.0]])
    exact = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    q = np.linalg.qr(RNG.normal(size=(4, 4)))[0]
    w = np.array([-25.0, -3.0, 0.5, 20.0])
    symmetric = (q * w) @ q.T
    exact_symmetric = (q * np.exp(w)) @ q.T
    for name, got in _runs(sl.expm, rotation).items():
        np.testing.assert_allclose(got, exact, rtol=0, atol=1e-13, err_msg=name)
    for name, got in _runs(sl.expm, symmetric).items():
        scale = np.exp(20.0)
        np.testing.assert_allclose(got, exact_symmetric, rtol=0, atol=1e-13 * scale, err_msg=name)


def test_expm_gradients() -> None:
    gc.check_grads(lambda a: np.sum(np.sin(sl.expm(a))), (STACK,))
    # large enough for squarings in the forward and in the gradient's expm
    gc.check_grads(lambda a: np.sum(sl.expm(a) ** 2), (4 * STACK[0],), rtol=1e-4)
    gc.check_grads(lambda a: np.sum(np.cos(sl.expm(a))), (ODD[:3, :3],), order=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_expm_gradient_on_each_backend(backend: str) -> None:
    def f(a):  # noqa: ANN001, ANN202
        return np.sum(np.sin(sl.expm(a)) * np.arange(9.0).reshape(3, 3))

    got = gc.jit(gc.grad(f), backend=backend)(STACK)
    want = np.zeros_like(STACK)
    eps = 1e-6
    for i in np.ndindex(STACK.shape):
        step = np.zeros_like(STACK)
        step[i] = eps
        want[i] = (f(STACK + step) - f(STACK - step)) / (2 * eps)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_expm_scalars_and_errors() -> None:
    check_all(lambda x: sl.expm(x), np.array([0.5]))
    check_all(lambda x: sl.expm(x), np.array([[1, 2], [0, 1]]))  # integers compute in float64
    with pytest.raises(gc.OpTypeError, match="square"):
        gc.jit(sl.expm)(np.ones((2, 3)))
    with pytest.raises(gc.OpTypeError, match="two-dimensional"):
        gc.jit(sl.expm)(np.ones(3))


@pytest.mark.filterwarnings("ignore:Diagonal number")  # SciPy's own call on a singular matrix
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lu_matches_scipy(dtype: type) -> None:
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    # square, tall and wide (the rectangular ones factor a padded square matrix)
    for a in (STACK, ODD, np.zeros((2, 2)), ODD[:, :2], STACK[:, :2, :], STACK[:, :, :1]):
        check_all(_every_lu, a.astype(dtype), rtol=rtol)


def _every_lu(x):  # noqa: ANN001, ANN202
    return (*sl.lu(x), *sl.lu(x, permute_l=True), sl.lu(x, p_indices=True)[0])


def test_lu_gradients() -> None:
    def f(a):  # noqa: ANN001, ANN202
        _, lower, upper = sl.lu(a)
        return np.sum(np.sin(lower) * np.arange(lower.shape[-1])) + np.sum(upper**2)

    for a in (STACK, ODD[:, :3], ODD[:2]):  # square, tall, wide
        gc.check_grads(f, (a,))
    gc.check_grads(lambda a: np.sum(np.cos(sl.lu(a, permute_l=True)[0])), (ODD,))
    for backend in BACKENDS:
        g = gc.jit(gc.grad(f), backend=backend)(ODD[:, :3])
        np.testing.assert_allclose(g, gc.grad(f)(ODD[:, :3]), rtol=1e-10)


def test_lu_of_a_vector_is_refused() -> None:
    with pytest.raises(gc.OpTypeError, match="two-dimensional"):
        gc.jit(sl.lu)(np.ones(3))
