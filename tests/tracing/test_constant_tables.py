"""Constants meet traced values: tables indexed by traced integers (one-hot by
``np.eye(C)[y]``, embeddings by ``table[y]``, ``np.take(const, y)``) gather
from the constant, and ``np.eye``/``np.identity``/``np.tri`` combine with traced
values in every way NumPy allows. No gradient flows to a constant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc as gc

from .backend_checks import check_compiled, check_interpreted

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

RNG = np.random.default_rng(11)
Y = np.array([2, 0, 1, 2])
W = RNG.normal(size=(3, 4))
X = RNG.normal(size=3)
M = RNG.normal(size=(3, 3))
TABLE = np.arange(12.0).reshape(4, 3) / 5.0  # made before tracing

GATHERS: list[tuple[str, Callable[..., Any]]] = [
    ("eye-one-hot", lambda w, y: np.eye(3)[y] @ w),
    ("identity-one-hot", lambda w, y: np.identity(3)[y] * w[0, :3]),
    ("eye-int-one-hot", lambda w, y: np.eye(3, dtype=np.int32)[y] * w[0, 0]),
    ("tri-rows", lambda w, y: np.tri(3)[y] @ w),
    ("eye-columns", lambda w, y: w.T @ np.eye(3)[:, y]),
    ("eye-row-and-column", lambda w, y: np.eye(3)[y, y[::-1]] * w[0, :]),
    ("eye-list-of-traced", lambda w, y: np.eye(3)[[y[0], y[1]]] @ w),
    ("table-made-inside", lambda w, y: np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])[y % 2] @ w),
    ("arange-table", lambda w, y: np.arange(6.0).reshape(3, 2)[y].sum() * w),
    ("asarray-of-global", lambda w, y: np.asarray(TABLE)[y] * w[0, 0]),
    ("take-global", lambda w, y: np.take(TABLE, y, axis=0) * w[0, 0]),
    ("take-global-flat", lambda w, y: np.take(TABLE, y) * w[0, 0]),
    ("take-global-axis1", lambda w, y: np.take(TABLE, y[:2], axis=1) * w[0, 0]),
    ("take-method-inside", lambda w, y: np.eye(3).take(y, axis=0) @ w),
    ("cross-entropy", lambda w, y: -np.sum(np.eye(3)[y] * np.log(np.exp(w.T) / 9.0)[:, :3])),
]


@pytest.mark.parametrize("name, f", GATHERS, ids=[g[0] for g in GATHERS])
def test_constant_indexed_by_traced_integers(name: str, f: Any) -> None:
    check_interpreted(f, W, Y, argnums=(0,))


def test_constant_gathers_compile_on_both_backends() -> None:
    check_compiled([f for _, f in GATHERS], W, Y, argnums=(0,))


def test_gather_from_constant_records_constant_and_gather() -> None:
    g = gc.trace(lambda y: np.eye(3)[y], Y)
    ops = [n.op for n in g.nodes]
    assert "gather" in ops and "constant" in ops
    assert len(g.inputs) == 1  # the table is no input: nothing to differentiate


def test_traced_index_out_of_range_fails_at_run_time() -> None:
    f = gc.jit(lambda y: np.eye(3)[y], backend="numpy")
    with pytest.raises(IndexError):
        f(np.array([3]))


def test_global_table_error_says_what_to_do() -> None:
    with pytest.raises(gc.TracingError, match=r"np\.take\(table, idx, axis=0\)"):
        gc.trace(lambda y: TABLE[y], Y)


COMBINATIONS: list[tuple[str, Callable[..., Any]]] = [
    ("eye-plus", lambda x, m: np.eye(3) + m),
    ("minus-identity", lambda x, m: m - np.identity(3)),
    ("eye-times-column", lambda x, m: np.eye(3) * x[:, None]),
    ("eye-matmul", lambda x, m: np.eye(3) @ m),
    ("matmul-eye", lambda x, m: m @ np.eye(3)),
    ("vector-matmul-tri", lambda x, m: x @ np.tri(3)),
    ("tri-k-matmul", lambda x, m: np.tri(3, 3, -1) @ x),
    ("eye-dot-method", lambda x, m: np.eye(3).dot(x)),
    ("np-dot", lambda x, m: np.dot(np.identity(3), m)),
    ("eye-divide", lambda x, m: m / (1.0 + np.eye(3))),
    ("where-eye", lambda x, m: np.where(np.eye(3) > 0, m, 0.0)),
    ("bool-eye-mask", lambda x, m: m[np.eye(3, dtype=bool)]),
    ("maximum-eye", lambda x, m: np.maximum(np.eye(3), m)),
    ("eye-power", lambda x, m: (np.eye(3) + 2.0) ** m),
    ("einsum-eye", lambda x, m: np.einsum("ij,jk->ik", np.eye(3), m)),
    ("stack-eye", lambda x, m: np.stack([np.eye(3), m])),
    ("concatenate-tri", lambda x, m: np.concatenate([np.tri(3), m], axis=1)),
    ("kron-eye", lambda x, m: np.kron(np.eye(2), m)),
    ("eye-transpose", lambda x, m: np.eye(3, 4).T @ m),
    ("eye-slices", lambda x, m: np.eye(4)[1:, :3] * m),
    ("tensordot-eye", lambda x, m: np.tensordot(np.eye(3), m, axes=1)),
    ("outer-eye-diagonal", lambda x, m: np.outer(np.diag(np.eye(3)), x)),
    ("scaled-identity", lambda x, m: x[0] * np.identity(3) + m),
    ("tri-mask-sum", lambda x, m: np.sum(np.tri(3) * m, axis=1)),
]


@pytest.mark.parametrize("name, f", COMBINATIONS, ids=[c[0] for c in COMBINATIONS])
def test_eye_identity_tri_combine_with_traced(name: str, f: Any) -> None:
    check_interpreted(f, X, M, argnums=(0, 1))


def test_eye_identity_tri_combinations_compile_on_both_backends() -> None:
    check_compiled([f for _, f in COMBINATIONS], X, M, argnums=(0, 1))


def test_assigning_traced_values_into_eye_says_so() -> None:
    def f(x: Any) -> Any:
        e = np.eye(3)
        e[0, 0] = x[0]
        return e

    with pytest.raises(gc.TracingError, match="in place") as info:
        gc.trace(f, X)
    assert "np.where" in str(info.value)
