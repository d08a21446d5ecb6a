"""Shared checks for the training tests: finite differences and trace-vs-eager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import graphc as gc
from graphc.pytree import tree_leaves


def numeric_grad(f: Callable[[np.ndarray], Any], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of scalar ``f`` at every element of float64 ``x``."""
    x = np.array(x, dtype=np.float64)
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        out[i] = (float(f(up)) - float(f(down))) / (2 * eps)
    return out


def assert_traces_like_eager(f: Callable[..., Any], *args: Any, rtol: float = 1e-6) -> None:
    """Tracing ``f`` and interpreting the graph gives what running it eagerly gives."""
    g = gc.trace(f, *args)
    traced = gc.ir.interpret(g, *tree_leaves(list(args)))
    eager = [np.asarray(e) for e in tree_leaves(f(*args))]
    assert len(traced) == len(eager)
    for t, e in zip(traced, eager):
        assert t.dtype == e.dtype, (t.dtype, e.dtype)
        assert t.shape == e.shape, (t.shape, e.shape)
        np.testing.assert_allclose(t, e, rtol=rtol, atol=rtol)
