"""merge_sum_chains: a sum of many small products, reductions, scatters or
padded slices as one operation over their concatenated operands.

A Python ``for t in range(T)`` loop traced and differentiated accumulates a
parameter's gradient as an add-chain with one term per step: ``Σ_t a_t @ b_t``
(a recurrent weight), ``Σ_t reduce_sum(u_t)`` (a bias), ``Σ_t
scatter_add(0, i_t, u_t)`` (an embedding), and ``Σ_t pad(c_t)`` (the
cotangent of ``x[t]`` for each slice of one tensor, each padded to the full
size). Each becomes one operation: a matmul of ``[a_0 … a_T-1]`` by
``[b_0; …; b_T-1]`` (one GEMM instead of T small ones and T-1 adds), one
reduction, one scatter, and one ``concatenate`` of the slices' cotangents
(instead of T full-size padded tensors added up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphc.ir import Graph, GraphBuilder, Literal, Node, Operand, Value

from .manager import count
from .rewrite import Rebuilder


def merge_sum_chains(g: Graph) -> Graph:
    """Rewrite add-chains whose terms include at least two matmuls, reductions,
    zero-based scatters or disjoint pads of the same kind (see the module
    docstring). Bodies of nodes with subgraphs are rewritten too.

    Contract: a valid graph in; the same meaning out up to the order of
    floating-point additions. A term is merged only when the chain is its
    only reader. Cost: linear in the graph.

    >>> from graphc.ir import GraphBuilder, f64
    >>> b = GraphBuilder("f")
    >>> a = [b.input(f64[3, 2], f"a{i}") for i in range(3)]
    >>> c = [b.input(f64[2, 4], f"c{i}") for i in range(3)]
    >>> total = b.add(b.add(b.matmul(a[0], c[0]), b.matmul(a[1], c[1])), b.matmul(a[2], c[2]))
    >>> print([n.op for n in merge_sum_chains(b.build([total])).nodes])
    ['concatenate', 'concatenate', 'matmul']
    """
    readers: dict[Value, int] = {}
    for n in g.nodes:
        for x in n.value_inputs():
            readers[x] = readers.get(x, 0) + 1
    for v in g.outputs:
        readers[v] = readers.get(v, 0) + 1
    producers = g.producers()

    def single(x: Operand) -> Node | None:
        """The producer of ``x`` if the chain is its only reader."""
        if isinstance(x, Value) and readers.get(x) == 1:
            return producers.get(x)
        return None

    single.producers = producers  # type: ignore[attr-defined]

    plans: dict[Node, list[Operand]] = {}
    absorbed: set[Node] = set()
    for n in reversed(g.nodes):
        if n.op != "add" or n in absorbed or not _plain_add(n):
            continue
        terms, inner = _flatten(n, single)
        merged = _merged_terms(terms, single)
        if merged:
            plans[n] = terms
            absorbed.update(inner)
            absorbed.update(merged)
    if not plans and not any(n.subgraphs for n in g.nodes):
        return g
    rb = Rebuilder(g)
    # The chains of one loop stack the same per-step values (a bias and an
    # embedding gradient both sum the pre-activation cotangents): one copy.
    joined: dict[tuple[Any, ...], Operand] = {}

    def concat(parts: Sequence[Operand], axis: int) -> Operand:
        key = (axis, *(id(x) if isinstance(x, Value) else (x.dtype, x.text()) for x in parts))
        if key not in joined:
            joined[key] = rb.b.concatenate(*parts, axis=axis)
        return joined[key]

    single.concat = concat  # type: ignore[attr-defined]
    for n in g.nodes:
        if n in absorbed:
            rb.drop(n)
        elif n in plans:
            with rb.b.at(n.loc):
                rb.bind(n, [_merge(rb, plans[n], single)])
            rb.drop(n)
            count("sum chains merged")
        else:
            rb.keep(n, subgraphs=tuple(merge_sum_chains(s) for s in n.subgraphs))
    return rb.finish()


def _plain_add(n: Node) -> bool:
    """An add of two operands of the result's own type (no broadcasting)."""
    return all(x.type == n.output.type for x in n.inputs)


