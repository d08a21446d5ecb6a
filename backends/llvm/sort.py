"""argsort: a stable bottom-up merge sort per row, in generated code.

Each row is copied into (key, index) pairs in scratch memory. Keys are
64-bit integers whose unsigned order is the order NumPy sorts in: a float's
bits with the sign handled (so -2 < -1 < -0.0 == 0.0 < 1), every NaN mapped
to the largest key, and signed integers with the sign bit flipped. Merging
takes from the right run only when its key is strictly smaller, so equal
keys keep their original order: NumPy's stable order, NaNs last.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import llvmlite.ir as ir

from graphc.ir import DType, Node

from .codegen import ModuleBuilder, lowering
from .irutil import F64, I64, PTR, alloca, counted_loop, elem_ptr, i64, load, store

_SIGN = -(1 << 63)  # 0x8000000000000000 as a signed constant


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
    pairs = mb.scratch(width * 16, DType.i64)
    spare = mb.scratch(width * 16, DType.i64)

    def body(b: ir.IRBuilder, p: dict) -> None:  # type: ignore[type-arg]
        # Stack slots in the entry block, not per row (a loop's allocas grow the stack).
        slots = _Slots(b)
        with counted_loop(b, i64(0), i64(rows), "row") as r:
            base = b.mul(r, i64(width))
            with counted_loop(b, i64(0), i64(width), "j") as j:
                v = load(b, elem_ptr(b, p[xb], dt, b.add(base, j)), dt)
                _put(b, p[pairs], j, _sort_key(b, v, dt), j)
            result = _merge_sort(b, slots, p[pairs], p[spare], width)
            with counted_loop(b, i64(0), i64(width), "k") as k:
                idx = load(
                    b, elem_ptr(b, result, DType.i64, b.add(b.mul(k, i64(2)), i64(1))), DType.i64
                )
                store(b, idx, elem_ptr(b, p[ob], DType.i64, b.add(base, k)), DType.i64)

    mb.shared_kernel(("argsort", dt, rows, width), n, [xb, ob, pairs, spare], body)


def _sort_key(b: ir.IRBuilder, v: ir.Value, dt: DType) -> ir.Value:
    if not dt.is_float:
        wide = v if dt is DType.i64 else b.sext(v, I64)
        return b.xor(wide, i64(_SIGN))
    d = v if dt is DType.f64 else b.fpext(v, F64)
    d = b.fadd(d, ir.Constant(F64, 0.0))  # -0.0 + 0.0 is +0.0: zeros tie, as in NumPy
    bits = b.bitcast(d, I64)
    negative = b.icmp_signed("<", bits, i64(0))
    key = b.select(negative, b.not_(bits), b.xor(bits, i64(_SIGN)))
    is_nan = b.fcmp_unordered("uno", d, d)
    return b.select(is_nan, i64(-1), key)  # all ones: after every number


def _put(b: ir.IRBuilder, base: ir.Value, k: ir.Value, key: ir.Value, idx: ir.Value) -> None:
    slot = b.mul(k, i64(2))
    store(b, key, elem_ptr(b, base, DType.i64, slot), DType.i64)
    store(b, idx, elem_ptr(b, base, DType.i64, b.add(slot, i64(1))), DType.i64)


def _get(b: ir.IRBuilder, base: ir.Value, k: ir.Value) -> tuple[ir.Value, ir.Value]:
    slot = b.mul(k, i64(2))
    key = load(b, elem_ptr(b, base, DType.i64, slot), DType.i64)
    idx = load(b, elem_ptr(b, base, DType.i64, b.add(slot, i64(1))), DType.i64)
    return key, idx


def _while(
    b: ir.IRBuilder, name: str, cond: Callable[[], ir.Value], body: Callable[[], None]
) -> None:
    head = b.function.append_basic_block(f"{name}.head")
    loop = b.function.append_basic_block(f"{name}.body")
    done = b.function.append_basic_block(f"{name}.done")
    b.branch(head)
    b.position_at_end(head)
    b.cbranch(cond(), loop, done)
    b.position_at_end(loop)
    body()
    b.branch(head)
    b.position_at_end(done)


class _Slots:
    """The merge sort's loop variables, allocated once per kernel call."""

    def __init__(self, b: ir.IRBuilder) -> None:
        self.var = {name: alloca(b, I64, name=name) for name in ("w", "lo", "i", "j", "k")}
        self.src, self.dst = alloca(b, PTR, name="src"), alloca(b, PTR, name="dst")


def _merge_sort(
    b: ir.IRBuilder, slots: _Slots, first: ir.Value, second: ir.Value, n: int
) -> ir.Value:
    """Sort the n pairs at ``first``; returns the buffer holding the result."""
    var, src, dst = slots.var, slots.src, slots.dst
    b.store(first, src)
    b.store(second, dst)
    b.store(i64(1), var["w"])

    def get(name: str) -> ir.Value:
        return b.load(var[name], typ=I64)

    def set_(name: str, value: ir.Value) -> None:
        b.store(value, var[name])

    def smin(x: ir.Value, y: ir.Value) -> ir.Value:
        return b.select(b.icmp_signed("<", x, y), x, y)

    def merge_runs() -> None:
        w, lo = get("w"), get("lo")
        mid = smin(b.add(lo, w), i64(n))
        hi = smin(b.add(lo, b.add(w, w)), i64(n))
        set_("i", lo)
        set_("j", mid)
        set_("k", lo)
        s, d = b.load(src, typ=PTR), b.load(dst, typ=PTR)

        def step() -> None:
            i, j, k = get("i"), get("j"), get("k")
            # Clamped reads: an exhausted run's index may sit one past its end.
            key_i, idx_i = _get(b, s, smin(i, i64(n - 1)))
            key_j, idx_j = _get(b, s, smin(j, i64(n - 1)))
            left_done = b.icmp_signed(">=", i, mid)
            right_left = b.icmp_signed("<", j, hi)
            smaller = b.icmp_unsigned("<", key_j, key_i)
            take_right = b.and_(right_left, b.or_(left_done, smaller))
            _put(b, d, k, b.select(take_right, key_j, key_i), b.select(take_right, idx_j, idx_i))
            set_("i", b.select(take_right, i, b.add(i, i64(1))))
            set_("j", b.select(take_right, b.add(j, i64(1)), j))
            set_("k", b.add(k, i64(1)))

        _while(b, "merge", lambda: b.icmp_signed("<", get("k"), hi), step)
        set_("lo", hi)

    def one_pass() -> None:
        set_("lo", i64(0))
        _while(b, "runs", lambda: b.icmp_signed("<", get("lo"), i64(n)), merge_runs)
        s, d = b.load(src, typ=PTR), b.load(dst, typ=PTR)
        b.store(d, src)
        b.store(s, dst)
        set_("w", b.add(get("w"), get("w")))

    _while(b, "pass", lambda: b.icmp_signed("<", get("w"), i64(n)), one_pass)
    return b.load(src, typ=PTR)
