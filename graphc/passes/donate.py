"""Donation: which outputs may be written straight into a donated input's buffer.

A training step returns new parameters and optimizer state of exactly the
types of the old ones. When the caller donates the old arrays, the backend can
write each new value over its old one, so a step allocates nothing for them.
That is legal only when every other read of the old value has happened before
the new value is written, or happens in the same elementwise loop at the same
index (each element is read before it is overwritten). A fused matmul's
epilogue is such a loop too (``w - lr * (x.T @ dy)``): the backend must then
not store the product over the old value before the epilogue reads it.

``pair_donations`` picks a partner input for each output from the graph's
structure alone (the scheduler uses it to order nodes); ``plan_donations``
keeps the pairs that are legal in the final node order.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphc.ir import Graph, Node, Value, get_op


def _may_be_view(n: Node) -> bool:
    # A backend may implement shape ops as views of their operand (NumPy does,
    # and the LLVM backend reads transposes through strides), so a read of
    # their result can be a read of the operand's buffer.
    return get_op(n.op).has("shape")


def _flows_from(n: Node, v: Value) -> list[Value]:
    """Inputs of ``n`` that reach its output ``v`` through elementwise ops
    only (inside a fusion body: not through its matmul or reductions)."""
    if n.op != "fusion":
        return list(n.value_inputs()) if get_op(n.op).has("elementwise") else []
    (body,) = n.subgraphs
    producers = body.producers()
    actual = dict(zip(body.inputs, n.inputs))
    found: list[Value] = []
    seen: set[Value] = set()
    stack = [body.outputs[n.outputs.index(v)]]
    while stack:
        x = stack.pop()
        if x in seen:
            continue
        seen.add(x)
        bn = producers.get(x)
        if bn is None:
            y = actual.get(x)
            if isinstance(y, Value):
                found.append(y)
        elif get_op(bn.op).has("elementwise"):
            stack.extend(bn.value_inputs())
    return found


def pair_donations(g: Graph, donated: Sequence[int]) -> dict[Value, Value]:
    """Output value -> donated input value, same type, each used at most once.

    An input that flows into the output through elementwise ops (a parameter
    into its update) is preferred; the outputs left then take the remaining
    inputs in order.
    """
    producers = g.producers()
    pool = [g.inputs[i] for i in dict.fromkeys(donated)]
    returned = set(g.outputs)
    pool = [u for u in pool if u not in returned]  # returned as is: its buffer is the result
    candidates = [v for v in dict.fromkeys(g.outputs) if v in producers]
    pairs: dict[Value, Value] = {}
    for v in candidates:
        lineage = _elementwise_lineage(v, producers)
        partner = next((u for u in pool if u.type == v.type and u in lineage), None)
        if partner is not None:
            pool.remove(partner)
            pairs[v] = partner
    # A raw product or a reduction of the parameter's type comes second, so it
    # does not take the parameter its own update could have written over.
    for v in candidates:
        partner = next((u for u in pool if u.type == v.type), None)
        if v not in pairs and partner is not None:
            pool.remove(partner)
            pairs[v] = partner
    return {v: pairs[v] for v in candidates if v in pairs}


def _elementwise_lineage(v: Value, producers: dict[Value, Node]) -> set[Value]:
    """Values reachable backwards from ``v`` through elementwise ops, also
    those inside fusions (a parameter reaches its update through the
    epilogue of the gradient's product)."""
    found: set[Value] = set()
    stack = [v]
    while stack:
        x = stack.pop()
        n = producers.get(x)
        if n is None:
            continue
        for y in _flows_from(n, x):
            if y not in found:
                found.add(y)
                stack.append(y)
    return found


def buffer_readers(g: Graph, u: Value) -> list[int]:
    """Indices of the nodes that read ``u``'s buffer: readers of ``u`` and of
    any view of it."""
    return [i for i, _ in _buffer_reads(g, u)]


def _buffer_reads(g: Graph, u: Value) -> list[tuple[int, bool]]:
    """(index, reads a view) for each node reading ``u``'s buffer."""
    reads: list[tuple[int, bool]] = []
    views = {u}
    for i, n in enumerate(g.nodes):
        hit = [x for x in n.value_inputs() if x in views]
        if hit:
            reads.append((i, any(x is not u for x in hit)))
            if _may_be_view(n):
                views.update(n.outputs)
    return reads


def _reads_in_place(n: Node, u: Value, v: Value) -> bool:
    """Whether ``n`` (producing ``v``) reads ``u`` only at the index it writes.

    A fusion qualifies when its body reads ``u`` only through elementwise ops
    of ``u``'s shape and computes ``v`` by an elementwise op: every fusion
    runs its elementwise part as one loop (a matmul's epilogue included; a
    reduction inside is only ever a result, never read back in the loop).
    """
    if u.type.shape != v.type.shape:
        return False
    if n.op != "fusion":
        return get_op(n.op).has("elementwise")
    (body,) = n.subgraphs
    formals = {body.inputs[k] for k, x in enumerate(n.inputs) if x is u}
    for bn in body.nodes:
        if any(x in formals for x in bn.value_inputs()):
            if not get_op(bn.op).has("elementwise") or bn.outputs[0].type.shape != u.type.shape:
                return False
    if any(x in formals for x in body.outputs):
        return False
    writer = body.producers().get(body.outputs[n.outputs.index(v)])
    # Not the product itself: a GEMM writes all of it before the epilogue runs.
    return writer is not None and get_op(writer.op).has("elementwise")


def plan_donations(g: Graph, donated: Sequence[int]) -> dict[Value, Value]:
    """The legal (output -> donated input) pairs for ``g``'s node order.

    Contract: ``g`` is in its final order (after fusion and scheduling).
    Cost: O(n) per pair.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("step"); p = b.input(f32[4], "p"); gr = b.input(f32[4], "g")
    >>> g = b.build([b.sub(p, b.mul(gr, 0.1))])
    >>> [u.name for u in plan_donations(g, donated=[0]).values()]
    ['p']
    """
    producers = g.producers()
    position = {n: i for i, n in enumerate(g.nodes)}
    legal: dict[Value, Value] = {}
    for v, u in pair_donations(g, donated).items():
        n = producers[v]
        at = position[n]
        reads = _buffer_reads(g, u)
        # A view is read at other indices (a transpose) or through other strides.
        if all(r < at or (r == at and not view and _reads_in_place(n, u, v)) for r, view in reads):
            legal[v] = u
    return legal
