"""Transcendental functions for kernels.

float64 calls the C library (``exp``, ``tanh``...), which NumPy's float64
results match to an ulp or so. float32 hot paths (exp, expm1, log, log1p,
exp2, log2, log10, tanh, sigmoid) are written here in LLVM IR: range
reduction plus a short polynomial, branch-free (NaN, infinities, zeros and
subnormals are handled with selects), so LLVM inlines and vectorizes them. A
loop that calls a libm function cannot be vectorized, and elementwise work is
bound by exactly these functions.

Polynomial coefficients were fitted by weighted least squares on Chebyshev
nodes in float64 (relative error of the correction term below 2e-7, which
keeps each function within a few float32 ulp).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import llvmlite.ir as ir

from graphc.ir import DType

from .irutil import F32, F64, I32

# expm1(r) = r + r^2 * P(r) on [-ln2/2, ln2/2]
_EXP_P = (
    0.5,
    0.16666577756404877,
    0.041666943579912186,
    0.00836312584578991,
    0.0013893831055611372,
)
# 2*atanh(s) = 2s + s^3 * Q(s^2) for |s| <= 3 - 2*sqrt(2)
_LOG_Q = (0.6666666865348816, 0.4000011682510376, 0.28551188111305237, 0.2332327961921692)
_LN2_HI = 0.693145751953125  # ln 2 split so that n * hi is exact for |n| < 2^9
_LN2_LO = 1.428606765330187e-06
_LOG2E = 1.4426950408889634

LIBM_F64 = {
    "exp": "exp", "exp2": "exp2", "expm1": "expm1", "log": "log", "log2": "log2",
    "log10": "log10", "log1p": "log1p", "sin": "sin", "cos": "cos", "tan": "tan",
    "asin": "asin", "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh",
    "tanh": "tanh", "asinh": "asinh", "acosh": "acosh", "atanh": "atanh", "erf": "erf",
    "cbrt": "cbrt", "pow": "pow", "atan2": "atan2", "fmod": "fmod",
}  # fmt: skip


class MathLib:
    """Per-module cache of math function declarations and definitions."""

    def __init__(self, module: ir.Module) -> None:
        self.module = module
        self._fns: dict[str, ir.Function] = {}

    # -- entry points ------------------------------------------------------------
    def call(self, b: ir.IRBuilder, name: str, dtype: DType, *args: ir.Value) -> ir.Value:
        """``name(*args)`` in ``dtype`` (f32 or f64)."""
        assert dtype.is_float, name
        fn = self._function(name, dtype, len(args))
        return b.call(fn, list(args))

    def intrinsic(self, b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
        ty = args[0].type
        suffix = "f32" if ty == F32 else "f64"
        full = f"llvm.{name}.{suffix}"
        fn = self.module.globals.get(full)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(ty, [ty] * len(args)), full)
        return b.call(fn, list(args))

    # -- internals -----------------------------------------------------------------
    def _function(self, name: str, dtype: DType, arity: int) -> ir.Function:
        key = f"{name}.{dtype}"
        found = self._fns.get(key)
        if found is not None:
            return found
        ty = F32 if dtype is DType.f32 else F64
        builder = _F32_BUILDERS.get(name) if dtype is DType.f32 else None
        if builder is not None:
            fn = ir.Function(self.module, ir.FunctionType(ty, [ty] * arity), f"graphc.{name}f")
            fn.linkage = "internal"
            fn.attributes.add("alwaysinline")
            fn.attributes.add("nounwind")
            b = ir.IRBuilder(fn.append_basic_block("entry"))
            b.ret(builder(_F32(self, b), *fn.args))
        else:
            cname = LIBM_F64[name] + ("f" if dtype is DType.f32 else "")
            fn = self.module.globals.get(cname) or ir.Function(
                self.module, ir.FunctionType(ty, [ty] * arity), cname
            )
        self._fns[key] = fn
        return fn


class _F32:
    """float32 building blocks, with ``contract`` so multiply-adds become FMAs."""

    FLAGS = ("contract",)

    def __init__(self, lib: MathLib, b: ir.IRBuilder) -> None:
        self.lib, self.b = lib, b

    def c(self, x: float) -> ir.Constant:
        return ir.Constant(F32, x)

    def add(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.b.fadd(x, y, flags=self.FLAGS)

    def sub(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.b.fsub(x, y, flags=self.FLAGS)

    def mul(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.b.fmul(x, y, flags=self.FLAGS)

    def div(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.b.fdiv(x, y)

    def fma(self, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
        return self.lib.intrinsic(self.b, "fma", x, y, z)

    def poly(self, x: ir.Value, coeffs: tuple[float, ...]) -> ir.Value:
        acc = self.c(coeffs[-1])
        for k in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, self.c(k))
        return acc

    def lt(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.b.fcmp_ordered("<", x, y)

    def gt(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.b.fcmp_ordered(">", x, y)

    def isnan(self, x: ir.Value) -> ir.Value:
        return self.b.fcmp_unordered("uno", x, x)

    def sel(self, cond: ir.Value, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.b.select(cond, x, y)

    def pow2(self, n: ir.Value) -> ir.Value:
        """2**n for an i32 n in [-75, 64] (normal range), by building the exponent."""
        biased = self.b.add(n, ir.Constant(I32, 127))
        return self.b.bitcast(self.b.shl(biased, ir.Constant(I32, 23)), F32)

    def scale(self, p: ir.Value, n: ir.Value) -> ir.Value:
        """p * 2**n for i32 n in [-150, 128], in two steps so subnormal and
        overflowing results round once, like a correctly scaled product."""
        half = self.b.ashr(n, ir.Constant(I32, 1))
        rest = self.b.sub(n, half)
        return self.mul(self.mul(p, self.pow2(half)), self.pow2(rest))

    def clamp(self, x: ir.Value, lo: float, hi: float) -> ir.Value:
        """x clamped to [lo, hi], with NaN mapped to 0 so later integer
        conversions never see it (the caller selects NaN back in)."""
        x = self.sel(self.gt(x, self.c(hi)), self.c(hi), x)
        x = self.sel(self.lt(x, self.c(lo)), self.c(lo), x)
        return self.sel(self.isnan(x), self.c(0.0), x)

    def expm1_reduced(self, r: ir.Value) -> ir.Value:
        """expm1(r) for |r| <= ln2/2."""
        return self.fma(self.mul(r, r), self.poly(r, _EXP_P), r)

    def reduce_exp(self, x: ir.Value) -> tuple[ir.Value, ir.Value]:
        """x = n ln2 + r with |r| <= ln2/2; x already clamped to [-104, 89]."""
        n = self.lib.intrinsic(self.b, "rint", self.mul(x, self.c(_LOG2E)))
        r = self.fma(n, self.c(-_LN2_HI), x)
        r = self.fma(n, self.c(-_LN2_LO), r)
        return r, self.b.fptosi(n, I32)

    def log_parts(self, x: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(e, log(m)) with x = m * 2**e, m in [sqrt(1/2), sqrt(2)), for finite x > 0."""
        b = self.b
        tiny = self.lt(x, self.c(1.1754943508222875e-38))
        xs = self.sel(tiny, self.mul(x, self.c(8388608.0)), x)
        bits = b.bitcast(xs, I32)
        e = b.sub(b.lshr(bits, ir.Constant(I32, 23)), ir.Constant(I32, 127))
        e = b.select(tiny, b.sub(e, ir.Constant(I32, 23)), e)
        mbits = b.or_(b.and_(bits, ir.Constant(I32, 0x007FFFFF)), ir.Constant(I32, 0x3F800000))
        m = b.bitcast(mbits, F32)
        big = self.gt(m, self.c(1.4142135381698608))
        m = self.sel(big, self.mul(m, self.c(0.5)), m)
        e = b.select(big, b.add(e, ir.Constant(I32, 1)), e)
        s = self.div(self.sub(m, self.c(1.0)), self.add(m, self.c(1.0)))
        z = self.mul(s, s)
        log_m = self.fma(self.mul(s, z), self.poly(z, _LOG_Q), self.add(s, s))
        return b.sitofp(e, F32), log_m

    def log_special(self, x: ir.Value, finite: ir.Value) -> ir.Value:
        """Patch log-like results at x <= 0, inf and NaN."""
        inf = self.c(math.inf)
        out = self.sel(self.b.fcmp_ordered("==", x, self.c(0.0)), self.c(-math.inf), finite)
        out = self.sel(self.lt(x, self.c(0.0)), self.c(math.nan), out)
        out = self.sel(self.b.fcmp_ordered("==", x, inf), inf, out)
        return self.sel(self.isnan(x), x, out)


