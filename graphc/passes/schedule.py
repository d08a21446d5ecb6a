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

from .donate import buffer_readers, pair_donations, plan_donations


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
    # recompute_cheap_results scores the graph it returns by scheduling it, and
    # this pass then schedules that same graph again: the second time is free.
    memo = ("schedule_for_memory", tuple(donated))
    done: Graph | None = g._cache.get(memo)
    if done is None:
        done = g._cache[memo] = _schedule(g, donated)
    return done


def _schedule(g: Graph, donated: Sequence[int]) -> Graph:
    nodes = g.nodes
    index = {n: i for i, n in enumerate(nodes)}
    producer = g.producers()
    remaining_uses: dict[Value, int] = {}
    readers: dict[Value, list[Node]] = {}
    for n in nodes:
        for v in set(n.value_inputs()):
            remaining_uses[v] = remaining_uses.get(v, 0) + 1
            readers.setdefault(v, []).append(n)
    pinned = set(g.inputs) | set(g.outputs)  # caller-owned or returned: never freed here
    waiting = {n: len({producer[v] for v in n.value_inputs() if v in producer}) for n in nodes}
    consumers: dict[Node, list[Node]] = {n: [] for n in nodes}
    for n in nodes:
        for p in {producer[v] for v in n.value_inputs() if v in producer}:
            consumers[p].append(n)
    # A node writing a donated output over its partner input must wait for every
    # other reader of that input (unless the reader depends on the write).
    pairs = pair_donations(g, donated)
    in_place = set(pairs)
    for v, u in pairs.items():
        writer = producer[v]
        after = _descendants(writer, consumers)
        for r in {nodes[i] for i in buffer_readers(g, u)}:
            if r is not writer and r not in after:
                consumers[r].append(writer)
                waiting[writer] += 1
    ready = [n for n in nodes if waiting[n] == 0]
    order: list[Node] = []

    # What a ready node would free changes only when one of its operands gets
    # down to its last reader; remembered until then (a ready list of dozens
    # of nodes is scored at every step: W5's unrolled backward).
    freed_bytes: dict[Node, int] = {}

    def freed(n: Node) -> int:
        found = freed_bytes.get(n)
        if found is None:
            found = freed_bytes[n] = sum(
                v.type.nbytes
                for v in set(n.value_inputs())
                if v not in pinned and remaining_uses[v] == 1
            )
        return found

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
            if remaining_uses[v] == 1:
                for r in readers[v]:
                    freed_bytes.pop(r, None)
        for c in consumers[best]:
            waiting[c] -= 1
            if waiting[c] == 0:
                ready.append(c)
    assert len(order) == len(nodes), "schedule lost nodes (cycle?)"
    # Greedy is a heuristic: keep the program order unless the new one has a
    # lower peak or lets more outputs reuse donated buffers.
    scheduled = g.replace(nodes=tuple(order))

    def score(h: Graph) -> tuple[int, int]:
        return peak_bytes(h, h.nodes, donated), -len(plan_donations(h, donated))

    return scheduled if score(scheduled) < score(g) else g


def _descendants(n: Node, consumers: dict[Node, list[Node]]) -> set[Node]:
    found: set[Node] = set()
    stack = list(consumers[n])
    while stack:
        c = stack.pop()
        if c not in found:
            found.add(c)
            stack.extend(consumers[c])
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
    ordered = g if tuple(order) == g.nodes else g.replace(nodes=tuple(order))
    free = set(g.inputs) | set(plan_donations(ordered, donated))
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
