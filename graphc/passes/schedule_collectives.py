"""schedule_collectives: start nonblocking reductions early, wait for them late.

An ``all_reduce_start`` only overlaps computation that runs between it and
its ``all_reduce_done``. The memory-minded schedule before this pass keeps
the program order, in which a data-parallel step packs and starts every
gradient bucket after the whole backward; this pass moves each start (with
the reshapes and concatenations that pack its operand) to just after its
operands exist, and each done to just before its first reader.
"""

from __future__ import annotations

from graphc.ir import Graph, Node, Value

# Ops that only rearrange a bucket's gradients into the start's operand.
_PACKING = frozenset({"reshape", "concatenate"})


def schedule_collectives(g: Graph) -> Graph:
    """Hoist starts (and their packing) as early as their operands allow, and
    sink dones to their first reader.

    Contract: any valid graph in; the same nodes in another valid topological
    order out (the graph unchanged when it has no ``all_reduce_start``).
    Deterministic. Cost: O(nodes + edges).

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[4], "x")
    >>> early = b.exp(x); late = b.sin(x)
    >>> r = b.emit("all_reduce_start", early)
    >>> y = b.emit("all_reduce_done", r)
    >>> [n.op for n in schedule_collectives(b.build([b.add(y, late)])).nodes]
    ['exp', 'all_reduce_start', 'sin', 'all_reduce_done', 'add']
    """
    if not any(n.op == "all_reduce_start" for n in g.nodes):
        return g
    users: dict[Value, list[Node]] = {}
    for n in g.nodes:
        for v in n.value_inputs():
            users.setdefault(v, []).append(n)
    hoisted = _hoisted(g, users)
    dones = [n for n in g.nodes if n.op == "all_reduce_done"]
    done_set = set(dones)
    available: set[Value] = set(g.inputs)
    order: list[Node] = []
    placed: set[Node] = set()

    def ready(n: Node) -> bool:
        return all(v in available for v in n.value_inputs())

    def place(n: Node) -> None:
        order.append(n)
        placed.add(n)
        available.update(n.outputs)

    def place_hoisted() -> None:
        progress = True
        while progress:
            progress = False
            for h in hoisted:
                if h not in placed and ready(h):
                    place(h)
                    progress = True

    place_hoisted()
    for n in g.nodes:
        if n in placed or n in done_set:
            continue
        for d in dones:
            if d not in placed and any(v in n.value_inputs() for v in d.outputs):
                place(d)
        place(n)
        place_hoisted()
    for d in dones:
        if d not in placed:
            place(d)
    assert len(order) == len(g.nodes), "schedule_collectives lost nodes"
    return g.replace(nodes=tuple(order))


def _hoisted(g: Graph, users: dict[Value, list[Node]]) -> list[Node]:
    """Starts, and packing nodes all of whose readers are hoisted, in program order."""
    chosen: set[Node] = {n for n in g.nodes if n.op == "all_reduce_start"}
    for n in reversed(g.nodes):
        if (
            n.op in _PACKING
            and n.outputs
            and all(users.get(v) and all(u in chosen for u in users[v]) for v in n.outputs)
        ):
            chosen.add(n)
    return [n for n in g.nodes if n in chosen]
