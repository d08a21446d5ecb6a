"""Checks for traced NumPy functions on every executor: the interpreter
against NumPy (through :func:`helpers.check`), gradients against finite
differences, and both compiled backends against NumPy and against the
interpreted gradients. Many small cases are compiled as one function (one
compile per backend) to keep the suite fast."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import graphc as gc
from graphc.pytree import tree_flatten

from .helpers import assert_same, check

BACKENDS = ("numpy", "llvm")


def _loss(f: Callable[..., Any]) -> Callable[..., Any]:
    def loss(*a: Any) -> Any:
        total: Any = 0.0
        for leaf in tree_flatten(f(*a))[0]:
            total = total + np.sum(np.sin(leaf))
        return total

    return loss


def check_interpreted(
    f: Callable[..., Any], *args: Any, argnums: Sequence[int] = (), rtol: float = 1e-9
) -> None:
    """Traced and interpreted equals NumPy; with ``argnums``, the gradients of
    ``sum(sin(f))`` with respect to those arguments match finite differences."""
    check(f, *args, rtol=rtol, signed_zeros=False)
    if argnums:
        gc.check_grads(_loss(f), args)


def check_compiled(
    fs: Sequence[Callable[..., Any]], *args: Any, argnums: Sequence[int] = (), rtol: float = 1e-9
) -> None:
    """All of ``fs`` compiled as one function on each backend: results equal
    NumPy's and, with ``argnums``, gradients equal the interpreted ones."""

    def together(*a: Any) -> Any:
        return tuple(f(*a) for f in fs)

    want = tree_flatten(together(*args))[0]
    for backend in BACKENDS:
        got = tree_flatten(gc.jit(together, backend=backend)(*args))[0]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(np.asarray(g), w, rtol=rtol, signed_zeros=False)
    if not argnums:
        return
    loss = _loss(together)
    reference = gc.grad(loss, argnums=tuple(argnums))(*args)
    for backend in BACKENDS:
        got = gc.jit(gc.grad(loss, argnums=tuple(argnums)), backend=backend)(*args)
        for g, w in zip(tree_flatten(got)[0], tree_flatten(reference)[0]):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
