"""Incomplete gamma and beta functions (gammainc, gammaincc, betainc, stdtr
and their composites) against SciPy on the interpreter and both backends,
and their derivatives: in x against finite differences, in the shape
parameters against fourth-order differences of SciPy's functions over small
and large parameters. Also polygamma at negative x."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc as gc

from ..ir.oracles import ORACLES
from .helpers import BACKENDS, check_all

# Fourth-order differences of SciPy's functions (of the smaller tail).
gammainc_grad_a = ORACLES["gammainc_grad_a"]
betainc_grad = ORACLES["betainc_grad"]

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

RNG = np.random.default_rng(7)
A = RNG.uniform(0.2, 8.0, size=(3, 1))
X = RNG.uniform(0.05, 12.0, size=(3, 4))
B = RNG.uniform(0.2, 8.0, size=(4,))
U = RNG.uniform(0.02, 0.98, size=(3, 4))
T = RNG.normal(size=(3, 4)) * 3

FORWARD = {
    "gammainc": (lambda a, x: sp.gammainc(a, x), (A, X)),
    "gammaincc": (lambda a, x: sp.gammaincc(a, x), (A, X)),
    "betainc": (lambda a, b, u: sp.betainc(a, b, u), (A, B, U)),
    "stdtr": (lambda a, t: sp.stdtr(a, t), (A, T)),
    "chdtr": (lambda a, x: (sp.chdtr(a, x), sp.chdtrc(a, x)), (A, X)),
    "gdtr": (lambda a, x: (sp.gdtr(0.7, a, x), sp.gdtrc(1.3, a, x)), (A, X)),
    "gammaincinv": (lambda a, u: (sp.gammaincinv(a, u), sp.gammainccinv(a, u)), (A, U)),
    "betaincinv": (lambda a, b, u: (sp.betaincinv(a, b, u), sp.betainccinv(a, b, u)), (A, B, U)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(FORWARD))
def test_against_scipy(name: str, dtype: type) -> None:
    f, args = FORWARD[name]
    check_all(f, *(a.astype(dtype) for a in args), rtol=1e-13 if dtype == np.float64 else 2e-5)


def test_edges_follow_scipy() -> None:
    edges = np.array([0.0, 1e-300, 0.5, 1.0, 30.0, np.inf, np.nan, -1.0])
    a = edges[:, None]
    check_all(lambda a, x: (sp.gammainc(a, x), sp.gammaincc(a, x), sp.stdtr(a, x)), a, edges)
    check_all(lambda a, u: sp.betainc(a, a[::-1], u), a, np.array([0.0, 0.3, 1.0, np.nan, 2.0]))


@pytest.mark.parametrize("name", sorted(FORWARD))
def test_gradients_against_finite_differences(name: str) -> None:
    f, args = FORWARD[name]
    weights = RNG.normal(size=(3, 4))
    gc.check_grads(lambda *xs: sum(np.sum(r * weights) for r in _leaves(f(*xs))), args)


def _leaves(out: Any) -> tuple[Any, ...]:
    return out if isinstance(out, tuple) else (out,)


# Shape parameters from tiny to large, x on both sides of the switch between
# the series and the continued fraction (x = a, x = a + 1).
GAMMA_A = np.array([0.05, 0.5, 1.0, 3.0, 30.0, 300.0, 3000.0])[:, None]
GAMMA_X = np.array([0.01, 0.7, 1.0, 2.9, 29.0, 31.5, 320.0, 2950.0, 3100.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_gamma_shape_gradient_over_a_wide_range(backend: str) -> None:
    grad = gc.jit(gc.grad(lambda a, x: np.sum(sp.gammainc(a, x))), backend=backend)
    a, x = np.broadcast_arrays(GAMMA_A, GAMMA_X)
    got = grad(a, x)
    want = gammainc_grad_a(a, x)
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=1e-300)
    upper = gc.jit(gc.grad(lambda a, x: np.sum(sp.gammaincc(a, x))), backend=backend)(a, x)
    np.testing.assert_array_equal(upper, -got)


BETA_AB = np.array([0.1, 0.7, 3.0, 20.0, 500.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_beta_shape_gradients_over_a_wide_range(backend: str) -> None:
    a, b, u = np.meshgrid(BETA_AB, BETA_AB, np.array([1e-3, 0.2, 0.5, 0.8, 0.999]), indexing="ij")
    loss = lambda a, b, u: np.sum(sp.betainc(a, b, u))  # noqa: E731
    grad = gc.jit(gc.grad(loss, argnums=(0, 1)), backend=backend)
    got_a, got_b = grad(a, b, u)
    want_a, want_b = betainc_grad(a, b, u)
    # Where the values underflow the differences are noise: compare above.
    for got, want in ((got_a, want_a), (got_b, want_b)):
        seen = np.abs(want) > 1e-200
        np.testing.assert_allclose(got[seen], want[seen], rtol=2e-7)


@settings(max_examples=15, deadline=None)
@given(
    st.floats(0.05, 200.0),
    st.floats(0.05, 200.0),
    # SciPy's own values lose accuracy at subnormal x: keep the oracle sound.
    st.floats(1e-10, 1.0 - 1e-10),
)
def test_shape_gradients_property(a: float, b: float, u: float) -> None:
    """d/da and d/db of betainc and gammainc agree with differences of SciPy's
    functions wherever those are well above rounding noise."""
    args = (np.array(a), np.array(b), np.array(u))
    got_a, got_b = gc.grad(lambda a, b, u: sp.betainc(a, b, u), argnums=(0, 1))(*args)
    want_a, want_b = betainc_grad(*args)
    for got, want in ((got_a, want_a), (got_b, want_b)):
        if abs(want) > 1e-250:
            assert got == pytest.approx(want, rel=1e-6, abs=1e-300)
    x = np.array(u * 3 * b)
    got = gc.grad(lambda a, x: sp.gammainc(a, x))(np.array(a), x)
    want = gammainc_grad_a(np.array(a), x)
    if abs(want) > 1e-250:
        assert got == pytest.approx(want, rel=1e-6, abs=1e-300)


def test_edges_of_the_shape_gradients() -> None:
    """Constant in a at x = 0 and x = inf; NaN for invalid parameters."""
    grad = gc.jit(gc.grad(lambda a, x: np.sum(sp.gammainc(a, x))), backend="numpy")
    a = np.array([2.0, 2.0, -1.0, np.nan, 2.0])
    np.testing.assert_array_equal(grad(a, np.array([0.0, np.inf, 1.0, 1.0, np.nan])),
                                  [0.0, 0.0, np.nan, np.nan, np.nan])  # fmt: skip
    grad = gc.jit(gc.grad(lambda a, u: np.sum(sp.betainc(a, 2.0, u))), backend="llvm")
    np.testing.assert_array_equal(
        grad(np.array([2.0, 2.0, -1.0]), np.array([0.0, 1.0, 0.5])), [0.0, 0.0, np.nan]
    )


def test_second_derivatives() -> None:
    """Twice in x works (the density is ordinary ops); through a shape
    parameter it is refused at the user's line."""
    gc.check_grads(lambda x: np.sum(sp.gammainc(2.5, x)), (X,), order=2)
    gc.check_grads(lambda u: np.sum(sp.betainc(2.0, 3.0, u)), (U,), order=2)
    gc.check_grads(lambda a: np.sum(gc.grad(lambda x: np.sum(sp.gammainc(a, x)))(X)), (A,))

    def second(a: Any) -> Any:
        return gc.grad(lambda c: np.sum(sp.gammainc(c, X)))(a)

    line = second.__code__.co_firstlineno + 1
    with pytest.raises(gc.DifferentiationError, match="gammainc: second derivatives") as info:
        gc.grad(lambda a: np.sum(second(a)))(A)
    assert f":{line}" in str(info.value)


