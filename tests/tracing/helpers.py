"""Shared checks for the tracing tests: trace a function, then compare the
interpreted graph with the function run directly on NumPy arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.ir import Graph, interpret, parse, verify
from graphc.pytree import TreeDef, tree_flatten
from graphc.tracing import trace_flat

# relative tolerances per result dtype (float64 must agree to ~1e-9, DESIGN §1)
RTOL = {np.dtype(np.float16): 1e-3, np.dtype(np.float64): 1e-9, np.dtype(np.float32): 2e-5}


def flat_inputs(args: Sequence[Any]) -> list[Any]:
    """The graph's inputs for ``args``, in the order ``trace`` flattens them."""
    return tree_flatten(list(args))[0]


def run_traced(f: Callable[..., Any], *args: Any) -> tuple[Graph, list[np.ndarray], TreeDef]:
    """Trace ``f``, check the graph (verifier, text round trip) and interpret it."""
    traced = trace_flat(f, args)
    g = traced.graph
    verify(g)
    text = str(g)
    parsed = parse(text)
    assert parsed == g, f"text round trip changed the graph:\n{text}"
    assert str(parsed) == text
    with np.errstate(all="ignore"):
        return g, list(interpret(g, *flat_inputs(args))), traced.out_tree


def assert_same(
    got: Any, want: Any, *, rtol: float | None = None, signed_zeros: bool = True
) -> None:
    """Shape, dtype and values equal; NaNs in the same places; by default
    zeros of the same sign too."""
    want = np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != NumPy's {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != NumPy's {want.dtype}"
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    tol = RTOL[want.dtype] if rtol is None else rtol
    np.testing.assert_allclose(got, want, rtol=tol, atol=0, equal_nan=True)
    if signed_zeros:
        zeros = want == 0
        np.testing.assert_array_equal(
            np.signbit(got[zeros]), np.signbit(want[zeros]), err_msg="sign of zero differs"
        )


def check(f: Callable[..., Any], *args: Any, rtol: float | None = None, **kw: Any) -> Graph:
    """Trace -> interpret equals ``f(*args)`` on NumPy (containers, shapes,
    dtypes, values); the graph verifies and round-trips through its text."""
    g, got, out_tree = run_traced(f, *args)
    with np.errstate(all="ignore"):
        want = f(*args)
    want_leaves, want_tree = tree_flatten(want)
    assert len(got) == len(want_leaves), f"{len(got)} outputs, NumPy gave {len(want_leaves)}"
    for i, (a, b) in enumerate(zip(got, want_leaves)):
        try:
            assert_same(a, b, rtol=rtol, **kw)
        except AssertionError as exc:
            raise AssertionError(f"output {i}: {exc}\n{g}") from None
    # containers keep their kind: a tuple stays a tuple, a list a list
    assert out_tree == want_tree, f"result structure {out_tree} != NumPy's {want_tree}"
    return g
