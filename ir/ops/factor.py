"""Matrix factorizations and solvers: cholesky, triangular_solve, solve,
slogdet, eigh. Operands are stacks of matrices (``[..., n, n]``); right-hand
sides are ``[..., n, k]`` with the same leading dims (tracing broadcasts).

Data-dependent failures (a singular matrix in ``solve``, a matrix that is not
positive definite in ``cholesky``) raise :class:`LinAlgError`, as NumPy does;
``slogdet`` of a singular matrix is ``(0, -inf)``, as in NumPy.

VJPs are the standard matrix-calculus rules, written with these same ops so
they can be differentiated again. ``cholesky`` and ``eigh`` read only the
lower triangle of their operand, as NumPy does, so their cotangent lives on
that triangle: it is the symmetric-matrix gradient G folded onto the entries
that were read (2 G below the diagonal, G on it, 0 above). Along symmetric
perturbations this is the same as JAX's symmetric cotangent; unlike it, it
is also the exact derivative of the op for any input. ``eigh``'s VJP divides
by eigenvalue gaps, so it is infinite or NaN where two eigenvalues coincide
(as in JAX).

>>> import numpy as np
>>> from graphc.ir import GraphBuilder, f64, interpret
>>> b = GraphBuilder("f"); a = b.input(f64[2, 2], "a")
>>> interpret(b.build([b.cholesky(a)]), 4 * np.eye(2))[0]
array([[2., 0.],
       [0., 2.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from ..core import Literal, TensorType
from ..dtypes import DType
from ..errors import LinAlgError
from .registry import Attr, OpDef, register
from .rules import type_error

# -- type rules ------------------------------------------------------------------------------


def _square(a: TensorType, op: str) -> int:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise type_error(
            f"{op} needs a stack of square matrices, got shape {list(a.shape)}",
            hint="the last two dimensions must be equal",
        )
    if a.dtype not in (DType.f32, DType.f64):  # LAPACK (and NumPy's linalg) has no 16-bit loops
        raise type_error(f"{op} needs float32 or float64, got {a.dtype}", hint="cast first")
    return a.shape[-1]


def _rhs(a: TensorType, b: TensorType, op: str) -> TensorType:
    n = _square(a, op)
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[-2] != n:
        raise type_error(
            f"{op}: right-hand side {list(b.shape)} does not fit matrices {list(a.shape)}",
            hint="b must be [..., n, k] with the same leading dims as a",
        )
    if b.dtype != a.dtype:
        raise type_error(f"{op}: dtypes differ ({a.dtype} vs {b.dtype})", hint="cast first")
    return b


def _cholesky_rule(a: TensorType) -> TensorType:
    _square(a, "cholesky")
    return a


def _solve_rule(a: TensorType, b: TensorType) -> TensorType:
    return _rhs(a, b, "solve")


def _tri_rule(
    a: TensorType, b: TensorType, *, lower: bool, transpose_a: bool, unit_diagonal: bool
) -> TensorType:
    return _rhs(a, b, "triangular_solve")


def _slogdet_rule(a: TensorType) -> tuple[TensorType, TensorType]:
    _square(a, "slogdet")
    t = TensorType(a.shape[:-2], a.dtype)
    return t, t


def _eigh_rule(a: TensorType) -> tuple[TensorType, TensorType]:
    _square(a, "eigh")
    return TensorType(a.shape[:-1], a.dtype), a


# -- references ------------------------------------------------------------------------------


def _failed(op: str, why: str, hint: str) -> LinAlgError:
    exc = LinAlgError(f"{op}: {why}")
    exc.hint = hint  # type: ignore[attr-defined]
    return exc


def _cholesky_ref(a: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        raise _failed("cholesky", "the matrix is not positive definite", NOT_PD_HINT) from None


def _solve_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise _failed("solve", "the matrix is singular", SINGULAR_HINT) from None


def _tri_ref(
    a: np.ndarray, b: np.ndarray, *, lower: bool, transpose_a: bool, unit_diagonal: bool
) -> np.ndarray:
    out = np.empty(b.shape, b.dtype)
    n, k_cols = a.shape[-1], b.shape[-1]
    count = int(np.prod(a.shape[:-2]))  # not -1: that is ambiguous for empty arrays
    flat_a = a.reshape((count, n, n))
    flat_b, flat_out = b.reshape((count, n, k_cols)), out.reshape((count, n, k_cols))
    for k in range(count if k_cols else 0):  # no columns: nothing to solve (as SciPy)
        if not unit_diagonal and np.any(np.diagonal(flat_a[k]) == 0):
            raise _failed("triangular_solve", "the matrix is singular", SINGULAR_HINT)
        flat_out[k] = scipy.linalg.solve_triangular(
            flat_a[k],
            flat_b[k],
            trans=1 if transpose_a else 0,
            lower=lower,
            unit_diagonal=unit_diagonal,
            check_finite=False,
        )
    return out


def _slogdet_ref(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sign, logdet = np.linalg.slogdet(a)
    return np.asarray(sign, a.dtype), np.asarray(logdet, a.dtype)


def _eigh_ref(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        w, v = np.linalg.eigh(a)
    except np.linalg.LinAlgError:
        raise _failed("eigh", "the eigenvalue solver did not converge", "check for NaN") from None
    return w, v


SINGULAR_HINT = "the matrix has no inverse; check for linearly dependent rows"
NOT_PD_HINT = (
    "cholesky needs a symmetric positive definite matrix; add a small multiple of the "
    "identity (jitter) if it is only numerically semi-definite"
)

# -- VJP helpers -------------------------------------------------------------------------------


def mT(b: Any, x: Any) -> Any:
    """Swap the last two dims of ``x``."""
    n = x.type.ndim
    return b.transpose(x, perm=tuple(range(n - 2)) + (n - 1, n - 2))


def eye_like(b: Any, a: Any) -> Any:
    """An identity matrix of ``a``'s type (broadcast over its leading dims)."""
    n = a.type.shape[-1]
    rows = b.iota(shape=(n, n), dimension=0, dtype=DType.i64)
    cols = b.iota(shape=(n, n), dimension=1, dtype=DType.i64)
    one = b.cast(b.eq(rows, cols), dtype=a.type.dtype)
    return b.broadcast_in_dim(
        one, shape=a.type.shape, broadcast_dimensions=(a.type.ndim - 2, a.type.ndim - 1)
    )