def test_large_shape_parameter_converges() -> None:
    """A large parameter takes about 9 sqrt(a) terms, on both backends."""
    a, x = np.array([1e4, 1e4]), np.array([1e4, 1.01e4])
    want = gammainc_grad_a(a, x)
    for backend in BACKENDS:
        got = gc.jit(gc.grad(lambda a: np.sum(sp.gammainc(a, x))), backend=backend)(a)
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_polygamma_at_negative_x() -> None:
    """Below -16 too (the series and recurrence alone gave NaN there)."""
    x = -np.array([0.3, 1.7, 7.25, 15.9, 16.3, 20.2, 33.7, 100.1, 1000.25, 1e5 + 0.4])
    for n in (1, 2, 3):
        check_all(lambda a, n=n: sp.polygamma(n, a), x, rtol=1e-12)
    poles = np.array([0.0, -1.0, -20.0, -np.inf])
    check_all(lambda a: (sp.polygamma(1, a), sp.polygamma(2, a)), poles)


def test_empty_and_float32_operands() -> None:
    for backend in BACKENDS:
        grad = gc.jit(gc.grad(lambda a: np.sum(sp.betainc(a, 2.0, 0.5))), backend=backend)
        assert grad(np.ones((2, 0))).shape == (2, 0)
        got = gc.jit(gc.grad(lambda a: np.sum(sp.gammainc(a, 1.0))), backend=backend)(
            np.array([1.5, 2.5], np.float32)
        )
        assert got.dtype == np.float32
        np.testing.assert_allclose(
            got, gammainc_grad_a(np.array([1.5, 2.5]), np.array(1.0)), rtol=1e-6
        )
