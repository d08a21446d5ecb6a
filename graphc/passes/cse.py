"""eliminate_common_subexpressions: compute each distinct pure expression once."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import Graph, Literal, Operand, Value, get_op

from .manager import count
from .rewrite import Rebuilder


def eliminate_common_subexpressions(g: Graph) -> Graph:
    """Merge pure nodes with the same op, attributes, operands and subgraphs.

    Contract: any valid graph in; a valid graph out with the same meaning in
    which no two pure nodes compute the same expression. Operands of
    ``commutative`` ops are compared as a set, so ``add %x, %y`` and
    ``add %y, %x`` merge. Subgraphs compare structurally and are cleaned
    first. Nodes without the ``pure`` trait are never merged. The merged-away
    nodes become dead and are removed here. Cost: O(nodes), plus hashing
    of constant arrays.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> print(eliminate_common_subexpressions(b.build([b.mul(b.exp(x), b.exp(x))])))
    graph f(%x: f32[2]) -> (f32[2]) {
      %0 = exp %x     : f32[2]
      %1 = mul %0, %0 : f32[2]
      return %1
    }
    """
    rb = Rebuilder(g)
    seen: dict[Any, tuple[Value, ...]] = {}
    order: dict[Value, int] = {v: i for i, v in enumerate(g.inputs)}
    merged = 0
    for n in g.nodes:
        opdef = get_op(n.op)
        inputs = rb.operands(n)
        subgraphs = tuple(eliminate_common_subexpressions(s) for s in n.subgraphs)
        if not opdef.has("pure"):
            kept = rb.keep(n, inputs, subgraphs)
            _number(order, kept.outputs)
            continue
        refs = tuple(_ref(x, order) for x in inputs)
        if opdef.has("commutative"):
            refs = tuple(sorted(refs, key=repr))
        key = (
            n.op,
            refs,
            tuple((k, _attr_key(v)) for k, v in n.attrs.items()),
            tuple(s.structural_key() for s in subgraphs),
            tuple(v.type for v in n.outputs),
        )
        found = seen.get(key)
        if found is not None:
            rb.drop(n)
            rb.bind(n, found)
            merged += 1
            continue
        kept = rb.keep(n, inputs, subgraphs)
        seen[key] = kept.outputs
        _number(order, kept.outputs)
    if merged:
        count("merged", merged)
    return rb.finish()


def _number(order: dict[Value, int], values: tuple[Value, ...]) -> None:
    for v in values:
        order.setdefault(v, len(order))


def _ref(x: Operand, order: dict[Value, int]) -> tuple[Any, ...]:
    if isinstance(x, Literal):
        return ("literal", x.dtype.value, x.text())
    return ("value", order[x])


def _attr_key(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, tuple):
        return tuple(_attr_key(v) for v in value)
    return (type(value).__name__, value)
