"""check_grads: compare graphc's derivatives with central finite differences."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ir import GraphcError, InputError

from .api import grad
from .pytree import tree_flatten, tree_unflatten
from .tracing.trace import input_names


class GradientCheckError(GraphcError, AssertionError):
    """Analytic and numeric derivatives disagree beyond the tolerance."""


@dataclass(frozen=True)
class GradCheckRow:
    """One directional-derivative comparison. ``error`` is relative; ``ok`` also
    allows the absolute slack ``atol`` for derivatives near zero."""

    order: int
    input: str
    analytic: float
    numeric: float
    error: float
    ok: bool = True

    def line(self) -> str:
        return (
            f"  {self.order}  {self.input:<24} {self.analytic: .10e} {self.numeric: .10e} "
            f"{self.error:.2e}{'' if self.ok else '  <- fails'}"
        )


def _is_float(x: Any) -> bool:
    dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
    return bool(np.dtype(dtype).kind == "f")


def _as_f64(x: Any) -> Any:
    if isinstance(x, float) or (isinstance(x, np.ndarray) and x.dtype.kind == "f"):
        return np.asarray(x, np.float64)
    return x


def _scalarize(
    f: Callable[..., Any], args: Sequence[Any], rng: np.random.Generator
) -> Callable[..., Any]:
    """``f`` contracted with a fixed random cotangent, so the check covers every output."""
    out_leaves = tree_flatten(f(*args))[0]
    weights = [rng.standard_normal(np.shape(o)) for o in out_leaves]

    def scalar(*a: Any) -> Any:
        leaves = tree_flatten(f(*a))[0]
        total: Any = 0.0
        for leaf, w in zip(leaves, weights):
            if _is_float(leaf):
                total = total + np.sum(leaf * w)
        return total

    return scalar


def check_grads(
    f: Callable[..., Any],
    args: Sequence[Any],
    order: int = 1,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float | None = None,
    seed: int = 0,
    kwargs: dict[str, Any] | None = None,
) -> list[GradCheckRow]:
    """Check derivatives of ``f`` at ``args`` up to ``order`` (1 or 2).

    ``kwargs`` are passed to ``f`` and not differentiated (a dict beside the
    ``args`` tuple, so they cannot clash with this function's own options).
    Floats are promoted to float64. Each float input leaf is probed along a
    random direction; the directional derivative from graphc is compared with
    a central difference. A comparison fails when
    ``|analytic - numeric| > rtol * max(|analytic|, |numeric|) + atol``; the
    default ``atol`` is the rounding noise of the difference quotient,
    ``10 * machine_eps / eps * max(1, |f|)`` (about ``2e-9 * max(1, |f|)``).
    Raises :class:`GradientCheckError` with a table of the worst relative
    error per input when any comparison fails; otherwise returns the rows.

    >>> import numpy as np
    >>> rows = check_grads(lambda x: np.tanh(x).sum(), (np.array([0.3, -1.2]),), order=2)
    >>> max(r.error for r in rows) < 1e-5
    True
    >>> _ = check_grads(lambda x, k=1.0: np.sin(k * x), (0.5,), kwargs={"k": 3.0})
    """
    if order not in (1, 2):
        raise InputError(f"check_grads: order must be 1 or 2, got {order!r}")
    if kwargs:
        f = functools.partial(f, **kwargs)
    rng = np.random.default_rng(seed)
    leaves, treedef = tree_flatten(list(args))
    args = tuple(tree_unflatten(treedef, [_as_f64(a) for a in leaves]))
    scalar = _scalarize(f, args, rng)
    names = input_names(f, list(args))
    if atol is None:
        # Rounding in f(x + eps u) - f(x - eps u) is a few ulps of |f|, divided by eps.
        scale = max(1.0, abs(float(np.asarray(scalar(*args)))))
        atol = 10 * float(np.finfo(np.float64).eps) / eps * scale
    rows = _check_order(scalar, args, names, rng, eps, rtol, atol, order=1)
    if order == 2:
        # Second derivatives: the gradient of <grad f, d> for a random d is a
        # Hessian-vector product, checked like any first derivative.
        directions = _directions(args, rng)
        gradient = grad(scalar, argnums=_float_argnums(args))

        def projected(*a: Any) -> Any:
            total: Any = 0.0
            for gl, d in zip(tree_flatten(list(gradient(*a)))[0], directions):
                total = total + np.sum(gl * d)
            return total

        rows += _check_order(projected, args, names, rng, eps, rtol, atol, order=2)
    worst: dict[tuple[int, str], GradCheckRow] = {}
    for r in rows:
        key = (r.order, r.input)
        if key not in worst or r.error > worst[key].error:
            worst[key] = r
    failures = [r for r in rows if not r.ok]
    for r in failures:
        worst[(r.order, r.input)] = r
    if failures:
        table = "\n".join(r.line() for r in sorted(worst.values(), key=lambda r: -r.error))
        raise GradientCheckError(
            f"gradient check failed (rtol {rtol:g}); worst relative error per input:\n"
            f"  order input                    analytic           numeric            error\n"
            f"{table}"
        )
    return list(worst.values())


def _float_argnums(args: Sequence[Any]) -> tuple[int, ...]:
    """Positions of the arguments made only of float leaves (those get checked)."""
    nums = tuple(
        i
        for i, a in enumerate(args)
        if tree_flatten(a)[0] and all(_is_float(x) for x in tree_flatten(a)[0])
    )
    if not nums:
        raise InputError(
            "check_grads needs at least one argument made of float arrays (integer and bool "
            "arguments have no gradient)"
        )
    return nums


def _leaf_span(args: Sequence[Any], position: int) -> range:
    start = sum(len(tree_flatten(a)[0]) for a in args[:position])
    return range(start, start + len(tree_flatten(args[position])[0]))


def _directions(args: Sequence[Any], rng: np.random.Generator) -> list[Any]:
    """One random direction per differentiated leaf, in gradient order."""
    return [
        rng.standard_normal(np.shape(x))
        for a in _float_argnums(args)
        for x in tree_flatten(args[a])[0]
    ]


def _check_order(
    scalar: Callable[..., Any],
    args: Sequence[Any],
    names: Sequence[str],
    rng: np.random.Generator,
    eps: float,
    rtol: float,
    atol: float,
    order: int,
) -> list[GradCheckRow]:
    leaves, treedef = tree_flatten(list(args))
    argnums = _float_argnums(args)
    gradient = grad(scalar, argnums=argnums)(*args)
    g_iter = iter(tree_flatten(list(gradient))[0])
    differentiated = {i for a in argnums for i in _leaf_span(args, a)}
    rows = []
    for i, x in enumerate(leaves):
        if i not in differentiated:
            continue
        g = next(g_iter)
        u = rng.standard_normal(np.shape(x))
        analytic = float(np.sum(np.asarray(g) * u))

        def at(step: float, i: int = i, u: Any = u) -> float:
            moved = list(leaves)
            moved[i] = np.asarray(leaves[i]) + step * u
            return float(np.asarray(scalar(*tree_unflatten(treedef, moved))))

        numeric = (at(eps) - at(-eps)) / (2 * eps)
        diff = abs(analytic - numeric)
        scale = max(abs(analytic), abs(numeric))
        ok = diff <= rtol * scale + atol
        error = diff / scale if scale else 0.0
        rows.append(GradCheckRow(order, names[i], analytic, numeric, error, ok))
    return rows
