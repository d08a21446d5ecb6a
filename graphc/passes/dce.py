"""eliminate_dead_code: drop nodes whose results nobody reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from graphc.ir import Graph, GraphBuilder, Node, Operand, Value, get_op

from .control import prune_cond, prune_scan
from .manager import count
from .rewrite import Rebuilder


def eliminate_dead_code(g: Graph) -> Graph:
    """Remove pure nodes none of whose outputs reach a graph output.

    Contract: any valid graph in; a valid graph out with the same inputs,
    outputs and meaning, in which every pure node has a used output. Nodes
    without the ``pure`` trait are kept even when unused. Subgraphs are
    cleaned too; per-op special cases live in :data:`DCE_RULES` (a fusion
    node sheds the body outputs nobody reads, and then the operands its
    body no longer needs). Cost: O(nodes + edges).

    The walk goes backwards: a node is live when a later live node (or the
    return) reads it, so one reverse sweep settles every node.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> _ = b.exp(x)
    >>> print(eliminate_dead_code(b.build([b.neg(x)])))
    graph f(%x: f32[2]) -> (f32[2]) {
      %0 = neg %x : f32[2]
      return %0
    }
    """
    live: set[Value] = set(g.outputs)
    needed: list[list[bool]] = [[] for _ in g.nodes]
    for i in range(len(g.nodes) - 1, -1, -1):
        n = g.nodes[i]
        used = [v in live for v in n.outputs]
        if any(used) or not get_op(n.op).has("pure"):
            needed[i] = used if any(used) else [True] * len(n.outputs)
            live.update(n.value_inputs())
    removed = sum(1 for flags in needed if not flags)
    rb = Rebuilder(g)
    for n, used in zip(g.nodes, needed):
        if not used:
            rb.drop(n)
            continue
        rule = DCE_RULES.get(n.op)
        if rule is not None and not all(used):
            outs = rule(rb.b, n, rb.operands(n), used)
            if outs is not None:
                rb.changed = True
                rb.bind(n, outs)
                continue
        rb.keep(n, subgraphs=tuple(eliminate_dead_code(s) for s in n.subgraphs))
    if removed:
        count("removed", removed)
    return rb.finish()


# A rule returns the new operands for the node's outputs (None: dropped), or
# None to keep the node whole.
DCERule = Callable[
    [GraphBuilder, Node, Sequence[Operand], Sequence[bool]], Sequence[Operand | None] | None
]


def _prune_fusion(
    b: GraphBuilder, n: Node, inputs: Sequence[Operand], used: Sequence[bool]
) -> Sequence[Operand | None]:
    (body,) = n.subgraphs
    outs = tuple(v for v, u in zip(body.outputs, used) if u)
    body = eliminate_dead_code(body.replace(outputs=outs))
    read = set().union(*(set(m.value_inputs()) for m in body.nodes), set(body.outputs))
    keep_args = [i for i, v in enumerate(body.inputs) if v in read]
    body = body.replace(inputs=tuple(body.inputs[i] for i in keep_args))
    new = b.emit_node("fusion", [inputs[i] for i in keep_args], n.attrs, (body,), n.loc)
    results = iter(new.outputs)
    count("fusion outputs pruned", len(used) - sum(used))
    return [next(results) if u else None for u in used]


# Per-op special cases; every other op is kept whole or dropped whole.
DCE_RULES: dict[str, DCERule] = {
    "fusion": _prune_fusion,
    "scan": prune_scan,
    "cond": prune_cond,
}
