"""Oracles and forward cases for the sorting, special-function and
factorization ops. The special functions' oracles are SciPy's ufuncs in
float64; the factorizations loop over the stack with scipy.linalg (the ops'
references use np.linalg's batched routines)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.linalg as sl
import scipy.special as sp

from graphc.ir import DType

from .oracles import Rejected, like

SPECIAL = {
    "gammaln": sp.gammaln, "digamma": sp.psi, "erfc": sp.erfc, "erfinv": sp.erfinv,
    "ndtri": sp.ndtri, "log_ndtr": sp.log_ndtr, "i0e": sp.i0e, "i1e": sp.i1e,
}  # fmt: skip


def argsort(x: np.ndarray) -> np.ndarray:
    if x.ndim == 0 or x.dtype == bool:
        raise Rejected("argsort needs a 1-d or larger non-bool operand")
    out = np.empty(x.shape, np.int64)
    for row in np.ndindex(x.shape[:-1]):
        keys = list(x[row])
        # NaN last, then by value, ties by position: sorted() is stable.
        out[row] = sorted(range(len(keys)), key=lambda k: (keys[k] != keys[k], keys[k]))
    return out


def polygamma(x: np.ndarray, *, n: int) -> np.ndarray:
    if n < 0:
        raise Rejected("negative order")
    return like(np.exp, lambda v: sp.polygamma(n, v))(x)


def scipy_ufunc(fn: np.ufunc) -> Callable[..., np.ndarray]:
    """An n-ary SciPy ufunc in float64, rounded to the dtype its loops pick."""

    def oracle(*xs: np.ndarray) -> np.ndarray:
        out = fn.resolve_dtypes((*(x.dtype for x in xs), None))[-1]
        with np.errstate(all="ignore"):
            return np.asarray(fn(*(x.astype(np.float64) for x in xs))).astype(out)

    return oracle


def _stencil(f: Callable[[np.ndarray], np.ndarray], at: np.ndarray) -> np.ndarray:
    # Fourth-order central differences, good to about 1e-10 relative on the
    # logarithms below (smooth on the scale of the step, even in the tails).
    h = 1e-4 * at
    return (8 * (f(at + h) - f(at - h)) - (f(at + 2 * h) - f(at - 2 * h))) / (12 * h)


def _tail_slope(value: np.ndarray, log_tail: Callable[[np.ndarray], np.ndarray], at: Any) -> Any:
    # A tail that underflowed to 0 has a slope that does too.
    return np.where(value == 0, 0.0, value * _stencil(log_tail, at))


def gammainc_grad_a(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d/da gammainc: differences of the log of whichever of P and Q is smaller."""
    a, x = np.broadcast_arrays(a.astype(np.float64), x.astype(np.float64))
    with np.errstate(all="ignore"):
        p, q = sp.gammainc(a, x), sp.gammaincc(a, x)
        lower = _tail_slope(p, lambda t: np.log(sp.gammainc(t, x)), a)
        upper = -_tail_slope(q, lambda t: np.log(sp.gammaincc(t, x)), a)
    return np.where(p < 0.5, lower, upper)


def betainc_grad(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b, x = np.broadcast_arrays(*(v.astype(np.float64) for v in (a, b, x)))
    with np.errstate(all="ignore"):
        lo, hi = sp.betainc(a, b, x), sp.betaincc(a, b, x)
        small = lo < 0.5
        da = np.where(
            small,
            _tail_slope(lo, lambda t: np.log(sp.betainc(t, b, x)), a),
            -_tail_slope(hi, lambda t: np.log(sp.betaincc(t, b, x)), a),
        )
        db = np.where(
            small,
            _tail_slope(lo, lambda t: np.log(sp.betainc(a, t, x)), b),
            -_tail_slope(hi, lambda t: np.log(sp.betaincc(a, t, x)), b),
        )
    return da, db


def _square(*xs: np.ndarray) -> None:
    a = xs[0]
    if a.ndim < 2 or a.shape[-1] != a.shape[-2] or a.dtype.kind != "f":
        raise Rejected("needs float square matrices")
    for b in xs[1:]:
        if b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1] or b.dtype != a.dtype:
            raise Rejected("right-hand side does not fit")


def _each(a: np.ndarray, *rest: np.ndarray) -> Iterator[tuple[Any, ...]]:
    for k in np.ndindex(a.shape[:-2]):
        yield (k, a[k], *(r[k] for r in rest))


def cholesky(a: np.ndarray) -> np.ndarray:
    _square(a)
    out = np.zeros_like(a)
    for k, m in _each(a):
        out[k] = sl.cholesky(m, lower=True)
    return out


def solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _square(a, b)
    out = np.empty_like(b)
    for k, m, r in _each(a, b):
        out[k] = sl.solve(m, r)
    return out


def triangular_solve(
    a: np.ndarray,
    b: np.ndarray,
    *,
    lower: bool = True,
    transpose_a: bool = False,
    unit_diagonal: bool = False,
) -> np.ndarray:
    _square(a, b)
    out = np.empty_like(b)
    for k, m, r in _each(a, b):
        out[k] = sl.solve_triangular(
            m, r, lower=lower, trans=int(transpose_a), unit_diagonal=unit_diagonal
        )
    return out


