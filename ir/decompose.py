"""Rewriting ops a backend does not lower into ops it does.

A backend keeps a table ``DECOMPOSITIONS: dict[str, Decomposition]``. Each
entry builds the replacement of one node with a builder, from the node and its
(already rewritten) operands, and returns the operands standing for the node's
outputs. :func:`decompose` applies a table until no op of it is left and keeps
track of which original node every new node came from, so errors raised by
generated code still name the node (and source line) of the user's graph.

>>> from graphc.ir import GraphBuilder, f32
>>> b = GraphBuilder("f"); x = b.input(f32[3], "x")
>>> g = b.build([b.rsqrt(x)])
>>> table = {"rsqrt": lambda b, n, ins: [b.div(1.0, b.sqrt(ins[0]))]}
>>> [n.op for n in decompose(g, table).graph.nodes]
['sqrt', 'div']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .builder import GraphBuilder
from .core import Graph, Literal, Node, Operand, Value
from .plan import MemoryPlan

Decomposition = Callable[[GraphBuilder, Node, Sequence[Operand]], Sequence[Operand]]

# Nested rewrites (a remat inside a fusion body inside a remat...) take one
# round per level; more rounds than this means a rule re-creates its own op.
MAX_ROUNDS = 16


def inline_body(b: GraphBuilder, n: Node, inputs: Sequence[Operand]) -> Sequence[Operand]:
    """The rule for ops whose meaning is "call the single subgraph" (``fusion``,
    ``remat``). Statements keep their own location and fall back to the node's."""
    (body,) = n.subgraphs
    env: dict[Value, Operand] = dict(zip(body.inputs, inputs))
    for m in body.nodes:
        ins = [env[x] if isinstance(x, Value) else x for x in m.inputs]
        new = b.emit_node(m.op, ins, m.attrs, m.subgraphs, m.loc or n.loc)
        env.update(zip(m.outputs, new.outputs))
    return [env[v] for v in body.outputs]


def pass_through(b: GraphBuilder, n: Node, inputs: Sequence[Operand]) -> Sequence[Operand]:
    """The rule for identities that only constrain passes (``optimization_barrier``)."""
    return list(inputs)


@dataclass
class Decomposed:
    """The flat graph and how it relates to the original one."""

    graph: Graph
    origin: dict[Node, Node] = field(default_factory=dict)  # flat node -> original node
    values: dict[Value, Operand] = field(default_factory=dict)  # original value -> flat operand

    @property
    def changed(self) -> bool:
        """Whether any node was rewritten."""
        return any(self.values[v] is not v for v in self.values)


def decompose(g: Graph, table: Mapping[str, Decomposition]) -> Decomposed:
    """Rewrite every node of ``g`` whose op is in ``table`` (repeatedly, for
    nested cases), inside loop and branch bodies too.

    Nodes that need no rewrite are kept as the very same objects, so their
    values carry over (and a memory plan keyed by them, if nothing changed).
    """
    result = Decomposed(g, {n: n for n in g.nodes}, {})
    for v in g.inputs:
        result.values[v] = v
    for n in g.nodes:
        for v in n.outputs:
            result.values[v] = v
    for _ in range(MAX_ROUNDS):
        if not _mentions(result.graph, table):
            return result
        result = _once(result, table)
    raise AssertionError("decompositions do not terminate")


def _once(d: Decomposed, table: Mapping[str, Decomposition]) -> Decomposed:
    g = d.graph
    b = GraphBuilder(g.name)
    b.inputs.extend(g.inputs)
    env: dict[Value, Operand] = {}
    origin: dict[Node, Node] = {}
    for n in g.nodes:
        inputs = [env.get(x, x) if isinstance(x, Value) else x for x in n.inputs]
        rule = table.get(n.op)
        # loop and branch bodies are compiled too: their ops are rewritten alike
        subgraphs = tuple(
            decompose(s, table).graph if _mentions(s, table) else s for s in n.subgraphs
        )
        same_bodies = all(a is x for a, x in zip(subgraphs, n.subgraphs))
        if rule is None and same_bodies and all(a is x for a, x in zip(inputs, n.inputs)):
            b.nodes.append(n)
            origin[n] = d.origin[n]
            continue
        start = len(b.nodes)
        if rule is None:
            new = b.emit_node(n.op, inputs, n.attrs, subgraphs, n.loc)
            outs: Sequence[Operand] = new.outputs
        else:
            outs = rule(b, n, inputs)
        for m in b.nodes[start:]:
            origin[m] = d.origin[n]
        env.update(zip(n.outputs, outs))
    outputs = []
    for v in g.outputs:
        x = env.get(v, v)
        if isinstance(x, Literal):  # a body returned a literal operand
            x = b.materialize(x)
            origin[b.nodes[-1]] = d.origin[g.producers()[v]]
        outputs.append(x)
    flat = Graph(g.name, g.inputs, tuple(b.nodes), tuple(outputs))
    values = {k: env.get(v, v) if isinstance(v, Value) else v for k, v in d.values.items()}
    return Decomposed(flat, origin, values)


def _mentions(g: Graph, table: Mapping[str, Decomposition]) -> bool:
    return any(n.op in table or any(_mentions(s, table) for s in n.subgraphs) for n in g.nodes)


def restrict_plan(plan: MemoryPlan | None, d: Decomposed) -> MemoryPlan | None:
    """``plan`` (made for the original graph) if it still holds for the flat
    graph, else None (the backend then places every value itself).

    A plan survives only when nothing was rewritten: a rewrite can make a kept
    value stand for a removed one (a barrier's output becomes its operand),
    which then lives longer than the plan assumed, and its bytes would be
    handed to another value while still being read.
    """
    return plan if plan is None or not d.changed else None
