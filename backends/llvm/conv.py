"""conv2d (im2col + GEMM per image and group) and 2-d max/avg pooling.

conv2d gathers, for one image and group, every input patch into a column
matrix (C/g * kh * kw rows, Ho * Wo columns) in scratch memory; the output
slice of that image and group is then one GEMM with the group's weights.
Padding reads are done from a clamped address and replaced by 0 with a
select, so the loops vectorize and never read outside the input.
"""

from __future__ import annotations

import llvmlite.ir as ir

from graphc.ir import DType, Node

from .blas import GEMM_SYMBOLS, register_blas
from .codegen import ModuleBuilder, lowering, one_node_graph
from .irutil import (
    F64,
    I8,
    PTR,
    VOID,
    alloca,
    const,
    elem_ptr,
    i64,
    load,
    loop_nest,
    reg_type,
    store,
)
from .loopspec import build_loop_spec
from .mathlib import MathLib
from .views import View


def _packed(mb: ModuleBuilder, n: Node, x, dtype: DType):  # noqa: ANN001, ANN202
    """``x``'s buffer, converted to ``dtype`` in scratch when it differs."""
    if x.type.dtype == dtype:
        return mb.buf(x)
    dst = mb.scratch(x.type.size * dtype.itemsize, dtype)
    g = one_node_graph("cast", [x.type], dtype=dtype)
    spec = build_loop_spec(g, [View.of(mb.buf(x), x.type.shape)], [View.of(dst, x.type.shape)], {})
    mb.run_loop_spec(spec, n, ".pack")
    return dst


def _in_range(b: ir.IRBuilder, i: ir.Value, size: int) -> ir.Value:
    return b.and_(b.icmp_signed(">=", i, i64(0)), b.icmp_signed("<", i, i64(size)))


@lowering("conv2d")
def lower_conv2d(mb: ModuleBuilder, n: Node) -> None:
    x, w = n.inputs
    out = n.output.type
    dt = out.dtype
    if out.size == 0:
        return
    (s0, s1), (d0, d1), groups = n.attrs["stride"], n.attrs["dilation"], n.attrs["groups"]
    (p0, _), (p1, _) = n.attrs["padding"]
    batch, c, h, wd = x.type.shape
    o, cg, kh, kw = w.type.shape
    ho, wo = out.shape[2:]
    og = o // groups
    rows, cols = cg * kh * kw, ho * wo
    xb, wb, ob = _packed(mb, n, x, dt), _packed(mb, n, w, dt), mb.buf(n.output)
    col = mb.scratch(rows * cols * dt.itemsize, dt)
    blas_int = register_blas().int_type
    name = GEMM_SYMBOLS[str(dt)]
    gemm = mb.module.globals.get(name) or ir.Function(
        mb.module, ir.FunctionType(VOID, [PTR] * 13), name
    )
    bufs = [xb, wb, ob, col]
    fn, b, p = mb.custom_kernel(n, "", bufs)
    fty = reg_type(dt)

    def slot(ty: ir.Type, value: int | float) -> ir.Value:
        s = alloca(b, ty)
        b.store(ir.Constant(ty, value), s)
        return s

    # C (og x cols) = W_g (og x rows) @ cols (rows x cols); column-major: C^T = cols^T W_g^T.
    ta, tb = slot(I8, ord("N")), slot(I8, ord("N"))
    pm, pn, pk = slot(blas_int, cols), slot(blas_int, og), slot(blas_int, rows)
    lda, ldb, ldc = slot(blas_int, cols), slot(blas_int, rows), slot(blas_int, cols)
    # The reference sums onto +0, so a sum of -0 terms is +0; BLAS with beta = 0
    # would return -0. Accumulating onto a zeroed output matches it.
    alpha, beta = slot(fty, 1.0), slot(fty, 1.0)
    zero = const(dt, 0.0)
    mb.layout.uses_blas = True
    with loop_nest(b, [batch, groups], "ng") as (img, grp):
        with loop_nest(b, [cg, kh, kw, ho, wo], "c") as (ci, i, j, oh, ow):
            ih = b.add(b.mul(oh, i64(s0)), i64(-p0)) if p0 else b.mul(oh, i64(s0))
            ih = b.add(ih, b.mul(i, i64(d0)))
            iw = b.add(b.mul(ow, i64(s1)), i64(-p1)) if p1 else b.mul(ow, i64(s1))
            iw = b.add(iw, b.mul(j, i64(d1)))
            ok = b.and_(_in_range(b, ih, h), _in_range(b, iw, wd))
            chan = b.add(b.mul(grp, i64(cg)), ci)
            plane = b.mul(b.add(b.mul(img, i64(c)), chan), i64(h * wd))
            src = b.add(plane, b.add(b.mul(ih, i64(wd)), iw))
            v = load(b, elem_ptr(b, p[xb], dt, b.select(ok, src, i64(0))), dt)
            r = b.add(b.mul(b.add(b.mul(ci, i64(kh)), i), i64(kw)), j)
            dst = b.add(b.mul(r, i64(cols)), b.add(b.mul(oh, i64(wo)), ow))
            store(b, b.select(ok, v, zero), elem_ptr(b, p[col], dt, dst), dt)
        wptr = elem_ptr(b, p[wb], dt, b.mul(grp, i64(og * rows)))
        optr = elem_ptr(
            b, p[ob], dt, b.mul(b.add(b.mul(img, i64(o)), b.mul(grp, i64(og))), i64(cols))
        )
        with loop_nest(b, [og * cols], "z") as (q,):
            store(b, zero, elem_ptr(b, optr, dt, q), dt)
        b.call(gemm, [ta, tb, pm, pn, pk, alpha, p[col], lda, wptr, ldb, beta, optr, ldc])
    b.ret_void()
    mb.call_custom(fn, bufs)


