"""Kernels along one axis: gather, scatter_add, argmax/argmin, cumsum.

Each views its operand as (pre, n, post) around the axis. Out-of-range
gather/scatter indices never touch memory outside the operand: the kernel
records the first bad index in the status words (the runtime raises
``GraphcIndexError``) and reads element 0 instead.
"""

from __future__ import annotations

import math

import llvmlite.ir as ir

from graphc.ir import DType, Node

from .codegen import ERR_INDEX, ModuleBuilder, lowering
from .irutil import I64, alloca, counted_loop, elem_ptr, i64, load, loop_nest, reg_type, store
from .loops import combine
from .scalar import ScalarEmitter


def _split(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :])


def _checked_index(
    mb: ModuleBuilder, b: ir.IRBuilder, raw: ir.Value, dtype: DType, size: int
) -> ir.Value:
    """NumPy index semantics (negative counts from the end); a bad index is
    reported and replaced by 0 so the access stays in bounds."""
    widen = b.zext if dtype.is_unsigned else b.sext
    k = raw if dtype.itemsize == 8 else widen(raw, I64)
    if dtype.is_unsigned:
        # no negative indices; a u64 past 2**63 is simply out of range
        ok = b.icmp_unsigned("<", k, i64(size))
    else:
        k = b.select(b.icmp_signed("<", k, i64(0)), b.add(k, i64(size)), k)
        ok = b.and_(b.icmp_signed(">=", k, i64(0)), b.icmp_signed("<", k, i64(size)))
    with b.if_then(b.not_(ok)):
        original = raw if dtype.itemsize == 8 else widen(raw, I64)
        mb.store_status(b, ERR_INDEX, original, i64(size))
    return b.select(ok, k, i64(0))


@lowering("gather")
def lower_gather(mb: ModuleBuilder, n: Node) -> None:
    x, idx = n.inputs
    out = n.output.type
    if out.size == 0:
        return
    axis = n.attrs["axis"] % x.type.ndim
    pre, size, post = _split(x.type.shape, axis)
    m = idx.type.size
    xb, ib, ob = mb.buf(x), mb.buf(idx), mb.buf(n.output)
    dt = x.type.dtype
    key = ("gather", dt, idx.type.dtype, pre, size, post, m)
    mb.mark_node()
    mb.shared_kernel(
        key,
        n,
        [xb, ib, ob],
        lambda b, p: _gather_body(mb, b, p, xb, ib, ob, idx, dt, pre, size, post, m),
    )
    mb.check_status()


def _gather_body(mb, b, p, xb, ib, ob, idx, dt, pre, size, post, m):  # noqa: ANN001, ANN202
    with loop_nest(b, [pre, m], "g") as (i, j):
        k = _checked_index(
            mb,
            b,
            load(b, elem_ptr(b, p[ib], idx.type.dtype, j), idx.type.dtype),
            idx.type.dtype,
            size,
        )
        src = b.mul(b.add(b.mul(i, i64(size)), k), i64(post))
        dst = b.mul(b.add(b.mul(i, i64(m)), j), i64(post))
        with counted_loop(b, i64(0), i64(post), "q") as q:
            v = load(b, elem_ptr(b, p[xb], dt, b.add(src, q)), dt)
            store(b, v, elem_ptr(b, p[ob], dt, b.add(dst, q)), dt)


@lowering("scatter_add")
def lower_scatter_add(mb: ModuleBuilder, n: Node) -> None:
    x, idx, upd = n.inputs
    out = n.output.type
    if out.size == 0:
        return
    axis = n.attrs["axis"] % x.type.ndim
    pre, size, post = _split(x.type.shape, axis)
    m = idx.type.size
    xb, ib, ub, ob = mb.buf(x), mb.buf(idx), mb.buf(upd), mb.buf(n.output)
    bufs = [xb, ib, ub, ob]
    dt = out.dtype
    key = ("scatter_add", dt, idx.type.dtype, pre, size, post, m, out.size)
    mb.mark_node()
    mb.shared_kernel(
        key, n, bufs, lambda b, p: _scatter_body(mb, b, p, bufs, idx, dt, out, pre, size, post, m)
    )
    mb.check_status()


