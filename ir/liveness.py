"""Liveness: the node-index interval during which each value is needed."""

from __future__ import annotations

from .core import Graph, Value


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
