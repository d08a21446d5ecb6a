"""Function cases: products, norms, elementwise and selection functions."""

from __future__ import annotations

import numpy as np

from .cases_common import A32, BOOL, I32, IDX, A, B, C, M, V, case, rng

# -- products and norms ----------------------------------------------------------------------------
EINSUMS = [
    ("ij,jk->ik", (A, B)),
    ("ij,jk", (A, B)),
    ("ij,kj->ik", (A, A)),
    ("i,i", (V, V)),
    ("i,j->ij", (V, V[:3])),
    ("ii", (M,)),
    ("ii->i", (M,)),
    ("ij->", (A,)),
    ("ij->ji", (A,)),
    ("ba", (A,)),
    ("bij,bjk->bik", (C, np.swapaxes(C, 1, 2))),
    ("...ij,...jk->...ik", (C, rng.normal(size=(4, 2)))),
    ("...i,...i->...", (C, V)),
    ("i...->...", (A,)),
    ("ij,ij->i", (A, A)),
    ("ijk,ik->j", (C, C[:, 0, :])),
    ("iij->ij", (rng.normal(size=(3, 3, 2)),)),
    ("bi,ij,bj->b", (A, M, A)),
    ("ij,j->i", (A[:, :1], V)),
    ("ij,jk->ik", (I32, I32.T)),
    ("i,i->i", (BOOL[0], BOOL[1])),
]
for _spec, _args in EINSUMS:
    case(np.einsum, f"einsum-{_spec}", lambda *xs, s=_spec: np.einsum(s, *xs), *_args)
case(np.einsum, "einsum-sublists", lambda a, b: np.einsum(a, [0, 1], b, [1, 2], [0, 2]), A, B)
case(
    np.einsum,
    "einsum-dtype",
    lambda a, b: np.einsum("ij,jk", a, b, dtype=np.float32, casting="same_kind"),
    A,
    B,
)
case(
    np.tensordot,
    "tensordot",
    lambda a, b, c: (
        np.tensordot(a, b, 1),
        np.tensordot(c, c, ([1, 2], [1, 2])),
        np.tensordot(a, a, 0),
        np.tensordot(c, b, axes=([-1], [0])),
    ),
    A,
    B,
    C,
)
case(
    np.dot,
    "dot",
    lambda a, b, c, v: (
        np.dot(a, b),
        np.dot(v, v),
        np.dot(a, v),
        np.dot(c, b),
        np.dot(2.0, a),
        a.dot(b),
        np.dot(c, np.swapaxes(c, 1, 2)),
    ),
    A,
    B,
    C,
    V,
)
case(np.vdot, "vdot", lambda a, b: (np.vdot(a, a), np.vdot(b, b)), A, I32)
case(
    np.inner,
    "inner",
    lambda a, c, v: (np.inner(v, v), np.inner(a, a), np.inner(c, a), np.inner(3.0, v)),
    A,
    C,
    V,
)
case(np.outer, "outer", lambda a, v: (np.outer(v, v), np.outer(a, v)), A, V)
case(
    np.kron,
    "kron",
    lambda a, b: (np.kron(a, b), np.kron(a[0], b), np.kron(a, 2.0)),
    A[:2, :3],
    B[:2, :2],
)
case(
    np.cross,
    "cross",
    lambda a, b: (np.cross(a, b), np.cross(a.T, b.T, axisa=0, axisb=0, axisc=0)),
    A[:, :3],
    B[:3, :3],
)
case(
    np.trace,
    "trace",
    lambda m, c, i: (np.trace(m), np.trace(m, 1), np.trace(c, -1, 1, 2), np.trace(i)),
    M,
    C,
    I32,
)
case(
    np.linalg.norm,
    "norm",
    lambda a, c, v, i: (
        np.linalg.norm(a),
        np.linalg.norm(c),
        np.linalg.norm(v),
        np.linalg.norm(a, keepdims=True),
        np.linalg.norm(a, axis=1),
        np.linalg.norm(a, "fro"),
        np.linalg.norm(a, 1),
        np.linalg.norm(a, -1),
        np.linalg.norm(a, np.inf),
        np.linalg.norm(a, -np.inf),
        np.linalg.norm(v, 1),
        np.linalg.norm(v, 0),
        np.linalg.norm(v, np.inf),
        np.linalg.norm(v, -np.inf),
        np.linalg.norm(v, 3),
        np.linalg.norm(v, 0.5),
        np.linalg.norm(c, axis=(0, 2)),
        np.linalg.norm(c, 1, axis=(2, 1), keepdims=True),
        np.linalg.norm(i),
    ),
    A,
    C,
    V,
    I32,
)
case(np.linalg.norm, "norm-f32", lambda a: (np.linalg.norm(a), np.linalg.norm(a, axis=0)), A32)
case(
    np.linalg.vector_norm,
    "vector_norm",
    lambda c: (
        np.linalg.vector_norm(c),
        np.linalg.vector_norm(c, axis=(0, 2), keepdims=True),
        np.linalg.vector_norm(c, ord=1, axis=1),
    ),
    C,
)
case(
    np.linalg.matrix_norm,
    "matrix_norm",
    lambda c: (np.linalg.matrix_norm(c), np.linalg.matrix_norm(c, ord=np.inf, keepdims=True)),
    C,
)
case(np.linalg.matmul, "linalg.matmul", lambda a, b: np.linalg.matmul(a, b), A, B)
case(np.linalg.vecdot, "linalg.vecdot", lambda c, v: np.linalg.vecdot(c, v), C, V)
case(np.linalg.outer, "linalg.outer", lambda v: np.linalg.outer(v, v), V)
case(np.linalg.tensordot, "linalg.tensordot", lambda a, b: np.linalg.tensordot(a, b, axes=1), A, B)
case(np.linalg.trace, "linalg.trace", lambda c: np.linalg.trace(c, offset=1), C)
case(np.linalg.diagonal, "linalg.diagonal", lambda c: np.linalg.diagonal(c, offset=-1), C)
case(
    np.linalg.matrix_transpose,
    "linalg.matrix_transpose",
    lambda c: np.linalg.matrix_transpose(c),
    C,
)
case(np.linalg.cross, "linalg.cross", lambda a: np.linalg.cross(a[:, :3], a[:, 1:]), A)
case(
    np.linalg.multi_dot,
    "multi_dot",
    lambda a, b, v: (np.linalg.multi_dot([a, b, b.T]), np.linalg.multi_dot([V[:3], a, v])),
    A,
    B,
    V,
)

