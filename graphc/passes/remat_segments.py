"""Checkpointed segments: what ``rematerialize`` does when cheap recomputation is not enough.

Recomputing elementwise work never brings back a value made by a matrix
product. When the values kept across the peak are products' results (each
layer's activation, ``tanh(h @ w + b)``), the budget is met only by computing
some of them again, products included. As in Chen et al.'s sublinear-memory
training, the chain of such values (in forward order) is cut into segments:
the last value of each segment is kept (a checkpoint), the others are
dropped, and right before the backward needs a dropped value, its segment is
computed again from the checkpoint before it. Segments of length ``s`` keep
about ``n / (s + 1)`` values plus ``s`` recomputed ones at a time, at the
price of one more forward pass through the dropped values' ops.

A budget a little under the unbudgeted peak needs far less than that: dropping
``k`` values that are not neighbours in the chain (each recomputed from the kept
value before it) frees ``k`` values at the peak for ``k`` recomputed products.
``spread_drops`` makes those choices; the pass looks for the smallest ``k``
that meets the budget before it shortens segments.
"""

from __future__ import annotations

from collections.abc import Callable

from graphc.ir import Graph, Node, Value, get_op

# Results that a segment may compute again (never reductions, gathers or random draws:
# those are kept, or reached only through cheap ops).
PRODUCTS = frozenset({"matmul", "conv2d"})
MAX_CONE = 24  # ops recomputed for one dropped value, its segment's other values aside


def _recomputable(n: Node) -> bool:
    opdef = get_op(n.op)
    return len(n.outputs) == 1 and (
        opdef.has("elementwise") or opdef.has("shape") or n.op in PRODUCTS
    )


def chain_of_products(
    g: Graph, needed: list[Value], leaf: Callable[[Value], bool], root: dict[Value, Value]
) -> tuple[list[Value], dict[Value, set[Value]]]:
    """The values of ``needed`` (in forward order) that can be computed again,
    products included, from other needed values and values ``leaf`` says are
    kept anyway, each with the values (not in ``needed``) its recomputation
    makes. ``root`` maps a barrier's output to the value it passes on."""
    producer = g.producers()
    wanted = set(needed)
    chain: list[Value] = []
    cones: dict[Value, set[Value]] = {}
    for r in needed:
        cone: set[Value] = set()
        stack, ok, products = [r], True, 0
        while stack and ok:
            u = stack.pop()
            if u in cone:
                continue
            p = producer.get(u)
            if p is None or not _recomputable(p) or len(cone) >= MAX_CONE:
                ok = False
                break
            cone.add(u)
            products += p.op in PRODUCTS
            for x in p.value_inputs():
                x = root.get(x, x)
                if x not in wanted and not leaf(x) and x not in cone:
                    stack.append(x)
        if ok and products:
            chain.append(r)
            cones[r] = cone
    return chain, cones


def spread_drops(chain: list[Value], cones: dict[Value, set[Value]], k: int) -> set[Value]:
    """The values to compute again when ``k`` (at most ``len(chain) // 2``) values
    of ``chain``, evenly spread and never neighbours, are dropped: each is
    recomputed from the kept value before it, so each costs one segment of length 1."""
    n = len(chain)
    assert 1 <= k <= n // 2
    again: set[Value] = set()
    for i in range(k):
        # Spacing n / k >= 2 keeps consecutive picks apart; with k = n // 2 they are
        # every other value from the first, as with segments of length 1.
        again |= cones[chain[i * n // k]]
    return again


def segment_choices(
    chain: list[Value], cones: dict[Value, set[Value]], max_length: int
) -> list[tuple[int, set[Value]]]:
    """For segment lengths 1..``max_length``: the values to compute again
    (dropped chain values and what their recomputation makes)."""
    out = []
    for s in range(1, max_length + 1):
        dropped = [r for j, r in enumerate(chain) if (j + 1) % (s + 1) != 0]
        if not dropped:
            continue
        again: set[Value] = set()
        for r in dropped:
            again |= cones[r]
        out.append((s, again))
    return out
