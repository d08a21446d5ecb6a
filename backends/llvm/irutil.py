"""Small helpers over llvmlite.ir: element types, constants, counted loops."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import llvmlite.ir as ir
import numpy as np

from graphc.ir import DType

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F16 = ir.HalfType()
F32 = ir.FloatType()
F64 = ir.DoubleType()
PTR = ir.PointerType()
VOID = ir.VoidType()

# Registers hold bool as i1; memory holds it as one byte, as NumPy does.
# 16-bit floats live in float32 registers holding an exactly representable
# value: loads widen, stores round (bfloat16 is kept in memory as its bits).
_REG = {
    DType.bool: I1,
    DType.i8: I8,
    DType.i16: I16,
    DType.i32: I32,
    DType.i64: I64,
    DType.u8: I8,
    DType.u16: I16,
    DType.u32: I32,
    DType.u64: I64,
    DType.f16: F32,
    DType.bf16: F32,
    DType.f32: F32,
    DType.f64: F64,
}
_MEM = {**_REG, DType.bool: I8, DType.f16: F16, DType.bf16: I16}


def reg_type(dtype: DType) -> ir.Type:
    return _REG[dtype]


def mem_type(dtype: DType) -> ir.Type:
    return _MEM[dtype]


def i64(n: int) -> ir.Constant:
    return ir.Constant(I64, n)


def const(dtype: DType, value: bool | int | float) -> ir.Constant:
    """A register constant of ``dtype``."""
    if dtype.is_bool:
        return ir.Constant(I1, int(bool(value)))
    if dtype.is_int:
        # unsigned values are kept as the same bits in a signed LLVM integer
        bits = dtype.itemsize * 8
        return ir.Constant(reg_type(dtype), int(value) & ((1 << bits) - 1))
    if dtype.is_16bit_float:
        value = float(np.asarray(value, dtype=dtype.np).astype(np.float32))
    return ir.Constant(reg_type(dtype), float(value))


def load(b: ir.IRBuilder, ptr: ir.Value, dtype: DType, name: str = "") -> ir.Value:
    """Load one element; bool bytes become i1."""
    raw = b.load(ptr, typ=mem_type(dtype), name=name, align=dtype.itemsize)
    if dtype.is_bool:
        return b.icmp_unsigned("!=", raw, ir.Constant(I8, 0), name=name + ".b" if name else "")
    if dtype is DType.f16:
        return b.fpext(raw, F32)
    if dtype is DType.bf16:
        return b.bitcast(b.shl(b.zext(raw, I32), ir.Constant(I32, 16)), F32)
    return raw


def store(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value, dtype: DType) -> None:
    if dtype.is_bool:
        value = b.zext(value, I8)
    elif dtype.is_16bit_float:
        value = to_16bit(b, value, dtype)
    b.store(value, ptr, align=dtype.itemsize)


def to_16bit(b: ir.IRBuilder, x: ir.Value, dtype: DType) -> ir.Value:
    """The float32 register ``x`` rounded to nearest-even in ``dtype``'s memory form."""
    if dtype is DType.f16:
        return b.fptrunc(x, F16)
    bits = b.bitcast(x, I32)
    # Round to nearest even on the upper 16 bits; NaN keeps a quiet NaN, as
    # ml_dtypes' conversion does (the rounding add could carry it into inf).
    lsb = b.and_(b.lshr(bits, ir.Constant(I32, 16)), ir.Constant(I32, 1))
    rounded = b.add(bits, b.add(ir.Constant(I32, 0x7FFF), lsb))
    nan = b.fcmp_unordered("uno", x, x)
    quiet = b.or_(bits, ir.Constant(I32, 0x00400000))
    return b.trunc(b.lshr(b.select(nan, quiet, rounded), ir.Constant(I32, 16)), I16)


def round_16bit(b: ir.IRBuilder, x: ir.Value, dtype: DType) -> ir.Value:
    """``x`` (float32) rounded to ``dtype`` and held again in a float32 register."""
    if dtype is DType.f16:
        return b.fpext(b.fptrunc(x, F16), F32)
    return b.bitcast(b.shl(b.zext(to_16bit(b, x, dtype), I32), ir.Constant(I32, 16)), F32)


def elem_ptr(
    b: ir.IRBuilder, base: ir.Value, dtype: DType, index: ir.Value, name: str = ""
) -> ir.Value:
    return b.gep(base, [index], inbounds=True, source_etype=mem_type(dtype), name=name)


def byte_ptr(b: ir.IRBuilder, base: ir.Value, offset: int, name: str = "") -> ir.Value:
    if offset == 0:
        return base
    return b.gep(base, [i64(offset)], inbounds=True, source_etype=I8, name=name)


@contextmanager
def counted_loop(
    b: ir.IRBuilder, start: ir.Value, stop: ir.Value, name: str = "i", step: int = 1
) -> Iterator[ir.Value]:
    """``for name in range(start, stop, step)``: the body is emitted inside the block.

    The loop is written in rotated form (guard, then a do-while) so LLVM's
    vectorizer sees a canonical loop with a computable trip count.
    """
    fn = b.function
    pre = b.block
    body = fn.append_basic_block(f"{name}.body")
    done = fn.append_basic_block(f"{name}.done")
    b.cbranch(b.icmp_signed("<", start, stop), body, done)
    b.position_at_end(body)
    idx = b.phi(I64, name=name)
    idx.add_incoming(start, pre)
    yield idx
    nxt = b.add(idx, i64(step), name=f"{name}.next")
    idx.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, stop), body, done)
    b.position_at_end(done)


def alloca(
    b: ir.IRBuilder, ty: ir.Type, count: ir.Value | int | None = None, name: str = ""
) -> ir.Value:
    """A stack slot as an opaque pointer (llvmlite types alloca results)."""
    n = i64(count) if isinstance(count, int) else count
    slot = b.alloca(ty, n, name=name)
    # llvmlite types the result (ty*); with opaque pointers it is just ptr, and
    # retyping it lets typed GEPs into it store any element type.
    slot.type = PTR
    return slot


@contextmanager
def loop_nest(
    b: ir.IRBuilder, dims: list[int] | tuple[int, ...], name: str = "i"
) -> Iterator[list[ir.Value]]:
    """Nested counted loops over ``dims`` (outermost first); yields the indices."""
    managers = []
    indices: list[ir.Value] = []
    try:
        for d, n in enumerate(dims):
            cm = counted_loop(b, i64(0), i64(n), f"{name}{d}")
            indices.append(cm.__enter__())
            managers.append(cm)
        yield indices
    finally:
        for cm in reversed(managers):
            cm.__exit__(None, None, None)


def linear(
    b: ir.IRBuilder, indices: list[ir.Value], strides: list[int] | tuple[int, ...], offset: int = 0
) -> ir.Value:
    """offset + sum(index * stride), skipping zero strides."""
    acc: ir.Value = i64(offset)
    for idx, s in zip(indices, strides):
        if s:
            acc = b.add(acc, idx if s == 1 else b.mul(idx, i64(s)))
    return acc


def word_ptr(b: ir.IRBuilder, base: ir.Value, index: int, ety: ir.Type = I64) -> ir.Value:
    """&base[index] as an opaque pointer, whatever type llvmlite gave ``base``."""
    p = b.gep(base, [i64(index)], source_etype=ety)
    p.type = PTR
    return p