def _scatter_body(mb, b, p, bufs, idx, dt, out, pre, size, post, m):  # noqa: ANN001, ANN202
    xb, ib, ub, ob = bufs
    e = ScalarEmitter(b, mb.math)
    with counted_loop(b, i64(0), i64(out.size), "c") as c:
        store(b, load(b, elem_ptr(b, p[xb], dt, c), dt), elem_ptr(b, p[ob], dt, c), dt)
    with loop_nest(b, [pre, m], "s") as (i, j):
        k = _checked_index(
            mb,
            b,
            load(b, elem_ptr(b, p[ib], idx.type.dtype, j), idx.type.dtype),
            idx.type.dtype,
            size,
        )
        dst = b.mul(b.add(b.mul(i, i64(size)), k), i64(post))
        src = b.mul(b.add(b.mul(i, i64(m)), j), i64(post))
        with counted_loop(b, i64(0), i64(post), "q") as q:
            pd = elem_ptr(b, p[ob], dt, b.add(dst, q))
            v = load(b, elem_ptr(b, p[ub], dt, b.add(src, q)), dt)
            store(b, combine(e, "sum", dt, load(b, pd, dt), v), pd, dt)


@lowering("argmax", "argmin")
def lower_argreduce(mb: ModuleBuilder, n: Node) -> None:
    """Two loop orders that both vectorize: along the last axis, one pass
    finds the extreme value (a max/min reduction) and a second the first
    index holding it; along another axis, each step over the axis updates a
    row of running bests (best values in scratch memory)."""
    x = n.inputs[0]
    axis = n.attrs["axis"] % x.type.ndim
    pre, size, post = _split(x.type.shape, axis)
    if pre * post == 0:
        return
    xb, ob = mb.buf(x), mb.buf(n.output)
    dt = x.type.dtype
    greater = n.op == "argmax"
    if post == 1:
        fn, b, p = mb.custom_kernel(n, "", [xb, ob])
        _argreduce_rows(mb, b, p[xb], p[ob], dt, pre, size, greater)
        b.ret_void()
        mb.call_custom(fn, [xb, ob])
        return
    best = mb.scratch(post * dt.itemsize, dt)
    fn, b, p = mb.custom_kernel(n, "", [xb, ob, best])
    with counted_loop(b, i64(0), i64(pre), "a") as i:
        row = b.mul(i, i64(size * post))
        out_row = b.mul(i, i64(post))
        with counted_loop(b, i64(0), i64(post), "q") as q:
            v = load(b, elem_ptr(b, p[xb], dt, b.add(row, q)), dt)
            store(b, v, elem_ptr(b, p[best], dt, q), dt)
            store(b, i64(0), elem_ptr(b, p[ob], DType.i64, b.add(out_row, q)), DType.i64)
        with counted_loop(b, i64(1), i64(size), "k") as k:
            base = b.add(row, b.mul(k, i64(post)))
            with counted_loop(b, i64(0), i64(post), "q") as q:
                v = load(b, elem_ptr(b, p[xb], dt, b.add(base, q)), dt)
                slot = elem_ptr(b, p[best], dt, q)
                cur = load(b, slot, dt)
                better = _better(b, dt, v, cur, greater)
                store(b, b.select(better, v, cur), slot, dt)
                at = elem_ptr(b, p[ob], DType.i64, b.add(out_row, q))
                store(b, b.select(better, k, load(b, at, DType.i64)), at, DType.i64)
    b.ret_void()
    mb.call_custom(fn, [xb, ob, best])


