"""Cases for sorting, order statistics and np.linalg's solvers and
factorizations (fuller checks, both backends and gradients, are in
tests/numerics)."""

from __future__ import annotations

import numpy as np

from .cases_common import WITH_NAN, A, case

R = np.random.default_rng(9)
SQ = R.normal(size=(2, 3, 3)) + 3 * np.eye(3)
SPD = SQ @ np.swapaxes(SQ, -1, -2)
RHS = R.normal(size=(2, 3, 2))

case(np.sort, "sort", lambda a: np.sort(a, axis=0), A)
case(np.argsort, "argsort", lambda a: (np.argsort(a, kind="stable"), a.argsort(axis=0)), A)
case(np.partition, "partition", lambda a: np.partition(a, 0, axis=1)[:, 0], A)
case(np.argpartition, "argpartition", lambda a: np.sort(a[0, np.argpartition(a[0], 2)]), A)
case(np.searchsorted, "searchsorted", lambda a: np.searchsorted(np.sort(a[0]), a[1]), A)
case(np.median, "median", lambda a: np.median(a, axis=1), A)
case(np.quantile, "quantile", lambda a: np.quantile(a, [0.25, 0.5]), A)
case(np.percentile, "percentile", lambda a: np.percentile(a, 90, axis=0), A)
case(np.nanmedian, "nanmedian", lambda a: np.nanmedian(a, axis=1), WITH_NAN)
case(np.linalg.solve, "solve", lambda a, b: np.linalg.solve(a, b), SQ, RHS)
case(np.linalg.inv, "inv", lambda a: np.linalg.inv(a), SQ)
case(np.linalg.det, "det", lambda a: np.linalg.det(a), SQ)
case(np.linalg.slogdet, "slogdet", lambda a: tuple(np.linalg.slogdet(a)), SQ)
case(np.linalg.cholesky, "cholesky", lambda a: np.linalg.cholesky(a), SPD)
case(np.linalg.eigh, "eigh", lambda a: tuple(np.linalg.eigh(a)), SPD)
case(np.linalg.eigvalsh, "eigvalsh", lambda a: np.linalg.eigvalsh(a), SPD)
case(np.linalg.matrix_power, "matrix_power", lambda a: np.linalg.matrix_power(a, 4), SQ)
case(np.linalg.svd, "svd", lambda a: tuple(np.linalg.svd(a)), A)
case(np.linalg.pinv, "pinv", lambda a: np.linalg.pinv(a), A)
case(np.linalg.lstsq, "lstsq", lambda a, b: np.linalg.lstsq(a, b)[0], SQ[0], RHS[0])
case(np.linalg.cond, "cond", lambda a: np.linalg.cond(a), SQ)
case(np.linalg.qr, "qr", lambda a: tuple(np.linalg.qr(a.T)), A)
if hasattr(np.linalg, "svdvals"):
    case(np.linalg.svdvals, "svdvals", lambda a: np.linalg.svdvals(a), A)
case(np.linalg.norm, "norm-nuc", lambda a: np.linalg.norm(a, "nuc"), A)
case(np.linalg.norm, "norm-2", lambda a: np.linalg.norm(a, 2, axis=(0, 1), keepdims=True), A)
case(np.nanquantile, "nanquantile", lambda a: np.nanquantile(a, [0.1, 0.8], axis=0), WITH_NAN)
case(np.nanpercentile, "nanpercentile", lambda a: np.nanpercentile(a, 40, axis=1), WITH_NAN)
case(
    np.linalg.matrix_rank,
    "matrix_rank",
    lambda a: np.linalg.matrix_rank(a[..., :2] @ a[..., :2, :]),
    SQ,
)
