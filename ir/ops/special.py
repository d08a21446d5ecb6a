"""Special functions (``scipy.special``) that cannot be built from other ops
without losing float64 accuracy: log-gamma and its derivatives, the inverse
error functions, the normal quantile and log-CDF, scaled Bessel functions.

Each follows SciPy's ufunc for values and NumPy's float rule for dtypes
(integers compute in float64, float32 stays float32). The cheaper relatives
(``ndtr``, ``erfcinv``, ``xlogy``, ``logsumexp``...) are composed from these
at trace time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special

from ..core import Literal, TensorType
from ..dtypes import DType
from .elementwise import define_unary
from .registry import Attr, OpDef, register
from .rules import resolve_ufunc, type_error

_SQRT_PI_2 = math.sqrt(math.pi) / 2
_SQRT_2PI = math.sqrt(2 * math.pi)


def _lit(like: Any, value: float) -> Literal:
    return Literal(value, like.type.dtype)


define_unary(
    "gammaln", scipy.special.gammaln, lambda b, ct, out, x: b.mul(ct, b.digamma(x)), like=np.exp
)
define_unary(
    "digamma",
    scipy.special.psi,
    lambda b, ct, out, x: b.mul(ct, b.polygamma(x, n=1)),
    like=np.exp,
    doc="scipy.special.digamma (psi)",
)
define_unary(
    "erfc",
    scipy.special.erfc,
    lambda b, ct, out, x: b.mul(ct, b.mul(b.exp(b.neg(b.mul(x, x))), -2 / math.sqrt(math.pi))),
    like=np.exp,
)
define_unary(
    "erfinv",
    scipy.special.erfinv,
    lambda b, ct, out, x: b.mul(ct, b.mul(b.exp(b.mul(out, out)), _SQRT_PI_2)),
    like=np.exp,
)
define_unary(
    "ndtri",
    scipy.special.ndtri,
    lambda b, ct, out, x: b.mul(ct, b.mul(b.exp(b.mul(b.mul(out, out), 0.5)), _SQRT_2PI)),
    like=np.exp,
    doc="inverse of the standard normal CDF",
)
# d/dx log Phi(x) = phi(x) / Phi(x) = exp(-x^2/2 - log Phi(x)) / sqrt(2 pi): no
# division, so it stays finite far into the left tail where Phi underflows.
define_unary(
    "log_ndtr",
    scipy.special.log_ndtr,
    lambda b, ct, out, x: b.mul(ct, b.div(b.exp(b.sub(b.mul(b.mul(x, x), -0.5), out)), _SQRT_2PI)),
    like=np.exp,
    doc="log of the standard normal CDF, accurate in the far left tail",
)
define_unary(
    "i0e",
    scipy.special.i0e,
    lambda b, ct, out, x: b.mul(ct, b.sub(b.i1e(x), b.mul(b.sign(x), out))),
    like=np.exp,
    doc="exponentially scaled modified Bessel function of order 0",
)


def _i1e_vjp(b: Any, ct: Any, out: Any, x: Any) -> Any:
    # i1e'(x) = i0e(x) - i1e(x) (sign(x) + 1/x); the limit at 0 is 1/2.
    at_zero = b.eq(x, _lit(x, 0.0))
    safe = b.select(at_zero, _lit(x, 1.0), x)
    slope = b.sub(b.i0e(x), b.mul(out, b.add(b.sign(x), b.div(_lit(x, 1.0), safe))))
    return b.mul(ct, b.select(at_zero, _lit(x, 0.5), slope))


define_unary(
    "i1e",
    scipy.special.i1e,
    _i1e_vjp,
    like=np.exp,
    doc="exponentially scaled modified Bessel function of order 1",
)


def _polygamma_rule(x: TensorType, *, n: int) -> TensorType:
    if n < 0:
        raise type_error(f"polygamma order n must be >= 0, got {n}")
    return TensorType(x.shape, resolve_ufunc(np.exp, [x.dtype])[-1])


def _polygamma_ref(x: np.ndarray, *, n: int) -> np.ndarray:
    dtype = _polygamma_rule(TensorType(x.shape, DType.from_numpy(x.dtype)), n=n).dtype.np
    return np.asarray(scipy.special.polygamma(n, x.astype(dtype, copy=False)), dtype=dtype)


register(
    OpDef(
        "polygamma",
        ("x",),
        (Attr("n", "int"),),
        _polygamma_rule,
        _polygamma_ref,
        lambda b, ct, out, x, *, n: (b.mul(ct, b.polygamma(x, n=n + 1)),),
        # Not "elementwise": the LLVM backend rewrites it into a series of
        # ops, which must happen before fusion would hide it in a body.
        frozenset({"pure"}),
        doc="scipy.special.polygamma with a static order n (n=0 is digamma)",
    )
)
