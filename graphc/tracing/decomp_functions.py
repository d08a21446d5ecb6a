"""np.linalg solvers and factorizations on traced arrays (solve, inv, det,
slogdet, cholesky, eigh, eigvalsh, svd, svdvals, qr, pinv, lstsq, cond,
matrix_rank, matrix_power) and scipy.linalg's solve_triangular, cholesky,
cho_factor/cho_solve, lu_factor/lu_solve, solve, inv and det. Stacks of
matrices batch over the leading dims as NumPy does; integer input computes
in float64.

>>> import numpy as np, graphc as gc
>>> gc.jit(lambda a: np.linalg.solve(a, np.ones(2)), backend="numpy")(2 * np.eye(2))
array([0.5, 0.5])
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from graphc.ir import OpTypeError, UnsupportedError

from .array import TracedArray
from .dispatch import as_tracer, error, implements, static_int
from .ops import cast, emit
from .scipy_hooks import intercept


def _matrices(a: Any, name: str, *others: Any) -> TracedArray:
    a = as_tracer(a, *others)  # a constant matrix joins the trace of the others
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise error(
            OpTypeError,
            f"{name}: last 2 dimensions of the array must be square (got shape {a.shape})",
        )
    if np.dtype(a.dtype).kind != "f":
        a = cast(a, np.float64)
    return a


def _op(name: str, *xs: TracedArray, **attrs: Any) -> Any:
    x0 = xs[0]
    return emit(x0.trace, name, [x0.trace.value_of(x) for x in xs], **attrs)


def _rhs(a: TracedArray, b: Any, name: str) -> tuple[TracedArray, TracedArray, bool]:
    """``b`` as a stack of [n, k] matrices with ``a``'s leading dims, and
    whether it was a vector (NumPy 2: only a 1-d ``b`` is a vector)."""
    b = as_tracer(b, a)
    if np.dtype(b.dtype) != np.dtype(a.dtype):
        dtype = np.result_type(a.dtype, b.dtype)
        a, b = cast(a, dtype), cast(b, dtype)
    vector = b.ndim == 1
    if vector:
        b = np.expand_dims(b, -1)
    if b.shape[-2] != a.shape[-1]:
        raise error(OpTypeError, f"{name}: b has {b.shape[-2]} rows, the matrix {a.shape[-1]}")
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    return a, b, vector


@implements(np.linalg.solve)
def solve(a: Any, b: Any) -> Any:
    a = _matrices(a, "np.linalg.solve", b)
    a, b, vector = _rhs(a, b, "np.linalg.solve")
    x = _op("solve", a, b)
    return x[..., 0] if vector else x


@implements(np.linalg.inv)
def inv(a: Any) -> Any:
    a = _matrices(a, "np.linalg.inv")
    eye = np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape)
    return _op("solve", a, as_tracer(eye, a))


@implements(np.linalg.slogdet)
def slogdet(a: Any) -> Any:
    a = _matrices(a, "np.linalg.slogdet")
    sign, logdet = _op("slogdet", a)
    return _SlogdetResult(sign, logdet)


class _SlogdetResult(tuple):  # type: ignore[type-arg]
    """(sign, logabsdet) with NumPy's attribute names."""

    def __new__(cls, sign: Any, logabsdet: Any) -> _SlogdetResult:
        return super().__new__(cls, (sign, logabsdet))

    @property
    def sign(self) -> Any:
        return self[0]

    @property
    def logabsdet(self) -> Any:
        return self[1]


@implements(np.linalg.det)
def det(a: Any) -> Any:
    sign, logdet = slogdet(a)
    return sign * np.exp(logdet)


@implements(np.linalg.cholesky)
def cholesky(a: Any, /, *, upper: bool = False) -> Any:
    chol = _op("cholesky", _matrices(a, "np.linalg.cholesky"))
    return np.matrix_transpose(chol) if upper else chol


@implements(np.linalg.eigh)
def eigh(a: Any, UPLO: str = "L") -> Any:
    a = _matrices(a, "np.linalg.eigh")
    if UPLO == "U":
        a = np.matrix_transpose(a)
    elif UPLO != "L":
        raise error(OpTypeError, "UPLO argument must be 'L' or 'U'")
    w, v = _op("eigh", a)
    return _EighResult(w, v)


class _EighResult(tuple):  # type: ignore[type-arg]
    """(eigenvalues, eigenvectors) with NumPy's attribute names."""

    def __new__(cls, w: Any, v: Any) -> _EighResult:
        return super().__new__(cls, (w, v))

    @property
    def eigenvalues(self) -> Any:
        return self[0]

    @property
    def eigenvectors(self) -> Any:
        return self[1]


