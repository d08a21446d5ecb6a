"""``scipy.special`` on traced arrays.

The ufuncs with an IR op of their own (gammaln, digamma, erfc, erfinv,
ndtri, log_ndtr, i0e, i1e, the incomplete gamma and beta functions and
their inverses, stdtr) map to it directly; the others are composed from
ops here, each written so that it keeps SciPy's values at the edges (0, the
infinities) and its gradient stays finite where SciPy's function is smooth.
``logsumexp``, ``softmax``, ``log_softmax`` and ``polygamma`` are Python
functions in SciPy and are intercepted through :mod:`.scipy_hooks`.

>>> import numpy as np, scipy.special, graphc as gc
>>> float(gc.jit(scipy.special.logsumexp, backend="numpy")(np.zeros(4)) - np.log(4))
0.0
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special as sp

from graphc.ir import OpTypeError, UnsupportedError

from .array import TracedArray
from .dispatch import as_tracer, error, normalize_axis, static_int
from .ops import cast, emit
from .scipy_hooks import intercept
from .ufunc_composites import COMPOSITE
from .ufuncs import DIRECT

DIRECT.update(
    {
        sp.gammaln: "gammaln",
        sp.psi: "digamma",
        sp.erfc: "erfc",
        sp.erfinv: "erfinv",
        sp.ndtri: "ndtri",
        sp.log_ndtr: "log_ndtr",
        sp.i0e: "i0e",
        sp.i1e: "i1e",
        sp.gammainc: "gammainc",
        sp.gammaincc: "gammaincc",
        sp.betainc: "betainc",
        sp.stdtr: "stdtr",
        sp.gammaincinv: "gammaincinv",
        sp.gammainccinv: "gammainccinv",
        sp.betaincinv: "betaincinv",
        sp.betainccinv: "betainccinv",
    }
)


def _xlogy(x: Any, y: Any) -> Any:
    # 0 * log(0) is 0; the safe y keeps the unused branch's gradient finite.
    zero = (x == 0) & ~np.isnan(y)
    safe = np.where(zero, np.ones_like(y), y)
    return np.where(zero, np.zeros_like(x), x * np.log(safe))


def _xlog1py(x: Any, y: Any) -> Any:
    zero = (x == 0) & ~np.isnan(y)
    safe = np.where(zero, np.zeros_like(y), y)
    return np.where(zero, np.zeros_like(x), x * np.log1p(safe))


def _entr(x: Any) -> Any:
    positive = x > 0
    safe = np.where(positive, x, np.ones_like(x))
    edge = np.where(x == 0, np.zeros_like(x), np.full_like(x, -math.inf))
    return np.where(positive, -x * np.log(safe), np.where(np.isnan(x), x, edge))


def _ndtr(x: Any) -> Any:
    # erfc keeps full relative accuracy in the left tail, where Phi is tiny.
    return 0.5 * sp.erfc(x * -math.sqrt(0.5))


def _erfcinv(y: Any) -> Any:
    # erfc(x) = 2 Phi(-x sqrt 2), so the inverse is a scaled ndtri: accurate
    # for tiny y, where erfinv(1 - y) would round 1 - y.
    return sp.ndtri(y * 0.5) * -math.sqrt(0.5)


def _logit(x: Any) -> Any:
    return np.log(x) - np.log1p(-x)


def _chdtr(v: Any, x: Any) -> Any:
    return sp.gammainc(v * 0.5, x * 0.5)


def _chdtrc(v: Any, x: Any) -> Any:
    return sp.gammaincc(v * 0.5, x * 0.5)


def _gdtr(a: Any, b: Any, x: Any) -> Any:
    # SciPy's gdtr is NaN for x < 0 even where a * x is not negative.
    return np.where(x < 0, np.nan, sp.gammainc(b, a * x))


def _gdtrc(a: Any, b: Any, x: Any) -> Any:
    return np.where(x < 0, np.nan, sp.gammaincc(b, a * x))


COMPOSITE.update(
    {
        sp.chdtr: _chdtr,
        sp.chdtrc: _chdtrc,
        sp.gdtr: _gdtr,
        sp.gdtrc: _gdtrc,
        sp.xlogy: _xlogy,
        sp.xlog1py: _xlog1py,
        sp.entr: _entr,
        sp.ndtr: _ndtr,
        sp.erfcinv: _erfcinv,
        sp.logit: _logit,
    }
)


@intercept("scipy.special", "polygamma")
def polygamma(n: Any, x: Any) -> Any:
    if isinstance(n, TracedArray):
        raise error(
            UnsupportedError,
            "scipy.special.polygamma: the order n must be a static integer, not a traced value",
        )
    orders = np.asarray(n)
    if orders.ndim:
        return np.stack([polygamma(int(k), x) for k in orders.ravel()]).reshape(
            orders.shape + np.shape(x)
        )
    order = static_int(int(orders), "polygamma order n")
    if order < 0:
        raise error(OpTypeError, f"scipy.special.polygamma: n must be >= 0, got {order}")
    x = as_tracer(x)
    # SciPy's polygamma is Python code over float64 ufuncs: float64 results.
    return cast(emit(x.trace, "polygamma", [x.trace.value_of(x)], n=order), np.float64)


def _float(x: Any) -> TracedArray:
    x = as_tracer(x)
    return x if np.dtype(x.dtype).kind == "f" else cast(x, np.float64)


@intercept("scipy.special", "logsumexp")
def logsumexp(
    a: Any, axis: Any = None, b: Any = None, keepdims: bool = False, return_sign: bool = False
) -> Any:
    a = _float(a)
    axes = normalize_axis(axis, a.ndim)
    if b is not None:
        b = np.broadcast_to(b, np.broadcast_shapes(a.shape, np.shape(b)))
        a = np.broadcast_to(a, b.shape)
    # The shift is a constant of the differentiation (its gradient cancels),
    # and -inf/inf maxima must not turn into NaN through inf - inf.
    m = np.max(a, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, np.zeros_like(m))
    e = np.exp(a - m)
    if b is not None:
        e = e * b
    s = np.sum(e, axis=axes, keepdims=True)
    if return_sign:
        sign = np.sign(s)
        out = np.log(np.abs(s)) + m
    else:
        out = np.log(s) + m
    if not keepdims:
        out = np.squeeze(out, axis=axes)
        if return_sign:
            sign = np.squeeze(sign, axis=axes)
    return (out, sign) if return_sign else out


@intercept("scipy.special", "softmax")
def softmax(x: Any, axis: Any = None) -> Any:
    x = _float(x)
    axes = normalize_axis(axis, x.ndim)
    z = x - np.max(x, axis=axes, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axes, keepdims=True)


@intercept("scipy.special", "log_softmax")
def log_softmax(x: Any, axis: Any = None) -> Any:
    x = _float(x)
    axes = normalize_axis(axis, x.ndim)
    z = x - np.max(x, axis=axes, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axes, keepdims=True))