def slogdet(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _square(a)
    det = np.empty(a.shape[:-2], np.float64)
    for k, m in _each(a):
        det[k] = sl.det(m.astype(np.float64))
    return np.sign(det).astype(a.dtype), np.log(np.abs(det)).astype(a.dtype)


def eigh(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _square(a)
    w = np.empty(a.shape[:-1], a.dtype)
    v = np.empty_like(a)
    for k, m in _each(a):
        w[k], v[k] = sl.eigh(m, lower=True, driver="evd")
    return w, v


def _stack(a: np.ndarray) -> None:
    if a.ndim < 2 or a.dtype.kind != "f":
        raise Rejected("needs a float stack of matrices")


def svd(a: np.ndarray, *, full_matrices: bool = False) -> tuple[np.ndarray, ...]:
    _stack(a)
    return tuple(np.linalg.svd(a, full_matrices=full_matrices))


def qr(a: np.ndarray, *, complete: bool = False) -> tuple[np.ndarray, ...]:
    _stack(a)
    m, n = a.shape[-2:]
    k = m if complete else min(m, n)
    q = np.empty(a.shape[:-2] + (m, k), a.dtype)
    r = np.empty(a.shape[:-2] + (k, n), a.dtype)
    for idx in np.ndindex(a.shape[:-2]):
        q[idx], r[idx] = sl.qr(a[idx], mode="full" if complete else "economic")
    return q, r


def lu(a: np.ndarray) -> tuple[np.ndarray, ...]:
    _square(a)
    n = a.shape[-1]
    packed = np.empty_like(a)
    piv = np.empty(a.shape[:-1], np.int32)
    perm = np.empty(a.shape[:-1], np.int64)
    for idx in np.ndindex(a.shape[:-2]):
        p, lower, upper = sl.lu(a[idx])  # a = p @ l @ u
        packed[idx] = np.tril(lower, -1) + upper
        perm[idx] = np.argmax(p, axis=0)  # a[perm] = l @ u
        order = list(range(n))
        for i in range(n):  # the interchanges that produce perm, LAPACK style
            j = order.index(perm[idx][i])
            piv[idx][i] = j
            order[i], order[j] = order[j], order[i]
    return packed, piv, perm


def expm(a: np.ndarray) -> np.ndarray:
    """Taylor series at a / 2^s (1-norm <= 1/4) in long double, then s squarings:
    independent of SciPy's Padé method."""
    _square(a)
    out = np.empty_like(a)
    for k, m in _each(a):
        x = m.astype(np.longdouble)
        norm = np.abs(x).sum(axis=0).max() if x.size else 0.0
        s = max(0, int(np.ceil(np.log2(norm / 0.25)))) if norm > 0.25 else 0
        x = x / 2.0**s
        term = result = np.eye(len(x), dtype=np.longdouble)
        for j in range(1, 30):
            term = term @ x / j
            result = result + term
        for _ in range(s):
            result = result @ result
        out[k] = result
    return out


ORACLES: dict[str, Callable[..., Any]] = {
    "expm": expm,
    "lu": lu,
    "svd": svd,
    "qr": qr,
    **{op: like(np.exp, fn) for op, fn in SPECIAL.items()},
    "polygamma": polygamma,
    "gammainc": scipy_ufunc(sp.gammainc),
    "gammaincc": scipy_ufunc(sp.gammaincc),
    "betainc": scipy_ufunc(sp.betainc),
    "stdtr": scipy_ufunc(sp.stdtr),
    **{
        op: scipy_ufunc(getattr(sp, op))
        for op in ("gammaincinv", "gammainccinv", "betaincinv", "betainccinv")
    },
    "gammainc_grad_a": gammainc_grad_a,
    "betainc_grad": betainc_grad,
    "argsort": argsort,
    "cholesky": cholesky,
    "solve": solve,
    "triangular_solve": triangular_solve,
    "slogdet": slogdet,
    "eigh": eigh,
}
APPROXIMATE = frozenset(
    {"polygamma", "cholesky", "solve", "triangular_solve", "slogdet", "eigh", "svd", "qr", "lu"}
    | {"expm"}
    | {"gammainc", "gammaincc", "betainc", "stdtr"}
    | {"gammaincinv", "gammainccinv", "betaincinv", "betainccinv"}
    | set(SPECIAL)
)
# Checked against finite differences, which are good to about 1e-10.
DIFFERENCED = frozenset({"gammainc_grad_a", "betainc_grad"})


def spd(rng: np.random.Generator, shape: tuple[int, ...], dtype: DType) -> np.ndarray:
    m = rng.normal(size=shape)
    a = m @ np.swapaxes(m, -1, -2) + shape[-1] * np.eye(shape[-1])
    return a.astype(dtype.np)


def well_conditioned(rng: np.random.Generator, shape: tuple[int, ...], dtype: DType) -> np.ndarray:
    return (rng.normal(size=shape) + 3 * np.eye(shape[-1])).astype(dtype.np)