# -- elementwise and selection ------------------------------------------------------------
case(
    np.where,
    "where",
    lambda a, b: (
        np.where(a > 0, a, b),
        np.where(a > 0, 1, 0),
        np.where(a > 0, a, 0.5),
        np.where(True, a, b),
    ),
    A,
    A32,
)
case(
    np.select,
    "select",
    lambda a: (np.select([a < -0.5, a > 0.5], [a, 2 * a], default=-1.0), np.select([a > 0], [1])),
    A,
)
case(
    np.clip,
    "clip",
    lambda a, i: (
        np.clip(a, -0.5, 0.5),
        a.clip(max=0.2),
        np.clip(a, min=0),
        np.clip(i, 0.5, 3),
        np.clip(a, a[0], 1),
    ),
    A,
    I32,
)
case(
    np.take,
    "take",
    lambda a: (
        np.take(a, [0, 5, -1]),
        np.take(a, IDX, axis=1),
        a.take(np.array([[0, 2], [1, 1]]), axis=0),
        np.take(a, [5, -6], axis=1, mode="clip"),
        np.take(a, [5, -6, 9], axis=1, mode="wrap"),
        np.take(a, []),
    ),
    A,
)
case(
    np.take,
    "take-traced",
    lambda a, i: (np.take(a, i, axis=1), np.take(a, i), np.take(a, i, axis=1, mode="wrap")),
    A,
    IDX,
)
case(
    np.take_along_axis,
    "take_along_axis",
    lambda a: (
        np.take_along_axis(a, np.argmax(a, axis=1, keepdims=True), axis=1),
        np.take_along_axis(a, np.argsort(np.arange(12).reshape(3, 4) % 5, axis=0), axis=0),
        np.take_along_axis(a, np.zeros((1, 4), np.int64), 0),
    ),
    A,
)
case(
    np.nan_to_num,
    "nan_to_num",
    lambda a: (
        np.nan_to_num(a),
        np.nan_to_num(a, nan=-1.0, posinf=9.0),
        np.nan_to_num(a.astype(np.float32)),
    ),
    np.array([np.nan, np.inf, -np.inf, 1.5, -0.0]),
)
case(np.nan_to_num, "nan_to_num-int", lambda a: np.nan_to_num(a), I32)
case(
    np.sinc,
    "sinc",
    lambda a, i: (np.sinc(a), np.sinc(i), np.sinc(a.astype(np.float32))),
    np.array([0.0, -0.0, 0.5, -1.5, 2.0, 1e-9]),
    I32,
)
case(
    np.isclose,
    "isclose",
    lambda a, b, i: (
        np.isclose(a, b),
        np.isclose(a, b, rtol=0.1, atol=0.01),
        np.isclose(a, 0.1),
        np.isclose(i, 2),
        np.isclose(a, b, equal_nan=True),
    ),
    np.array([1.0, np.nan, np.inf, 0.1, 2.0, -np.inf]),
    np.array([1.0 + 1e-9, np.nan, np.inf, 0.2, 2.1, np.inf]),
    I32,
)
case(
    (np.isposinf, np.isneginf),
    "isposinf-isneginf",
    lambda a: (np.isposinf(a), np.isneginf(a)),
    np.array([np.inf, -np.inf, np.nan, 0.0]),
)
case(
    (np.round, np.around),
    "round",
    lambda a, i: (
        np.round(a * 10, 1),
        np.around(a * 1000, -2),
        np.round(i, -1),
        np.round(i, 2),
        a.round(),
        np.round(a.astype(np.float32), 2),
    ),
    A,
    I32 * 13,
)
case(np.fix, "fix", lambda a: np.fix(a * 3), np.array([-2.5, -0.5, -0.0, 0.0, 0.7, 3.0]))
case(
    (np.real, np.imag, np.isreal, np.iscomplex),
    "real-imag",
    lambda a: (
        np.real(a),
        np.imag(a) + a,
        np.isreal(a),
        np.iscomplex(a),
        a.real,
        a.imag,
        a.conj(),
        a.conjugate(),
    ),
    A,
)
case(
    np.diff,
    "diff",
    lambda a, b: (
        np.diff(a),
        np.diff(a, n=2, axis=0),
        np.diff(a, prepend=0.0, append=a[:, :1]),
        np.diff(b),
    ),
    A,
    BOOL,
)
case(
    getattr(np, "astype", np.asarray),
    "astype",
    lambda i: (np.astype(i, np.float32), i.astype(np.int64), i.astype(bool)),
    I32,
)
case(
    (np.zeros_like, np.ones_like, np.empty_like),
    "zeros-ones-like",
    lambda a: (
        a + np.zeros_like(a),
        np.ones_like(a, dtype=np.int32),
        np.zeros_like(a, shape=(2,)),
        np.empty_like(a) * 0,
    ),
    A,
)
case(
    np.full_like,
    "full_like",
    lambda a: (np.full_like(a, 3.0), np.full_like(a, a[0, 0]), np.full_like(a, 2, dtype=np.int32)),
    A,
)
case(
    np.matmul,
    "matmul",
    lambda a, b, c, v: (a @ b, np.matmul(c, B), v @ b, c @ v, np.matmul(v, v), I32 @ I32.T),
    A,
    B,
    C,
    V,
)
for _name in ("matvec", "vecmat", "vecdot"):
    case(
        getattr(np, _name),
        _name,
        lambda c, v, n=_name: (
            getattr(np, n)(np.swapaxes(c, 1, 2), v[:3])
            if n == "matvec"
            else getattr(np, n)(v[:3], c)
            if n == "vecmat"
            else np.vecdot(c, v)
        ),
        C,
        V,
    )
