"""How far a reference result may move when the float functions it calls
round differently.

NumPy and the LLVM backend compute exp, log, pow, tanh... to within a few
units in the last place (ulp), not correctly rounded, and not always the same
way (on CPUs with AVX-512, NumPy's float32 ``power`` is one ulp off at
``1e-5 ** 1e-5``, the C library's ``powf`` is not). Later ops can magnify such a difference without
bound: ``rem(pow(x, x), x)`` subtracts two nearly equal numbers, so one ulp of
``pow`` near 1 becomes a 1% change of the remainder. A fixed tolerance on the
final result is too tight for such graphs and too loose for all others.

:class:`RoundingSpread` evaluates the reference again with the output of each
such function moved by :data:`STEPS` ulp (all up, all down, and alternately up
and down), one function at a time. A backend result is accepted where it
matches one of these evaluations, or lies within the summed movements (first
order: each function's rounding contributes on its own). Exactly rounded ops
(add, mul, div, sqrt, rem, floor, casts...) are never moved, and neither are
zeros, infinities and NaNs, so a wrong special value, a wrong sign or a wrong
branch of rem or floor is still caught.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from graphc.ir import Graph, GraphcError, Literal, Node, get_op
from graphc.ir.interpret import run_node

# Ops whose float results NumPy or the backend only approximate.
INEXACT = frozenset(
    "exp exp2 expm1 log log2 log10 log1p sin cos tan asin acos atan atan2 sinh cosh "
    "tanh asinh acosh atanh erf cbrt pow sigmoid rsqrt".split()
)
# The LLVM backend's float32 functions stay within 4 ulp (test_llvm_math), and
# NumPy's SIMD ones within a few ulp as well.
STEPS = 4

Pattern = Callable[[tuple[int, ...]], np.ndarray]
_PATTERNS: tuple[Pattern, ...] = (
    lambda shape: np.ones(shape),
    lambda shape: -np.ones(shape),
    lambda shape: np.where(np.arange(int(np.prod(shape))).reshape(shape) % 2, -1.0, 1.0),
    lambda shape: np.where(np.arange(int(np.prod(shape))).reshape(shape) % 2, 1.0, -1.0),
)


def inexact_nodes(g: Graph) -> Iterator[Node]:
    """Nodes of ``g`` and its bodies that approximate a float function."""
    for n in g.nodes:
        if n.op in INEXACT and any(v.type.dtype.is_float for v in n.outputs):
            yield n
        for sub in n.subgraphs:
            yield from inexact_nodes(sub)


def nudge(a: np.ndarray, signs: np.ndarray, steps: int = STEPS) -> np.ndarray:
    """``a`` with each finite nonzero float moved ``steps`` ulp in the
    direction of ``signs`` (zeros, infinities and NaNs stay)."""
    if a.dtype.kind != "f":
        return a
    movable = np.isfinite(a) & (a != 0)
    toward = np.where(signs > 0, np.inf, -np.inf).astype(a.dtype)
    for _ in range(steps):
        a = np.where(movable, np.nextafter(a, toward), a)
    return np.asarray(a)


class RoundingSpread:
    """Reference results of ``g`` with each inexact node's output nudged."""

    def __init__(self, g: Graph, arrays: Sequence[np.ndarray]) -> None:
        self.graph, self.arrays = g, arrays
        self._runs: list[list[tuple[np.ndarray, ...]]] | None = None

    def runs(self) -> list[list[tuple[np.ndarray, ...]]]:
        """For each inexact node, the graph's outputs under each pattern (a
        pattern whose run fails is left out)."""
        if self._runs is None:
            self._runs = []
            for site in inexact_nodes(self.graph):
                outs = []
                for pattern in _PATTERNS:
                    try:
                        outs.append(evaluate(self.graph, self.arrays, site, pattern))
                    except GraphcError:
                        continue
                self._runs.append(outs)
        return self._runs

    def explains(
        self,
        k: int,
        got: np.ndarray,
        want: np.ndarray,
        *,
        rtol: float,
        atol: float,
        zero_signs: bool,
    ) -> np.ndarray:
        """Elementwise: is ``got`` (output ``k``) within reach of the reference?"""
        g64, w64 = got.astype(np.float64), want.astype(np.float64)
        ok = _matches(g64, w64, rtol, atol, zero_signs)
        band = np.zeros(want.shape)
        for outs in self.runs():
            moved = np.zeros(want.shape)
            for out in outs:
                c64 = out[k].astype(np.float64)
                ok |= _matches(g64, c64, rtol, atol, zero_signs)
                with np.errstate(invalid="ignore"):
                    shift = np.abs(c64 - w64)
                moved = np.maximum(moved, np.where(np.isfinite(shift), shift, 0.0))
            band += moved
        finite = np.isfinite(g64) & np.isfinite(w64)
        with np.errstate(invalid="ignore"):
            near = np.abs(g64 - w64) <= atol + rtol * np.abs(w64) + band
        if zero_signs:
            near &= ~((g64 == 0) & (w64 == 0) & (np.signbit(g64) != np.signbit(w64)))
        return np.asarray(ok | (finite & near))


def evaluate(
    g: Graph,
    args: Sequence[Any],
    site: Node | None = None,
    pattern: Pattern = _PATTERNS[0],
    steps: int = STEPS,
) -> tuple[np.ndarray, ...]:
    """The reference interpreter, with the outputs of ``site`` (wherever it
    runs, bodies included) moved ``steps`` ulp in the directions of ``pattern``."""
    env = {v: np.asarray(a, dtype=v.type.dtype.np) for v, a in zip(g.inputs, args)}
    for n in g.nodes:
        xs = [x.as_array() if isinstance(x, Literal) else env[x] for x in n.inputs]
        if n.subgraphs:

            def run(sub: Graph, *a: Any) -> tuple[np.ndarray, ...]:
                return evaluate(sub, a, site, pattern, steps)

            attrs = {**n.attrs, "_subgraphs": n.subgraphs, "_interpret": run}
            with np.errstate(all="ignore"):
                result = get_op(n.op).reference(*xs, **attrs)
            outs = tuple(
                np.asarray(r) for r in (result if isinstance(result, tuple) else (result,))
            )
        else:
            outs = run_node(n, xs)
        if n is site:
            outs = tuple(nudge(o, pattern(o.shape), steps) for o in outs)
        env.update(zip(n.outputs, outs))
    return tuple(env[v] for v in g.outputs)


def _matches(
    got: np.ndarray, want: np.ndarray, rtol: float, atol: float, zero_signs: bool
) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        ok = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if zero_signs:
        ok &= ~((got == 0) & (want == 0) & (np.signbit(got) != np.signbit(want)))
    return np.asarray(ok)
