"""Emit a :class:`LoopSpec` as an LLVM function.

The loop nest runs over the coalesced loop dims; the outermost dim can be
split into chunks (``lo``/``hi``) that the worker pool runs in parallel.
Reductions whose reduced dims are innermost accumulate in registers
(``reassoc`` lets LLVM vectorize them); long float sums are blocked, each
block summed in the element type and the blocks in float64, which keeps
float32 sums of millions of elements accurate. Other reductions accumulate
in the output buffer, initialized first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import llvmlite.ir as ir

from graphc.ir import DType, Literal

from .irutil import F64, I64, PTR, VOID, const, counted_loop, elem_ptr, i64, load, reg_type, store
from .loopspec import Access, Buf, LoopSpec, spec_buffers
from .mathlib import MathLib
from .scalar import ErrorHook, ScalarEmitter
from .views import coalesce

BLOCK = 2048  # elements per block of a blocked float sum
RED_FLAGS = ("reassoc", "contract")


@dataclass
class Partial:
    """Private reduction results of chunks 1..C-1 (chunk 0 uses ``out``)."""

    buf: Buf
    out: Buf
    kind: str
    count: int


@dataclass
class LoopKernel:
    """An emitted loop function: ``fn(buffers..., lo, hi, slot)``, where
    ``slot`` is the chunk whose partial results it writes (0: the output)."""

    fn: ir.Function
    buffers: list[Buf]  # parameter order
    outer: int  # trip count of the outer dim, which chunks split
    chunks: int
    partials: list[Partial]


def identity(kind: str, dtype: DType) -> ir.Constant:
    if kind == "sum":
        return const(dtype, 0)
    if kind == "prod":
        return const(dtype, 1)
    if dtype.is_float:
        return const(dtype, -math.inf if kind == "max" else math.inf)
    if dtype.is_bool:
        return const(dtype, kind == "min")
    bits = dtype.itemsize * 8
    if dtype.is_unsigned:
        return const(dtype, 0 if kind == "max" else 2**bits - 1)
    return const(dtype, -(2 ** (bits - 1)) if kind == "max" else 2 ** (bits - 1) - 1)


def combine(e: ScalarEmitter, kind: str, dtype: DType, acc: ir.Value, x: ir.Value) -> ir.Value:
    b = e.b
    if dtype.is_float:
        if kind == "sum":
            return b.fadd(acc, x, flags=RED_FLAGS)
        if kind == "prod":
            return b.fmul(acc, x, flags=RED_FLAGS)
        # LLVM's maximum/minimum (NaN wins, -0.0 below +0.0) vectorize; NumPy's
        # tie rule (the later element wins) would make this a serial chain.
        # NumPy's own sign of a mixed +-0.0 result depends on its SIMD layout.
        return e.intrinsic("maximum" if kind == "max" else "minimum", acc, x)
    if dtype.is_bool:
        return b.or_(acc, x) if kind in ("sum", "max") else b.and_(acc, x)
    if kind == "sum":
        return b.add(acc, x)
    if kind == "prod":
        return b.mul(acc, x)
    pred = ">" if kind == "max" else "<"
    compare = b.icmp_unsigned if dtype.is_unsigned else b.icmp_signed
    return b.select(compare(pred, acc, x), acc, x)


def emit_loop_kernel(
    module: ir.Module,
    math_lib: MathLib,
    spec: LoopSpec,
    name: str,
    chunks: int = 1,
    on_error: ErrorHook | None = None,
) -> LoopKernel:
    """Emit ``spec`` as function ``name``; ``chunks`` is a request, cut down
    to the outer loop's trip count (no chunk is empty)."""
    accesses: list[Access] = [
        *spec.loads,
        *(acc for _, acc in spec.stores),
        *(r.out for r in spec.reductions),
    ]
    dims, flags, strides = coalesce(spec.shape, spec.reduced, [a.strides for a in accesses])
    chunks = 1 if math.prod(dims) == 0 else _fit_chunks(dims[0], chunks)
    buffers = spec_buffers(spec)
    outer_reduced = flags[0] and bool(spec.reductions) and chunks > 1
    partials: list[Partial] = []
    if outer_reduced:
        for k, r in enumerate(spec.reductions):
            count = math.prod(
                n for n, st in zip(dims, strides[len(accesses) - len(spec.reductions) + k]) if st
            )
            part = Buf(("partial", name, k), r.out.dtype)
            partials.append(Partial(part, r.out.source, r.kind, count))
            buffers.append(part)
    fnty = ir.FunctionType(VOID, [PTR] * len(buffers) + [I64, I64, I64])
    fn = ir.Function(module, fnty, name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    fn.attributes.add("noinline")  # kernels are shared; inlining only bloats the entry
    for k, buf in enumerate(buffers):
        fn.args[k].name = _buf_name(buf)
    lo, hi, tid = fn.args[-3:]
    lo.name, hi.name, tid.name = "lo", "hi", "slot"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    emitter = ScalarEmitter(b, math_lib, on_error)
    ptr_of = {buf: fn.args[k] for k, buf in enumerate(buffers)}

    ndim = len(dims)
    first_trailing = ndim
    while first_trailing > 0 and flags[first_trailing - 1]:
        first_trailing -= 1
    needs_init = any(flags[:first_trailing])
    nload, nstore = len(spec.loads), len(spec.stores)
    red_slots = list(range(nload + nstore, len(accesses)))
    out_count = [
        math.prod(n for n, st in zip(dims, strides[red_slots[k]]) if st != 0)
        for k in range(len(spec.reductions))
    ]
    # Chunks of a reduced outer dim each need their own result: chunk 0
    # writes the output, chunk c the (c-1)-th slice of a partial buffer.
    red_base: list[ir.Value] = []
    for k, r in enumerate(spec.reductions):
        out_ptr = ptr_of[r.out.source]
        if outer_reduced:
            part_ptr = ptr_of[partials[k].buf]
            slot = b.mul(b.sub(tid, i64(1)), i64(out_count[k]))
            mine = elem_ptr(b, part_ptr, r.out.dtype, slot)
            out_ptr = b.select(b.icmp_signed("==", tid, i64(0)), out_ptr, mine)
        red_base.append(out_ptr)

    if math.prod(spec.shape) == 0 or any(n == 0 for n in dims):
        # Empty loop: reductions still produce their identity.
        for k, r in enumerate(spec.reductions):
            _fill(b, red_base[k], r.out, out_count[k], identity(r.kind, r.out.dtype))
        b.ret_void()
        return LoopKernel(fn, buffers, 1, 1, [])

    if needs_init:
        for k, r in enumerate(spec.reductions):
            s0 = strides[red_slots[k]][0]
            start = b.mul(lo, i64(s0)) if not flags[0] else i64(0)
            stop = b.mul(hi, i64(s0)) if not flags[0] else i64(out_count[k])
            with counted_loop(b, start, stop, "init") as j:
                store(b, identity(r.kind, r.out.dtype), elem_ptr(b, red_base[k], r.out.dtype, j),
                      r.out.dtype)  # fmt: skip

    def body(bases: list[ir.Value], accs: list[ir.AllocaInstr] | None) -> None:
        loaded: dict[int, ir.Value] = {}

        def value(x):  # noqa: ANN001, ANN202
            if isinstance(x, Literal):
                return (x, x.dtype)
            kind, k = x
            if kind == "load":
                if k not in loaded:
                    a = spec.loads[k]
                    p = elem_ptr(b, ptr_of[a.source], a.dtype, bases[k])
                    loaded[k] = load(b, p, a.dtype, name=_buf_name(a.source) + ".v")
                return (loaded[k], spec.loads[k].dtype)
            return (regs[k], spec.reg_dtypes[k])

        regs: list[ir.Value] = []
        for step in spec.steps:
            v = emitter.emit(step.node, [value(x) for x in step.operands])
            if spec.names[len(regs)]:
                v.name = spec.names[len(regs)]
            regs.append(v)
        for j, (x, acc) in enumerate(spec.stores):
            v, d = value(x)
            v = emitter.operand(v, d, acc.dtype)
            store(b, v, elem_ptr(b, ptr_of[acc.source], acc.dtype, bases[nload + j]), acc.dtype)
        for k, r in enumerate(spec.reductions):
            v, d = value(r.value)
            v = emitter.operand(v, d, r.out.dtype)
            if accs is None:
                p = elem_ptr(b, red_base[k], r.out.dtype, bases[red_slots[k]])
                old = load(b, p, r.out.dtype)
                store(b, combine(emitter, r.kind, r.out.dtype, old, v), p, r.out.dtype)
            else:
                old = b.load(accs[k], typ=reg_type(r.out.dtype))
                b.store(combine(emitter, r.kind, r.out.dtype, old, v), accs[k])

    def advance(bases: list[ir.Value], level: int, idx: ir.Value) -> list[ir.Value]:
        out = []
        for a, base in zip(strides, bases):
            s = a[level]
            out.append(base if s == 0 else b.add(base, b.mul(idx, i64(s))))
        return out

    def bounds(level: int) -> tuple[ir.Value, ir.Value]:
        return (lo, hi) if level == 0 else (i64(0), i64(dims[level]))

    def trailing(level: int, bases: list[ir.Value]) -> None:
        # Reduced dims innermost: accumulate in registers, then write once.
        accs = []
        for r in spec.reductions:
            slot = b.alloca(reg_type(r.out.dtype))
            b.store(identity(r.kind, r.out.dtype), slot)
            accs.append(slot)
        blocked = [
            k for k, r in enumerate(spec.reductions) if r.kind == "sum" and r.out.dtype.is_float
        ]
        single = level == ndim - 1
        if single and blocked and dims[level] > 2 * BLOCK:
            wide = []
            for _ in blocked:
                slot = b.alloca(F64)
                b.store(ir.Constant(F64, 0.0), slot)
                wide.append(slot)
            start, stop = bounds(level)
            with counted_loop(b, start, stop, f"blk{level}", step=BLOCK) as blk:
                for k in blocked:
                    b.store(identity("sum", spec.reductions[k].out.dtype), accs[k])
                end = b.add(blk, i64(BLOCK))
                end = b.select(b.icmp_signed("<", end, stop), end, stop)
                with counted_loop(b, blk, end, f"i{level}") as i:
                    body(advance(bases, level, i), accs)
                for k, slot in zip(blocked, wide):
                    part = b.load(accs[k], typ=reg_type(spec.reductions[k].out.dtype))
                    if spec.reductions[k].out.dtype is not DType.f64:
                        part = b.fpext(part, F64)
                    b.store(b.fadd(b.load(slot, typ=F64), part), slot)
            for k, slot in zip(blocked, wide):
                total = b.load(slot, typ=F64)
                if spec.reductions[k].out.dtype is not DType.f64:
                    total = b.fptrunc(total, reg_type(spec.reductions[k].out.dtype))
                b.store(total, accs[k])
        else:
            inner(level, bases, accs)
        for k, r in enumerate(spec.reductions):
            p = elem_ptr(b, red_base[k], r.out.dtype, bases[red_slots[k]])
            acc = b.load(accs[k], typ=reg_type(r.out.dtype))
            if needs_init:
                acc = combine(emitter, r.kind, r.out.dtype, load(b, p, r.out.dtype), acc)
            store(b, acc, p, r.out.dtype)

    def inner(level: int, bases: list[ir.Value], accs) -> None:  # noqa: ANN001
        if level == ndim:
            body(bases, accs)
            return
        start, stop = bounds(level)
        with counted_loop(b, start, stop, f"i{level}") as i:
            inner(level + 1, advance(bases, level, i), accs)

    def outer(level: int, bases: list[ir.Value]) -> None:
        if level == first_trailing and spec.reductions:
            trailing(level, bases)
            return
        if level == ndim:
            body(bases, None)
            return
        start, stop = bounds(level)
        with counted_loop(b, start, stop, f"i{level}") as i:
            outer(level + 1, advance(bases, level, i))

    outer(0, [i64(a.offset) for a in accesses])
    b.ret_void()
    return LoopKernel(fn, buffers, dims[0], chunks, partials)


def _fit_chunks(outer: int, want: int) -> int:
    """At most ``want`` chunks of an ``outer``-trip loop, none of them empty."""
    want = max(1, min(want, outer))
    per = -(-outer // want)
    return -(-outer // per)


def _fill(b: ir.IRBuilder, ptr: ir.Value, acc: Access, count: int, value: ir.Value) -> None:
    with counted_loop(b, i64(0), i64(count), "fill") as j:
        store(b, value, elem_ptr(b, ptr, acc.dtype, j), acc.dtype)


def _buf_name(buf: Buf) -> str:
    key = buf.key
    name = getattr(key, "name", None)
    return str(name) if name else f"buf{id(key) & 0xFFFF:x}"
