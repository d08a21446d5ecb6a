"""Losses and weight penalties in plain NumPy, in numerically stable forms.

``reduction`` is ``"mean"`` (the default), ``"sum"`` or ``"none"`` (one loss
per example).

>>> logits = np.array([[2.0, 0.0], [0.0, 3.0]])
>>> round(float(cross_entropy(logits, np.array([0, 1]))), 4)
0.0878
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import OpTypeError
from ..pytree import tree_leaves
from .activations import _log1p_exp_neg_abs, _relu_part, log_softmax

__all__ = [
    "accuracy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_penalty",
    "l2_penalty",
    "mae",
    "mse",
]


def _reduce(loss: Any, reduction: str, what: str) -> Any:
    if reduction == "mean":
        return np.mean(loss)
    if reduction == "sum":
        return np.sum(loss)
    if reduction == "none":
        return loss
    raise OpTypeError(f"{what}: reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def mse(pred: Any, target: Any, reduction: str = "mean") -> Any:
    """Mean squared error.

    >>> mse(np.array([1.0, 3.0]), np.array([0.0, 1.0]))
    np.float64(2.5)
    """
    d = pred - target
    return _reduce(d * d, reduction, "mse")


def mae(pred: Any, target: Any, reduction: str = "mean") -> Any:
    """Mean absolute error.

    >>> mae(np.array([1.0, 3.0]), np.array([0.0, 1.0]))
    np.float64(1.5)
    """
    return _reduce(np.abs(pred - target), reduction, "mae")


def cross_entropy(logits: Any, labels: Any, reduction: str = "mean") -> Any:
    """Softmax cross-entropy from unnormalized ``logits`` (..., C) and integer ``labels`` (...).

    Computed as -log_softmax(logits)[label], so logits of any size stay finite.

    >>> float(cross_entropy(np.array([[1e4, 0.0]]), np.array([1])))
    10000.0
    """
    num_classes = logits.shape[-1]
    if not hasattr(labels, "shape"):
        labels = np.asarray(labels)
    logp = log_softmax(logits, axis=-1).reshape(-1, num_classes)
    picked = logp[np.arange(logp.shape[0]), labels.reshape(-1)]
    return _reduce(-picked.reshape(labels.shape), reduction, "cross_entropy")


def binary_cross_entropy_with_logits(logits: Any, targets: Any, reduction: str = "mean") -> Any:
    """Binary cross-entropy of targets in [0, 1] against sigmoid(logits).

    Uses log(1 + exp(x)) - x * t written as max(x, 0) - x * t + log1p(exp(-|x|)),
    which never overflows and never takes log(0).

    >>> float(binary_cross_entropy_with_logits(np.array([-1e4]), np.array([1.0])))
    10000.0
    """
    loss = _relu_part(logits) - logits * targets + _log1p_exp_neg_abs(logits)
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def accuracy(logits: Any, labels: Any) -> Any:
    """Fraction of rows whose largest logit is at the label.

    >>> float(accuracy(np.array([[2.0, 1.0], [0.0, 1.0]]), np.array([0, 0])))
    0.5
    """
    return np.mean(np.argmax(logits, axis=-1) == labels)


def l1_penalty(tree: Any, scale: float = 1.0) -> Any:
    """scale * sum of |x| over every leaf of a parameter pytree.

    >>> float(l1_penalty({"w": np.array([1.0, -2.0]), "b": np.array([0.5])}))
    3.5
    """
    return sum(np.sum(np.abs(leaf)) for leaf in tree_leaves(tree)) * scale


def l2_penalty(tree: Any, scale: float = 1.0) -> Any:
    """scale * sum of x**2 over every leaf (its gradient is 2 * scale * x).

    >>> float(l2_penalty({"w": np.array([1.0, -2.0])}, scale=0.5))
    2.5
    """
    return sum(np.sum(leaf * leaf) for leaf in tree_leaves(tree)) * scale
