"""Elementwise ops on register values: the LLVM lowering table.

Each entry of ``SCALAR_OPS`` maps an op name to a function
``(emitter, out_dtype, *operands) -> ir.Value`` whose operands have already
been converted to the op's computation dtype (NumPy's ufunc loop: both
operands of ``add(i32, f32)`` become f64). Results follow NumPy exactly,
including NaN propagation in max/min, Python-style integer floor division and
remainder, and division by zero giving 0 for integers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import llvmlite.ir as ir
import numpy as np

from graphc.ir import DType, Literal, Node
from graphc.ir.dtypes import promote

from .irutil import F32, F64, I1, I32, I64, const, reg_type, round_16bit
from .mathlib import MathLib
from .special import EXPORTS, call_special

# fast-math flags used on float arithmetic: only contraction into FMAs. Never
# nnan/ninf (NaN and inf must propagate as in NumPy) and never reassoc outside
# reduction accumulators (results must not depend on vector width).
FLAGS = ("contract",)

ErrorHook = Callable[[ir.IRBuilder, ir.Value, int], None]


class ScalarEmitter:
    """Emits elementwise ops into a builder."""

    def __init__(self, b: ir.IRBuilder, math_lib: MathLib, on_error: ErrorHook | None = None):
        self.b = b
        self.math = math_lib
        self.on_error = on_error
        # the dtypes the current op's operands are computed in: integer ops
        # read their signedness from it (LLVM integers carry none)
        self.operand_dtypes: list[DType] = []

    def unsigned(self) -> bool:
        return bool(self.operand_dtypes) and self.operand_dtypes[0].is_unsigned

    # -- conversions ---------------------------------------------------------------
    def cast(self, v: ir.Value, src: DType, dst: DType) -> ir.Value:
        """NumPy's ``astype`` between register values."""
        b = self.b
        if src == dst:
            return v
        if dst.is_bool:
            if src.is_float:
                return b.fcmp_unordered("!=", v, ir.Constant(v.type, 0.0))
            return b.icmp_unsigned("!=", v, ir.Constant(v.type, 0))
        if dst.is_16bit_float:
            # Round once, from the widest exact form (int -> f32 is exact below
            # 2**24, and f16/bf16 overflow or lose those bits anyway).
            if src is DType.f64:
                return round_16bit(b, _f64_to_f32_round_to_odd(b, v), dst)
            wide = v if src.is_float else self.cast(v, src, DType.f32)
            return round_16bit(b, wide, dst)
        if src.is_16bit_float:
            # the register already holds the value exactly as a float32
            return self.cast(v, DType.f32, dst)
        if src.is_bool:
            return b.uitofp(v, reg_type(dst)) if dst.is_float else b.zext(v, reg_type(dst))
        if src.is_int and dst.is_int:
            if dst.itemsize > src.itemsize:
                widen = b.zext if src.is_unsigned else b.sext
                return widen(v, reg_type(dst))
            if dst.itemsize == src.itemsize:
                return v  # the same bits, read with the other signedness
            return b.trunc(v, reg_type(dst))
        if src.is_int:
            return (b.uitofp if src.is_unsigned else b.sitofp)(v, reg_type(dst))
        if dst.is_float:
            return b.fpext(v, F[dst]) if dst.itemsize > src.itemsize else b.fptrunc(v, F[dst])
        return _float_to_int(b, v, dst)

    def operand(self, x: ir.Value | Literal, src: DType, dst: DType) -> ir.Value:
        if isinstance(x, Literal):
            return const(dst, np.asarray(x.value, dtype=src.np).astype(dst.np).item())
        return self.cast(x, src, dst)

    # -- ops ---------------------------------------------------------------------------
    def emit(self, n: Node, args: list[tuple[Any, DType]]) -> ir.Value:
        """The value of elementwise node ``n`` given its operands ``(value, dtype)``."""
        out = n.outputs[0].type.dtype
        work = computation_dtypes(n.op, [d for _, d in args], out)
        vals = [self.operand(v, d, w) for (v, d), w in zip(args, work)]
        if n.op not in _MOVES_BITS and (out.is_16bit_float or any(w.is_16bit_float for w in work)):
            # NumPy's float16 loops (and ml_dtypes' bfloat16 ones) compute in
            # float32 and round the result: do exactly that, op by op, so a
            # fused kernel gives the same bits as separate ufunc calls.
            wide = [DType.f32 if w.is_16bit_float else w for w in work]
            vals = [self.cast(v, w, f) for v, w, f in zip(vals, work, wide)]
            self.operand_dtypes = wide
            result = SCALAR_OPS[n.op](self, DType.f32 if out.is_16bit_float else out, *vals)
            return round_16bit(self.b, result, out) if out.is_16bit_float else result
        self.operand_dtypes = work
        if n.op == "pow" and isinstance(args[1][0], Literal) and out.is_float:
            exponent = float(args[1][0].value)
            if exponent == 2.0:
                return self.b.fmul(vals[0], vals[0])
            if exponent == 0.5:
                # NumPy computes a scalar power 0.5 as sqrt, which differs from
                # C pow at -0.0 (-0.0) and -inf (nan).
                return SCALAR_OPS["sqrt"](self, out, vals[0])
        if n.op == "cast":
            return self.cast(vals[0], work[0], out)
        return SCALAR_OPS[n.op](self, out, *vals)

    # helpers used by the table
    def call(self, name: str, dtype: DType, *xs: ir.Value) -> ir.Value:
        return self.math.call(self.b, name, dtype, *xs)

    def intrinsic(self, name: str, *xs: ir.Value) -> ir.Value:
        return self.math.intrinsic(self.b, name, *xs)

    def fconst(self, dtype: DType, x: float) -> ir.Constant:
        return ir.Constant(reg_type(dtype), x)

    def isnan(self, x: ir.Value) -> ir.Value:
        return self.b.fcmp_unordered("uno", x, x)


