"""Kernels that move or generate data: iota, pad, concatenate, random_bits."""

from __future__ import annotations

import math

import llvmlite.ir as ir

from graphc.ir import DType, Literal, Node, Value
from graphc.ir.ops.random import PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1

from .codegen import ModuleBuilder, lowering
from .irutil import counted_loop, elem_ptr, i64, linear, load, loop_nest, store
from .loopspec import Access, Buf, LoopSpec
from .scalar import ScalarEmitter
from .views import contiguous_strides


def copy_spec(shape: tuple[int, ...], src: Access | Literal, dst: Access) -> LoopSpec:
    """A loop storing ``src`` (a strided read or a constant) into ``dst``."""
    spec = LoopSpec(tuple(shape), (False,) * len(shape))
    if isinstance(src, Literal):
        spec.stores.append((src, dst))
    else:
        spec.loads.append(src)
        spec.stores.append((("load", 0), dst))
    return spec


@lowering("iota")
def lower_iota(mb: ModuleBuilder, n: Node) -> None:
    out = n.output.type
    if out.size == 0:
        return
    d = n.attrs["dimension"]
    pre, size, post = math.prod(out.shape[:d]), out.shape[d], math.prod(out.shape[d + 1 :])
    buf = mb.buf(n.output)
    fn, b, ptrs = mb.custom_kernel(n, "", [buf])
    e = ScalarEmitter(b, mb.math)
    with loop_nest(b, [pre, size, post]) as (p, i, q):
        value = e.cast(i, DType.i64, out.dtype)
        store(
            b,
            value,
            elem_ptr(b, ptrs[buf], out.dtype, linear(b, [p, i, q], [size * post, post, 1])),
            out.dtype,
        )
    b.ret_void()
    mb.call_custom(fn, [buf])


@lowering("pad")
def lower_pad(mb: ModuleBuilder, n: Node) -> None:
    x, value = n.inputs
    out = n.output.type
    if out.size == 0:
        return
    low, high, interior = n.attrs["low"], n.attrs["high"], n.attrs["interior"]
    ostr = contiguous_strides(out.shape)
    dst = mb.buf(n.output)
    counts, starts = [], []
    for size, lo, it, o in zip(x.type.shape, low, interior, out.shape):
        step = it + 1
        first = max(0, -(lo // step) if lo < 0 else 0)
        while lo + first * step < 0:
            first += 1
        last = min(size - 1, (o - 1 - lo) // step)
        counts.append(max(0, last - first + 1))
        starts.append(first)
    covers = (
        all(it == 0 for it in interior) and all(lo <= 0 for lo in low) and all(h <= 0 for h in high)
    )
    if not covers:
        fill: Access | Literal
        if isinstance(value, Literal):
            fill = value
        else:
            fill = Access(mb.buf(value), value.type.dtype, 0, (0,) * out.ndim)
        mb.run_loop_spec(copy_spec(out.shape, fill, Access(dst, out.dtype, 0, ostr)), n, ".fill")
    if math.prod(counts) == 0:
        return
    xstr = contiguous_strides(x.type.shape)
    src = Access(mb.buf(x), x.type.dtype, sum(s * st for s, st in zip(starts, xstr)), xstr)
    offset = sum((lo + s * (it + 1)) * st for lo, s, it, st in zip(low, starts, interior, ostr))
    dst_strides = tuple(st * (it + 1) for st, it in zip(ostr, interior))
    mb.run_loop_spec(
        copy_spec(tuple(counts), src, Access(dst, out.dtype, offset, dst_strides)), n, ".copy"
    )


@lowering("concatenate")
def lower_concatenate(mb: ModuleBuilder, n: Node) -> None:
    out = n.output.type
    axis = n.attrs["axis"] % out.ndim
    ostr = contiguous_strides(out.shape)
    dst = mb.buf(n.output)
    offset = 0
    for x in n.inputs:
        shape = x.type.shape
        if x.type.size:
            src: Access | Literal
            if isinstance(x, Literal):
                src = x
            elif _same_bytes(mb, mb.buf(x), dst, offset * ostr[axis] * out.dtype.itemsize):
                offset += shape[axis]
                continue  # the plan computed x in place (a part of the concatenation)
            else:
                src = Access(mb.buf(x), x.type.dtype, 0, contiguous_strides(shape))
            mb.run_loop_spec(
                copy_spec(shape, src, Access(dst, out.dtype, offset * ostr[axis], ostr)), n, ".part"
            )
        offset += shape[axis]


def _same_bytes(mb: ModuleBuilder, src: Buf, dst: Buf, byte: int) -> bool:
    """Whether ``src`` starts ``byte`` bytes into ``dst`` in the arena."""
    a, b = src.key, dst.key
    if not isinstance(a, Value) or not isinstance(b, Value):
        return False
    return a in mb.offsets and b in mb.offsets and mb.offsets[a] == mb.offsets[b] + byte


@lowering("random_bits")
def lower_random_bits(mb: ModuleBuilder, n: Node) -> None:
    """Philox-4x32-10, two 64-bit outputs per block (see ir/ops/random.py)."""
    out = n.output.type
    size = out.size
    if size == 0:
        return
    dst = mb.buf(n.output)
    scalars = [x for x in n.inputs if not isinstance(x, Literal)]
    bufs = [dst] + [mb.buf(x) for x in scalars]
    fn, b, ptrs = mb.custom_kernel(n, "", bufs)
    e = ScalarEmitter(b, mb.math)

    def as_i64(x):  # noqa: ANN001, ANN202
        if isinstance(x, Literal):
            return i64(int(x.value))
        return e.cast(load(b, ptrs[mb.buf(x)], x.type.dtype), x.type.dtype, DType.i64)

    key, counter = (as_i64(x) for x in n.inputs)
    mask = i64(0xFFFFFFFF)

    def lo32(v: ir.Value) -> ir.Value:
        return b.and_(v, mask)

    def hi32(v: ir.Value) -> ir.Value:
        return b.lshr(v, i64(32))

    k0_init, k1_init = lo32(key), hi32(key)
    c2_init, c3_init = lo32(counter), hi32(counter)
    blocks = (size + 1) // 2
    with counted_loop(b, i64(0), i64(blocks), "blk") as blk:
        c0, c1, c2, c3 = lo32(blk), hi32(blk), c2_init, c3_init
        k0, k1 = k0_init, k1_init
        for r in range(10):
            if r:
                k0 = lo32(b.add(k0, i64(PHILOX_W0)))
                k1 = lo32(b.add(k1, i64(PHILOX_W1)))
            p0 = b.mul(c0, i64(PHILOX_M0))
            p1 = b.mul(c2, i64(PHILOX_M1))
            c0, c1, c2, c3 = (
                b.xor(b.xor(hi32(p1), c1), k0),
                lo32(p1),
                b.xor(b.xor(hi32(p0), c3), k1),
                lo32(p0),
            )
        first = b.or_(c0, b.shl(c1, i64(32)))
        second = b.or_(c2, b.shl(c3, i64(32)))
        j = b.mul(blk, i64(2))
        store(b, first, elem_ptr(b, ptrs[dst], DType.i64, j), DType.i64)
        if size % 2 == 0:
            store(b, second, elem_ptr(b, ptrs[dst], DType.i64, b.add(j, i64(1))), DType.i64)
        else:
            j1 = b.add(j, i64(1))
            with b.if_then(b.icmp_signed("<", j1, i64(size))):
                store(b, second, elem_ptr(b, ptrs[dst], DType.i64, j1), DType.i64)
    b.ret_void()
    mb.call_custom(fn, bufs)