def _exp(f: _F32, x: ir.Value) -> ir.Value:
    r, n = f.reduce_exp(f.clamp(x, -104.0, 89.0))
    out = f.scale(f.add(f.expm1_reduced(r), f.c(1.0)), n)
    out = f.sel(f.gt(x, f.c(88.72283935546875)), f.c(math.inf), out)
    out = f.sel(f.lt(x, f.c(-103.97208404541016)), f.c(0.0), out)
    return f.sel(f.isnan(x), x, out)


def _exp2(f: _F32, x: ir.Value) -> ir.Value:
    xc = f.clamp(x, -151.0, 129.0)
    n = f.lib.intrinsic(f.b, "rint", xc)
    r = f.mul(f.sub(xc, n), f.c(math.log(2)))
    out = f.scale(f.add(f.expm1_reduced(r), f.c(1.0)), f.b.fptosi(n, I32))
    out = f.sel(f.b.fcmp_ordered(">=", x, f.c(128.0)), f.c(math.inf), out)
    out = f.sel(f.lt(x, f.c(-150.0)), f.c(0.0), out)
    return f.sel(f.isnan(x), x, out)


def _expm1(f: _F32, x: ir.Value) -> ir.Value:
    r, n = f.reduce_exp(f.clamp(x, -104.0, 89.0))
    em = f.expm1_reduced(r)
    # Small n: 2^n * expm1(r) + (2^n - 1) keeps the relative accuracy near 0.
    # Large n: the -1 is below rounding, and 2^n alone could overflow early.
    s = f.scale(f.c(1.0), n)
    small = f.add(f.mul(s, em), f.sub(s, f.c(1.0)))
    large = f.scale(f.add(em, f.c(1.0)), n)
    out = f.sel(f.b.icmp_signed(">", n, ir.Constant(I32, 64)), large, small)
    out = f.sel(f.gt(x, f.c(88.72283935546875)), f.c(math.inf), out)
    out = f.sel(f.lt(x, f.c(-103.0)), f.c(-1.0), out)
    # The polynomial turns -0.0 into +0.0; expm1(-0.0) is -0.0.
    out = f.sel(f.b.fcmp_ordered("==", x, f.c(0.0)), x, out)
    return f.sel(f.isnan(x), x, out)


