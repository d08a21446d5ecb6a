"""Special functions for kernels: SciPy's own C implementations.

``scipy.special.cython_special`` exports its scalar functions as C function
pointers (``double f(double..., int skip_dispatch)``). They are registered with
LLVM under fixed names (``graphc_sp_gammaln``...), so generated code and
cached objects refer to them by name, as with BLAS. float32 computes in
float64 and rounds once, as SciPy's float32 loops do. The results are
SciPy's to the bit.

``polygamma`` of order n >= 1 has no C entry point there; it is rewritten
into ordinary ops (:func:`polygamma_decomposition`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import llvmlite.binding as llvm
import llvmlite.ir as ir

from graphc.ir import DType, GraphBuilder, Literal, Node, Operand

from .blas import _capsule_pointer
from .irutil import F32, F64, I32

# IR op -> cython_special export (double version)
EXPORTS = {
    "gammaln": "gammaln",
    "digamma": "__pyx_fuse_1psi",
    "erfc": "__pyx_fuse_1erfc",
    "erfinv": "__pyx_fuse_0erfinv",
    "ndtri": "ndtri",
    "log_ndtr": "__pyx_fuse_1log_ndtr",
    "i0e": "i0e",
    "i1e": "i1e",
    "gammainc": "gammainc",
    "gammaincc": "gammaincc",
    "betainc": "__pyx_fuse_0betainc",
    "stdtr": "__pyx_fuse_0stdtr",
    "gammaincinv": "gammaincinv",
    "gammainccinv": "gammainccinv",
    "betaincinv": "__pyx_fuse_0betaincinv",
    "betainccinv": "__pyx_fuse_0betainccinv",
}


@functools.cache
def register_special() -> None:
    """Register the function pointers with LLVM (once per process)."""
    from scipy.special import cython_special

    capi = cython_special.__pyx_capi__
    for op, export in EXPORTS.items():
        llvm.add_symbol(f"graphc_sp_{op}", _capsule_pointer(capi[export]))


def call_special(module: ir.Module, b: ir.IRBuilder, op: str, *xs: ir.Value) -> ir.Value:
    """``op(*xs)`` for float32 or float64 registers ``xs`` (all of one type)."""
    register_special()
    name = f"graphc_sp_{op}"
    fn = module.globals.get(name) or ir.Function(
        module, ir.FunctionType(F64, [F64] * len(xs) + [I32]), name
    )
    narrow = xs[0].type == F32
    wide = [b.fpext(x, F64) if narrow else x for x in xs]
    out = b.call(fn, [*wide, ir.Constant(I32, 0)])
    return b.fptrunc(out, F32) if narrow else out


# psi^(n)(z) for large z: (-1)^(n+1) [(n-1)!/z^n + n!/(2 z^(n+1))
#   + sum_k B_2k (2k+n-1)! / ((2k)! z^(2k+n))]
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)
_SHIFT = 16  # terms of the recurrence before the series takes over (z >= x + 16)


def _cot_derivative(order: int) -> list[float]:
    """Coefficients (lowest first) of P_n with d^n/dy^n cot(y) = P_n(cot y):
    P_0(c) = c and P_(k+1)(c) = -(1 + c^2) P_k'(c)."""
    coefs = [0.0, 1.0]
    for _ in range(order):
        deriv = [k * c for k, c in enumerate(coefs)][1:] or [0.0]
        out = [0.0] * (len(deriv) + 2)
        for k, c in enumerate(deriv):
            out[k] -= c
            out[k + 2] -= c
        coefs = out
    return coefs


def polygamma_decomposition(
    b: GraphBuilder, n: Node, inputs: Sequence[Operand]
) -> Sequence[Operand]:
    """polygamma{n} as digamma (n = 0), else, for x >= 0, the recurrence
    psi^(n)(x) = psi^(n)(x + 1) - (-1)^n n! / x^(n+1), 16 times, then the
    asymptotic series at z = x + 16 (below 1e-16 relative from there on).
    Negative x use the reflection formula
    psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi^(n+1) P_n(cot(pi x)), with the
    cotangent taken of x - round(x) (exact) so large |x| keep their accuracy.
    Poles (x = 0, -1, ..., -inf) give (-1)^(n+1) inf, as in SciPy."""
    (x,) = inputs
    order = n.attrs["n"]
    out_dtype = n.outputs[0].type.dtype
    if order == 0:
        if not isinstance(x, Literal) and x.type.dtype != out_dtype:
            x = b.cast(x, dtype=out_dtype)
        return [b.digamma(x)]
    # float64 throughout: the recurrence cancels for negative x, and float32
    # then rounds once, as SciPy's float32 loop does.
    dtype = DType.f64
    if isinstance(x, Literal):
        x = Literal(float(x.value), dtype)
    elif x.type.dtype != dtype:
        x = b.cast(x, dtype=dtype)

    def lit(v: float) -> Literal:
        return Literal(v, dtype)

    negative = b.lt(x, lit(0.0))
    positive = _polygamma_positive(b, b.select(negative, b.sub(lit(1.0), x), x), order)
    frac = b.sub(x, b.round(x))
    # cos(pi r) as sin(pi (1/2 - |r|)): exactly 0 at half-integers, where the
    # odd-order terms of P_n then vanish as they should.
    cos = b.sin(b.mul(b.sub(lit(0.5), b.abs(frac)), lit(math.pi)))
    cot = b.div(cos, b.sin(b.mul(frac, lit(math.pi))))
    poly: Operand = lit(0.0)
    for c in reversed(_cot_derivative(order)):
        poly = b.add(b.mul(poly, cot), lit(c))
    sign = 1.0 if order % 2 == 0 else -1.0  # (-1)^n
    reflected = b.sub(b.mul(positive, lit(sign)), b.mul(poly, lit(math.pi ** (order + 1))))
    result = b.select(negative, reflected, positive)
    pole = b.emit("and", b.le(x, lit(0.0)), b.eq(b.floor(x), x))
    result = b.select(pole, lit(-sign * math.inf), result)
    return [result if out_dtype == dtype else b.cast(result, dtype=out_dtype)]


def _polygamma_positive(b: GraphBuilder, x: Operand, order: int) -> Operand:
    """psi^(n)(x) for x > 0 (order n >= 1) by recurrence and series."""
    dtype = DType.f64

    def lit(v: float) -> Literal:
        return Literal(v, dtype)

    sign = -1.0 if order % 2 == 0 else 1.0  # (-1)^(n+1)
    fact = float(math.factorial(order))
    z = b.add(x, lit(_SHIFT))
    inv = b.div(lit(1.0), z)
    inv2 = b.mul(inv, inv)
    # Horner over the Bernoulli terms, highest first.
    series: Operand = lit(0.0)
    for k in range(len(_BERNOULLI), 0, -1):
        coef = _BERNOULLI[k - 1] * math.factorial(2 * k + order - 1) / math.factorial(2 * k)
        series = b.mul(b.add(series, lit(coef)), inv2)
    head = b.add(lit(float(math.factorial(order - 1))), b.mul(inv, lit(fact / 2)))
    total = b.mul(b.add(head, series), b.pow(inv, lit(float(order))))
    total = b.mul(total, lit(sign))
    acc = None
    for k in range(_SHIFT):
        term = b.pow(b.add(x, lit(float(k))), lit(float(-(order + 1))))
        acc = term if acc is None else b.add(acc, term)
    assert acc is not None
    return b.add(total, b.mul(acc, lit(sign * fact)))
