"""DECOMPOSITIONS: ops the NumPy backend rewrites into ops it lowers directly.

Each entry builds the replacement with a builder from the node and its new
operands and returns the values standing for the node's outputs.
:func:`decompose` applies the table until no entry's op is left, and keeps
track of which original node every new node came from, so errors in
generated code still name the node the user's graph had.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from graphc.ir import Graph, GraphBuilder, Literal, Node, Operand, Value

Decomposition = Callable[[GraphBuilder, Node, Sequence[Operand]], Sequence[Operand]]


def _inline_fusion(b: GraphBuilder, n: Node, inputs: Sequence[Operand]) -> Sequence[Operand]:
    # Semantics of fusion = call the body; statements keep their own location
    # and fall back to the fusion node's.
    (body,) = n.subgraphs
    env: dict[Value, Operand] = dict(zip(body.inputs, inputs))
    for m in body.nodes:
        ins = [env[x] if isinstance(x, Value) else x for x in m.inputs]
        new = b.emit_node(m.op, ins, m.attrs, m.subgraphs, m.loc or n.loc)
        env.update(zip(m.outputs, new.outputs))
    return [env[v] for v in body.outputs]


def _rsqrt(b: GraphBuilder, n: Node, inputs: Sequence[Operand]) -> Sequence[Operand]:
    # Exactly the reference's formula, so results agree bit for bit.
    one = Literal(1.0, n.outputs[0].type.dtype)
    return [b.div(one, b.sqrt(inputs[0]))]


def _pass_through(b: GraphBuilder, n: Node, inputs: Sequence[Operand]) -> Sequence[Operand]:
    # optimization_barrier only constrains passes; by the time code is generated it is an identity.
    return list(inputs)


DECOMPOSITIONS: dict[str, Decomposition] = {
    "fusion": _inline_fusion,
    "rsqrt": _rsqrt,
    # remat means "call the body" too; the pipeline inlines it before any backend runs.
    "remat": _inline_fusion,
    "optimization_barrier": _pass_through,
}


@dataclass
class Decomposed:
    """The flat graph and how it relates to the original one."""

    graph: Graph
    origin: dict[Node, Node] = field(default_factory=dict)  # flat node -> original node
    values: dict[Value, Operand] = field(default_factory=dict)  # original value -> flat operand


def decompose(g: Graph, table: dict[str, Decomposition] = DECOMPOSITIONS) -> Decomposed:
    """Rewrite every node whose op is in ``table`` (repeatedly, for nested cases).

    Nodes that need no rewrite are kept as the very same objects, so their
    values (and a memory plan keyed by them) carry over.
    """
    result = Decomposed(g, {n: n for n in g.nodes}, {})
    for v in g.inputs:
        result.values[v] = v
    for n in g.nodes:
        for v in n.outputs:
            result.values[v] = v
    for _ in range(16):
        if not any(n.op in table for n in result.graph.nodes):
            return result
        result = _once(result, table)
    raise AssertionError("decompositions do not terminate")


def _once(d: Decomposed, table: dict[str, Decomposition]) -> Decomposed:
    g = d.graph
    b = GraphBuilder(g.name)
    b.inputs.extend(g.inputs)
    env: dict[Value, Operand] = {}
    origin: dict[Node, Node] = {}
    for n in g.nodes:
        inputs = [env.get(x, x) if isinstance(x, Value) else x for x in n.inputs]
        rule = table.get(n.op)
        if rule is None and all(a is x for a, x in zip(inputs, n.inputs)):
            b.nodes.append(n)
            origin[n] = d.origin[n]
            continue
        start = len(b.nodes)
        if rule is None:
            new = b.emit_node(n.op, inputs, n.attrs, n.subgraphs, n.loc)
            outs: Sequence[Operand] = new.outputs
        else:
            outs = rule(b, n, inputs)
        for m in b.nodes[start:]:
            origin[m] = d.origin[n]
        env.update(zip(n.outputs, outs))
    outputs = []
    for v in g.outputs:
        x = env.get(v, v)
        if isinstance(x, Literal):  # a fusion body returned a literal operand
            x = b.materialize(x)
            origin[b.nodes[-1]] = d.origin[g.producers()[v]]
        outputs.append(x)
    flat = Graph(g.name, g.inputs, tuple(b.nodes), tuple(outputs))
    values = {k: env.get(v, v) if isinstance(v, Value) else v for k, v in d.values.items()}
    return Decomposed(flat, origin, values)
