"""Every transform composed with every other, on traced arguments.

Each transform is turned into an operator taking a scalar function of a vector
to another one (a directional derivative, a Hessian-vector product contracted
with a vector, a compiled copy), so any two compose. Its reference applies the
same formula with central differences, so ``outer(inner(f))`` is checked
against nested finite differences. The jvp and hvp tangents are computed from
``x`` (traced whenever an outer transform is tracing).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graphc as gc

X0 = np.array([0.3, -0.7, 1.1])
W = np.array([0.5, -1.0, 0.25])
U = np.array([-0.4, 0.8, 1.5])


def f(x):
    return np.sum(np.sin(x) * x) + np.prod(np.cos(0.5 * x))


def central(h, fn, x, d):
    return (fn(x + h * d) - fn(x - h * d)) / (2 * h)


# name -> (graphc operator, reference operator, derivative order it adds)
def _grad(fn):
    return lambda x: np.sum(gc.grad(fn)(x) * W)


def _value_and_grad(fn):
    def op(x):
        value, g = gc.value_and_grad(fn)(x)
        return value + np.sum(g * W)

    return op


def _vjp(fn):
    def op(x):
        _, pullback = gc.vjp(fn, x)
        return np.sum(pullback(np.ones(()))[0] * W)

    return op


def _jvp(fn):
    return lambda x: gc.jvp(fn, (x,), (x * W,))[1]


def _hvp(fn):
    return lambda x: np.sum(gc.hvp(fn, (x,), (x * W,)) * U)


def _jit(backend):
    return lambda fn: gc.jit(fn, backend=backend)


def _ref_first(h, direction):
    return lambda fn: lambda x: central(h, fn, x, direction(x))


def _ref_value_and_grad(h):
    return lambda fn: lambda x: fn(x) + central(h, fn, x, W)


def _ref_hvp(h):
    def op(fn):
        return lambda x: central(h, lambda y: central(h, fn, y, x * W), x, U)

    return op


def operators(h):
    return {
        "grad": (_grad, _ref_first(h, lambda x: W), 1),
        "value_and_grad": (_value_and_grad, _ref_value_and_grad(h), 1),
        "vjp": (_vjp, _ref_first(h, lambda x: W), 1),
        "jvp": (_jvp, _ref_first(h, lambda x: x * W), 1),
        "hvp": (_hvp, _ref_hvp(h), 2),
        "jit_numpy": (_jit("numpy"), lambda fn: fn, 0),
        "jit_llvm": (_jit("llvm"), lambda fn: fn, 0),
    }


NAMES = list(operators(1.0))


@pytest.mark.parametrize("outer,inner", list(itertools.product(NAMES, NAMES)))
def test_transform_of_transform_matches_nested_finite_differences(outer, inner):
    ops = operators(1.0)
    order = ops[outer][2] + ops[inner][2]
    # Rounding grows like eps / h**order, truncation like h**2: balance them.
    h = {0: 1.0, 1: 1e-5, 2: 1e-4, 3: 1e-3, 4: 3e-3}[order]
    ops = operators(h)
    got = ops[outer][0](ops[inner][0](f))(X0)
    want = ops[outer][1](ops[inner][1](f))(X0)
    rtol = {0: 1e-12, 1: 1e-6, 2: 1e-5, 3: 5e-5, 4: 5e-4}[order]
    np.testing.assert_allclose(float(np.asarray(got)), want, rtol=rtol)