@implements(np.linalg.eigvalsh)
def eigvalsh(a: Any, UPLO: str = "L") -> Any:
    return eigh(a, UPLO)[0]


@implements(np.linalg.matrix_power)
def matrix_power(a: Any, n: Any) -> Any:
    n = static_int(n, "np.linalg.matrix_power exponent")
    a = as_tracer(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise error(OpTypeError, "np.linalg.matrix_power needs square matrices")
    if n == 0:
        return np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape) + 0 * a
    if n < 0:
        a, n = inv(a), -n
    # Binary powering: about log2(n) products.
    result = None
    square = a
    while n:
        if n & 1:
            result = square if result is None else np.matmul(result, square)
        n >>= 1
        if n:
            square = np.matmul(square, square)
    return result


# -- scipy.linalg ------------------------------------------------------------------------------


@intercept("scipy.linalg", "solve_triangular")
def solve_triangular(
    a: Any, b: Any, trans: Any = 0, lower: bool = False, unit_diagonal: bool = False,
    overwrite_b: bool = False, check_finite: bool = True,
) -> Any:  # fmt: skip
    a = _matrices(a, "scipy.linalg.solve_triangular", b)
    a, b, vector = _rhs(a, b, "scipy.linalg.solve_triangular")
    transpose = {0: False, "N": False, 1: True, "T": True, 2: True, "C": True}.get(trans)
    if transpose is None:
        raise error(OpTypeError, f"scipy.linalg.solve_triangular: invalid trans {trans!r}")
    x = _op(
        "triangular_solve", a, b, lower=bool(lower), transpose_a=transpose,
        unit_diagonal=bool(unit_diagonal),
    )  # fmt: skip
    return x[..., 0] if vector else x


@intercept("scipy.linalg", "cholesky")
def scipy_cholesky(
    a: Any, lower: bool = False, overwrite_a: bool = False, check_finite: bool = True
) -> Any:
    # The upper factor is computed from the upper triangle, as LAPACK does.
    if lower:
        return cholesky(a)
    return np.matrix_transpose(cholesky(np.matrix_transpose(as_tracer(a))))


@intercept("scipy.linalg", "cho_factor")
def cho_factor(
    a: Any, lower: bool = False, overwrite_a: bool = False, check_finite: bool = True
) -> Any:
    a = _matrices(a, "scipy.linalg.cho_factor")
    factor = scipy_cholesky(a, lower=lower)
    n = a.shape[-1]
    # SciPy leaves the other triangle as it was in a.
    keep = np.tril(np.ones((n, n), bool)) if lower else np.triu(np.ones((n, n), bool))
    c = np.where(keep, factor, a)
    return c, bool(lower)


@intercept("scipy.linalg", "cho_solve")
def cho_solve(
    c_and_lower: Any, b: Any, overwrite_b: bool = False, check_finite: bool = True
) -> Any:
    c, lower = c_and_lower
    c = _matrices(c, "scipy.linalg.cho_solve", b)
    if lower:
        y = solve_triangular(c, b, lower=True)
        return solve_triangular(c, y, trans=1, lower=True)
    y = solve_triangular(c, b, trans=1, lower=False)
    return solve_triangular(c, y, lower=False)


@intercept("scipy.linalg", "solve")
def scipy_solve(
    a: Any, b: Any, lower: bool = False, overwrite_a: bool = False, overwrite_b: bool = False,
    check_finite: bool = True, assume_a: Any = None, transposed: bool = False,
) -> Any:  # fmt: skip
    a = _matrices(a, "scipy.linalg.solve", b)
    if transposed:
        a = np.matrix_transpose(a)
    kind = "gen" if assume_a in (None, "gen", "general") else assume_a
    if kind in ("sym", "her", "symmetric", "hermitian"):
        # SciPy reads one triangle of a symmetric matrix.
        n = a.shape[-1]
        keep = np.tril(np.ones((n, n), bool)) if lower else np.triu(np.ones((n, n), bool))
        half = np.where(keep, a, 0.0)
        diagonal = np.where(np.eye(n, dtype=bool), a, 0.0)
        return solve(half + np.matrix_transpose(half) - diagonal, b)
    if kind in ("pos", "positive definite"):
        return cho_solve(cho_factor(a, lower=lower), b)
    if kind in ("lower triangular", "upper triangular"):
        return solve_triangular(a, b, lower=kind.startswith("lower"))
    if kind != "gen":
        raise error(UnsupportedError, f"scipy.linalg.solve: assume_a={assume_a!r} is not supported")
    return solve(a, b)