def triangle_mask(b: Any, a: Any, lower: bool, strict: bool) -> Any:
    """A bool mask of the lower (or upper) triangle of ``a``'s matrices."""
    n = a.type.shape[-1]
    rows = b.iota(shape=(n, n), dimension=0, dtype=DType.i64)
    cols = b.iota(shape=(n, n), dimension=1, dtype=DType.i64)
    if lower:
        mask = b.gt(rows, cols) if strict else b.ge(rows, cols)
    else:
        mask = b.lt(rows, cols) if strict else b.le(rows, cols)
    return b.broadcast_in_dim(
        mask, shape=a.type.shape, broadcast_dimensions=(a.type.ndim - 2, a.type.ndim - 1)
    )


def _zero(a: Any) -> Literal:
    return Literal(0.0, a.type.dtype)


def _symmetric(b: Any, x: Any) -> Any:
    return b.mul(b.add(x, mT(b, x)), 0.5)


def _onto_lower(b: Any, g: Any) -> Any:
    """The cotangent of an operand read through its lower triangle, from the
    gradient ``g`` taken as if the operand were a symmetric matrix."""
    g = _symmetric(b, g)
    below = b.select(triangle_mask(b, g, True, strict=True), b.mul(g, 2.0), _zero(g))
    return b.add(below, b.mul(g, eye_like(b, g)))


# -- VJPs --------------------------------------------------------------------------------------


def _solve_vjp(b: Any, ct: Any, x: Any, a: Any, rhs: Any) -> tuple[Any, Any]:
    # a x = rhs:  d rhs = a^T-solve of ct;  d a = -(d rhs) x^T
    ct_rhs = b.solve(mT(b, a), ct)
    return b.neg(b.matmul(ct_rhs, mT(b, x))), ct_rhs


def _tri_vjp(
    b: Any, ct: Any, x: Any, a: Any, rhs: Any, *, lower: bool, transpose_a: bool,
    unit_diagonal: bool,
) -> tuple[Any, Any]:  # fmt: skip
    ct_rhs = b.triangular_solve(
        a, ct, lower=lower, transpose_a=not transpose_a, unit_diagonal=unit_diagonal
    )
    if transpose_a:
        full = b.neg(b.matmul(x, mT(b, ct_rhs)))
    else:
        full = b.neg(b.matmul(ct_rhs, mT(b, x)))
    # Only the triangle the solve reads has a gradient.
    ct_a = b.select(triangle_mask(b, a, lower, strict=unit_diagonal), full, _zero(a))
    return ct_a, ct_rhs


