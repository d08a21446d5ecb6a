"""schedule_for_memory: reorder nodes to lower peak memory.

A topological order is free to choose; the one tracing produces follows the
program text, which for a training step computes every gradient before any
update. This pass keeps the program order except that a ready node which
frees at least as many bytes as it allocates runs at once, so an optimizer
update runs as soon as its gradient exists and the gradient dies right away.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphc.ir import Graph, Node, Value


def schedule_for_memory(g: Graph, donated: Sequence[int] = ()) -> Graph:
    """Greedy memory-aware list scheduling.

    ``donated`` lists inputs whose buffers the outputs may reuse (a training
    step's parameters): outputs that can take such a buffer cost nothing.

    Contract: any valid graph in, the same nodes in a (possibly) different
    valid topological order out; subgraphs are left alone. Deterministic.
    Cost: O(n * r) for n nodes and r ready nodes at a time.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[1000], "x")
    >>> big = [b.exp(x), b.sin(x)]           # two large temporaries ...
    >>> small = [b.reduce_sum(t, axes=(0,)) for t in big]   # ... each reduced at once
    >>> order = [n.op for n in schedule_for_memory(b.build(small)).nodes]
    >>> order
    ['exp', 'reduce_sum', 'sin', 'reduce_sum']
    """
    nodes = g.nodes
    if len(nodes) < 3:
        return g
    index = {n: i for i, n in enumerate(nodes)}
    producer = g.producers()
    remaining_uses: dict[Value, int] = {}
    for n in nodes:
        for v in set(n.value_inputs()):
            remaining_uses[v] = remaining_uses.get(v, 0) + 1
    pinned = set(g.inputs) | set(g.outputs)  # caller-owned or returned: never freed here
    waiting = {n: len({producer[v] for v in n.value_inputs() if v in producer}) for n in nodes}
    consumers: dict[Node, list[Node]] = {n: [] for n in nodes}
    for n in nodes:
        for p in {producer[v] for v in n.value_inputs() if v in producer}:
            consumers[p].append(n)
    ready = [n for n in nodes if waiting[n] == 0]
    order: list[Node] = []
    in_place = donated_outputs(g, donated)

    def freed(n: Node) -> int:
        return sum(
            v.type.nbytes
            for v in set(n.value_inputs())
            if v not in pinned and remaining_uses[v] == 1
        )

    def allocated(n: Node) -> int:
        return sum(v.type.nbytes for v in n.outputs if v not in in_place)

    while ready:
        # Run a node early only when it frees memory without costing more than
        # it frees; otherwise keep the program's order (readable, and good for
        # locality).
        scored = [(freed(n) - allocated(n), -index[n], n) for n in ready if freed(n)]
        scored = [t for t in scored if t[0] >= 0]
        best = max(scored)[2] if scored else min(ready, key=index.__getitem__)
        ready.remove(best)
        order.append(best)
        for v in set(best.value_inputs()):
            remaining_uses[v] -= 1
        for c in consumers[best]:
            waiting[c] -= 1
            if waiting[c] == 0:
                ready.append(c)
    assert len(order) == len(nodes), "schedule lost nodes (cycle?)"
    # Greedy is a heuristic: keep the program order when it is at least as good.
    if peak_bytes(g, order, donated) >= peak_bytes(g, nodes, donated):
        return g
    return g.replace(nodes=tuple(order))


def donated_outputs(g: Graph, donated: Sequence[int]) -> set[Value]:
    """Outputs that can be written into a donated input's buffer (same type,
    each buffer used once, in order)."""
    free = [g.inputs[i] for i in donated]
    found: set[Value] = set()
    for v in g.outputs:
        if v in found or v in g.inputs:
            continue
        match = next((d for d in free if d.type == v.type), None)
        if match is not None:
            free.remove(match)
            found.add(v)
    return found


def peak_bytes(g: Graph, order: Sequence[Node], donated: Sequence[int] = ()) -> int:
    """Largest total size of buffers alive at once when running ``order``.

    Graph inputs are excluded (the caller owns them), and so are outputs that
    reuse a donated input's buffer."""
    last: dict[Value, int] = {}
    for i, n in enumerate(order):
        for v in n.value_inputs():
            last[v] = i
    end = len(order)
    for v in g.outputs:
        last[v] = end
    live = peak = 0
    free = set(g.inputs) | donated_outputs(g, donated)
    dying: dict[int, int] = {}
    for v, i in last.items():
        if v not in free:
            dying[i] = dying.get(i, 0) + v.type.nbytes
    for i, n in enumerate(order):
        live += sum(v.type.nbytes for v in n.outputs if v not in free)
        peak = max(peak, live)
        live -= dying.get(i, 0)
        # outputs nobody reads die at once
        live -= sum(v.type.nbytes for v in n.outputs if v not in last and v not in free)
    return peak
