"""Forward mode on traced tangents, pow at its corners, and keyword arguments
passed through every transform."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

X = np.array([0.1, 0.2, 0.3])


def test_grad_of_jvp_with_respect_to_the_tangent_is_the_jacobian_row():
    # d/dv sum(J v) for f = sin is cos(x): the tangent v is traced by grad
    got = gc.grad(lambda v: np.sum(gc.jvp(np.sin, (X,), (v,))[1]))(np.ones(3))
    np.testing.assert_allclose(got, np.cos(X), rtol=1e-14)


def test_jvp_of_jvp_with_a_traced_inner_tangent():
    # d/dt [jvp(sin, (x,), (v,)) at v = w + t u] = cos(x) * u
    w, u = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, -1.0])
    _, tangent = gc.jvp(lambda v: gc.jvp(np.sin, (X,), (v,))[1], (w,), (u,))
    np.testing.assert_allclose(tangent, np.cos(X) * u, rtol=1e-14)
    # and through the primal: second derivative -sin(x) * w * u
    _, tangent = gc.jvp(lambda p: gc.jvp(np.sin, (p,), (w,))[1], (X,), (u,))
    np.testing.assert_allclose(tangent, -np.sin(X) * w * u, rtol=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_jit_of_jvp_and_hvp_with_tangents_as_arguments(backend):
    def f(x):
        return np.sum(np.sin(x) * x)

    jvp = gc.jit(lambda x, t: gc.jvp(f, (x,), (t,)), backend=backend)
    t = np.array([1.0, -1.0, 2.0])
    value, tangent = jvp(X, t)
    step = 1e-6
    np.testing.assert_allclose(value, f(X), rtol=1e-14)
    np.testing.assert_allclose(tangent, (f(X + step * t) - f(X - step * t)) / (2 * step), rtol=1e-8)
    hvp = gc.jit(lambda x, t: gc.hvp(f, (x,), (t,)), backend=backend)
    hessian = np.diag(2 * np.cos(X) - X * np.sin(X))
    np.testing.assert_allclose(hvp(X, t), hessian @ t, rtol=1e-13)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_vjp_with_a_traced_cotangent_under_jit_and_grad(backend):
    pull = gc.jit(lambda x, c: gc.vjp(np.sin, x)[1](c)[0], backend=backend)
    c = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(pull(X, c), np.cos(X) * c, rtol=1e-14)
    g = gc.grad(lambda c: np.sum(gc.vjp(np.sin, X)[1](c)[0]))(c)
    np.testing.assert_allclose(g, np.cos(X), rtol=1e-14)


def test_jvp_of_grad():
    # forward over reverse by hand: the Hessian of sum(x**3) times t
    t = np.array([1.0, 0.5, -2.0])
    _, tangent = gc.jvp(gc.grad(lambda x: np.sum(x**3)), (X,), (t,))
    np.testing.assert_allclose(tangent, 6 * X * t, rtol=1e-14)


def test_traced_tangent_of_the_wrong_shape_names_the_argument():
    message = r"tangent of argument 0 has shape \(2,\), its primal \(3,\)"
    with pytest.raises(gc.InputError, match=message):
        gc.grad(lambda v: np.sum(gc.jvp(lambda x: x, (X,), (v,))[1]))(np.ones(2))


def test_jvp_returns_only_outputs_and_tangents_and_keeps_weak_results():
    out, tangent = gc.jvp(lambda x: (x * 2.0, 3.0), (1.0,), (1.0,))
    assert float(out[0]) == 2.0 and float(tangent[0]) == 2.0 and float(tangent[1]) == 0.0


# -- pow at its corners ------------------------------------------------------


@pytest.mark.parametrize(
    "y, first, second", [(0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (2.0, 0.0, 2.0), (3.0, 0.0, 0.0)]
)
def test_pow_derivatives_at_zero(y, first, second):
    f = lambda x: np.power(x, y)  # noqa: E731
    assert float(gc.grad(f)(0.0)) == first
    assert float(gc.grad(gc.grad(f))(0.0)) == second


def test_pow_with_a_traced_exponent_at_zero_zero_and_its_mixed_partial():
    f = lambda x, y: np.power(x, y)  # noqa: E731
    assert float(gc.grad(f)(0.0, 0.0)) == 0.0
    assert float(gc.grad(gc.grad(f))(0.0, 0.0)) == 0.0
    # d2/dxdy x**y = x**(y-1) (1 + y log x): 1/x at y = 0, kept away from x = 0
    np.testing.assert_allclose(gc.grad(gc.grad(f), argnums=1)(2.0, 0.0), 0.5, rtol=1e-14)
    exps = np.array([0, 1, 2])  # integer exponents
    g = gc.grad(lambda x: np.sum(x**exps))(np.zeros(3))
    np.testing.assert_array_equal(g, [0.0, 1.0, 0.0])


@pytest.mark.parametrize("y", [0.0, 1.0, 2.0, 2.5])
def test_pow_second_order_check_at_zero_and_away(y):
    gc.check_grads(lambda x: np.sum(np.power(x, y)), (np.array([0.7, 1.9]),), order=2)
    assert np.isfinite(gc.grad(gc.grad(lambda x: np.power(x, y)))(0.0))


# -- keyword arguments ---------------------------------------------------------


def scaled(x, *, scale=1.0, shift=None):
    out = scale * np.sum(x**2)
    return out if shift is None else out + np.sum(shift * x)


def test_grad_and_value_and_grad_pass_keywords_undifferentiated():
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(gc.grad(scaled)(x, scale=3.0), 6.0 * x)
    value, g = gc.value_and_grad(scaled)(x, scale=3.0, shift=np.ones(2))
    np.testing.assert_allclose(value, 14.0)
    np.testing.assert_allclose(g, 6.0 * x + 1.0)
    g = gc.grad(lambda x, scale: scale * np.sum(x), argnums=0)(x, scale=2.0)
    np.testing.assert_allclose(g, [2.0, 2.0])


def test_vjp_jvp_hvp_and_check_grads_pass_keywords():
    x = np.array([1.0, -2.0])
    out, pullback = gc.vjp(scaled, x, scale=3.0)
    np.testing.assert_allclose(out, 15.0)
    np.testing.assert_allclose(pullback(np.ones(()))[0], 6.0 * x)
    _, tangent = gc.jvp(scaled, (x,), (np.ones(2),), kwargs={"scale": 3.0})
    np.testing.assert_allclose(tangent, np.sum(6.0 * x))
    np.testing.assert_allclose(gc.hvp(scaled, (x,), (np.ones(2),), {"scale": 3.0}), 6.0)
    gc.check_grads(scaled, (x,), order=2, kwargs={"scale": 3.0, "shift": np.ones(2)})


def test_traced_keyword_is_differentiated_by_the_outer_transform_only():
    x = np.array([1.0, -2.0])
    # d/ds of grad_x(s * sum(x^2)) . 1 = sum(2x)
    outer = gc.grad(lambda s: np.sum(gc.grad(scaled)(x, scale=s)))(3.0)
    np.testing.assert_allclose(outer, np.sum(2 * x))
    jitted = gc.jit(lambda x, s: gc.grad(scaled)(x, scale=s), backend="numpy")
    np.testing.assert_allclose(jitted(x, 2.0), 4.0 * x)