def _flatten(root: Node, single: Any) -> tuple[list[Operand], list[Node]]:
    terms: list[Operand] = []
    inner: list[Node] = []
    stack = list(reversed(root.inputs))
    while stack:
        x = stack.pop()
        p = single(x)
        if p is not None and p.op == "add" and _plain_add(p):
            inner.append(p)
            stack.extend(reversed(p.inputs))
        else:
            terms.append(x)
    return terms, inner


def _key(x: Operand, single: Any) -> Any:
    """Terms with the same key merge into one operation."""
    p = single(x)
    if p is None:
        return None
    if p.op == "matmul" and all(v.type.ndim == 2 for v in p.inputs):
        a, c = p.inputs
        return ("matmul", a.type.shape[0], c.type.shape[1])
    if p.op == "reduce_sum" and p.attrs["axes"]:
        (u,) = p.inputs
        axes = tuple(sorted(a % u.type.ndim for a in p.attrs["axes"]))
        rest = tuple(d for k, d in enumerate(u.type.shape) if k != axes[0])
        return ("reduce_sum", axes, p.attrs.get("keepdims", False), rest, u.type.dtype)
    if p.op == "scatter_add" and p.attrs["axis"] % p.output.type.ndim == 0:
        zeros, idx, _ = p.inputs
        if _zero_base(zeros, single.producers) and idx.type.ndim == 1:
            return ("scatter_add", idx.type.dtype)
    if p.op == "pad" and _zero_literal(p.inputs[1]) and not any(p.attrs["interior"]):
        axes = [k for k, (lo, hi) in enumerate(zip(p.attrs["low"], p.attrs["high"])) if lo or hi]
        if len(axes) == 1:
            return ("pad", axes[0])
    return None


def _merged_terms(terms: Sequence[Operand], single: Any) -> list[Node]:
    """The producers of the terms that merge with others (none: leave the chain)."""
    groups: dict[Any, list[Node]] = {}
    for x in terms:
        k = _key(x, single)
        if k is not None:
            groups.setdefault(k, []).append(single(x))
    return [
        p
        for k, nodes in groups.items()
        if len(nodes) >= 2 and (k[0] != "pad" or _disjoint(terms, k, single))
        for p in nodes
    ]


def _disjoint(terms: Sequence[Operand], key: Any, single: Any) -> bool:
    spans = sorted(_span(single(x)) for x in terms if _key(x, single) == key)
    return all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def _span(p: Node) -> tuple[int, int]:
    (axis,) = [k for k, (lo, hi) in enumerate(zip(p.attrs["low"], p.attrs["high"])) if lo or hi]
    size = p.output.type.shape[axis]
    return p.attrs["low"][axis], size - p.attrs["high"][axis]


def _zero_literal(x: Operand) -> bool:
    return isinstance(x, Literal) and x.value == 0


def _zero_base(x: Operand, producers: dict[Value, Node]) -> bool:
    """Zeros: a zero literal, or one broadcast."""
    p = producers.get(x) if isinstance(x, Value) else None
    return _zero_literal(x) or (
        p is not None and p.op == "broadcast_in_dim" and _zero_literal(p.inputs[0])
    )


def _merge(rb: Rebuilder, terms: list[Operand], single: Any) -> Operand:
    b = rb.b
    groups: dict[Any, list[Node]] = {}
    rest: list[Operand] = []
    for x in terms:
        k = _key(x, single)
        if k is not None and (k[0] != "pad" or _disjoint(terms, k, single)):
            groups.setdefault(k, []).append(single(x))
        else:
            rest.append(rb.operand(x))
    merged: list[Operand] = list(rest)
    for key, nodes in groups.items():
        if len(nodes) == 1:
            merged.append(rb.operand(nodes[0].output))
            continue
        merged.append(_merge_group(b, rb, key, nodes, single.producers, single.concat))
    total = merged[0]
    for x in merged[1:]:
        total = b.add(total, x)
    return total