F = {DType.f32: reg_type(DType.f32), DType.f64: reg_type(DType.f64)}
# ops that only move or pick values: 16-bit operands pass through unwidened
_MOVES_BITS = {"cast", "select", "stop_gradient"}


def _f64_to_f32_round_to_odd(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """float64 -> float32 rounded to odd: rounding that to 16 bits then gives
    the correctly rounded result (one rounding, as NumPy's double-to-half)."""
    near = b.fptrunc(v, F32)
    back = b.fpext(near, F64)
    inexact = b.fcmp_ordered("!=", back, v)
    bits = b.bitcast(near, I32)
    # When rounding went away from zero, step back one ulp toward zero.
    away = b.fcmp_ordered(">", _fabs64(b, back), _fabs64(b, v))
    stepped = b.select(away, b.sub(bits, ir.Constant(I32, 1)), bits)
    odd = b.or_(stepped, ir.Constant(I32, 1))
    return b.bitcast(b.select(inexact, odd, bits), F32)


def _fabs64(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    bits = b.bitcast(x, I64)
    return b.bitcast(b.and_(bits, ir.Constant(I64, (1 << 63) - 1)), F64)


def _float_to_int(b: ir.IRBuilder, v: ir.Value, dst: DType) -> ir.Value:
    """float -> int as NumPy's C casts compile on x86: narrow types convert
    through int32 (or int64 for u32) and keep the low bits; NaN and
    out-of-range values give the minimum integer of the converting type;
    never LLVM poison."""
    via = dst
    if dst.itemsize < 4:
        via = DType.i32
    elif dst is DType.u32:
        via = DType.i64
    if dst is DType.u64:
        # below 2**63 the signed conversion; above it, offset into signed range
        signed = _float_to_int(b, v, DType.i64)
        top = 2.0**63
        big = b.fcmp_ordered(">=", v, ir.Constant(v.type, top))
        shifted = _float_to_int(b, b.fsub(v, ir.Constant(v.type, top)), DType.i64)
        high = b.xor(shifted, ir.Constant(I64, -(2**63)))
        return b.select(big, high, signed)
    ty = reg_type(via)
    bits = via.itemsize * 8
    lo, hi = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1)
    ok = b.and_(
        b.fcmp_ordered(">=", v, ir.Constant(v.type, lo)),
        b.fcmp_ordered("<", v, ir.Constant(v.type, hi)),
    )
    safe = b.select(ok, v, ir.Constant(v.type, 0.0))
    result = b.select(ok, b.fptosi(safe, ty), ir.Constant(ty, -(2 ** (bits - 1))))
    return result if via == dst else b.trunc(result, reg_type(dst))


_UNARY_KEEP_INPUT = {"isnan", "isinf", "isfinite"}
_COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def computation_dtypes(op: str, inputs: list[DType], out: DType) -> list[DType]:
    """The dtypes operands are converted to before ``op`` computes."""
    if op in _UNARY_KEEP_INPUT or op == "cast":
        return list(inputs)
    if op in _COMPARISONS:
        common = promote(*inputs)
        return [common, common]
    if op == "select":
        return [DType.bool, out, out]
    if op == "div" and not out.is_float:
        return [out, out]
    return [out] * len(inputs)


# -- unary -----------------------------------------------------------------------------


def _float_math(name: str) -> Callable[..., ir.Value]:
    def lower(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
        return e.call(name, out, x)

    return lower


def _neg(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    if out.is_float:
        return e.b.fneg(x)
    if out.is_bool:
        return x  # NumPy has no bool negative; the type rule never asks for it
    return e.b.neg(x)


def _abs(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    if out.is_float:
        return e.intrinsic("fabs", x)
    if out.is_bool or out.is_unsigned:
        return x
    return e.b.select(e.b.icmp_signed("<", x, ir.Constant(x.type, 0)), e.b.neg(x), x)


def _sign(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    b = e.b
    if out.is_float:
        one = e.fconst(out, 1.0)
        zero = e.fconst(out, 0.0)
        pos = b.fcmp_ordered(">", x, zero)
        neg = b.fcmp_ordered("<", x, zero)
        # NaN propagates; both zeros give +0.0, as np.sign(-0.0) does.
        rest = b.select(b.fcmp_ordered("==", x, zero), zero, x)
        return b.select(pos, one, b.select(neg, e.fconst(out, -1.0), rest))
    if out.is_bool:
        return x
    zero = ir.Constant(x.type, 0)
    if out.is_unsigned:
        return b.zext(b.icmp_unsigned("!=", x, zero), x.type)
    pos = b.zext(b.icmp_signed(">", x, zero), x.type)
    neg = b.zext(b.icmp_signed("<", x, zero), x.type)
    return b.sub(pos, neg)


def _rounding(intrinsic: str) -> Callable[..., ir.Value]:
    def lower(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
        return e.intrinsic(intrinsic, x) if out.is_float else x

    return lower


def _sqrt(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    return e.intrinsic("sqrt", x)


def _rsqrt(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    return e.b.fdiv(e.fconst(out, 1.0), e.intrinsic("sqrt", x))


def _sigmoid(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    if out is DType.f32:
        return e.call("sigmoid", out, x)
    b = e.b
    ex = e.call("exp", out, b.fneg(e.intrinsic("fabs", x)))
    d = b.fadd(ex, e.fconst(out, 1.0))
    pos = b.fcmp_ordered(">=", x, e.fconst(out, 0.0))
    return b.select(pos, b.fdiv(e.fconst(out, 1.0), d), b.fdiv(ex, d))


def _not(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    return e.b.not_(x)


def _isnan(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    if not isinstance(x.type, (ir.FloatType, ir.DoubleType)):
        return ir.Constant(I1, 0)
    return e.isnan(x)


def _isinf(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    if not isinstance(x.type, (ir.FloatType, ir.DoubleType)):
        return ir.Constant(I1, 0)
    return e.b.fcmp_ordered("==", e.intrinsic("fabs", x), ir.Constant(x.type, math.inf))


def _isfinite(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    if not isinstance(x.type, (ir.FloatType, ir.DoubleType)):
        return ir.Constant(I1, 1)
    return e.b.fcmp_ordered("<", e.intrinsic("fabs", x), ir.Constant(x.type, math.inf))


# -- binary ------------------------------------------------------------------------------


def _arith(float_op: str, int_op: str) -> Callable[..., ir.Value]:
    def lower(e: ScalarEmitter, out: DType, x: ir.Value, y: ir.Value) -> ir.Value:
        if out.is_float:
            return getattr(e.b, float_op)(x, y, flags=FLAGS)
        if out.is_bool:
            # NumPy's bool add/mul are logical or/and.
            return e.b.or_(x, y) if int_op == "add" else e.b.and_(x, y)
        return getattr(e.b, int_op)(x, y)

    return lower


def _div(e: ScalarEmitter, out: DType, x: ir.Value, y: ir.Value) -> ir.Value:
    return e.b.fdiv(x, y)


def _extremum(kind: str) -> Callable[..., ir.Value]:
    def lower(e: ScalarEmitter, out: DType, x: ir.Value, y: ir.Value) -> ir.Value:
        b = e.b
        if out.is_float:
            return float_extremum(e, kind, x, y)
        if out.is_bool:
            return b.or_(x, y) if kind == "max" else b.and_(x, y)
        compare = b.icmp_unsigned if out.is_unsigned else b.icmp_signed
        return b.select(compare(">" if kind == "max" else "<", x, y), x, y)

    return lower


def float_extremum(e: ScalarEmitter, kind: str, x: ir.Value, y: ir.Value) -> ir.Value:
    """np.maximum / np.minimum exactly: NaN in either operand wins, and on a
    tie (+0.0 against -0.0) the second operand does. Not LLVM's maximum,
    which orders -0.0 below +0.0; this form is x86's max/min plus a NaN
    check, and vectorizes as well."""
    b = e.b
    wins = b.fcmp_ordered(">" if kind == "max" else "<", x, y)
    return b.select(b.or_(wins, e.isnan(x)), x, y)


def _int_divmod(e: ScalarEmitter, x: ir.Value, y: ir.Value) -> tuple[ir.Value, ir.Value]:
    """Python floor division and modulo; y == 0 gives (0, 0) as in NumPy, and
    MIN // -1 wraps instead of trapping."""
    b = e.b
    zero, one = ir.Constant(x.type, 0), ir.Constant(x.type, 1)
    is_zero = b.icmp_signed("==", y, zero)
    if e.unsigned():
        ys = b.select(is_zero, one, y)
        return (
            b.select(is_zero, zero, b.udiv(x, ys)),
            b.select(is_zero, zero, b.urem(x, ys)),
        )
    is_m1 = b.icmp_signed("==", y, ir.Constant(x.type, -1))
    bad = b.or_(is_zero, is_m1)
    ys = b.select(bad, one, y)
    q = b.sdiv(x, ys)
    r = b.srem(x, ys)
    # Truncation rounds toward zero; floor differs when the signs of r and y differ.
    adjust = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("<", b.xor(r, ys), zero))
    q = b.select(adjust, b.sub(q, one), q)
    r = b.select(adjust, b.add(r, ys), r)
    q = b.select(is_m1, b.neg(x), b.select(is_zero, zero, q))
    r = b.select(bad, zero, r)
    return q, r


def _float_divmod(e: ScalarEmitter, out: DType, x: ir.Value, y: ir.Value) -> tuple[Any, Any]:
    """NumPy's npy_divmod for floats: (floor quotient, remainder with y's sign)."""
    b = e.b
    zero = e.fconst(out, 0.0)
    mod = b.frem(x, y)
    div = b.fdiv(b.fsub(x, mod), y)
    fix = b.and_(
        b.fcmp_unordered("!=", mod, zero),
        b.xor(b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", mod, zero)),
    )
    mod = b.select(fix, b.fadd(mod, y), mod)
    div = b.select(fix, b.fsub(div, e.fconst(out, 1.0)), div)
    mod = b.select(b.fcmp_ordered("==", mod, zero), e.intrinsic("copysign", zero, y), mod)
    floor = e.intrinsic("floor", div)
    floor = b.select(
        b.fcmp_ordered(">", b.fsub(div, floor), e.fconst(out, 0.5)),
        b.fadd(floor, e.fconst(out, 1.0)),
        floor,
    )
    quot = b.select(
        b.fcmp_ordered("==", div, zero), e.intrinsic("copysign", zero, b.fdiv(x, y)), floor
    )
    y_zero = b.fcmp_ordered("==", y, zero)
    quot = b.select(y_zero, b.fdiv(x, y), quot)
    mod = b.select(y_zero, b.frem(x, y), mod)
    return quot, mod


def _floordiv(e: ScalarEmitter, out: DType, x: ir.Value, y: ir.Value) -> ir.Value:
    if out.is_float:
        return _float_divmod(e, out, x, y)[0]
    return _int_divmod(e, x, y)[0]


def _rem(e: ScalarEmitter, out: DType, x: ir.Value, y: ir.Value) -> ir.Value:
    if out.is_float:
        return _float_divmod(e, out, x, y)[1]
    return _int_divmod(e, x, y)[1]


def _pow(e: ScalarEmitter, out: DType, x: ir.Value, y: ir.Value) -> ir.Value:
    if out.is_float:
        return e.call("pow", out, x, y)
    if out.is_bool:
        return e.b.or_(x, e.b.not_(y))
    return _int_pow(e, x, y)


def _int_pow(e: ScalarEmitter, x: ir.Value, y: ir.Value) -> ir.Value:
    """Exponentiation by squaring; a negative exponent is an error, as in NumPy."""
    b = e.b
    ty = x.type
    zero, one = ir.Constant(ty, 0), ir.Constant(ty, 1)
    unsigned = e.unsigned()
    if e.on_error is not None and not unsigned:
        e.on_error(b, b.icmp_signed("<", y, zero), ERR_NEGATIVE_POWER)
    pre = b.block
    head = b.append_basic_block("pow.loop")
    done = b.append_basic_block("pow.done")
    b.branch(head)
    b.position_at_end(head)
    acc = b.phi(ty)
    base = b.phi(ty)
    exp = b.phi(ty)
    acc.add_incoming(one, pre)
    base.add_incoming(x, pre)
    exp.add_incoming(y, pre)
    odd = b.icmp_signed("!=", b.and_(exp, one), zero)
    acc2 = b.select(odd, b.mul(acc, base), acc)
    base2 = b.mul(base, base)
    exp2 = b.lshr(exp, one) if unsigned else b.ashr(exp, one)
    acc.add_incoming(acc2, head)
    base.add_incoming(base2, head)
    exp.add_incoming(exp2, head)
    b.cbranch(
        b.icmp_unsigned("!=", exp2, zero) if unsigned else b.icmp_signed(">", exp2, zero),
        head,
        done,
    )
    b.position_at_end(done)
    if unsigned:
        return b.select(b.icmp_unsigned("==", y, zero), one, acc2)
    return b.select(b.icmp_signed("<=", y, zero), one, acc2)


ERR_NEGATIVE_POWER = 2


def _bitwise(op: str) -> Callable[..., ir.Value]:
    def lower(e: ScalarEmitter, out: DType, x: ir.Value, y: ir.Value) -> ir.Value:
        return getattr(e.b, op)(x, y)

    return lower


def _compare(name: str) -> Callable[..., ir.Value]:
    pred = _COMPARISONS[name]

    def lower(e: ScalarEmitter, out: DType, x: ir.Value, y: ir.Value) -> ir.Value:
        if isinstance(x.type, (ir.FloatType, ir.DoubleType)):
            # != is true for NaN operands, every other comparison false.
            if pred == "!=":
                return e.b.fcmp_unordered(pred, x, y)
            return e.b.fcmp_ordered(pred, x, y)
        if x.type == I1 or e.unsigned():
            return e.b.icmp_unsigned(pred, x, y)
        return e.b.icmp_signed(pred, x, y)

    return lower


def _special(name: str) -> Callable[..., ir.Value]:
    def lower(e: ScalarEmitter, out: DType, *xs: ir.Value) -> ir.Value:
        return call_special(e.b.module, e.b, name, *xs)

    return lower


def _atan2(e: ScalarEmitter, out: DType, y: ir.Value, x: ir.Value) -> ir.Value:
    return e.call("atan2", out, y, x)


def _select(e: ScalarEmitter, out: DType, c: ir.Value, x: ir.Value, y: ir.Value) -> ir.Value:
    return e.b.select(c, x, y)


def _identity(e: ScalarEmitter, out: DType, x: ir.Value) -> ir.Value:
    return x


SCALAR_OPS: dict[str, Callable[..., ir.Value]] = {
    "neg": _neg, "abs": _abs, "sign": _sign, "not": _not,
    "floor": _rounding("floor"), "ceil": _rounding("ceil"), "round": _rounding("roundeven"),
    "sqrt": _sqrt, "rsqrt": _rsqrt, "sigmoid": _sigmoid,
    "isnan": _isnan, "isinf": _isinf, "isfinite": _isfinite,
    **{name: _float_math(name) for name in (
        "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "cbrt", "tanh", "sin", "cos",
        "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erf",
    )},
    "add": _arith("fadd", "add"), "sub": _arith("fsub", "sub"), "mul": _arith("fmul", "mul"),
    "div": _div, "pow": _pow, "max": _extremum("max"), "min": _extremum("min"),
    "atan2": _atan2, "rem": _rem, "floordiv": _floordiv,
    "and": _bitwise("and_"), "or": _bitwise("or_"), "xor": _bitwise("xor"),
    **{name: _compare(name) for name in _COMPARISONS},
    **{name: _special(name) for name in EXPORTS},
    "select": _select, "cast": _identity, "stop_gradient": _identity,
}  # fmt: skip