def _window(n: Node):  # noqa: ANN202
    x = n.inputs[0]
    (k0, k1), (s0, s1) = n.attrs["window"], n.attrs["stride"]
    (p0, _), (p1, _) = n.attrs["padding"]
    return x, (k0, k1), (s0, s1), (p0, p1)


@lowering("max_pool2d", "avg_pool2d")
def lower_pool(mb: ModuleBuilder, n: Node) -> None:
    x, (k0, k1), (s0, s1), (p0, p1) = _window(n)
    out = n.output.type
    if out.size == 0:
        return
    dt = out.dtype
    planes = out.shape[0] * out.shape[1]
    h, wd = x.type.shape[2:]
    ho, wo = out.shape[2:]
    xb, ob = mb.buf(x), mb.buf(n.output)
    fn, b, p = mb.custom_kernel(n, "", [xb, ob])
    is_max = n.op == "max_pool2d"
    include_pad = (not is_max) and n.attrs["count_include_pad"]
    acc = alloca(b, reg_type(dt))
    count = alloca(b, reg_type(DType.i64))
    lib: MathLib = mb.math
    with loop_nest(b, [planes, ho, wo], "o") as (pl, oh, ow):
        b.store(const(dt, float("-inf")) if is_max else const(dt, 0.0), acc)
        b.store(i64(0), count)
        with loop_nest(b, [k0, k1], "w") as (i, j):
            ih = b.add(b.mul(oh, i64(s0)), b.sub(i, i64(p0)))
            iw = b.add(b.mul(ow, i64(s1)), b.sub(j, i64(p1)))
            ok = b.and_(_in_range(b, ih, h), _in_range(b, iw, wd))
            src = b.add(b.mul(pl, i64(h * wd)), b.add(b.mul(ih, i64(wd)), iw))
            v = load(b, elem_ptr(b, p[xb], dt, b.select(ok, src, i64(0))), dt)
            cur = b.load(acc, typ=reg_type(dt))
            if is_max:
                pad = const(dt, float("-inf"))
                new = lib.intrinsic(b, "maximum", cur, b.select(ok, v, pad))
            else:
                new = b.fadd(cur, b.select(ok, v, const(dt, 0.0)))
            b.store(new, acc)
            b.store(
                b.add(b.load(count, typ=reg_type(DType.i64)), b.zext(ok, reg_type(DType.i64))),
                count,
            )
        result = b.load(acc, typ=reg_type(dt))
        if not is_max:
            # The reference divides in float64 (total / a float64 divisor).
            divisor = (
                ir.Constant(F64, float(k0 * k1))
                if include_pad
                else b.sitofp(b.load(count, typ=reg_type(DType.i64)), F64)
            )
            wide = result if dt is DType.f64 else b.fpext(result, F64)
            q = b.fdiv(wide, divisor)
            result = q if dt is DType.f64 else b.fptrunc(q, reg_type(dt))
        dst = b.add(b.mul(pl, i64(ho * wo)), b.add(b.mul(oh, i64(wo)), ow))
        store(b, result, elem_ptr(b, p[ob], dt, dst), dt)
    b.ret_void()
    mb.call_custom(fn, [xb, ob])
