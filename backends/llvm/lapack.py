"""Factorizations and solvers through LAPACK (and BLAS ``?trsm``).

The function pointers come from SciPy's ``cython_lapack``/``cython_blas``
(32-bit Fortran integers, every argument by reference) and are registered
with LLVM under fixed names, as the GEMM pointers are. Matrices are row-major;
LAPACK reads a row-major matrix as its transpose, so the solvers pick the
triangle/transpose flags that make that come out right instead of copying
into column-major form. ``eigh``, ``svd`` and ``qr`` do transpose, so that
LAPACK sees exactly what NumPy gives it and the eigen/singular vectors come
out with NumPy's signs. Workspace lives in the arena's scratch memory.

A data-dependent failure (singular matrix, not positive definite, no
convergence) is recorded in the status words with the batch index; the
runtime raises :class:`LinAlgError` at the node's user line after the call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import llvmlite.binding as llvm
import llvmlite.ir as ir

from graphc.ir import DType, Node

from .blas import _capsule_pointer
from .codegen import ModuleBuilder, lowering
from .irutil import I8, I32, I64, PTR, VOID, alloca, const, counted_loop, elem_ptr, i64, load, store

ERR_SINGULAR = 3
ERR_NOT_PD = 4
ERR_NO_CONVERGENCE = 5

_LAPACK = ("potrf", "getrf", "syevd", "gesdd", "geqrf", "orgqr")
_BLAS = ("trsm",)


@functools.cache
def register_lapack() -> None:
    """Register the LAPACK/BLAS pointers with LLVM (once per process)."""
    from scipy.linalg import cython_blas, cython_lapack

    for names, capi in ((_LAPACK, cython_lapack.__pyx_capi__), (_BLAS, cython_blas.__pyx_capi__)):
        for name in names:
            for prefix in ("s", "d"):
                llvm.add_symbol(f"graphc_{prefix}{name}", _capsule_pointer(capi[prefix + name]))


class _Call:
    """Helpers for one kernel body: by-reference scalars and LAPACK calls."""

    def __init__(self, mb: ModuleBuilder, b: ir.IRBuilder, dtype: DType) -> None:
        self.mb, self.b, self.dtype = mb, b, dtype
        self.prefix = "s" if dtype is DType.f32 else "d"
        self.info = alloca(b, I32, name="info")
        # By-reference constants live in the entry block: once per kernel
        # call, not once per loop iteration.
        self.entry = ir.IRBuilder(b.block)
        self._slots: dict[tuple[str, object], ir.Value] = {}

    def _slot(self, value: ir.Constant, key: object) -> ir.Value:
        found = self._slots.get((str(value.type), key))
        if found is None:
            found = alloca(self.entry, value.type)
            self.entry.store(value, found)
            self._slots[(str(value.type), key)] = found
        return found

    def int_(self, value: int) -> ir.Value:
        return self._slot(ir.Constant(I32, value), value)

    def char(self, c: str) -> ir.Value:
        return self._slot(ir.Constant(I8, ord(c)), c)

    def real(self, value: float) -> ir.Value:
        return self._slot(const(self.dtype, value), value)

    def call(self, name: str, *args: ir.Value) -> None:
        register_lapack()
        sym = f"graphc_{self.prefix}{name}"
        module = self.mb.module
        fn = module.globals.get(sym) or ir.Function(
            module, ir.FunctionType(VOID, [PTR] * len(args)), sym
        )
        self.b.call(fn, list(args))

    def failed(self) -> ir.Value:
        return self.b.icmp_signed("!=", self.b.load(self.info, typ=I32), ir.Constant(I32, 0))

    def report(self, code: int, batch: ir.Value) -> None:
        with self.b.if_then(self.failed()):
            self.mb.store_status(self.b, code, batch)

    def copy(self, src: ir.Value, dst: ir.Value, count: int) -> None:
        b, dt = self.b, self.dtype
        with counted_loop(b, i64(0), i64(count), "c") as j:
            store(b, load(b, elem_ptr(b, src, dt, j), dt), elem_ptr(b, dst, dt, j), dt)

    def at(self, base: ir.Value, batch: ir.Value, stride: int) -> ir.Value:
        return elem_ptr(self.b, base, self.dtype, self.b.mul(batch, i64(stride)))


def _batched(
    mb: ModuleBuilder,
    n: Node,
    bufs: list,  # type: ignore[type-arg]
    batch: int,
    body: Callable[[_Call, dict, ir.Value], None],  # type: ignore[type-arg]
) -> None:
    dtype = n.inputs[0].type.dtype  # type: ignore[union-attr]
    mb.mark_node()

    def build(b: ir.IRBuilder, p: dict) -> None:  # type: ignore[type-arg]
        c = _Call(mb, b, dtype)
        # The constants' stores go here, before the loop, in the entry block.
        c.entry.position_before(c.info)
        with counted_loop(b, i64(0), i64(batch), "batch") as k:
            body(c, p, k)

    mb.shared_kernel(
        (n.op, str(n.inputs[0].type), str(n.outputs[-1].type), tuple(n.attrs.items())),
        n,
        bufs,
        build,
    )  # type: ignore[union-attr]
    mb.check_status()


def _sizes(n: Node) -> tuple[int, int]:
    shape = n.inputs[0].type.shape  # type: ignore[union-attr]
    return math.prod(shape[:-2]), shape[-1]


def _transpose(
    c: _Call, src: ir.Value, dst: ir.Value, rows: int, cols: int, *, to_fortran: bool
) -> None:
    """Copy a rows x cols matrix between row-major and column-major order
    (``to_fortran``: ``src`` is row-major, ``dst`` column-major; else the reverse)."""
    b, dt = c.b, c.dtype
    with counted_loop(b, i64(0), i64(rows), "r") as r:
        with counted_loop(b, i64(0), i64(cols), "q") as q:
            row_major = b.add(b.mul(r, i64(cols)), q)
            col_major = b.add(b.mul(q, i64(rows)), r)
            at_src, at_dst = (row_major, col_major) if to_fortran else (col_major, row_major)
            store(b, load(b, elem_ptr(b, src, dt, at_src), dt), elem_ptr(b, dst, dt, at_dst), dt)


def _transpose_in(c: _Call, src: ir.Value, dst: ir.Value, rows: int, cols: int) -> None:
    """Row-major ``src`` (rows x cols) into column-major ``dst``."""
    _transpose(c, src, dst, rows, cols, to_fortran=True)


def _transpose_out(c: _Call, src: ir.Value, dst: ir.Value, rows: int, cols: int) -> None:
    """Column-major ``src`` (rows x cols) into row-major ``dst``."""
    _transpose(c, src, dst, rows, cols, to_fortran=False)


@lowering("cholesky")
def lower_cholesky(mb: ModuleBuilder, n: Node) -> None:
    batch, m = _sizes(n)
    if batch * m == 0:
        return
    ab, ob = mb.buf(n.inputs[0]), mb.buf(n.output)  # type: ignore[arg-type]

    def body(c: _Call, p: dict, k: ir.Value) -> None:  # type: ignore[type-arg]
        b, dt = c.b, c.dtype
        out = c.at(p[ob], k, m * m)
        c.copy(c.at(p[ab], k, m * m), out, m * m)
        # Column-major "upper" is the row-major lower triangle NumPy reads;
        # the factor U (A = U^T U) read row-major is L.
        c.call("potrf", c.char("U"), c.int_(m), out, c.int_(m), c.info)
        c.report(ERR_NOT_PD, k)
        with counted_loop(b, i64(0), i64(m), "r") as r:
            with counted_loop(b, b.add(r, i64(1)), i64(m), "q") as q:
                store(b, const(dt, 0.0), elem_ptr(b, out, dt, b.add(b.mul(r, i64(m)), q)), dt)

    _batched(mb, n, [ab, ob], batch, body)


def _check_diagonal(c: _Call, a: ir.Value, m: int, k: ir.Value) -> None:
    b, dt = c.b, c.dtype
    with counted_loop(b, i64(0), i64(m), "d") as d:
        v = load(b, elem_ptr(b, a, dt, b.mul(d, i64(m + 1))), dt)
        with b.if_then(b.fcmp_ordered("==", v, const(dt, 0.0))):
            c.mb.store_status(b, ERR_SINGULAR, k)


@lowering("triangular_solve")
def lower_triangular_solve(mb: ModuleBuilder, n: Node) -> None:
    batch, m = _sizes(n)
    rhs = n.inputs[1].type.shape[-1]  # type: ignore[union-attr]
    if batch * m * rhs == 0:
        return
    lower, trans, unit = (n.attrs[k] for k in ("lower", "transpose_a", "unit_diagonal"))
    ab, bb, ob = (mb.buf(x) for x in (*n.inputs, n.output))  # type: ignore[arg-type]

    def body(c: _Call, p: dict, k: ir.Value) -> None:  # type: ignore[type-arg]
        a, out = c.at(p[ab], k, m * m), c.at(p[ob], k, m * rhs)
        c.copy(c.at(p[bb], k, m * rhs), out, m * rhs)
        if not unit:
            _check_diagonal(c, a, m, k)
        # op(A) X = B is X^T op(A)^T = B^T: a right-side solve on the
        # column-major views (A^T, B^T), whose triangle is the other one.
        c.call(
            "trsm", c.char("R"), c.char("U" if lower else "L"), c.char("T" if trans else "N"),
            c.char("U" if unit else "N"), c.int_(rhs), c.int_(m), c.real(1.0), a, c.int_(m),
            out, c.int_(rhs),
        )  # fmt: skip

    _batched(mb, n, [ab, bb, ob], batch, body)


@lowering("solve")
def lower_solve(mb: ModuleBuilder, n: Node) -> None:
    batch, m = _sizes(n)
    rhs = n.inputs[1].type.shape[-1]  # type: ignore[union-attr]
    # Without right-hand sides the matrix is still factored: a singular one
    # raises, as in NumPy.
    if batch * m == 0:
        return
    dtype = n.output.type.dtype
    ab, bb, ob = (mb.buf(x) for x in (*n.inputs, n.output))  # type: ignore[arg-type]
    lu = mb.scratch(m * m * dtype.itemsize, dtype)
    piv = mb.scratch(m * 4, DType.i32)

    def body(c: _Call, p: dict, k: ir.Value) -> None:  # type: ignore[type-arg]
        b, dt = c.b, c.dtype
        out = c.at(p[ob], k, m * rhs)
        c.copy(c.at(p[ab], k, m * m), p[lu], m * m)
        c.copy(c.at(p[bb], k, m * rhs), out, m * rhs)
        # LAPACK factors the column-major view A^T = P^T L U; then
        # X^T P^T L U = B^T is two right-side solves and column swaps.
        c.call("getrf", c.int_(m), c.int_(m), p[lu], c.int_(m), p[piv], c.info)
        c.report(ERR_SINGULAR, k)
        if not rhs:  # BLAS rejects a leading dimension of 0
            return
        for uplo, diag in (("U", "N"), ("L", "U")):
            c.call(
                "trsm", c.char("R"), c.char(uplo), c.char("N"), c.char(diag), c.int_(rhs),
                c.int_(m), c.real(1.0), p[lu], c.int_(m), out, c.int_(rhs),
            )  # fmt: skip
        with counted_loop(b, i64(0), i64(m), "s") as s:
            i = b.sub(i64(m - 1), s)
            j = b.sub(b.sext(load(b, elem_ptr(b, p[piv], DType.i32, i), DType.i32), I64), i64(1))
            with b.if_then(b.icmp_signed("!=", i, j)):
                with counted_loop(b, i64(0), i64(rhs), "e") as e:
                    x = elem_ptr(b, out, dt, b.add(b.mul(i, i64(rhs)), e))
                    y = elem_ptr(b, out, dt, b.add(b.mul(j, i64(rhs)), e))
                    vx, vy = load(b, x, dt), load(b, y, dt)
                    store(b, vy, x, dt)
                    store(b, vx, y, dt)

    _batched(mb, n, [ab, bb, ob, lu, piv], batch, body)


@lowering("slogdet")
def lower_slogdet(mb: ModuleBuilder, n: Node) -> None:
    batch, m = _sizes(n)
    if batch == 0:
        return
    dtype = n.outputs[0].type.dtype
    ab = mb.buf(n.inputs[0])  # type: ignore[arg-type]
    sb, lb = mb.buf(n.outputs[0]), mb.buf(n.outputs[1])
    lu = mb.scratch(max(m * m, 1) * dtype.itemsize, dtype)
    piv = mb.scratch(max(m, 1) * 4, DType.i32)

    def body(c: _Call, p: dict, k: ir.Value) -> None:  # type: ignore[type-arg]
        b, dt = c.b, c.dtype
        sign_ptr, log_ptr = elem_ptr(b, p[sb], dt, k), elem_ptr(b, p[lb], dt, k)
        store(b, const(dt, 1.0), sign_ptr, dt)
        store(b, const(dt, 0.0), log_ptr, dt)
        if m == 0:
            return
        c.copy(c.at(p[ab], k, m * m), p[lu], m * m)
        # det A = det A^T: the LU of the column-major view will do.
        c.call("getrf", c.int_(m), c.int_(m), p[lu], c.int_(m), p[piv], c.info)
        with counted_loop(b, i64(0), i64(m), "d") as d:
            u = load(b, elem_ptr(b, p[lu], dt, b.mul(d, i64(m + 1))), dt)
            pivot = b.sext(load(b, elem_ptr(b, p[piv], DType.i32, d), DType.i32), I64)
            swapped = b.icmp_signed("!=", pivot, b.add(d, i64(1)))
            flip = b.xor(swapped, b.fcmp_ordered("<", u, const(dt, 0.0)))
            sign = load(b, sign_ptr, dt)
            store(b, b.select(flip, b.fneg(sign), sign), sign_ptr, dt)
            absu = mb.math.intrinsic(b, "fabs", u)
            total = b.fadd(load(b, log_ptr, dt), mb.math.call(b, "log", dt, absu))
            store(b, total, log_ptr, dt)
        # A singular matrix (an exact zero pivot): sign 0 and log|det| -inf, as NumPy.
        with b.if_then(c.failed()):
            store(b, const(dt, 0.0), sign_ptr, dt)
            store(b, const(dt, -math.inf), log_ptr, dt)

    _batched(mb, n, [ab, sb, lb, lu, piv], batch, body)


@lowering("eigh")
def lower_eigh(mb: ModuleBuilder, n: Node) -> None:
    batch, m = _sizes(n)
    if batch * m == 0:
        return
    dtype = n.outputs[0].type.dtype
    ab = mb.buf(n.inputs[0])  # type: ignore[arg-type]
    wb, vb = mb.buf(n.outputs[0]), mb.buf(n.outputs[1])
    lwork, liwork = 1 + 6 * m + 2 * m * m, 3 + 5 * m
    z = mb.scratch(m * m * dtype.itemsize, dtype)
    work = mb.scratch(lwork * dtype.itemsize, dtype)
    iwork = mb.scratch(liwork * 4, DType.i32)

    def body(c: _Call, p: dict, k: ir.Value) -> None:  # type: ignore[type-arg]
        # The same call NumPy makes (A in column-major order, lower triangle),
        # so the eigenvectors come out with the same signs.
        _transpose_in(c, c.at(p[ab], k, m * m), p[z], m, m)
        c.call(
            "syevd", c.char("V"), c.char("L"), c.int_(m), p[z], c.int_(m), c.at(p[wb], k, m),
            p[work], c.int_(lwork), p[iwork], c.int_(liwork), c.info,
        )  # fmt: skip
        c.report(ERR_NO_CONVERGENCE, k)
        _transpose_out(c, p[z], c.at(p[vb], k, m * m), m, m)

    _batched(mb, n, [ab, wb, vb, z, work, iwork], batch, body)


@lowering("svd")
def lower_svd(mb: ModuleBuilder, n: Node) -> None:
    a = n.inputs[0].type  # type: ignore[union-attr]
    m, cols = a.shape[-2:]
    batch = math.prod(a.shape[:-2])
    k = min(m, cols)
    if batch * k == 0:
        return
    full = n.attrs["full_matrices"]
    dtype = a.dtype
    ab = mb.buf(n.inputs[0])  # type: ignore[arg-type]
    ub, sb, vb = (mb.buf(v) for v in n.outputs)
    big = max(m, cols)
    # LAPACK's minimum for jobz 'S'/'A' is 4k^2 + 6k + max(m, n); more lets it block.
    lwork = 4 * k * k + 6 * k + big + 64 * (k + big)
    work_a = mb.scratch(m * cols * dtype.itemsize, dtype)
    work = mb.scratch(lwork * dtype.itemsize, dtype)
    iwork = mb.scratch(8 * k * 4, DType.i32)
    u_cols, vt_rows = (m, cols) if full else (k, k)
    u_f = mb.scratch(m * u_cols * dtype.itemsize, dtype)
    vt_f = mb.scratch(vt_rows * cols * dtype.itemsize, dtype)

    def body(c: _Call, p: dict, j: ir.Value) -> None:  # type: ignore[type-arg]
        # The same call NumPy makes (A in column-major order), so the
        # singular vectors come out with the same signs.
        _transpose_in(c, c.at(p[ab], j, m * cols), p[work_a], m, cols)
        c.call(
            "gesdd", c.char("A" if full else "S"), c.int_(m), c.int_(cols), p[work_a],
            c.int_(m), c.at(p[sb], j, k), p[u_f], c.int_(m), p[vt_f], c.int_(vt_rows),
            p[work], c.int_(lwork), p[iwork], c.info,
        )  # fmt: skip
        c.report(ERR_NO_CONVERGENCE, j)
        _transpose_out(c, p[u_f], c.at(p[ub], j, m * u_cols), m, u_cols)
        _transpose_out(c, p[vt_f], c.at(p[vb], j, vt_rows * cols), vt_rows, cols)

    _batched(mb, n, [ab, ub, sb, vb, work_a, work, iwork, u_f, vt_f], batch, body)


@lowering("qr")
def lower_qr(mb: ModuleBuilder, n: Node) -> None:
    a = n.inputs[0].type  # type: ignore[union-attr]
    m, cols = a.shape[-2:]
    batch = math.prod(a.shape[:-2])
    k = min(m, cols)
    q_cols = n.outputs[0].type.shape[-1]
    if batch * m * cols == 0:
        return
    dtype = a.dtype
    ab = mb.buf(n.inputs[0])  # type: ignore[arg-type]
    qb, rb = (mb.buf(v) for v in n.outputs)
    width = max(cols, q_cols)
    lwork = 64 * max(m, width, 1)
    fa = mb.scratch(m * width * dtype.itemsize, dtype)
    tau = mb.scratch(max(k, 1) * dtype.itemsize, dtype)
    work = mb.scratch(lwork * dtype.itemsize, dtype)

    def body(c: _Call, p: dict, j: ir.Value) -> None:  # type: ignore[type-arg]
        b, dt = c.b, c.dtype
        src = c.at(p[ab], j, m * cols)
        # Householder QR needs A itself in column-major order: transpose it in.
        with counted_loop(b, i64(0), i64(m), "r") as r:
            with counted_loop(b, i64(0), i64(cols), "q") as q:
                v = load(b, elem_ptr(b, src, dt, b.add(b.mul(r, i64(cols)), q)), dt)
                store(b, v, elem_ptr(b, p[fa], dt, b.add(b.mul(q, i64(m)), r)), dt)
        c.call(
            "geqrf", c.int_(m), c.int_(cols), p[fa], c.int_(m), p[tau], p[work],
            c.int_(lwork), c.info,
        )  # fmt: skip
        r_out = c.at(p[rb], j, q_cols * cols)
        rows = n.outputs[1].type.shape[-2]
        with counted_loop(b, i64(0), i64(rows), "r") as r:
            with counted_loop(b, i64(0), i64(cols), "q") as q:
                v = load(b, elem_ptr(b, p[fa], dt, b.add(b.mul(q, i64(m)), r)), dt)
                v = b.select(b.icmp_signed("<=", r, q), v, const(dt, 0.0))
                store(b, v, elem_ptr(b, r_out, dt, b.add(b.mul(r, i64(cols)), q)), dt)
        c.call(
            "orgqr", c.int_(m), c.int_(q_cols), c.int_(k), p[fa], c.int_(m), p[tau], p[work],
            c.int_(lwork), c.info,
        )  # fmt: skip
        q_out = c.at(p[qb], j, m * q_cols)
        with counted_loop(b, i64(0), i64(m), "r") as r:
            with counted_loop(b, i64(0), i64(q_cols), "q") as q:
                v = load(b, elem_ptr(b, p[fa], dt, b.add(b.mul(q, i64(m)), r)), dt)
                store(b, v, elem_ptr(b, q_out, dt, b.add(b.mul(r, i64(q_cols)), q)), dt)

    _batched(mb, n, [ab, qb, rb, fa, tau, work], batch, body)


@lowering("lu")
def lower_lu(mb: ModuleBuilder, n: Node) -> None:
    batch, m = _sizes(n)
    if batch * m == 0:
        return
    dtype = n.outputs[0].type.dtype
    ab = mb.buf(n.inputs[0])  # type: ignore[arg-type]
    lb, pb, qb = (mb.buf(v) for v in n.outputs)
    fa = mb.scratch(m * m * dtype.itemsize, dtype)

    def body(c: _Call, p: dict, k: ir.Value) -> None:  # type: ignore[type-arg]
        b = c.b
        # SciPy's call: A in column-major order. A zero pivot is not an error
        # here (SciPy only warns); the solves that use it give inf/nan.
        _transpose_in(c, c.at(p[ab], k, m * m), p[fa], m, m)
        piv = elem_ptr(b, p[pb], DType.i32, b.mul(k, i64(m)))
        c.call("getrf", c.int_(m), c.int_(m), p[fa], c.int_(m), piv, c.info)
        _transpose_out(c, p[fa], c.at(p[lb], k, m * m), m, m)
        perm = elem_ptr(b, p[qb], DType.i64, b.mul(k, i64(m)))
        with counted_loop(b, i64(0), i64(m), "i") as i:
            store(b, i, elem_ptr(b, perm, DType.i64, i), DType.i64)
        with counted_loop(b, i64(0), i64(m), "s") as i:
            raw = load(b, elem_ptr(b, piv, DType.i32, i), DType.i32)
            j = b.sub(b.sext(raw, I64), i64(1))
            store(b, b.trunc(j, I32), elem_ptr(b, piv, DType.i32, i), DType.i32)
            pi, pj = elem_ptr(b, perm, DType.i64, i), elem_ptr(b, perm, DType.i64, j)
            vi, vj = load(b, pi, DType.i64), load(b, pj, DType.i64)
            store(b, vj, pi, DType.i64)
            store(b, vi, pj, DType.i64)

    _batched(mb, n, [ab, lb, pb, qb, fa], batch, body)
