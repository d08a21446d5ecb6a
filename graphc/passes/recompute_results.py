"""recompute_cheap_results: a fused kernel stops writing out what its readers can redo.

Fusion puts a derivative's first factor into the forward kernel when it reads
only the forward value: ``1 - t*t`` for ``t = tanh(z)``, ``s * (1 - s)`` for a
sigmoid. The kernel then writes two tensors, ``t`` and its derivative, and both
stay alive until the backward pass reads them: twice the activation memory a
training step needs. This pass, run on the fused graph, takes such a result
out of the kernel that makes it and puts its computation into each kernel
that reads it, where it is a few more instructions in a loop that runs anyway
and ``t`` is usually still alive for the weight gradient.

A result qualifies when it is computed in its kernel by at most
``MAX_CHAIN`` elementwise (or view) ops from the kernel's inputs and its other
results, when every reader is a fused kernel that reads it element by element
at its own loop shape, and when the peak of the scheduled graph does not go
up. Values are unchanged bit for bit: the same ops run on the same operands.
"""

from __future__ import annotations

from graphc.ir import Graph, GraphBuilder, Literal, Node, Operand, Value, get_op

from .fuse import REDUCE_OPS, VIEW_OPS
from .manager import count
from .schedule import peak_bytes, schedule_for_memory

MAX_CHAIN = 8  # body nodes a reader may redo for one result


def recompute_cheap_results(g: Graph) -> Graph:
    """Move cheap results of fusion nodes into the fusion nodes that read them.

    Contract: a fused graph in (fusion bodies as ``fuse`` makes them); the same
    inputs, outputs and values out, with fusion nodes that write fewer
    tensors and a scheduled peak that is no higher. Cost: two schedules when
    moving every candidate keeps the peak, else one per candidate besides.

    >>> from graphc.ir import GraphBuilder, f32
    >>> from graphc.passes.fuse import fuse
    >>> b = GraphBuilder("f"); x = b.input(f32[64], "x"); w = b.input(f32[64], "w")
    >>> t = b.tanh(x)
    >>> d = b.sub(1.0, b.mul(t, t))                    # tanh' from t, made in t's kernel
    >>> mid = [b.exp(b.mul(w, float(k))) for k in range(3)]    # other work in between
    >>> out = b.mul(b.add(b.add(mid[0], mid[1]), mid[2]), t)
    >>> g = fuse(b.build([b.mul(out, d)]))
    >>> len(g.nodes[0].outputs)
    2
    >>> h = recompute_cheap_results(g)
    >>> len(h.nodes[0].outputs), peak_bytes(h, h.nodes) < peak_bytes(g, g.nodes)
    (1, True)
    """
    best = _score(g)
    # Usually every candidate lowers the peak (one tanh' per step of an
    # unrolled loop): all of them at once, scored once, is the same result
    # for one schedule instead of one per candidate (W5's plain loop: 65
    # schedules of a 1,300-node graph, 4.9 s of its compile).
    together, moved = _sweep(g, None)
    if moved and _score(together) <= best:
        count("results recomputed by readers", moved)
        return together
    return _sweep(g, best)[0]


def _sweep(g: Graph, best: int | None) -> tuple[Graph, int]:
    """One sweep in node order moving each result that qualifies; with
    ``best``, only those after which the scheduled peak stays at most that."""
    moved = 0
    i = 0
    # A node that gave up a result is looked at again (its other results may
    # go too), so each candidate is tried once.
    while i < len(g.nodes):
        accepted = False
        if g.nodes[i].op == "fusion":
            for k in range(len(g.nodes[i].outputs)):
                candidate = _without_result(g, i, k)
                if candidate is None:
                    continue
                if best is not None:
                    score = _score(candidate)
                    if score > best:
                        continue
                    best = score
                    count("results recomputed by readers")
                g, accepted = candidate, True
                moved += 1
                break
        if not accepted:
            i += 1
    return g, moved


def _score(g: Graph) -> int:
    h = schedule_for_memory(g)
    return peak_bytes(h, h.nodes)


def _chain(body: Graph, k: int) -> list[Node] | None:
    """The body nodes that compute result ``k`` from the body's inputs and its
    other results (in body order), or None when that is not a short
    elementwise chain."""
    target = body.outputs[k]
    producers = body.producers()
    if target not in producers:
        return None
    others = {v for j, v in enumerate(body.outputs) if j != k and v is not target}
    inputs = set(body.inputs)
    found: set[Node] = set()
    stack = [producers[target]]
    while stack:
        n = stack.pop()
        if n in found:
            continue
        opdef = get_op(n.op)
        if len(n.outputs) != 1 or not (opdef.has("elementwise") or n.op in VIEW_OPS):
            return None
        if n.op in VIEW_OPS and not (isinstance(n.inputs[0], Value) and n.inputs[0] in inputs):
            return None  # a view inside a loop must read a kernel input
        found.add(n)
        if len(found) > MAX_CHAIN:
            return None
        for x in n.value_inputs():
            if x not in inputs and x not in others:
                stack.append(producers[x])
    return [n for n in body.nodes if n in found]


def _reads_elementwise(body: Graph, formal: Value) -> bool:
    """Whether every reader of ``formal`` in ``body`` is elementwise at its shape."""
    readers = [n for n in body.nodes if formal in n.inputs]
    return (
        all(
            get_op(n.op).has("elementwise")
            and n.op not in REDUCE_OPS
            # The loop shape, not the dtype: a bool mask is read by a select of floats.
            and n.output.type.shape == formal.type.shape
            for n in readers
        )
        and formal not in body.outputs
    )