@intercept("scipy.linalg", "inv")
def scipy_inv(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    return inv(a)


@intercept("scipy.linalg", "det")
def scipy_det(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    return det(a)


# -- singular values -------------------------------------------------------------------------


def _svd(a: TracedArray, full_matrices: bool = False) -> tuple[Any, Any, Any]:
    u, s, vt = _op("svd", a, full_matrices=full_matrices)
    return u, s, vt


class _SVDResult(tuple):  # type: ignore[type-arg]
    """(U, S, Vh) with NumPy's attribute names."""

    def __new__(cls, u: Any, s: Any, vh: Any) -> _SVDResult:
        return super().__new__(cls, (u, s, vh))

    U = property(lambda self: self[0])
    S = property(lambda self: self[1])
    Vh = property(lambda self: self[2])


def _as_float_stack(a: Any, name: str) -> TracedArray:
    a = as_tracer(a)
    if a.ndim < 2:
        raise error(OpTypeError, f"{name}: expected a stack of matrices, got {a.ndim}-d")
    return a if np.dtype(a.dtype).kind == "f" else cast(a, np.float64)


@implements(np.linalg.svd)
def svd(
    a: Any, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False
) -> Any:
    a = _as_float_stack(a, "np.linalg.svd")
    if not compute_uv:
        return _svd(a)[1]
    return _SVDResult(*_svd(a, bool(full_matrices)))


if hasattr(np.linalg, "svdvals"):

    @implements(np.linalg.svdvals)
    def svdvals(x: Any, /) -> Any:
        return _svd(_as_float_stack(x, "np.linalg.svdvals"))[1]


def singular_values(x: Any) -> Any:
    """The singular values of a stack of matrices (used by the matrix norms)."""
    return _svd(_as_float_stack(x, "np.linalg.norm"))[1]


@implements(np.linalg.pinv)
def pinv(a: Any, rcond: Any = None, hermitian: bool = False, *, rtol: Any = None) -> Any:
    a = _as_float_stack(a, "np.linalg.pinv")
    u, s, vt = _svd(a)
    if rcond is None:
        rcond = 1e-15 if rtol is None else rtol
    cutoff = np.asarray(rcond) * np.max(s, axis=-1, keepdims=True)
    big = s > cutoff
    inv_s = np.where(big, 1.0 / np.where(big, s, np.ones_like(s)), np.zeros_like(s))
    return np.matmul(np.matrix_transpose(vt) * np.expand_dims(inv_s, -2), np.matrix_transpose(u))


@implements(np.linalg.lstsq)
def lstsq(a: Any, b: Any, rcond: Any = None) -> Any:
    known = None if isinstance(a, TracedArray) else np.asarray(a)
    # Only b may be traced (a fixed design matrix): lift a onto b's trace.
    a = _as_float_stack(as_tracer(a, b), "np.linalg.lstsq")
    if a.ndim != 2:
        raise error(OpTypeError, "np.linalg.lstsq needs a 2-d matrix")
    m, n = a.shape
    b = as_tracer(b, a)
    vector = b.ndim == 1
    rhs = np.expand_dims(b, -1) if vector else b
    u, s, vt = _svd(a)
    eps = float(np.finfo(a.dtype).eps)
    relative = eps * max(m, n) if rcond is None else float(rcond)
    x = np.matmul(pinv(a, rcond=relative), rhs)
    rank = np.sum(s > relative * np.max(s), dtype=np.int32)  # NumPy's rank is int32
    if m > n and known is not None and _rank(known, relative) < n:
        # NumPy returns no residuals for a rank-deficient matrix; a matrix
        # that is not traced has a rank known now, so the shape can follow.
        residuals = np.zeros((0,), a.dtype) + 0 * np.sum(s)
    elif m > n:
        # A traced matrix's rank is only known when the graph runs, but the
        # shape must be static: the residuals are returned whatever the rank.
        residuals = np.sum((np.matmul(a, x) - rhs) ** 2, axis=0)
    else:
        residuals = np.zeros((0,), a.dtype) + 0 * np.sum(s)
    return (x[:, 0] if vector else x), residuals, rank, s


def _rank(a: np.ndarray, rcond: float) -> int:
    s = np.linalg.svd(a.astype(np.result_type(a, np.float32), copy=False), compute_uv=False)
    return int(np.sum(s > rcond * np.max(s))) if s.size else 0


@implements(np.linalg.cond)
def cond(x: Any, p: Any = None) -> Any:
    if p not in (None, 2, -2):
        from .linalg_functions import _norm

        return _norm(x, ord=p, axis=(-2, -1)) * _norm(inv(x), ord=p, axis=(-2, -1))
    s = singular_values(x)
    big, small = np.max(s, axis=-1), np.min(s, axis=-1)
    return small / big if p == -2 else big / small


@implements(np.linalg.qr)
def qr(a: Any, mode: str = "reduced") -> Any:
    a = _as_float_stack(a, "np.linalg.qr")
    if mode not in ("reduced", "complete", "r"):
        raise error(
            UnsupportedError,
            f"np.linalg.qr: mode={mode!r} is not supported on traced arrays",
            hint="use 'reduced', 'complete' or 'r'",
        )
    q, r = _op("qr", a, complete=mode == "complete")
    return r if mode == "r" else _QRResult(q, r)


class _QRResult(tuple):  # type: ignore[type-arg]
    """(Q, R) with NumPy's attribute names."""

    def __new__(cls, q: Any, r: Any) -> _QRResult:
        return super().__new__(cls, (q, r))

    Q = property(lambda self: self[0])
    R = property(lambda self: self[1])


# -- LU ------------------------------------------------------------------------------------------

# Per trace: the pivots' IR value -> the permutation lu_factor made with them,
# so lu_solve can use it. Entries go with their trace.
_PERMUTATIONS: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


@intercept("scipy.linalg", "lu_factor")
def lu_factor(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> tuple[Any, Any]:
    a = _matrices(a, "scipy.linalg.lu_factor")
    lu, piv, perm = _op("lu", a)
    _PERMUTATIONS.setdefault(piv.trace, {})[piv.value] = perm
    return lu, piv


def _permute_rows(perm: Any, x: Any, inverse: bool) -> Any:
    n = x.shape[-2]
    p = np.asarray(perm)[..., :, None] if not isinstance(perm, TracedArray) else perm[..., :, None]
    matrix = (p == np.arange(n)).astype(x.dtype)  # (P x)[i] = x[perm[i]]
    return np.matmul(np.matrix_transpose(matrix) if inverse else matrix, x)


@intercept("scipy.linalg", "lu_solve")
def lu_solve(
    lu_and_piv: Any, b: Any, trans: Any = 0, overwrite_b: bool = False,
    check_finite: bool = True,
) -> Any:  # fmt: skip
    lu, piv = lu_and_piv
    perm = None
    if isinstance(piv, TracedArray):
        perm = _PERMUTATIONS.get(piv.trace, {}).get(piv.value)
    if perm is None:
        raise error(
            UnsupportedError,
            "scipy.linalg.lu_solve on traced arrays needs the (lu, piv) pair that "
            "scipy.linalg.lu_factor returned in the same traced function",
        )
    lu = _matrices(lu, "scipy.linalg.lu_solve", b)
    lu, rhs, vector = _rhs(lu, b, "scipy.linalg.lu_solve")
    if trans in (0, "N"):
        y = _op("triangular_solve", lu, _permute_rows(perm, rhs, False), lower=True,
                transpose_a=False, unit_diagonal=True)  # fmt: skip
        x = _op("triangular_solve", lu, y, lower=False, transpose_a=False, unit_diagonal=False)
    elif trans in (1, 2, "T", "C"):
        y = _op("triangular_solve", lu, rhs, lower=False, transpose_a=True, unit_diagonal=False)
        z = _op("triangular_solve", lu, y, lower=True, transpose_a=True, unit_diagonal=True)
        x = _permute_rows(perm, z, True)
    else:
        raise error(OpTypeError, f"scipy.linalg.lu_solve: invalid trans {trans!r}")
    return x[..., 0] if vector else x


@implements(np.linalg.matrix_rank)
def matrix_rank(A: Any, tol: Any = None, hermitian: bool = False, *, rtol: Any = None) -> Any:
    a = as_tracer(A)
    if a.ndim < 2:
        return np.sum(a != 0, dtype=np.int64) if a.ndim == 1 else (a != 0).astype(np.int64)
    s = singular_values(a)
    top = np.max(s, axis=-1, keepdims=True)
    if tol is None:
        eps = float(np.finfo(s.dtype).eps)
        limit = top * (max(a.shape[-2:]) * eps if rtol is None else rtol)
    else:
        limit = np.expand_dims(np.asarray(tol), -1) if not isinstance(tol, TracedArray) else tol
    return np.sum(s > limit, axis=-1, dtype=np.int64)
