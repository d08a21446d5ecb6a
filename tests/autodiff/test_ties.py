"""First and second derivatives at ties, for every op and composite with a tie
or select rule.

Each case is a scalar path ``s -> f(p + s d)`` through a tie at ``s = 0``. The
derivatives graphc gives there must be the derivative from the left, from the
right, or their mean (the tie rules' choices); both one-sided values come from
one-sided finite differences of ``f`` itself. For a function that is smooth at
the tie (logaddexp, hypot, softplus) all three agree, so a tie rule leaking
into the second derivative (giving 0) fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import nn

H = 1e-4


def one_sided(g, sign):
    """First and second derivatives of g at 0 from one side (second order)."""
    f0, f1, f2, f3 = (g(sign * k * H) for k in range(4))
    first = (-3 * f0 + 4 * f1 - f2) / (2 * H) * sign
    second = (2 * f0 - 5 * f1 + 4 * f2 - f3) / H**2
    return first, second


def unary(fn, tie):
    return lambda s: fn(tie + s)


def binary(fn, tie, d):
    return lambda s: fn(tie[0] + s * d[0], tie[1] + s * d[1])


def vector(fn, tie, d):
    tie, d = np.asarray(tie), np.asarray(d)
    return lambda s: fn(tie + s * d)


def bce(z):
    return nn.binary_cross_entropy_with_logits(z, np.array(0.3))


UNARY = {
    "abs@0": (np.abs, 0.0),
    "maximum@0": (lambda x: np.maximum(x, 0.0), 0.0),
    "minimum@0": (lambda x: np.minimum(0.0, x), 0.0),
    "fmax@0.5": (lambda x: np.fmax(x, 0.5), 0.5),
    "fmin@0.5": (lambda x: np.fmin(0.5, x), 0.5),
    "clip_low": (lambda x: np.clip(x, -1.0, 2.0), -1.0),
    "clip_high": (lambda x: np.clip(x, -1.0, 2.0), 2.0),
    "where@0": (lambda x: np.where(x > 0, x * x, np.sin(x)), 0.0),
    "relu@0": (nn.relu, 0.0),
    "leaky_relu@0": (nn.leaky_relu, 0.0),
    "elu@0": (nn.elu, 0.0),
    "softplus@0": (nn.softplus, 0.0),
    "bce_with_logits@0": (bce, 0.0),
    "hypot(x,2)@2": (lambda x: np.hypot(x, 2.0), 2.0),
    "hypot(x,2)@0": (lambda x: np.hypot(x, 2.0), 0.0),
    "hypot(2,x)@-2": (lambda x: np.hypot(2.0, x), -2.0),
    "logaddexp@0.6": (lambda x: np.logaddexp(x, 0.6), 0.6),
    "logaddexp2@0.6": (lambda x: np.logaddexp2(0.6, x), 0.6),
    "abs_pow3@0": (lambda x: np.abs(x) ** 3, 0.0),
    "pow0@0": (lambda x: np.power(x, 0.0) * x, 0.0),
}
BINARY_FNS = {
    "maximum": np.maximum,
    "minimum": np.minimum,
    "fmax": np.fmax,
    "fmin": np.fmin,
    "hypot": np.hypot,
    "logaddexp": np.logaddexp,
    "logaddexp2": np.logaddexp2,
}
VECTOR_FNS = {
    "max": np.max,
    "min": np.min,
    "ptp": np.ptp,
    "norm_inf": lambda x: np.linalg.norm(x, ord=np.inf),
    "norm_1": lambda x: np.linalg.norm(x - 0.6, ord=1),
    "logsumexp": nn.logsumexp,
    "softmax": lambda x: nn.softmax(x)[0],
    "log_softmax": lambda x: nn.log_softmax(x)[1],
    "cummax": lambda x: np.maximum.accumulate(x)[-1],
    "max_pool2d": lambda x: np.sum(nn.max_pool2d(np.sin(x[:2] + x[2]).reshape(1, 1, 1, 2), (1, 2))),
}
DIRECTIONS = [(1.0, 0.0), (0.0, 1.0), (1.0, 2.0)]

CASES = {name: unary(fn, tie) for name, (fn, tie) in UNARY.items()}
for name, fn in BINARY_FNS.items():
    for d in DIRECTIONS:
        CASES[f"{name}{d}"] = binary(fn, (0.6, 0.6), d)
for name, fn in VECTOR_FNS.items():
    for d in DIRECTIONS:
        CASES[f"{name}{d}"] = vector(fn, (0.6, 0.6, -0.2), (*d, 0.5))


def derivatives(path, backend):
    first = gc.grad(path)
    both = lambda s: (first(s), gc.grad(first)(s))  # noqa: E731
    if backend != "interpret":
        both = gc.jit(both, backend=backend)
    return tuple(float(v) for v in both(0.0))


def assert_one_sided_or_mean(got, left, right, what):
    choices = (left, right, (left + right) / 2)
    ok = any(abs(got - c) <= 1e-5 * max(1.0, abs(c)) for c in choices)
    assert ok, f"{what} {got!r} is neither side ({left!r}, {right!r}) nor their mean"


# Every case on the interpreter; on LLVM (whose passes rewrite the backward
# graph) the unary cases and one direction per multi-argument function.
PARAMS = [(name, "interpret") for name in sorted(CASES)] + [
    (name, "llvm") for name in sorted(CASES) if "," not in name or "(1.0, 2.0)" in name
]


@pytest.mark.parametrize("name, backend", PARAMS)
def test_derivatives_at_a_tie_are_one_sided_or_their_mean(name, backend):
    path = CASES[name]
    left, right = one_sided(path, -1), one_sided(path, 1)
    first, second = derivatives(path, backend)
    assert_one_sided_or_mean(first, left[0], right[0], "first derivative")
    assert_one_sided_or_mean(second, left[1], right[1], "second derivative")


@pytest.mark.parametrize(
    "fn, x, y, want",
    [
        (np.hypot, 2.0, 2.0, 2.0**2 / 8.0**1.5),
        (np.logaddexp, 0.6, 0.6, 0.25),
        (np.logaddexp2, 0.6, 0.6, 0.25 * np.log(2)),
    ],
)
def test_second_derivative_at_the_tie_is_the_analytic_value(fn, x, y, want):
    got = gc.grad(gc.grad(lambda v: fn(v, y)))(x)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_composites_rewritten_by_cases_keep_numpy_values_at_edges():
    edges = np.array([0.0, -0.0, 0.6, -3.0, 1e300, -1e300, np.inf, -np.inf, np.nan, 5e-324])
    x, y = np.meshgrid(edges, edges)
    for fn in (np.hypot, np.logaddexp, np.logaddexp2):
        with np.errstate(invalid="ignore"):  # NumPy warns on nan operands of logaddexp
            want = fn(x, y)
        for backend in ("numpy", "llvm"):
            got = gc.jit(fn, backend=backend)(x, y)
            np.testing.assert_allclose(got, want, rtol=1e-15, atol=0, err_msg=fn.__name__)
        grads = gc.grad(lambda a, b, fn=fn: np.sum(fn(a, b)), argnums=(0, 1))(x, y)
        finite = np.isfinite(x) & np.isfinite(y) & (np.abs(x) < 1e300) & (np.abs(y) < 1e300)
        assert all(np.isfinite(g[finite]).all() for g in grads), fn.__name__
