"""``scipy.stats`` densities on traced arrays, built from the special
functions: ``pdf``/``logpdf``/``cdf``/``logcdf``/``sf``/``logsf`` for
``norm``, ``t``, ``gamma``, ``beta``, ``chi2`` (through the incomplete gamma
and beta functions), ``expon`` and ``logistic``; ``laplace`` densities;
``poisson.pmf``/``logpmf``, ``dirichlet`` and ``multivariate_normal`` (via
Cholesky) densities.
Parameters broadcast like SciPy's; results are float64 as SciPy's are.
Outside the support the log-density is -inf; invalid parameters give NaN.

SciPy's methods are shared by every distribution (``rv_continuous.logpdf``),
so the hook dispatches on the distribution's name; a name or method without
a formula here raises :class:`UnsupportedError`.

>>> import numpy as np, scipy.stats, graphc as gc
>>> gc.grad(lambda m: scipy.stats.norm.logpdf(1.0, loc=m))(np.array(0.0))
array(1.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as sp

from graphc.ir import UnsupportedError

from .dispatch import as_tracer, error
from .ops import cast
from .scipy_hooks import intercept

_LOG_2PI = math.log(2 * math.pi)
NEG_INF = -math.inf


def _f64(x: Any) -> Any:
    return cast(x, np.float64) if hasattr(x, "trace") else np.asarray(x, dtype=np.float64)


# Standardized forms: z = (x - loc) / scale; each entry maps a method to a
# function of (z, *shapes). logpdf of the scaled law subtracts log(scale).
def _norm_logpdf(z: Any) -> Any:
    return -0.5 * z * z - 0.5 * _LOG_2PI


def _t_logpdf(z: Any, df: Any) -> Any:
    return (
        sp.gammaln((df + 1) / 2) - sp.gammaln(df / 2) - 0.5 * np.log(df * math.pi)
        - (df + 1) / 2 * np.log1p(z * z / df)
    )  # fmt: skip


def _support(inside: Any, value: Any) -> Any:
    return np.where(inside, value, NEG_INF)


def _gamma_logpdf(z: Any, a: Any) -> Any:
    positive = z > 0
    safe = np.where(positive, z, 1.0)
    value = sp.xlogy(a - 1, safe) - safe - sp.gammaln(a)
    at_zero = np.where(a == 1, 0.0, np.where(a < 1, math.inf, NEG_INF))
    return np.where(positive, value, np.where(z == 0, at_zero, NEG_INF))


def _beta_logpdf(z: Any, a: Any, b: Any) -> Any:
    inside = (z > 0) & (z < 1)
    safe = np.where(inside, z, 0.5)
    value = (
        sp.xlogy(a - 1, safe) + sp.xlog1py(b - 1, -safe)
        - (sp.gammaln(a) + sp.gammaln(b) - sp.gammaln(a + b))
    )  # fmt: skip
    return _support(inside, value)


def _chi2_logpdf(z: Any, df: Any) -> Any:
    return _gamma_logpdf(z / 2, df / 2) - math.log(2)


def _expon_logpdf(z: Any) -> Any:
    return _support(z >= 0, -z)


def _logistic_logpdf(z: Any) -> Any:
    return -np.abs(z) - 2 * np.log1p(np.exp(-np.abs(z)))


def _laplace_logpdf(z: Any) -> Any:
    return -np.abs(z) - math.log(2)


def _logistic_logcdf(z: Any) -> Any:
    return -np.logaddexp(0.0, -z)


# Distribution functions. Outside the support they are 0 or 1 exactly; the
# operand is made safe there so gradients stay finite (the select then picks
# the constant). Upper tails use the upper functions (gammaincc, the t law's
# symmetry, I_(1-x)(b, a)), so sf and logsf keep relative accuracy where the
# cdf is close to 1.
def _gamma_tails(z: Any, a: Any) -> tuple[Any, Any]:
    positive = z > 0
    safe = np.where(positive, z, 1.0)
    return (
        np.where(positive, sp.gammainc(a, safe), 0.0),
        np.where(positive, sp.gammaincc(a, safe), 1.0),
    )


def _beta_tails(z: Any, a: Any, b: Any) -> tuple[Any, Any]:
    inside = (z > 0) & (z < 1)
    safe = np.where(inside, z, 0.5)
    below = z <= 0
    return (
        np.where(inside, sp.betainc(a, b, safe), np.where(below, 0.0, 1.0)),
        np.where(inside, sp.betainc(b, a, 1.0 - safe), np.where(below, 1.0, 0.0)),
    )


def _chi2_tails(z: Any, df: Any) -> tuple[Any, Any]:
    return _gamma_tails(z * 0.5, df * 0.5)


def _t_tails(z: Any, df: Any) -> tuple[Any, Any]:
    return sp.stdtr(df, z), sp.stdtr(df, -z)


def _log_tail(near: Any, far: Any) -> Any:
    # log(near), through log1p(-far) where near is close to 1 (there the
    # rounding of near would swamp the answer). Each branch gets an operand
    # that is safe for it, so the other branch's gradient is not NaN.
    big = near > 0.5
    return np.where(big, np.log1p(-np.where(big, far, 0.0)), np.log(np.where(big, 1.0, near)))


def _tails(fn: Callable[..., tuple[Any, Any]]) -> dict[str, Callable[..., Any]]:
    return {
        "cdf": lambda *args: fn(*args)[0],
        "sf": lambda *args: fn(*args)[1],
        "logcdf": lambda *args: _log_tail(*fn(*args)),
        "logsf": lambda *args: _log_tail(*reversed(fn(*args))),
    }


def _expon_sf(z: Any) -> Any:
    return np.where(z >= 0, np.exp(-np.maximum(z, 0.0)), 1.0)


CONTINUOUS: dict[str, dict[str, Callable[..., Any]]] = {
    "norm": {
        "logpdf": _norm_logpdf,
        "cdf": sp.ndtr,
        "logcdf": sp.log_ndtr,
        "sf": lambda z: sp.ndtr(-z),
        "logsf": lambda z: sp.log_ndtr(-z),
    },
    "t": {"logpdf": _t_logpdf, **_tails(_t_tails)},
    "gamma": {"logpdf": _gamma_logpdf, **_tails(_gamma_tails)},
    "beta": {"logpdf": _beta_logpdf, **_tails(_beta_tails)},
    "chi2": {"logpdf": _chi2_logpdf, **_tails(_chi2_tails)},
    "expon": {
        "logpdf": _expon_logpdf,
        "sf": _expon_sf,
        "cdf": lambda z: 1.0 - _expon_sf(z),
        "logsf": lambda z: np.where(z >= 0, -np.maximum(z, 0.0), 0.0),
    },
    "logistic": {
        "logpdf": _logistic_logpdf,
        "cdf": sp.expit,
        "sf": lambda z: sp.expit(-z),
        "logcdf": _logistic_logcdf,
        "logsf": lambda z: _logistic_logcdf(-z),
    },
    "laplace": {"logpdf": _laplace_logpdf},
}


# The shape parameters' valid ranges (SciPy's _argcheck); elsewhere NaN.
ARGCHECK: dict[str, Callable[..., Any]] = {
    "t": lambda df: df > 0,
    "gamma": lambda a: a > 0,
    "chi2": lambda df: df > 0,
    "beta": lambda a, b: (a > 0) & (b > 0),
}


def _split(dist: Any, args: tuple[Any, ...], kwds: dict[str, Any], discrete: bool) -> Any:
    names = [s.strip() for s in (dist.shapes or "").split(",") if s.strip()]
    values = list(args)
    shapes = []
    for name in names:
        shapes.append(values.pop(0) if values else kwds.pop(name))
    loc = values.pop(0) if values else kwds.pop("loc", 0.0)
    scale = 1.0 if discrete else (values.pop(0) if values else kwds.pop("scale", 1.0))
    if values or kwds:
        raise error(UnsupportedError, f"scipy.stats.{dist.name}: unexpected arguments")
    return [_f64(s) for s in shapes], _f64(loc), _f64(scale)


def _continuous(method: str) -> Callable[..., Any]:
    def impl(self: Any, x: Any, *args: Any, **kwds: Any) -> Any:
        table = CONTINUOUS.get(self.name, {})
        want = "logpdf" if method == "pdf" else method
        if want not in table:
            raise error(
                UnsupportedError,
                f"scipy.stats.{self.name}.{method} is not supported on traced arrays",
                hint="supported: "
                + ", ".join(f"{k}.{m}" for k, v in CONTINUOUS.items() for m in v),
            )
        shapes, loc, scale = _split(self, args, kwds, discrete=False)
        valid = scale > 0
        scale = np.where(valid, scale, 1.0)  # the result is NaN there anyway
        z = (_f64(x) - loc) / scale
        value = table[want](z, *shapes)
        if want == "logpdf":
            value = value - np.log(scale)
            if method == "pdf":
                value = np.exp(value)
        # Non-positive scales and shapes out of range are invalid, as in SciPy.
        check = ARGCHECK.get(self.name)
        if check is not None:
            valid = valid & check(*shapes)
        value = np.where(np.isnan(z), math.nan, value)
        return np.where(valid, value, math.nan)

    return impl


for _method in ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"):
    intercept("scipy.stats._distn_infrastructure", f"rv_continuous.{_method}")(_continuous(_method))


def _discrete(method: str) -> Callable[..., Any]:
    def impl(self: Any, k: Any, *args: Any, **kwds: Any) -> Any:
        if self.name != "poisson":
            raise error(
                UnsupportedError,
                f"scipy.stats.{self.name}.{method} is not supported on traced arrays",
                hint="supported discrete distribution: poisson (pmf, logpmf)",
            )
        (mu,), loc, _ = _split(self, args, kwds, discrete=True)
        k = _f64(k) - loc
        valid = (k >= 0) & (k == np.floor(k))
        safe = np.where(valid, k, 0.0)
        value = np.where(valid, sp.xlogy(safe, mu) - sp.gammaln(safe + 1) - mu, NEG_INF)
        return np.exp(value) if method == "pmf" else value

    return impl


for _method in ("pmf", "logpmf"):
    intercept("scipy.stats._distn_infrastructure", f"rv_discrete.{_method}")(_discrete(_method))


def _dirichlet_logpdf(self: Any, x: Any, alpha: Any) -> Any:
    x, alpha = _f64(x), _f64(alpha)
    # SciPy puts the components on the first axis of x.
    a = np.reshape(alpha, alpha.shape + (1,) * (x.ndim - 1))
    norm = np.sum(sp.gammaln(alpha)) - sp.gammaln(np.sum(alpha))
    return np.sum(sp.xlogy(a - 1, x), axis=0) - norm


intercept("scipy.stats._multivariate", "dirichlet_gen.logpdf")(_dirichlet_logpdf)
intercept("scipy.stats._multivariate", "dirichlet_gen.pdf")(
    lambda self, x, alpha: np.exp(_dirichlet_logpdf(self, x, alpha))
)


def _mvn_logpdf(
    self: Any, x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False
) -> Any:
    from .decomp_functions import cholesky, solve_triangular

    if allow_singular:
        raise error(
            UnsupportedError,
            "scipy.stats.multivariate_normal: allow_singular=True is not supported on traced "
            "arrays (the density uses a Cholesky factor)",
        )
    x = _f64(x)
    mean = _f64(0.0 if mean is None else mean)
    d = x.shape[-1] if x.ndim else 1
    cov = _f64(cov)
    if cov.ndim < 2:
        cov = np.eye(d) * cov if cov.ndim == 0 else np.diag(cov) * 1.0
    chol = cholesky(as_tracer(cov, x, mean))
    diff = np.reshape(x - mean, (-1, d))
    z = solve_triangular(chol, np.transpose(diff), lower=True)
    logdet = 2 * np.sum(np.log(np.diagonal(chol)))
    out = -0.5 * (np.sum(z * z, axis=0) + logdet + d * _LOG_2PI)
    # SciPy squeezes a single point to a scalar.
    shape = np.shape(x)[:-1] if x.ndim > 1 else ()
    return np.reshape(out, shape)


intercept("scipy.stats._multivariate", "multivariate_normal_gen.logpdf")(_mvn_logpdf)
intercept("scipy.stats._multivariate", "multivariate_normal_gen.pdf")(
    lambda self, *args, **kwargs: np.exp(_mvn_logpdf(self, *args, **kwargs))
)