def _without_result(g: Graph, i: int, k: int) -> Graph | None:
    """``g`` with result ``k`` of fusion node ``i`` recomputed by its readers."""
    f = g.nodes[i]
    v = f.outputs[k]
    if v in g.outputs:
        return None
    body = f.subgraphs[0]
    chain = _chain(body, k)
    if chain is None:
        return None
    readers = [n for n in g.nodes if v in n.inputs]
    if not readers:
        return None
    for r in readers:
        if r.op != "fusion":
            return None
        rb = r.subgraphs[0]
        if not all(_reads_elementwise(rb, fm) for fm, x in zip(rb.inputs, r.inputs) if x is v):
            return None
    # Outer values the chain reads, by the body value that stands for them.
    outer: dict[Value, Value] = dict(zip(body.inputs, f.inputs))  # type: ignore[arg-type]
    outer.update((bv, f.outputs[j]) for j, bv in enumerate(body.outputs) if j != k)
    redo = [
        (cn, [outer.get(x, x) if isinstance(x, Value) else x for x in cn.inputs]) for cn in chain
    ]
    # The rewritten nodes keep their result Values (same types), so every other
    # node is reused as it is: no rebuild of the graph per candidate.
    nodes: list[Node] = []
    for n in g.nodes:
        if n is f:
            nodes.extend(_emit_without(f, k))
        elif n in readers:
            nodes.append(_emit_with_chain(n, v, redo, body.outputs[k]))
        else:
            nodes.append(n)
    return g.replace(nodes=tuple(nodes))


def _same_results(made: Node, old: tuple[Value, ...]) -> Node:
    """``made`` (type-checked by a builder) writing ``old``'s Values instead of its own."""
    assert [v.type for v in made.outputs] == [v.type for v in old], (made, old)
    return Node(made.op, made.inputs, old, made.attrs, made.subgraphs, made.loc)


def _kind(body: Graph, old: str) -> str:
    ops = {n.op for n in body.nodes}
    if "matmul" in ops:
        return "matmul_epilogue" if ops - VIEW_OPS - {"matmul"} else "matmul"
    return old


def _emit_without(f: Node, k: int) -> list[Node]:
    """Fusion node ``f`` without its result ``k`` (and what only that needed);
    none when that was its only result (its readers compute it themselves)."""
    body = f.subgraphs[0]
    keep = [j for j in range(len(f.outputs)) if j != k]
    if not keep:
        return []
    needed: set[Value] = {body.outputs[j] for j in keep}
    nodes = []
    for n in reversed(body.nodes):
        if any(o in needed for o in n.outputs):
            nodes.append(n)
            needed.update(n.value_inputs())
    nodes.reverse()
    sub = GraphBuilder(body.name)
    inner: dict[Value, Operand] = {}
    operands = []
    for formal, actual in zip(body.inputs, f.inputs):
        if formal in needed:
            inner[formal] = sub.input(formal.type, formal.name)
            operands.append(actual)
    for n in nodes:
        node = sub.copy_node(n, [x if isinstance(x, Literal) else inner[x] for x in n.inputs])
        inner.update(zip(n.outputs, node.outputs))
    new_body = sub.build([inner[body.outputs[j]] for j in keep], name=body.name)
    kind = _kind(new_body, f.attrs["kind"])
    # A fusion node points at its last member's line, which may have been the result removed.
    loc = nodes[-1].loc if nodes and nodes[-1].loc is not None else f.loc
    b = GraphBuilder("scratch")
    b.emit("fusion", *operands, subgraphs=[new_body], kind=kind, loc=loc)
    return [_same_results(b.nodes[-1], tuple(f.outputs[j] for j in keep))]


def _emit_with_chain(
    r: Node,
    v: Value,
    chain: list[tuple[Node, list[Operand]]],
    result: Value,
) -> Node:
    """Fusion node ``r`` computing ``v`` itself from the chain's operands."""
    body = r.subgraphs[0]
    sub = GraphBuilder(body.name)
    operands: list[Operand] = []
    formal_of: dict[Value, Value] = {}  # outer value -> formal in the new body
    inner: dict[Value, Operand] = {}
    for formal, old in zip(body.inputs, r.inputs):
        if old is v:
            continue
        new = sub.input(formal.type, formal.name)
        inner[formal] = new
        operands.append(old)
        if isinstance(old, Value):
            formal_of.setdefault(old, new)
    chain_env: dict[Value, Operand] = {}
    for cn, cins in chain:
        args: list[Operand] = []
        for x in cins:
            if isinstance(x, Literal):
                args.append(x)
            elif x in chain_env:
                args.append(chain_env[x])
            else:
                if x not in formal_of:
                    formal_of[x] = sub.input(x.type)
                    operands.append(x)
                args.append(formal_of[x])
        node = sub.copy_node(cn, args)
        chain_env.update(zip(cn.outputs, node.outputs))
    redone = chain_env[chain[-1][0].outputs[0]] if chain else None
    for cn, _ in chain:
        if result in cn.outputs:
            redone = chain_env[result]
    for formal, old in zip(body.inputs, r.inputs):
        if old is v:
            inner[formal] = redone  # type: ignore[assignment]
    for n in body.nodes:
        node = sub.copy_node(n, [x if isinstance(x, Literal) else inner[x] for x in n.inputs])
        inner.update(zip(n.outputs, node.outputs))
    new_body = sub.build([inner[o] for o in body.outputs], name=body.name)
    b = GraphBuilder("scratch")
    b.emit("fusion", *operands, subgraphs=[new_body], kind=r.attrs["kind"], loc=r.loc)
    return _same_results(b.nodes[-1], r.outputs)
