"""LU factorization with partial pivoting, as ``scipy.linalg.lu_factor``.

``lu(a) -> (lu, piv, perm)``: ``lu`` packs the unit lower factor L (below the
diagonal) and U (on and above it) with ``a[perm] = L @ U``; ``piv`` holds
LAPACK's 0-based row interchanges as SciPy returns them (int32), ``perm`` the
same permutation as row indices (int64), which is what solves use.

VJP (square a, ``P a = L U``): with Lbar and Ubar the strictly lower and the
upper part of the packed cotangent,
``abar = P^T L^-T (tril(L^T Lbar, -1) + triu(Ubar U^T)) U^-T``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg

from ..core import Literal, TensorType
from ..dtypes import DType
from .factor import _square, mT, triangle_mask
from .registry import OpDef, register


def _lu_rule(a: TensorType) -> tuple[TensorType, TensorType, TensorType]:
    _square(a, "lu")
    return a, TensorType(a.shape[:-1], DType.i32), TensorType(a.shape[:-1], DType.i64)


def _lu_ref(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = a.shape[-1]
    lu = np.empty_like(a)
    piv = np.empty(a.shape[:-1], np.int32)
    perm = np.empty(a.shape[:-1], np.int64)
    for k in np.ndindex(a.shape[:-2]):
        # A singular matrix factors too (U has a zero pivot), as in SciPy,
        # which only warns (LAPACK, and so the LLVM backend, does not); the
        # solves then give inf/nan.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            lu[k], piv[k] = scipy.linalg.lu_factor(a[k], check_finite=False)
        order = np.arange(n)
        for i, j in enumerate(piv[k]):
            order[i], order[j] = order[j], order[i]
        perm[k] = order
    return lu, piv, perm


def permutation_matrix(b: Any, perm: Any, dtype: DType) -> Any:
    """P with (P x)[i] = x[perm[i]], as a [..., n, n] matrix of ``dtype``."""
    shape = perm.type.shape + (perm.type.shape[-1],)
    nd = len(shape)
    rows = b.broadcast_in_dim(perm, shape=shape, broadcast_dimensions=tuple(range(nd - 1)))
    cols = b.iota(shape=shape, dimension=nd - 1, dtype=DType.i64)
    return b.cast(b.eq(rows, cols), dtype=dtype)


def _lu_vjp(b: Any, ct: tuple[Any, Any, Any], out: tuple[Any, Any, Any], a: Any) -> tuple[Any]:
    ct_lu = ct[0]
    if ct_lu is None:
        return (None,)
    lu, _, perm = out
    zero = Literal(0.0, a.type.dtype)
    eye = b.cast(b.eq(b.iota(shape=a.type.shape[-2:], dimension=0, dtype=DType.i64),
                      b.iota(shape=a.type.shape[-2:], dimension=1, dtype=DType.i64)),
                 dtype=a.type.dtype)  # fmt: skip
    strict = triangle_mask(b, lu, True, strict=True)
    lower = b.add(b.select(strict, lu, zero), eye)  # unit lower L
    upper = b.select(triangle_mask(b, lu, False, strict=False), lu, zero)
    ct_l = b.select(strict, ct_lu, zero)
    ct_u = b.select(triangle_mask(b, lu, False, strict=False), ct_lu, zero)
    inner = b.add(
        b.select(strict, b.matmul(mT(b, lower), ct_l), zero),
        b.select(triangle_mask(b, lu, False, strict=False), b.matmul(ct_u, mT(b, upper)), zero),
    )
    x = b.triangular_solve(lu, inner, lower=True, transpose_a=True, unit_diagonal=True)
    y_t = b.triangular_solve(lu, mT(b, x), lower=False, transpose_a=False, unit_diagonal=False)
    p = permutation_matrix(b, perm, a.type.dtype)
    return (b.matmul(mT(b, p), mT(b, y_t)),)


register(
    OpDef(
        "lu", ("a",), (), _lu_rule, _lu_ref, _lu_vjp, frozenset({"pure"}),
        doc="packed LU with partial pivoting (scipy.linalg.lu_factor), pivots, permutation",
    )
)  # fmt: skip
