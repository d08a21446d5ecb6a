"""Donation: which outputs may be written straight into a donated input's buffer.

A training step returns new parameters and optimizer state of exactly the
types of the old ones. When the caller donates the old arrays, the backend can
write each new value over its old one, so a step allocates nothing for them.
That is legal only when every other read of the old value has happened before
the new value is written, or happens in the same elementwise loop at the same
index (each element is read before it is overwritten).

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


def _is_elementwise(n: Node) -> bool:
    if n.op == "fusion":
        return n.attrs.get("kind") == "elementwise"
    return get_op(n.op).has("elementwise")


def pair_donations(g: Graph, donated: Sequence[int]) -> dict[Value, Value]:
    """Output value -> donated input value, same type, each used at most once.

    An input that flows into the output through elementwise ops (a parameter
    into its update) is preferred; otherwise inputs pair in order.
    """
    producers = g.producers()
    pool = [g.inputs[i] for i in dict.fromkeys(donated)]
    returned = set(g.outputs)
    pool = [u for u in pool if u not in returned]  # returned as is: its buffer is the result
    pairs: dict[Value, Value] = {}
    seen: set[Value] = set()
    for v in g.outputs:
        if v in seen or v not in producers:
            seen.add(v)
            continue
        seen.add(v)
        same_type = [u for u in pool if u.type == v.type]
        if not same_type:
            continue
        lineage = _elementwise_lineage(v, producers)
        partner = next((u for u in same_type if u in lineage), same_type[0])
        pool.remove(partner)
        pairs[v] = partner
    return pairs


def _elementwise_lineage(v: Value, producers: dict[Value, Node]) -> set[Value]:
    """Values reachable backwards from ``v`` through elementwise nodes."""
    found: set[Value] = set()
    stack = [v]
    while stack:
        n = producers.get(stack.pop())
        if n is None or not _is_elementwise(n):
            continue
        for x in n.value_inputs():
            if x not in found:
                found.add(x)
                stack.append(x)
    return found


def buffer_readers(g: Graph, u: Value) -> list[int]:
    """Indices of the nodes that read ``u``'s buffer: readers of ``u`` and of
    any view of it."""
    readers: list[int] = []
    views = {u}
    for i, n in enumerate(g.nodes):
        if any(x in views for x in n.value_inputs()):
            readers.append(i)
            if _may_be_view(n):
                views.update(n.outputs)
    return readers


def _reads_in_place(n: Node, u: Value, v: Value) -> bool:
    """Whether ``n`` (producing ``v``) reads ``u`` only at the index it writes."""
    if not _is_elementwise(n) or u.type.shape != v.type.shape:
        return False
    if n.op != "fusion":
        return True
    (body,) = n.subgraphs
    formals = {body.inputs[k] for k, x in enumerate(n.inputs) if x is u}
    for bn in body.nodes:
        if any(x in formals for x in bn.value_inputs()):
            if not get_op(bn.op).has("elementwise") or bn.outputs[0].type.shape != u.type.shape:
                return False
    return not any(x in formals for x in body.outputs)


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
        readers = buffer_readers(g, u)
        if all(r < at or (r == at and _reads_in_place(n, u, v)) for r in readers):
            legal[v] = u
    return legal
