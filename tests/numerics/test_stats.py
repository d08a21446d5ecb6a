"""scipy.stats densities on traced arrays against SciPy (both backends) and
their gradients in the data and the parameters against finite differences."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.stats as ss

import graphc as gc

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 4))
P = RNG.uniform(0.05, 0.95, size=(3, 4))
POS = RNG.gamma(2.0, size=(3, 4))

TAILS = ("cdf", "logcdf", "sf", "logsf")
CASES = {
    "norm": (lambda x: (
        ss.norm.logpdf(x, 0.5, 2.0), ss.norm.pdf(x, loc=0.1), ss.norm.cdf(x),
        ss.norm.logcdf(x * 4), ss.norm.sf(x, scale=3.0), ss.norm.logsf(x),
    ), X),
    "t": (lambda x: (ss.t.logpdf(x, 3.5), ss.t.pdf(x, df=2.0, loc=1.0, scale=2.0)), X),
    "gamma": (lambda x: (ss.gamma.logpdf(x, 2.5), ss.gamma.pdf(x, a=1.5, scale=2.0)), POS),
    "beta": (lambda x: (ss.beta.logpdf(x, 2.0, 3.0), ss.beta.pdf(x, 0.7, 1.5)), P),
    "chi2": (lambda x: ss.chi2.logpdf(x, 3.0), POS),
    "t_tails": (lambda x: tuple(
        getattr(ss.t, m)(x * 4, np.array([[0.7], [3.0], [40.0]]), loc=0.3, scale=1.5)
        for m in TAILS
    ), X),
    "gamma_tails": (lambda x: tuple(
        getattr(ss.gamma, m)(x * 3, np.array([0.5, 2.0, 7.5, 30.0]), scale=2.0) for m in TAILS
    ), POS),
    "beta_tails": (lambda x: tuple(
        getattr(ss.beta, m)(x, np.array([[0.5], [2.0], [7.0]]), np.array([0.8, 3.0, 1.0, 20.0]))
        for m in TAILS
    ), P),
    "chi2_tails": (lambda x: tuple(getattr(ss.chi2, m)(x * 5, 3.0, loc=0.1) for m in TAILS), POS),
    "expon": (lambda x: (ss.expon.logpdf(x, scale=2.0), ss.expon.cdf(x), ss.expon.logsf(x)), POS),
    "logistic": (lambda x: (ss.logistic.logpdf(x), ss.logistic.cdf(x), ss.logistic.logsf(x)), X),
    "poisson": (lambda x: (
        ss.poisson.logpmf(np.floor(x * 3), 2.5), ss.poisson.pmf(np.floor(x * 3), mu=1.5),
    ), POS),
    "dirichlet": (
        lambda x: ss.dirichlet.logpdf(x[0] / np.sum(x[0]), np.array([1.5, 2.0, 0.8, 3.0])), POS
    ),
    "multivariate_normal": (
        lambda x: ss.multivariate_normal.logpdf(x, mean=np.arange(4.0), cov=np.eye(4) * 2 + 0.1),
        X,
    ),
    "multivariate_normal_point": (
        lambda x: ss.multivariate_normal.pdf(x[0], mean=np.zeros(4)), X
    ),
}  # fmt: skip


def _leaves(out: Any) -> list[np.ndarray]:
    return [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_scipy_and_finite_differences(name: str) -> None:
    f, data = CASES[name]
    want = _leaves(f(data))
    for backend in ("numpy", "llvm"):
        got = _leaves(gc.jit(f, backend=backend)(data))
        for a, b in zip(got, want, strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-10, equal_nan=True)
    gc.check_grads(lambda a: sum(np.sum(r) for r in _leaves_traced(f(a))), (data,))


def _leaves_traced(out: Any) -> tuple[Any, ...]:
    return out if isinstance(out, tuple) else (out,)


def test_parameter_gradients_and_support() -> None:
    gc.check_grads(lambda m, s: np.sum(ss.norm.logpdf(X, m, s)), (np.array(0.3), np.array(1.7)))
    gc.check_grads(lambda a, b: np.sum(ss.beta.logpdf(P, a, b)), (np.array(1.3), np.array(2.7)))
    gc.check_grads(
        lambda mu: np.sum(ss.poisson.logpmf(np.array([0.0, 1, 4]), mu)), (np.array(2.2),)
    )
    edge = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    for f in (
        lambda a: ss.beta.logpdf(a, 2.0, 2.0),
        lambda a: ss.gamma.logpdf(a, 2.0),
        lambda a: ss.norm.logpdf(a, scale=-1.0),
        lambda a: ss.poisson.logpmf(a, 2.0),
    ):
        np.testing.assert_array_equal(gc.jit(f, backend="numpy")(edge), f(edge))


TAIL_DISTS = {
    "t": (lambda m, x, p, q: m(x, p, loc=q, scale=1.5), X * 3, np.array([[0.7], [3.0], [40.0]]),
          np.array(0.3)),
    "gamma": (lambda m, x, p, q: m(x, p, scale=q), POS * 3, np.array([0.5, 2.0, 7.5, 30.0]),
              np.array(2.0)),
    "beta": (lambda m, x, p, q: m(x, p, q), P, np.array([[0.5], [2.0], [7.0]]),
             np.array([0.8, 3.0, 1.0, 20.0])),
    "chi2": (lambda m, x, p, q: m(x, p, loc=q), POS * 3, np.array(3.0), np.array(-0.5)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TAIL_DISTS))
def test_tail_gradients_in_data_and_parameters(name: str) -> None:
    f, x, p, q = TAIL_DISTS[name]
    dist = getattr(ss, name)
    w = RNG.normal(size=(3, 4))
    for method in TAILS:
        m = getattr(dist, method)
        gc.check_grads(lambda x, p, q, m=m: np.sum(f(m, x, p, q) * w), (x, p, q))


def test_tails_at_the_edges() -> None:
    """Outside the support, in the far tails (where log1p of the other tail
    keeps the log accurate), invalid parameters and NaN all match SciPy."""
    far = np.array([-1.0, 0.0, 1e-12, 1e-3, 0.5, 1.0 - 1e-9, 1.0, 2.0, 80.0, 1e4, np.nan])
    for method in TAILS:
        for f in (
            lambda a, m=method: getattr(ss.gamma, m)(a, np.array([[0.5], [3.0], [-1.0]])),
            lambda a, m=method: getattr(ss.chi2, m)(a, 4.0),
            lambda a, m=method: getattr(ss.beta, m)(a, 7.0, np.array([[20.0], [0.5], [0.0]])),
            lambda a, m=method: getattr(ss.t, m)(a * 1e3 - 5e2, np.array([[1.0], [0.0]])),
        ):
            want = f(far)
            for backend in ("numpy", "llvm"):
                got = gc.jit(f, backend=backend)(far)
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)


def test_tails_of_float32_data() -> None:
    x = (POS * 3).astype(np.float32)
    for method in TAILS:
        f = lambda a, m=method: getattr(ss.gamma, m)(a, 2.5)  # noqa: E731
        got = gc.jit(f, backend="llvm")(x)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, f(x), rtol=1e-12)


def test_missing_formula_is_clear() -> None:
    with pytest.raises(gc.UnsupportedError, match=r"scipy.stats.laplace.cdf is not supported"):
        gc.jit(lambda a: ss.laplace.cdf(a))(X)
    assert ss.norm.logpdf(0.0) == pytest.approx(-0.5 * np.log(2 * np.pi))  # plain calls work
