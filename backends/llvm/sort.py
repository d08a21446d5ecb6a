"""argsort through the C library's ``qsort``.

Each row is copied into (key, index) pairs in scratch memory and sorted with
a comparator that orders keys with NaNs last and breaks ties by the original
index, so the order is total and the result is NumPy's stable order whatever
algorithm ``qsort`` uses. Floats sort by their float64 value (exact for
float32 too); integers by their int64 value.
"""

from __future__ import annotations

import math

import llvmlite.ir as ir

from graphc.ir import DType, Node

from .codegen import ModuleBuilder, lowering
from .irutil import F64, I32, I64, PTR, VOID, counted_loop, elem_ptr, i64, load, store

_PAIR_BYTES = 16


@lowering("argsort")
def lower_argsort(mb: ModuleBuilder, n: Node) -> None:
    (x,) = n.inputs
    ty = x.type
    if ty.size == 0:
        return
    width = ty.shape[-1]
    rows = math.prod(ty.shape[:-1])
    dt = ty.dtype
    xb, ob = mb.buf(x), mb.buf(n.output)
    pairs = mb.scratch(width * _PAIR_BYTES, DType.i64)
    cmp = _comparator(mb.module, dt.is_float)
    qsort = mb.module.globals.get("qsort") or ir.Function(
        mb.module, ir.FunctionType(VOID, [PTR, I64, I64, PTR]), "qsort"
    )

    def body(b: ir.IRBuilder, p: dict) -> None:  # type: ignore[type-arg]
        with counted_loop(b, i64(0), i64(rows), "row") as r:
            base = b.mul(r, i64(width))
            with counted_loop(b, i64(0), i64(width), "j") as j:
                v = load(b, elem_ptr(b, p[xb], dt, b.add(base, j)), dt)
                if dt.is_float:
                    key = b.bitcast(v if dt is DType.f64 else b.fpext(v, F64), I64)
                else:
                    key = v if dt is DType.i64 else b.sext(v, I64)
                slot = b.mul(j, i64(2))
                store(b, key, elem_ptr(b, p[pairs], DType.i64, slot), DType.i64)
                store(b, j, elem_ptr(b, p[pairs], DType.i64, b.add(slot, i64(1))), DType.i64)
            b.call(qsort, [p[pairs], i64(width), i64(_PAIR_BYTES), cmp])
            with counted_loop(b, i64(0), i64(width), "k") as k:
                src = elem_ptr(b, p[pairs], DType.i64, b.add(b.mul(k, i64(2)), i64(1)))
                idx = load(b, src, DType.i64)
                store(b, idx, elem_ptr(b, p[ob], DType.i64, b.add(base, k)), DType.i64)

    mb.shared_kernel(("argsort", dt, rows, width), n, [xb, ob, pairs], body)


def _comparator(module: ir.Module, is_float: bool) -> ir.Function:
    name = "graphc.argsort_cmp_f" if is_float else "graphc.argsort_cmp_i"
    found = module.globals.get(name)
    if found is not None:
        return found  # type: ignore[no-any-return]
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, PTR]), name)
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    p, q = fn.args
    ka, kb = b.load(p, typ=I64), b.load(q, typ=I64)
    ia = b.load(b.gep(p, [i64(1)], source_etype=I64), typ=I64)
    ib = b.load(b.gep(q, [i64(1)], source_etype=I64), typ=I64)
    by_index = b.select(
        b.icmp_signed("<", ia, ib),
        ir.Constant(I32, -1),
        b.select(b.icmp_signed(">", ia, ib), ir.Constant(I32, 1), ir.Constant(I32, 0)),
    )
    if is_float:
        a, c = b.bitcast(ka, F64), b.bitcast(kb, F64)
        less, greater = b.fcmp_ordered("<", a, c), b.fcmp_ordered(">", a, c)
        a_nan, c_nan = b.fcmp_unordered("uno", a, a), b.fcmp_unordered("uno", c, c)
        # A NaN is greater than every number; two NaNs tie.
        less = b.or_(less, b.and_(c_nan, b.not_(a_nan)))
        greater = b.or_(greater, b.and_(a_nan, b.not_(c_nan)))
    else:
        less, greater = b.icmp_signed("<", ka, kb), b.icmp_signed(">", ka, kb)
    result = b.select(less, ir.Constant(I32, -1), b.select(greater, ir.Constant(I32, 1), by_index))
    b.ret(result)
    return fn
