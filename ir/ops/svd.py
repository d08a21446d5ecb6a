"""Singular value decomposition: ``svd`` with NumPy's thin and full factors.

The VJP is Townsend's (2016) rule for the thin factors; it is infinite at
repeated or zero singular values (as in JAX), and the extra columns of the
full factors of a non-square matrix are not unique, so their gradient raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Literal, TensorType
from ..dtypes import DType
from .factor import _PURE, _failed, eye_like, mT
from .registry import Attr, OpDef, register
from .rules import type_error


def _svd_rule(a: TensorType, *, full_matrices: bool) -> tuple[TensorType, TensorType, TensorType]:
    if a.ndim < 2:
        raise type_error(f"svd needs a stack of matrices, got shape {list(a.shape)}")
    if a.dtype not in (DType.f32, DType.f64):  # LAPACK (and NumPy's linalg) has no 16-bit loops
        raise type_error(f"svd needs float32 or float64, got {a.dtype}", hint="cast first")
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    cols, rows = (m, n) if full_matrices else (k, k)
    return (
        TensorType(batch + (m, cols), a.dtype),
        TensorType(batch + (k,), a.dtype),
        TensorType(batch + (rows, n), a.dtype),
    )


def _svd_ref(a: np.ndarray, *, full_matrices: bool) -> tuple[np.ndarray, ...]:
    try:
        u, s, vt = np.linalg.svd(a, full_matrices=full_matrices)
    except np.linalg.LinAlgError:
        raise _failed("svd", "the SVD did not converge", "check the input for NaN") from None
    return u, s, vt


def _svd_vjp(
    b: Any, ct: tuple[Any, Any, Any], out: tuple[Any, Any, Any], a: Any, *, full_matrices: bool
) -> tuple[Any]:
    # Townsend (2016), for the thin factors A = U S V^T (k = min(m, n)):
    #   abar = U [F o (U^T Ubar - Ubar^T U) S + diag(sbar) + S F o (V^T Vbar - Vbar^T V)] V^T
    #        + (I - U U^T) Ubar S^-1 V^T + U S^-1 Vbar^T (I - V V^T)
    # with F_ij = 1 / (s_j^2 - s_i^2) off the diagonal. Repeated or zero
    # singular values make it infinite, as in JAX.
    ct_u, ct_s, ct_vt = ct
    u, s, vt = out
    m, n = a.type.shape[-2:]
    k = min(m, n)
    if full_matrices and (ct_u is not None or ct_vt is not None) and m != n:
        raise type_error(
            "svd: the gradient through U or V of full_matrices=True is not defined for "
            "non-square matrices",
            hint="use full_matrices=False (the extra columns are not unique)",
        )
    nd = a.type.ndim
    batch = tuple(range(nd - 2))
    dt = a.type.dtype
    one = Literal(1.0, dt)
    v = mT(b, vt)
    kk = a.type.shape[:-2] + (k, k)

    def diag(x: Any) -> Any:  # [..., k] -> [..., k, k]
        return b.mul(eye_like(b, cols(x)), cols(x))

    def cols(x: Any) -> Any:  # s broadcast along rows: x[..., i, j] = s[j]
        return b.broadcast_in_dim(x, shape=kk, broadcast_dimensions=batch + (nd - 1,))

    def row_vector(x: Any) -> Any:  # [..., k] -> [..., 1, k], scales columns
        return b.reshape(x, shape=a.type.shape[:-2] + (1, k))

    def rows(x: Any) -> Any:  # x[..., i, j] = s[i]
        return b.broadcast_in_dim(x, shape=kk, broadcast_dimensions=batch + (nd - 2,))

    inner = diag(ct_s) if ct_s is not None else None
    extra = None
    if ct_u is not None or ct_vt is not None:
        s2 = b.mul(s, s)
        is_diag = b.eq(eye_like(b, cols(s)), one)
        gap = b.select(is_diag, one, b.sub(cols(s2), rows(s2)))
        f = b.select(is_diag, Literal(0.0, dt), b.div(one, gap))
        s_cols = cols(s)  # multiplies column j by s_j: X S
        s_rows = rows(s)  # S X
        inv_s = b.div(one, s)
        terms = []
        if ct_u is not None:
            ut_cu = b.matmul(mT(b, u), ct_u)
            terms.append(b.mul(b.mul(f, b.sub(ut_cu, mT(b, ut_cu))), s_cols))
            if m > k:
                proj = b.sub(ct_u, b.matmul(u, ut_cu))  # (I - U U^T) Ubar
                extra = b.matmul(b.mul(proj, row_vector(inv_s)), vt)
        if ct_vt is not None:
            ct_v = mT(b, ct_vt)
            vt_cv = b.matmul(vt, ct_v)
            terms.append(b.mul(s_rows, b.mul(f, b.sub(vt_cv, mT(b, vt_cv)))))
            if n > k:
                proj = b.sub(ct_v, b.matmul(v, vt_cv))  # (I - V V^T) Vbar
                more = b.matmul(b.mul(u, row_vector(inv_s)), mT(b, proj))
                extra = more if extra is None else b.add(extra, more)
        for t in terms:
            inner = t if inner is None else b.add(inner, t)
    if inner is None:
        return (None,)
    u_thin = u if u.type.shape[-1] == k else b.slice(
        u, start=(0,) * nd, limit=u.type.shape[:-1] + (k,), stride=(1,) * nd
    )  # fmt: skip
    vt_thin = vt if vt.type.shape[-2] == k else b.slice(
        vt, start=(0,) * nd, limit=vt.type.shape[:-2] + (k, n), stride=(1,) * nd
    )  # fmt: skip
    result = b.matmul(u_thin, b.matmul(inner, vt_thin))
    return (result if extra is None else b.add(result, extra),)


register(
    OpDef(
        "svd", ("a",), (Attr("full_matrices", "bool", False),), _svd_rule, _svd_ref, _svd_vjp,
        _PURE, doc="singular value decomposition u, s, vt (s descending, np.linalg.svd)",
    )
)  # fmt: skip
