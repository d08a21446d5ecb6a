"""Inverses of the regularized incomplete gamma and beta functions in their
last argument (``scipy.special.gammaincinv``, ``gammainccinv``,
``betaincinv``, ``betainccinv``): the quantile functions of the gamma and
beta laws.

Values are SciPy's. Derivatives follow from the implicit function theorem at
the result x: F(params, x) = y gives dx/dy = 1 / F_x and
dx/dparam = -F_param / F_x, with F_x the density in closed form and F_param
the summed derivatives of :mod:`.incomplete_grad`.

>>> import numpy as np
>>> from graphc.ir import GraphBuilder, f64, interpret
>>> b = GraphBuilder("f"); y = b.input(f64[2], "y")
>>> g = b.build([b.gammainc(2.0, b.gammaincinv(2.0, y))])
>>> np.round(interpret(g, np.array([0.25, 0.75]))[0], 12)
array([0.25, 0.75])
"""

from __future__ import annotations

from typing import Any

import scipy.special

from .elementwise import ELEMENTWISE
from .incomplete import _as_float, _beta_density, _differentiable, _gamma_density, _reference, _rule
from .registry import OpDef, register


def _gamma_inverse_vjp(sign: float) -> Any:
    # sign: +1 for the inverse of P, -1 for the inverse of Q = 1 - P.
    def vjp(b: Any, ct: Any, out: Any, a: Any, y: Any) -> tuple[Any, Any]:
        dtype = out.type.dtype
        af = _as_float(b, a, dtype)
        density = _gamma_density(b, af, out)
        ct_a = ct_y = None
        if _differentiable(a):
            ct_a = b.mul(ct, b.neg(b.div(b.gammainc_grad_a(af, out), density)))
        if _differentiable(y):
            ct_y = b.mul(ct, b.div(sign, density))
        return ct_a, ct_y

    return vjp


def _beta_inverse_vjp(sign: float) -> Any:
    def vjp(b: Any, ct: Any, out: Any, a: Any, bb: Any, y: Any) -> tuple[Any, Any, Any]:
        dtype = out.type.dtype
        af, bf = _as_float(b, a, dtype), _as_float(b, bb, dtype)
        density = _beta_density(b, af, bf, out)
        ct_a = ct_b = ct_y = None
        if _differentiable(a) or _differentiable(bb):
            da, db = b.betainc_grad(af, bf, out)
            if _differentiable(a):
                ct_a = b.mul(ct, b.neg(b.div(da, density)))
            if _differentiable(bb):
                ct_b = b.mul(ct, b.neg(b.div(db, density)))
        if _differentiable(y):
            ct_y = b.mul(ct, b.div(sign, density))
        return ct_a, ct_b, ct_y

    return vjp


for _name, _operands, _vjp, _doc in [
    ("gammaincinv", ("a", "y"), _gamma_inverse_vjp(1.0), "x with gammainc(a, x) = y"),
    ("gammainccinv", ("a", "y"), _gamma_inverse_vjp(-1.0), "x with gammaincc(a, x) = y"),
    ("betaincinv", ("a", "b", "y"), _beta_inverse_vjp(1.0), "x with betainc(a, b, x) = y"),
    ("betainccinv", ("a", "b", "y"), _beta_inverse_vjp(-1.0), "x with betaincc(a, b, x) = y"),
]:
    _ufunc = getattr(scipy.special, _name)
    register(
        OpDef(
            _name,
            _operands,
            (),
            _rule(_ufunc),
            _reference(_ufunc),
            _vjp,
            ELEMENTWISE,
            doc=f"scipy.special.{_name}: {_doc}",
        )
    )
