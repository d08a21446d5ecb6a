"""scipy.special on traced arrays against SciPy (interpreter, both backends,
float64 and float32) and gradients against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
from scipy.special import logsumexp  # bound before any trace: must still be intercepted

import graphc as gc

from .helpers import check_all

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

RNG = np.random.default_rng(3)
X = RNG.normal(size=(3, 4)) * 3
P = RNG.uniform(0.01, 0.99, size=(3, 4))

ON_REALS = {
    "logsumexp": lambda a: logsumexp(a, axis=1),
    "logsumexp_b": lambda a: sp.logsumexp(a, axis=0, b=np.arange(1.0, 5.0), keepdims=True),
    "logsumexp_all": lambda a: sp.logsumexp(a),
    "softmax": lambda a: sp.softmax(a, axis=1),
    "log_softmax": lambda a: sp.log_softmax(a, axis=0),
    "gammaln": lambda a: sp.gammaln(np.abs(a) + 0.1),
    "digamma": lambda a: sp.digamma(np.abs(a) + 0.1),
    "polygamma": lambda a: sp.polygamma(2, np.abs(a) + 0.1),
    "xlogy": lambda a: sp.xlogy(a, np.abs(a)),
    "xlog1py": lambda a: sp.xlog1py(a, np.abs(a)),
    "entr": lambda a: sp.entr(np.abs(a)),
    "erfc": lambda a: sp.erfc(a),
    "ndtr": lambda a: sp.ndtr(a),
    "log_ndtr": lambda a: sp.log_ndtr(a * 5),
    "i0e": lambda a: sp.i0e(a),
    "i1e": lambda a: sp.i1e(a),
}
ON_UNIT = {
    "erfinv": lambda q: sp.erfinv(2 * q - 1),
    "erfcinv": lambda q: sp.erfcinv(q),
    "ndtri": lambda q: sp.ndtri(q),
    "logit": lambda q: sp.logit(q),
}
CASES = {**{k: (f, X) for k, f in ON_REALS.items()}, **{k: (f, P) for k, f in ON_UNIT.items()}}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CASES))
def test_against_scipy(name: str, dtype: type) -> None:
    f, data = CASES[name]
    check_all(f, data.astype(dtype), rtol=1e-12 if dtype == np.float64 else 2e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient(name: str) -> None:
    f, data = CASES[name]
    gc.check_grads(lambda a: np.sum(f(a)), (data,))


def test_edges_and_second_derivatives() -> None:
    edges = np.array([0.0, 1e-300, 1.0, np.inf, np.nan])
    check_all(lambda a: (sp.xlogy(0.0 * a, a), sp.entr(a), sp.xlog1py(0.0 * a, a - 1)), edges)
    check_all(lambda a: sp.logsumexp(a), np.array([-np.inf, -np.inf]))
    gc.check_grads(lambda a: gc.grad(lambda b: sp.logsumexp(b))(a).sum() ** 2, (X[0],))
    gc.check_grads(lambda a: np.sum(gc.grad(lambda b: np.sum(sp.gammaln(b)))(a) ** 2), (P,))


def test_plain_calls_are_unchanged_after_tracing() -> None:
    gc.jit(lambda a: logsumexp(a))(X)
    assert logsumexp(X) == pytest.approx(np.log(np.exp(X).sum()))
    assert logsumexp.__code__.co_name == "logsumexp"  # the trampoline is gone


def test_traced_polygamma_order_is_rejected() -> None:
    with pytest.raises(gc.UnsupportedError, match="static integer"):
        gc.jit(lambda n, a: sp.polygamma(n, a))(np.array(1), P)


def test_hooks_are_safe_across_threads() -> None:
    """One thread traces (the hook installed and removed over and over) while
    another calls SciPy on plain arrays: both always get the right answer."""
    import threading

    want = np.log(np.exp(X).sum())
    errors: list[BaseException] = []

    def tracing() -> None:
        try:
            for k in range(20):
                f = gc.jit(lambda a, k=k: logsumexp(a + k) - k, backend="numpy")
                assert f(X) == pytest.approx(want)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def plain() -> None:
        try:
            for _ in range(400):
                assert logsumexp(X) == pytest.approx(want)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=tracing), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert logsumexp.__code__.co_name == "logsumexp"