def _log(f: _F32, x: ir.Value) -> ir.Value:
    e, log_m = f.log_parts(x)
    finite = f.fma(e, f.c(_LN2_HI), f.fma(e, f.c(_LN2_LO), log_m))
    return f.log_special(x, finite)


def _log2(f: _F32, x: ir.Value) -> ir.Value:
    e, log_m = f.log_parts(x)
    return f.log_special(x, f.fma(log_m, f.c(_LOG2E), e))


def _log10(f: _F32, x: ir.Value) -> ir.Value:
    e, log_m = f.log_parts(x)
    finite = f.fma(e, f.c(math.log10(2)), f.mul(log_m, f.c(1 / math.log(10))))
    return f.log_special(x, finite)


def _log1p(f: _F32, x: ir.Value) -> ir.Value:
    # log1p(x) = log(u) * x / (u - 1) with u = 1 + x: the rounding error of u
    # cancels between the two factors.
    u = f.add(x, f.c(1.0))
    usafe = f.sel(f.lt(u, f.c(0.0)), f.c(1.0), u)
    logu = _log(f, usafe)
    ratio = f.div(x, f.sub(u, f.c(1.0)))
    out = f.sel(f.b.fcmp_ordered("==", u, f.c(1.0)), x, f.mul(logu, ratio))
    out = f.sel(f.b.fcmp_ordered("==", u, f.c(0.0)), f.c(-math.inf), out)
    out = f.sel(f.lt(u, f.c(0.0)), f.c(math.nan), out)
    out = f.sel(f.b.fcmp_ordered("==", x, f.c(math.inf)), x, out)
    return f.sel(f.isnan(x), x, out)


def _tanh(f: _F32, x: ir.Value) -> ir.Value:
    # tanh(x) = expm1(2x) / (expm1(2x) + 2), on |x| clamped where tanh is 1.
    ax = f.lib.intrinsic(f.b, "fabs", x)
    ax = f.sel(f.gt(ax, f.c(9.5)), f.c(9.5), ax)
    em = _expm1(f, f.add(ax, ax))
    t = f.div(em, f.add(em, f.c(2.0)))
    out = f.lib.intrinsic(f.b, "copysign", t, x)
    return f.sel(f.isnan(x), x, out)


def _sigmoid(f: _F32, x: ir.Value) -> ir.Value:
    # The same two-branch form as the reference, so neither side overflows.
    ax = f.lib.intrinsic(f.b, "fabs", x)
    e = _exp(f, f.b.fneg(ax))
    d = f.add(e, f.c(1.0))
    return f.sel(f.b.fcmp_ordered(">=", x, f.c(0.0)), f.div(f.c(1.0), d), f.div(e, d))


_F32_BUILDERS: dict[str, Callable[..., ir.Value]] = {
    "exp": _exp,
    "exp2": _exp2,
    "expm1": _expm1,
    "log": _log,
    "log2": _log2,
    "log10": _log10,
    "log1p": _log1p,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
}
