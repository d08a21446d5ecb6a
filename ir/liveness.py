"""Liveness: which nodes the outputs need, and the node-index interval
during which each value is needed."""

from __future__ import annotations

from .core import Graph, Node, Value


def prune(g: Graph) -> Graph:
    """``g`` without the nodes none of its outputs needs (inputs are kept).

    Unlike the dead-code pass this drops every unneeded node, pure or not,
    and leaves subgraphs alone; it tidies graphs that a transformation has
    just built (a VJP's forward copy, the backward half of a joint graph).

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> _ = b.exp(x)
    >>> [n.op for n in prune(b.build([b.neg(x)])).nodes]
    ['neg']
    """
    needed: set[Value] = set(g.outputs)
    keep: list[Node] = []
    for n in reversed(g.nodes):
        if any(v in needed for v in n.outputs):
            keep.append(n)
            needed.update(n.value_inputs())
    if len(keep) == len(g.nodes):
        return g
    return g.replace(nodes=tuple(reversed(keep)))


def live_intervals(g: Graph) -> dict[Value, tuple[int, int]]:
    """``(first, last)`` node indices for each value.

    A value is live from the node that defines it (``-1`` for graph inputs)
    through its last reader; graph outputs stay live to ``len(g.nodes)``.
    """
    cached = g._cache.get("live_intervals")
    if cached is not None:
        return dict(cached)
    start: dict[Value, int] = {v: -1 for v in g.inputs}
    end: dict[Value, int] = {v: -1 for v in g.inputs}
    for i, n in enumerate(g.nodes):
        for v in n.value_inputs():
            end[v] = i
        for v in n.outputs:
            start[v] = end[v] = i
    for v in g.outputs:
        end[v] = len(g.nodes)
    result = {v: (start[v], end[v]) for v in start}
    g._cache["live_intervals"] = result
    return dict(result)
