"""Regularized incomplete gamma and beta functions (``scipy.special.gammainc``,
``gammaincc``, ``betainc``) and Student's t distribution function (``stdtr``):
the distribution functions of the gamma, chi-square, beta and t laws.

Values and dtypes follow SciPy's ufuncs (integers compute in float64, float32
stays float32). The derivative in ``x`` is the density, in closed form and
computed in log space. The derivatives in the shape parameters have no
closed form: they are the ops of :mod:`.incomplete_grad`, which sum a series
or a continued fraction until it converges.

>>> import numpy as np
>>> from graphc.ir import GraphBuilder, f64, interpret
>>> b = GraphBuilder("f"); a = b.input(f64[2], "a")
>>> g = b.build([b.gammainc(a, 1.0), b.betainc(a, 2.0, 0.5)])
>>> [np.round(v, 6) for v in interpret(g, np.array([1.0, 2.0]))]
[array([0.632121, 0.264241]), array([0.75, 0.5 ])]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special

from ..core import Literal, TensorType, Value
from ..dtypes import DType
from .elementwise import ELEMENTWISE
from .registry import OpDef, register
from .rules import broadcast_shapes, resolve_ufunc


def _rule(ufunc: np.ufunc) -> Any:
    def rule(*operands: TensorType) -> TensorType:
        shape = broadcast_shapes(*(t.shape for t in operands))
        return TensorType(shape, resolve_ufunc(ufunc, [t.dtype for t in operands])[-1])

    return rule


def _reference(ufunc: np.ufunc) -> Any:
    rule = _rule(ufunc)

    def ref(*arrays: np.ndarray) -> np.ndarray:
        types = [TensorType(np.shape(x), DType.from_numpy(np.asarray(x).dtype)) for x in arrays]
        dtype = rule(*types).dtype.np
        # float16 operands compute in float64 and round once, like the backends.
        wide = [np.asarray(x, dtype=np.float64) for x in arrays]
        with np.errstate(all="ignore"):
            return np.asarray(ufunc(*wide)).astype(dtype)

    return ref


def _as_float(b: Any, v: Any, dtype: DType) -> Any:
    """``v`` as an operand of float dtype ``dtype`` (literals stay literals)."""
    if isinstance(v, Literal):
        return Literal(float(v.value), dtype)
    return v if v.type.dtype == dtype else b.cast(v, dtype=dtype)


def _differentiable(v: Any) -> bool:
    return isinstance(v, Value) and v.type.dtype.is_float


def _xlogy(b: Any, c: Any, y: Any, log: str = "log") -> Any:
    # c * log(y) with 0 * log(0) = 0, so the density at the edge of the
    # support is exp(0) = 1 for exponent 0, 0 or inf otherwise.
    return b.select(b.eq(c, 0.0), 0.0, b.mul(c, getattr(b, log)(y)))


def _gamma_density(b: Any, a: Any, x: Any) -> Any:
    """d/dx gammainc(a, x) = x^(a-1) e^-x / Gamma(a)."""
    return b.exp(b.sub(b.sub(_xlogy(b, b.sub(a, 1.0), x), x), b.gammaln(a)))


def _beta_density(b: Any, a: Any, bb: Any, x: Any) -> Any:
    """d/dx betainc(a, b, x) = x^(a-1) (1-x)^(b-1) / B(a, b)."""
    log_beta = b.sub(b.add(b.gammaln(a), b.gammaln(bb)), b.gammaln(b.add(a, bb)))
    powers = b.add(_xlogy(b, b.sub(a, 1.0), x), _xlogy(b, b.sub(bb, 1.0), b.neg(x), "log1p"))
    return b.exp(b.sub(powers, log_beta))


def _gamma_vjp(sign: float) -> Any:
    def vjp(b: Any, ct: Any, out: Any, a: Any, x: Any) -> tuple[Any, Any]:
        dtype = out.type.dtype
        af, xf = _as_float(b, a, dtype), _as_float(b, x, dtype)
        ct_a = ct_x = None
        if _differentiable(a):
            ct_a = b.mul(ct, b.mul(b.gammainc_grad_a(af, xf), sign))
        if _differentiable(x):
            ct_x = b.mul(ct, b.mul(_gamma_density(b, af, xf), sign))
        return ct_a, ct_x

    return vjp


def _betainc_vjp(b: Any, ct: Any, out: Any, a: Any, bb: Any, x: Any) -> tuple[Any, Any, Any]:
    dtype = out.type.dtype
    af, bf, xf = (_as_float(b, v, dtype) for v in (a, bb, x))
    ct_a = ct_b = ct_x = None
    if _differentiable(a) or _differentiable(bb):
        da, db = b.betainc_grad(af, bf, xf)
        ct_a = b.mul(ct, da) if _differentiable(a) else None
        ct_b = b.mul(ct, db) if _differentiable(bb) else None
    if _differentiable(x):
        ct_x = b.mul(ct, _beta_density(b, af, bf, xf))
    return ct_a, ct_b, ct_x


_DOCS = {
    "gammainc": "scipy.special.gammainc: regularized lower incomplete gamma function",
    "gammaincc": "scipy.special.gammaincc: regularized upper incomplete gamma function",
    "stdtr": "scipy.special.stdtr: Student t distribution function",
}


def _stdtr_vjp(b: Any, ct: Any, out: Any, df: Any, t: Any) -> tuple[Any, Any]:
    # stdtr(df, t) = 1/2 I_x(df/2, 1/2) for t < 0 and 1 - that for t > 0,
    # with x = df / (df + t^2).
    dtype = out.type.dtype
    dff, tf = _as_float(b, df, dtype), _as_float(b, t, dtype)
    t2 = b.mul(tf, tf)
    s = b.add(dff, t2)
    half = b.mul(dff, 0.5)
    log_beta = b.sub(
        b.add(b.gammaln(half), b.gammaln(Literal(0.5, dtype))), b.gammaln(b.add(half, 0.5))
    )
    ct_df = ct_t = None
    if _differentiable(t):
        # The density: sqrt(x)^(df+1) / (sqrt(df) B(df/2, 1/2)).
        log_pdf = b.sub(b.mul(b.log(b.div(dff, s)), b.mul(b.add(dff, 1.0), 0.5)), log_beta)
        ct_t = b.mul(ct, b.exp(b.sub(log_pdf, b.mul(b.log(dff), 0.5))))
    if _differentiable(df):
        x = b.div(dff, s)
        da, _ = b.betainc_grad(half, Literal(0.5, dtype), x)
        # dI/dx dx/ddf with 1 - x = t^2 / s taken directly (no cancellation).
        log_dens = b.sub(b.mul(b.sub(half, 1.0), b.log(x)), b.mul(b.log(b.div(t2, s)), 0.5))
        dens_dx = b.mul(b.exp(b.sub(log_dens, log_beta)), b.div(t2, b.mul(s, s)))
        lower = b.mul(b.add(b.mul(da, 0.5), dens_dx), 0.5)
        slope = b.neg(b.mul(b.sign(tf), lower))
        # At t = 0 (stdtr = 1/2) and t = +-inf (0 or 1) it does not depend on df.
        flat = b.emit("or", b.eq(tf, 0.0), b.isinf(tf))
        ct_df = b.mul(ct, b.select(flat, 0.0, slope))
    return ct_df, ct_t


for _name, _ufunc, _vjp in [
    ("gammainc", scipy.special.gammainc, _gamma_vjp(1.0)),
    ("gammaincc", scipy.special.gammaincc, _gamma_vjp(-1.0)),
    ("stdtr", scipy.special.stdtr, _stdtr_vjp),
]:
    register(
        OpDef(
            _name,
            ("df", "t") if _name == "stdtr" else ("a", "x"),
            (),
            _rule(_ufunc),
            _reference(_ufunc),
            _vjp,
            ELEMENTWISE,
            doc=_DOCS[_name],
        )
    )

register(
    OpDef(
        "betainc",
        ("a", "b", "x"),
        (),
        _rule(scipy.special.betainc),
        _reference(scipy.special.betainc),
        _betainc_vjp,
        ELEMENTWISE,
        doc="scipy.special.betainc: regularized incomplete beta function I_x(a, b)",
    )
)
