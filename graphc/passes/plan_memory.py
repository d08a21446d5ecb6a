"""plan_memory: liveness-based offsets in one arena (first fit)."""

from __future__ import annotations

from graphc.ir.core import Graph, Value
from graphc.ir.liveness import live_intervals
from graphc.ir.plan import MemoryPlan, align


def plan_memory(g: Graph) -> MemoryPlan:
    """Assign each intermediate an arena offset; buffers whose lifetimes do not
    overlap may share bytes.

    Contract: ``g`` is in its final node order. Graph inputs and outputs are
    not planned (callers own them). Cost: O(n * live) for n values.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[16], "x")
    >>> plan = plan_memory(b.build([b.exp(b.exp(b.exp(x)))]))
    >>> plan.arena_bytes  # two 64-byte temporaries, never alive together with a third
    128
    """
    live = live_intervals(g)
    outputs = set(g.outputs)
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets: dict[Value, int] = {}
    arena = 0
    # Place the largest buffers first: first fit then wastes less.
    candidates = [v for n in g.nodes for v in n.outputs if v not in outputs]
    candidates.sort(key=lambda v: (-v.type.nbytes, live[v][0]))
    for v in candidates:
        size = align(v.type.nbytes)
        first, last = live[v]
        busy = sorted((o, s) for o, s, a, b in placed if a <= last and first <= b)
        offset = 0
        for o, s in busy:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
        offsets[v] = offset
        arena = max(arena, offset + size)
    peak = 0
    for i in range(len(g.nodes)):
        alive = sum(align(v.type.nbytes) for v in offsets if live[v][0] <= i <= live[v][1])
        peak = max(peak, alive)
    return MemoryPlan(offsets, arena, peak)
