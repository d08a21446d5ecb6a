"""QR decomposition: ``qr`` with NumPy's reduced and complete modes.

The VJP is the standard rule for the thin factors of a tall or square
matrix (m >= n) with R invertible: with M = R Rbar^T - Qbar^T Q,
abar = (Qbar + Q sym(M)) R^-T, where sym(M) copies M's lower triangle onto
its upper one. Wide matrices and complete factors of non-square ones are
not unique enough to differentiate and raise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Literal, TensorType
from ..dtypes import DType
from .factor import _failed, mT, triangle_mask
from .registry import Attr, OpDef, register
from .rules import type_error


def _qr_rule(a: TensorType, *, complete: bool) -> tuple[TensorType, TensorType]:
    if a.ndim < 2:
        raise type_error(f"qr needs a stack of matrices, got shape {list(a.shape)}")
    if a.dtype not in (DType.f32, DType.f64):  # LAPACK (and NumPy's linalg) has no 16-bit loops
        raise type_error(f"qr needs float32 or float64, got {a.dtype}", hint="cast first")
    m, n = a.shape[-2:]
    k = m if complete else min(m, n)
    batch = a.shape[:-2]
    return TensorType(batch + (m, k), a.dtype), TensorType(batch + (k, n), a.dtype)


def _qr_ref(a: np.ndarray, *, complete: bool) -> tuple[np.ndarray, np.ndarray]:
    try:
        q, r = np.linalg.qr(a, mode="complete" if complete else "reduced")
    except np.linalg.LinAlgError:
        raise _failed("qr", "the factorization failed", "check the input for NaN") from None
    return q, r


def _qr_vjp(
    b: Any, ct: tuple[Any, Any], out: tuple[Any, Any], a: Any, *, complete: bool
) -> tuple[Any]:
    ct_q, ct_r = ct
    q, r = out
    m, n = a.type.shape[-2:]
    if m < n or (complete and m != n):
        raise type_error(
            "qr: gradients are defined for tall or square matrices in reduced mode "
            f"(got {m}x{n}, mode={'complete' if complete else 'reduced'})",
            hint="differentiate np.linalg.qr(a) of a matrix with at least as many rows as columns",
        )
    zero = Literal(0.0, a.type.dtype)
    # M = R Rbar^T - Qbar^T Q, with absent cotangents as zeros
    terms = []
    if ct_r is not None:
        terms.append(b.matmul(r, mT(b, ct_r)))
    if ct_q is not None:
        terms.append(b.neg(b.matmul(mT(b, ct_q), q)))
    big_m = terms[0] if len(terms) == 1 else b.add(terms[0], terms[1])
    lower = b.select(triangle_mask(b, big_m, True, strict=True), big_m, zero)
    diag = b.select(triangle_mask(b, big_m, True, strict=False), big_m, zero)
    diag = b.sub(diag, lower)
    sym = b.add(b.add(lower, mT(b, lower)), diag)
    rhs = b.matmul(q, sym)
    if ct_q is not None:
        rhs = b.add(rhs, ct_q)
    # X = rhs R^-T  <=>  R X^T = rhs^T
    x_t = b.triangular_solve(r, mT(b, rhs), lower=False, transpose_a=False, unit_diagonal=False)
    return (mT(b, x_t),)


register(
    OpDef(
        "qr", ("a",), (Attr("complete", "bool", False),), _qr_rule, _qr_ref, _qr_vjp,
        frozenset({"pure"}), doc="QR decomposition (np.linalg.qr, reduced or complete)",
    )
)  # fmt: skip