def _cholesky_vjp(b: Any, ct: Any, chol: Any, a: Any) -> tuple[Any]:
    # Murray (2016): S = L^-T Phi(L^T Lbar) L^-1, abar = (S + S^T) / 2, where
    # Phi keeps the lower triangle and halves the diagonal.
    p = b.matmul(mT(b, chol), ct)
    p = b.select(triangle_mask(b, a, True, strict=False), p, _zero(a))
    p = b.sub(p, b.mul(b.mul(p, eye_like(b, a)), 0.5))
    y = b.triangular_solve(chol, p, lower=True, transpose_a=True, unit_diagonal=False)
    s_t = b.triangular_solve(chol, mT(b, y), lower=True, transpose_a=True, unit_diagonal=False)
    return (_onto_lower(b, s_t),)


def _slogdet_vjp(b: Any, ct: tuple[Any, Any], out: tuple[Any, Any], a: Any) -> tuple[Any]:
    ct_logdet = ct[1]
    if ct_logdet is None:
        return (None,)
    # d log|det a| = tr(a^-1 da): the cotangent is ct * a^-T.
    inv_t = b.solve(mT(b, a), eye_like(b, a))
    nd = a.type.ndim
    scale = b.broadcast_in_dim(
        ct_logdet, shape=a.type.shape, broadcast_dimensions=tuple(range(nd - 2))
    )
    return (b.mul(inv_t, scale),)


def _eigh_vjp(b: Any, ct: tuple[Any, Any], out: tuple[Any, Any], a: Any) -> tuple[Any]:
    ct_w, ct_v = ct
    w, v = out
    nd = a.type.ndim
    inner = None
    if ct_v is not None:
        # F[i, j] = 1 / (w_j - w_i) off the diagonal, 0 on it.
        wi = b.broadcast_in_dim(w, shape=a.type.shape, broadcast_dimensions=tuple(range(nd - 1)))
        wj = b.broadcast_in_dim(
            w, shape=a.type.shape, broadcast_dimensions=tuple(range(nd - 2)) + (nd - 1,)
        )
        diag = b.eq(eye_like(b, a), Literal(1.0, a.type.dtype))
        gap = b.select(diag, Literal(1.0, a.type.dtype), b.sub(wj, wi))
        f = b.select(diag, _zero(a), b.div(Literal(1.0, a.type.dtype), gap))
        inner = b.mul(f, b.matmul(mT(b, v), ct_v))
    if ct_w is not None:
        dw = b.mul(
            eye_like(b, a),
            b.broadcast_in_dim(
                ct_w, shape=a.type.shape, broadcast_dimensions=tuple(range(nd - 2)) + (nd - 1,)
            ),
        )
        inner = dw if inner is None else b.add(inner, dw)
    if inner is None:
        return (None,)
    return (_onto_lower(b, b.matmul(v, b.matmul(inner, mT(b, v)))),)


# -- registration ------------------------------------------------------------------------------

_PURE = frozenset({"pure"})

register(
    OpDef(
        "cholesky", ("a",), (), _cholesky_rule, _cholesky_ref, _cholesky_vjp, _PURE,
        doc="lower Cholesky factor (np.linalg.cholesky; reads the lower triangle)",
    )
)  # fmt: skip
register(
    OpDef(
        "solve", ("a", "b"), (), _solve_rule, _solve_ref, _solve_vjp, _PURE,
        doc="x with a @ x = b (LU with partial pivoting)",
    )
)  # fmt: skip
register(
    OpDef(
        "triangular_solve",
        ("a", "b"),
        (
            Attr("lower", "bool", True),
            Attr("transpose_a", "bool", False),
            Attr("unit_diagonal", "bool", False),
        ),
        _tri_rule, _tri_ref, _tri_vjp, _PURE,
        doc="x with op(a) @ x = b for triangular a (op: transpose or not)",
    )
)  # fmt: skip
register(
    OpDef(
        "slogdet", ("a",), (), _slogdet_rule, _slogdet_ref, _slogdet_vjp, _PURE,
        doc="(sign, log|det|) of each matrix (np.linalg.slogdet)",
    )
)  # fmt: skip
register(
    OpDef(
        "eigh", ("a",), (), _eigh_rule, _eigh_ref, _eigh_vjp, _PURE,
        doc="eigenvalues (ascending) and eigenvectors of symmetric matrices (lower triangle)",
    )
)  # fmt: skip
