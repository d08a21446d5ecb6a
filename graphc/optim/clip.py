"""Gradient clipping and L1/L2 regularization on gradient pytrees."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import OpTypeError
from ..pytree import tree_leaves, tree_map

__all__ = ["clip_by_global_norm", "global_norm", "l1_regularize", "l2_regularize"]


def global_norm(tree: Any) -> Any:
    """The Euclidean norm of all leaves taken together.

    >>> float(global_norm({"a": np.array([3.0]), "b": np.array([[4.0]])}))
    5.0
    """
    return np.sqrt(sum(np.sum(leaf * leaf) for leaf in tree_leaves(tree)))


def clip_by_global_norm(grads: Any, max_norm: float) -> tuple[Any, Any]:
    """Scale all gradients by one factor so their global norm is at most ``max_norm``.

    Returns ``(clipped, norm)`` where ``norm`` is the norm before clipping.
    Gradients already inside the ball are returned unchanged (factor 1).

    >>> g, norm = clip_by_global_norm({"a": np.array([3.0, 4.0])}, 1.0)
    >>> g["a"].round(6).tolist(), float(norm)
    ([0.6, 0.8], 5.0)
    """
    if not max_norm > 0:
        raise OpTypeError(f"clip_by_global_norm: max_norm must be positive, got {max_norm}")
    norm = global_norm(grads)
    # max_norm / max(norm, max_norm) is 1 inside the ball and never divides by 0.
    factor = max_norm / np.maximum(norm, max_norm)
    clipped = tree_map(lambda g: g * _like(factor, g), grads)
    return clipped, norm


def _like(value: Any, leaf: Any) -> Any:
    return value.astype(leaf.dtype) if hasattr(value, "astype") else value


def l2_regularize(grads: Any, params: Any, scale: float) -> Any:
    """Add the gradient of ``nn.l2_penalty(params, scale)``: g + 2 * scale * p.

    >>> l2_regularize({"w": np.array([1.0])}, {"w": np.array([3.0])}, 0.5)["w"].tolist()
    [4.0]
    """
    return tree_map(lambda g, p: g + p * (2.0 * scale), grads, params)


def l1_regularize(grads: Any, params: Any, scale: float) -> Any:
    """Add the (sub)gradient of ``nn.l1_penalty(params, scale)``: g + scale * sign(p).

    >>> l1_regularize({"w": np.array([1.0, 1.0])}, {"w": np.array([-3.0, 0.0])}, 0.5)["w"]
    array([0.5, 1. ])
    """
    return tree_map(lambda g, p: g + np.sign(p) * scale, grads, params)