def _argreduce_rows(mb, b, px, po, dt, rows, size, greater):  # noqa: ANN001, ANN202
    """Argmax/argmin of each contiguous row: the extreme value first (NaN wins,
    as in NumPy), then the smallest index holding it."""
    ty = reg_type(dt)
    acc = alloca(b, ty)
    first = alloca(b, I64)
    e = ScalarEmitter(b, mb.math)
    with counted_loop(b, i64(0), i64(rows), "r") as r:
        row = b.mul(r, i64(size))
        b.store(load(b, elem_ptr(b, px, dt, row), dt), acc)
        with counted_loop(b, i64(1), i64(size), "k") as k:
            v = load(b, elem_ptr(b, px, dt, b.add(row, k)), dt)
            b.store(combine(e, "max" if greater else "min", dt, b.load(acc, typ=ty), v), acc)
        extreme = b.load(acc, typ=ty)
        b.store(i64(size), first)
        with counted_loop(b, i64(0), i64(size), "j") as j:
            v = load(b, elem_ptr(b, px, dt, b.add(row, j)), dt)
            if dt.is_float:
                hit = b.or_(
                    b.fcmp_ordered("==", v, extreme),
                    b.and_(e.isnan(v), e.isnan(extreme)),
                )
            else:
                hit = b.icmp_unsigned("==", v, extreme)
            # min(first, j if hit else size): an integer min reduction.
            cand = b.select(hit, j, i64(size))
            cur = b.load(first, typ=I64)
            b.store(b.select(b.icmp_signed("<", cand, cur), cand, cur), first)
        store(b, b.load(first, typ=I64), elem_ptr(b, po, DType.i64, r), DType.i64)


def _better(b: ir.IRBuilder, dt: DType, v: ir.Value, cur: ir.Value, greater: bool) -> ir.Value:
    """Whether ``v`` replaces ``cur``; the first NaN wins, as in NumPy."""
    op = ">" if greater else "<"
    if dt.is_float:
        strict = b.fcmp_ordered(op, v, cur)
        first_nan = b.and_(b.fcmp_unordered("uno", v, v), b.fcmp_ordered("ord", cur, cur))
        return b.or_(strict, first_nan)
    if dt.is_bool or dt.is_unsigned:
        return b.icmp_unsigned(op, v, cur)
    return b.icmp_signed(op, v, cur)


@lowering("cumsum")
def lower_cumsum(mb: ModuleBuilder, n: Node) -> None:
    x = n.inputs[0]
    out = n.output.type
    if out.size == 0:
        return
    axis = n.attrs["axis"] % x.type.ndim
    reverse = n.attrs["reverse"]
    pre, size, post = _split(x.type.shape, axis)
    xb, ob = mb.buf(x), mb.buf(n.output)
    fn, b, p = mb.custom_kernel(n, "", [xb, ob])
    e = ScalarEmitter(b, mb.math)
    dt, odt = x.type.dtype, out.dtype
    with counted_loop(b, i64(0), i64(pre), "p") as i:
        with counted_loop(b, i64(0), i64(size), "k") as step:
            k = b.sub(i64(size - 1), step) if reverse else step
            prev = b.add(k, i64(1)) if reverse else b.sub(k, i64(1))
            first = b.icmp_signed("==", step, i64(0))
            row = b.mul(b.add(b.mul(i, i64(size)), k), i64(post))
            prow = b.mul(b.add(b.mul(i, i64(size)), b.select(first, k, prev)), i64(post))
            with counted_loop(b, i64(0), i64(post), "q") as q:
                v = e.cast(load(b, elem_ptr(b, p[xb], dt, b.add(row, q)), dt), dt, odt)
                before = load(b, elem_ptr(b, p[ob], odt, b.add(prow, q)), odt)
                # -0.0 + v is v for every float v (+0.0 would turn a leading -0.0 into +0.0).
                zero = ir.Constant(reg_type(odt), -0.0 if odt.is_float else 0)
                acc = (
                    b.add(b.select(first, zero, before), v)
                    if not odt.is_float
                    else b.fadd(b.select(first, zero, before), v)
                )
                store(b, acc, elem_ptr(b, p[ob], odt, b.add(row, q)), odt)
    b.ret_void()
    mb.call_custom(fn, [xb, ob])
