"""Check VJP rules against central finite differences in float64.

For an op ``f`` and a random cotangent ``ct``, a VJP rule is right when, for
every direction ``dx`` of an input ``x``::

    <ct_x, dx>  ==  d/de <ct, f(x + e dx)>  at e = 0

where ``ct_x`` is the rule's cotangent fitted to ``x`` with ``unbroadcast``.
The right side is taken with central differences. :func:`check_vjp` builds
the graph ``[inputs..., ct] -> [cotangents]`` by calling the rule with a
builder, exactly as the differentiation pass does, and compares both sides
for each float input separately, so a failure names the operand.

:func:`reverse_graph` is a deliberately small reverse-mode driver over whole
graphs; the second-order checks use it to differentiate a VJP graph again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ir import (
    DType,
    Graph,
    GraphBuilder,
    Literal,
    Node,
    TensorType,
    Value,
    get_op,
    interpret,
    parse,
    verify,
)
from graphc.ir.ops.vjp_util import unbroadcast


@dataclass(frozen=True)
class Arg:
    """One operand of a VJP check.

    A float operand is drawn uniformly from ``[low, high)``, pushed at least
    ``margin`` away from each point in ``avoid`` (kinks, poles, ties). Give
    ``values`` for fixed operands (indices, conditions, hand-picked points)
    and ``literal`` to pass the operand as a literal instead of an input.
    """

    shape: tuple[int, ...] = ()
    low: float = -2.0
    high: float = 2.0
    avoid: tuple[float, ...] = ()
    margin: float = 0.15
    values: Any = None
    literal: bool | int | float | None = None
    dtype: DType = DType.f64

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        if self.values is not None:
            return np.asarray(self.values)
        x = rng.uniform(self.low, self.high, size=self.shape)
        for p in self.avoid:
            near = np.abs(x - p) < self.margin
            x = np.where(
                near, p + np.where(x >= p, 1, -1) * (self.margin + rng.uniform(0, 0.3, x.shape)), x
            )
        return np.asarray(x, dtype=self.dtype.np)


@dataclass
class VJPGraph:
    """The forward graph of one op and the graph of its VJP rule."""

    forward: Graph
    vjp: Graph
    inputs: list[int]  # operand index of each graph input (literals are not inputs)
    differentiated: list[int]  # operand indices whose cotangent the VJP graph returns
    none: list[int]  # operand indices the rule gave no cotangent (None)
    raw_types: list[TensorType]  # cotangent types as the rule returned them


def build_vjp_graph(
    op: str, operands: Sequence[np.ndarray | Literal], attrs: dict[str, Any]
) -> VJPGraph:
    """Graphs for ``op`` on operands like these (arrays become inputs)."""
    opdef = get_op(op)
    assert opdef.vjp is not None, f"{op} has no VJP rule"

    def emit(b: GraphBuilder) -> tuple[list[Any], Any, list[int]]:
        xs: list[Any] = []
        inputs = []
        for i, a in enumerate(operands):
            if isinstance(a, Literal):
                xs.append(a)
            else:
                xs.append(b.input(TensorType(a.shape, DType.from_numpy(a.dtype)), f"x{i}"))
                inputs.append(i)
        return xs, b.emit(op, *xs, **attrs), inputs

    b = GraphBuilder(op)
    _, out, inputs = emit(b)
    outs = out if isinstance(out, tuple) else (out,)
    forward = b.build(outs)

    b = GraphBuilder(op + "_vjp")
    xs, out, _ = emit(b)
    outs = out if isinstance(out, tuple) else (out,)
    cts = tuple(b.input(v.type, f"ct{i}") for i, v in enumerate(outs))
    single = not isinstance(out, tuple)
    # The rule gets the node's complete attributes (defaults filled in), as in the pass.
    full_attrs = subgraph_attrs(b.nodes[-1])
    result = opdef.vjp(b, cts[0] if single else cts, out, *xs, **full_attrs)
    assert isinstance(result, tuple) and len(result) == len(operands), (
        f"{op}: the VJP rule must return one cotangent (or None) per operand, got {result!r}"
    )
    fitted, differentiated, none, raw_types = [], [], [], []
    for i, (x, ct) in enumerate(zip(xs, result)):
        if isinstance(x, Literal):
            continue
        if ct is None:
            none.append(i)
            continue
        assert isinstance(ct, Value), f"{op}: cotangent {i} is {ct!r}, not a Value"
        if not x.type.dtype.is_float:
            raise AssertionError(f"{op}: operand {i} is {x.type} but got a cotangent")
        raw_types.append(ct.type)
        ct_fit = unbroadcast(b, ct, x.type)
        assert ct_fit.type == x.type, f"{op}: cotangent {i} is {ct_fit.type}, operand {x.type}"
        fitted.append(ct_fit)
        differentiated.append(i)
    vjp = verify(b.build(fitted))
    # Every VJP graph must survive the text form too.
    assert parse(str(vjp)) == vjp, f"{op}: the VJP graph does not round-trip"
    return VJPGraph(forward, vjp, inputs, differentiated, none, raw_types)


def subgraph_attrs(n: Node) -> dict[str, Any]:
    """The attributes a VJP rule gets; an op with a body also gets the body and
    the differentiator to apply to it, as from ``graphc.autodiff``."""
    attrs = dict(n.attrs)
    if n.subgraphs:
        from graphc.autodiff import differentiate

        attrs.update(_subgraphs=n.subgraphs, _differentiate=differentiate)
    return attrs


def _dot(cts: Sequence[np.ndarray], outs: Sequence[np.ndarray]) -> float:
    return float(sum(np.sum(c * o.astype(np.float64)) for c, o in zip(cts, outs)))


def check_vjp(
    op: str,
    args: Sequence[Arg],
    attrs: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> None:
    """Assert that ``op``'s VJP rule agrees with central differences.

    >>> check_vjp("mul", [Arg((2, 3)), Arg((3,))])
    """
    attrs = attrs or {}
    rng = np.random.default_rng(seed)
    operands: list[np.ndarray | Literal] = [
        Literal(a.literal, a.dtype) if a.literal is not None else a.draw(rng) for a in args
    ]
    graphs = build_vjp_graph(op, operands, attrs)
    arrays = [operands[i] for i in graphs.inputs]
    cts = [rng.standard_normal(t.shape) for t in graphs.forward.output_types]
    ct_arrays = [c.astype(t.dtype.np) for c, t in zip(cts, graphs.forward.output_types)]
    got = interpret(graphs.vjp, *arrays, *ct_arrays)

    for k, i in enumerate(graphs.differentiated):
        position = graphs.inputs.index(i)
        x = np.asarray(arrays[position])
        dx = rng.standard_normal(x.shape)

        def f(e: float, position: int = position, x: np.ndarray = x, dx: np.ndarray = dx) -> float:
            moved = list(arrays)
            moved[position] = x + e * dx
            return _dot(cts, interpret(graphs.forward, *moved))

        numeric = (f(eps) - f(-eps)) / (2 * eps)
        analytic = float(np.sum(got[k] * dx))
        scale = float(np.sum(np.abs(got[k] * dx))) + abs(numeric)
        assert abs(analytic - numeric) <= atol + rtol * scale, (
            f"{op}: VJP of operand {i} gives <ct_x, dx> = {analytic!r}, "
            f"finite differences {numeric!r} (attrs {attrs})"
        )


# ---------------------------------------------------------------------------
# A small reverse-mode driver for second-order checks
# ---------------------------------------------------------------------------


def reverse_graph(g: Graph) -> Graph:
    """``(inputs..., cts...) -> (cotangent of every float input)`` for graph ``g``.

    Walks ``g`` backwards, calls each op's VJP rule and sums cotangents where
    a value fans out. Inputs that nothing depends on get zeros. It exists to
    differentiate VJP graphs again; the real pass is ``graphc.autodiff``.
    """
    b = GraphBuilder(g.name + "_rev")
    env: dict[Value, Any] = {v: b.input(v.type, v.name) for v in g.inputs}
    seeds = [b.input(v.type, f"ct{i}") for i, v in enumerate(g.outputs)]
    for n in g.nodes:
        copy = b.copy_node(n, [env[x] if isinstance(x, Value) else x for x in n.inputs])
        env.update(zip(n.outputs, copy.outputs))
    cts: dict[Value, Any] = {}

    def add(v: Value, ct: Any) -> None:
        ct = unbroadcast(b, ct, v.type)
        cts[v] = b.add(cts[v], ct) if v in cts else ct

    for v, ct in zip(g.outputs, seeds):
        if v.type.dtype.is_float:
            add(v, ct)
    for n in reversed(g.nodes):
        outs = [cts.get(v) for v in n.outputs]
        if all(c is None for c in outs):
            continue
        opdef = get_op(n.op)
        if opdef.vjp is None:
            continue
        ins = [env[x] if isinstance(x, Value) else x for x in n.inputs]
        if len(n.outputs) == 1:
            result = opdef.vjp(b, outs[0], env[n.outputs[0]], *ins, **subgraph_attrs(n))
        else:
            results = tuple(env[v] for v in n.outputs)
            result = opdef.vjp(b, tuple(outs), results, *ins, **subgraph_attrs(n))
        for x, ct in zip(n.inputs, result):
            if ct is not None and isinstance(x, Value) and x.type.dtype.is_float:
                add(x, ct)
    outputs = []
    for v in g.inputs:
        if not v.type.dtype.is_float:
            continue
        ct = cts.get(v)
        if ct is None:
            ct = b.broadcast_in_dim(
                Literal(0.0, v.type.dtype), shape=v.type.shape, broadcast_dimensions=()
            )
        outputs.append(ct)
    return verify(b.build(outputs))


def check_graph_vjp(
    g: Graph,
    arrays: Sequence[np.ndarray],
    *,
    seed: int = 0,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> None:
    """Assert that :func:`reverse_graph` of ``g`` agrees with central differences,
    along one random direction in all float inputs at once."""
    rng = np.random.default_rng(seed)
    rev = reverse_graph(g)
    cts = [
        rng.standard_normal(t.shape) if t.dtype.is_float else np.zeros(t.shape, t.dtype.np)
        for t in g.output_types
    ]
    got = interpret(rev, *arrays, *cts)
    floats = [i for i, v in enumerate(g.inputs) if v.type.dtype.is_float]
    dxs = {i: rng.standard_normal(np.shape(arrays[i])) for i in floats}

    def f(e: float) -> float:
        moved = [a + e * dxs[i] if i in dxs else a for i, a in enumerate(arrays)]
        outs = interpret(g, *moved)
        return _dot(
            [c for c, t in zip(cts, g.output_types) if t.dtype.is_float],
            [o for o, t in zip(outs, g.output_types) if t.dtype.is_float],
        )

    numeric = (f(eps) - f(-eps)) / (2 * eps)
    terms = [got[k] * dxs[i] for k, i in enumerate(floats)]
    analytic = float(sum(np.sum(t) for t in terms))
    scale = float(sum(np.sum(np.abs(t)) for t in terms)) + abs(numeric)
    assert abs(analytic - numeric) <= atol + rtol * scale, (
        f"{g.name}: reverse mode gives {analytic!r}, finite differences {numeric!r}"
    )
