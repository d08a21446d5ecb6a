"""Activation functions in plain NumPy, written to stay finite at extreme inputs.

They work eagerly on arrays and trace into IR unchanged. Functions with no
NumPy spelling (``erf``, the logistic sigmoid) use the primitive op of that
name, whose reference semantics and derivative live in the op registry.

>>> relu(np.array([-1.0, 2.0]))
array([0., 2.])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..primitives import bind

__all__ = [
    "elu",
    "gelu",
    "leaky_relu",
    "log_softmax",
    "logsumexp",
    "relu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "swish",
    "tanh",
]


def relu(x: Any) -> Any:
    """max(x, 0).

    >>> relu(np.array([-3.0, 0.5]))
    array([0. , 0.5])
    """
    return np.maximum(x, 0.0)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """x for x >= 0, negative_slope * x below.

    >>> leaky_relu(np.array([-2.0, 3.0]), 0.1)
    array([-0.2,  3. ])
    """
    return np.where(x >= 0, x, x * negative_slope)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """x for x > 0, alpha * (exp(x) - 1) below.

    >>> elu(np.array([-1e4, 1.0]))
    array([-1.,  1.])
    """
    # Zeroing the untaken branch's input keeps it from overflowing (and its
    # gradient finite). A clamp np.minimum(x, 0.0) would do that too, but its
    # tie rule would halve the derivative at exactly 0.
    positive = x > 0
    return np.where(positive, x, np.expm1(np.where(positive, 0.0, x)) * alpha)


def sigmoid(x: Any) -> Any:
    """The logistic function 1 / (1 + exp(-x)), accurate in both tails.

    >>> sigmoid(np.array([-1e4, 0.0, 1e4]))
    array([0. , 0.5, 1. ])
    """
    return bind("sigmoid", x)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent.

    >>> tanh(np.array([0.0]))
    array([0.])
    """
    return np.tanh(x)


def softplus(x: Any) -> Any:
    """log(1 + exp(x)), as max(x, 0) + log1p(exp(-|x|)) so it never overflows.

    >>> softplus(np.array([-1e4, 0.0, 1e4]))
    array([0.00000000e+00, 6.93147181e-01, 1.00000000e+04])
    """
    return _relu_part(x) + _log1p_exp_neg_abs(x)


def _relu_part(x: Any) -> Any:
    # max(x, 0) with 0 in charge at the tie, matching _log1p_exp_neg_abs
    return np.where(x > 0, x, 0.0)


def _log1p_exp_neg_abs(x: Any) -> Any:
    # log1p(exp(-|x|)), with -|x| spelled by cases: at x == 0 the formula of
    # the x <= 0 side, log1p(exp(x)), carries every derivative. Through |x|
    # (sign(0) = 0) the second derivative of softplus at 0 would be 0, not 1/4.
    return np.log1p(np.exp(np.where(x > 0, -x, x)))


def silu(x: Any) -> Any:
    """x * sigmoid(x), also called swish.

    >>> silu(np.array([0.0, 1e4]))
    array([    0., 10000.])
    """
    return x * sigmoid(x)


swish = silu

_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x: Any, approximate: bool = False) -> Any:
    """Gaussian error linear unit: x * Phi(x).

    ``approximate=False`` is the exact form 0.5 x (1 + erf(x / sqrt 2));
    ``approximate=True`` the tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    >>> gelu(np.array([0.0, 10.0]))
    array([ 0., 10.])
    """
    if approximate:
        # 0.5 (1 + tanh(u)) = sigmoid(2u), which keeps its accuracy for negative x
        # where 1 + tanh(u) would cancel.
        inner = (x + (x * x * x) * 0.044715) * (2.0 * _SQRT_2_OVER_PI)
        return x * sigmoid(inner)
    return x * 0.5 * (bind("erf", x * _SQRT_HALF) + 1.0)


def logsumexp(x: Any, axis: int | tuple[int, ...] = -1, keepdims: bool = False) -> Any:
    """log(sum(exp(x))) along ``axis``, shifted by the maximum so it never overflows.

    A slice that is all -inf gives -inf (not NaN).

    >>> logsumexp(np.array([1000.0, 1000.0]))
    np.float64(1000.6931471805599)
    """
    m = x.max(axis=axis, keepdims=True)
    # An all -inf slice would make x - m NaN; shifting it by 0 instead is exact.
    shift = np.where(np.isfinite(m), m, 0.0)
    total = np.exp(x - shift).sum(axis=axis, keepdims=keepdims)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the right answer here
        return np.log(total) + shift.reshape(total.shape)


def softmax(x: Any, axis: int = -1) -> Any:
    """exp(x) / sum(exp(x)) along ``axis``, computed from x - max(x).

    >>> softmax(np.array([1000.0, 1000.0]))
    array([0.5, 0.5])
    """
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: Any, axis: int = -1) -> Any:
    """x - logsumexp(x) along ``axis``, computed from x - max(x).

    >>> log_softmax(np.array([0.0, -1e4]))
    array([     0., -10000.])
    """
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
