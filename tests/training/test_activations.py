"""Activations against independent references, at extreme inputs, traced, and differentiated."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import special

import graphc as gc
import graphc.nn as nn

from .helpers import assert_traces_like_eager, numeric_grad

X = np.array([-30.0, -3.5, -1.0, -0.25, 0.0, 0.3, 1.0, 2.5, 40.0])
EXTREME = np.array([-1e4, -800.0, -100.0, 0.0, 100.0, 800.0, 1e4])


def _gelu_exact(v: float) -> float:
    return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))


def _gelu_tanh(v: float) -> float:
    return 0.5 * v * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v**3)))


def _elu(v: float) -> float:
    return v if v > 0 else math.expm1(v)


REFERENCES: list[tuple[str, Callable[[Any], Any], Callable[[float], float]]] = [
    ("relu", nn.relu, lambda v: max(v, 0.0)),
    ("leaky_relu", lambda x: nn.leaky_relu(x, 0.2), lambda v: v if v >= 0 else 0.2 * v),
    ("elu", nn.elu, _elu),
    ("gelu", nn.gelu, _gelu_exact),
    ("gelu_tanh", lambda x: nn.gelu(x, approximate=True), _gelu_tanh),
    ("silu", nn.silu, lambda v: v * float(special.expit(v))),
    ("sigmoid", nn.sigmoid, lambda v: float(special.expit(v))),
    ("tanh", nn.tanh, math.tanh),
    ("softplus", nn.softplus, lambda v: float(np.logaddexp(0.0, v))),
]


@pytest.mark.parametrize(("name", "fn", "ref"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_activation_matches_scalar_reference(name: str, fn: Any, ref: Any) -> None:
    # float32 is held to its own precision: relative 2e-6, or 1e-7 absolute where
    # exact gelu's 1 + erf(x) cancels in the negative tail.
    for dtype, rtol, atol in ((np.float64, 1e-12, 1e-15), (np.float32, 2e-6, 1e-7)):
        got = fn(X.astype(dtype))
        assert got.dtype == dtype and got.shape == X.shape
        want = np.array([ref(float(v)) for v in X.astype(dtype)])
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize(("name", "fn", "ref"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_activation_is_finite_at_extremes_with_finite_gradients(
    name: str, fn: Any, ref: Any
) -> None:
    for dtype in (np.float32, np.float64):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = fn(EXTREME.astype(dtype))
        assert np.all(np.isfinite(out))
    grads = gc.grad(lambda x: fn(x).sum())(EXTREME)
    assert np.all(np.isfinite(grads)), grads


@pytest.mark.parametrize(("name", "fn", "ref"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_activation_gradient_matches_finite_differences(name: str, fn: Any, ref: Any) -> None:
    # Stay off the kinks (relu, leaky_relu at 0), where differences are one-sided.
    x = np.array([-2.3, -0.7, 0.4, 1.9])
    got = gc.grad(lambda v: fn(v).sum())(x)
    np.testing.assert_allclose(got, numeric_grad(lambda v: fn(v).sum(), x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("name", "fn", "ref"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_activation_traces_like_eager(name: str, fn: Any, ref: Any) -> None:
    assert_traces_like_eager(fn, X.astype(np.float32))


LOGITS = np.array([[1.0, 2.0, 3.0, -1.0], [1000.0, 999.0, -1000.0, 0.0], [-1e4, -1e4, -1e4, -1e4]])


def test_logsumexp_softmax_log_softmax_against_scipy() -> None:
    for axis in (0, 1, -1):
        np.testing.assert_allclose(
            nn.logsumexp(LOGITS, axis=axis), special.logsumexp(LOGITS, axis=axis), rtol=1e-13
        )
        np.testing.assert_allclose(
            nn.softmax(LOGITS, axis=axis), special.softmax(LOGITS, axis=axis), rtol=1e-12
        )
        np.testing.assert_allclose(
            nn.log_softmax(LOGITS, axis=axis),
            special.log_softmax(LOGITS, axis=axis),
            rtol=1e-12,
            atol=1e-12,
        )
    kept = nn.logsumexp(LOGITS, axis=1, keepdims=True)
    assert kept.shape == (3, 1)
    np.testing.assert_allclose(kept[:, 0], special.logsumexp(LOGITS, axis=1))


def test_logsumexp_of_all_minus_infinity_is_minus_infinity() -> None:
    x = np.array([[-np.inf, -np.inf], [0.0, -np.inf]])
    np.testing.assert_array_equal(nn.logsumexp(x, axis=1), [-np.inf, 0.0])


def test_softmax_family_is_finite_in_float32_for_huge_logits() -> None:
    big = (LOGITS * 30).astype(np.float32)
    for fn in (nn.softmax, nn.log_softmax, nn.logsumexp):
        with np.errstate(over="raise", invalid="raise"):
            out = fn(big)
        assert out.dtype == np.float32 and np.all(np.isfinite(out))
    np.testing.assert_allclose(nn.softmax(big).sum(axis=-1), 1.0, rtol=1e-6)


def test_logsumexp_gradient_is_softmax_even_for_huge_logits() -> None:
    for x in (LOGITS, LOGITS[:2] * 1e3):
        g = gc.grad(lambda v: nn.logsumexp(v, axis=1).sum())(x)
        np.testing.assert_allclose(g, special.softmax(x, axis=1), rtol=1e-12, atol=1e-300)


def test_log_softmax_gradient_matches_finite_differences() -> None:
    x = np.array([[0.3, -1.2, 2.0], [5.0, 5.0, -3.0]])
    w = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])

    def f(v: Any) -> Any:
        return (nn.log_softmax(v) * w).sum()

    np.testing.assert_allclose(gc.grad(f)(x), numeric_grad(f, x), rtol=1e-6, atol=1e-8)


def test_softmax_traces_like_eager() -> None:
    assert_traces_like_eager(lambda x: (nn.softmax(x), nn.log_softmax(x, axis=0)), LOGITS)
    assert_traces_like_eager(lambda x: nn.logsumexp(x, axis=(0, 1)), LOGITS.astype(np.float32))