def _merge_group(
    b: GraphBuilder,
    rb: Rebuilder,
    key: Any,
    nodes: list[Node],
    producers: dict[Value, Node],
    concat: Any,
) -> Operand:
    count(f"{key[0]} terms merged", len(nodes))
    ins = [[rb.operand(x) for x in n.inputs] for n in nodes]
    if key[0] == "matmul":
        rows = _untransposed(b, rb, [n.inputs[0] for n in nodes], producers)
        if rows is not None:
            # Σ x_tᵀ @ g_t (a weight's gradient): stacking the x_t is one copy of
            # rows, and the product reads the stack transposed (a BLAS flag);
            # concatenating the transposes would copy them column by column.
            stacked = concat(rows, 0)
            wide = b.transpose(stacked, perm=(1, 0))
        else:
            wide = concat([i[0] for i in ins], 1)
        tall = concat([i[1] for i in ins], 0)
        return b.matmul(wide, tall)
    if key[0] == "reduce_sum":
        axes, keepdims = key[1], key[2]
        joined = concat([i[0] for i in ins], axes[0])
        return b.reduce_sum(joined, axes=axes, keepdims=keepdims)
    if key[0] == "scatter_add":
        zeros = ins[0][0]
        idx = concat([i[1] for i in ins], 0)
        upd = concat([i[2] for i in ins], 0)
        return b.scatter_add(zeros, idx, upd, axis=0)
    # Disjoint pads along one axis: the pieces in order, zeros in the gaps.
    axis = key[1]
    out = nodes[0].output.type
    pieces: list[tuple[int, Operand]] = [(_span(n)[0], i[0]) for n, i in zip(nodes, ins)]
    pieces.sort(key=lambda p: p[0])
    parts: list[Operand] = []
    at = 0
    for start, piece in pieces:
        if start > at:
            parts.append(_zeros_along(b, out, axis, start - at))
        parts.append(piece)
        at = start + piece.type.shape[axis]
    if at < out.shape[axis]:
        parts.append(_zeros_along(b, out, axis, out.shape[axis] - at))
    return b.concatenate(*parts, axis=axis)


def _untransposed(
    b: GraphBuilder, rb: Rebuilder, xs: list[Value], producers: dict[Value, Node]
) -> list[Operand] | None:
    """The ``x`` of each ``transpose(x)`` in ``xs`` (a splat, such as the first
    step's zero state, is its own transpose), or None unless all are 2-d
    transposes or splats."""
    found = [producers.get(v) for v in xs]
    if not all(p is not None and (_is_transpose(p) or _is_splat(p)) for p in found):
        return None
    rows: list[Operand] = []
    for v, p in zip(xs, found):
        assert p is not None
        if _is_transpose(p):
            rows.append(rb.operand(p.inputs[0]))
        else:
            m, k = v.type.shape
            rows.append(b.broadcast_in_dim(p.inputs[0], shape=(k, m), broadcast_dimensions=()))
    return rows


def _is_transpose(p: Node) -> bool:
    return p.op == "transpose" and tuple(p.attrs["perm"]) == (1, 0)


def _is_splat(p: Node) -> bool:
    return p.op == "broadcast_in_dim" and isinstance(p.inputs[0], Literal)


def _zeros_along(b: GraphBuilder, ty: Any, axis: int, size: int) -> Operand:
    shape = tuple(size if k == axis else d for k, d in enumerate(ty.shape))
    zero = Literal(0.0 if ty.dtype.is_float else 0, ty.dtype)
    return b.broadcast_in_dim(zero, shape=shape, broadcast_dimensions=())
