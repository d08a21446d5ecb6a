"""share_transposed_operands: one transposed copy of a matrix many products read transposed.

A fused product ``x @ w.T`` hands BLAS ``w`` with the transposed flag, and
BLAS packs its operands on every call. Packing a transposed right operand is
slower than packing a plain one, by a fixed cost per call that does not shrink
with the number of rows (measured with OpenBLAS: about 35 µs more for a
256×256 float32 matrix, +65% on a 32×256 by 256×256 product, +2% on a
2048-row one). The backward pass of a recurrence unrolled over T steps reads
``w_hh.T`` in T products, so it pays that cost T times.

When at least ``MIN_READERS`` fused products read the same 2-d value
transposed as their right operand, this pass computes the transpose once (a
top-level ``transpose``, which the LLVM backend writes out) right before the
first of them, and hands it to each as a plain operand. The products compute
the same sums; only the layout BLAS reads changes.
"""

from __future__ import annotations

from graphc.ir import Graph, GraphBuilder, Literal, Node, Operand, Value

from .manager import count

# One transposed copy costs about two packings' difference; three readers repay it.
MIN_READERS = 3
_PRODUCT_KINDS = ("matmul", "matmul_epilogue")


def share_transposed_operands(g: Graph) -> Graph:
    """Give products that read one matrix transposed a shared transposed copy.

    Contract: a fused graph in; the same inputs, outputs and values out (up to
    BLAS rounding), with one ``transpose`` node per shared matrix and fusion
    bodies that read it plainly. Cost: one pass over the nodes and their bodies.

    >>> from graphc.ir import GraphBuilder, f32
    >>> from graphc.passes.fuse import fuse
    >>> b = GraphBuilder("f"); w = b.input(f32[8, 8], "w"); x = b.input(f32[4, 8], "x")
    >>> for _ in range(3):
    ...     x = b.tanh(b.matmul(x, b.transpose(w, perm=(1, 0))))
    >>> g = share_transposed_operands(fuse(b.build([x])))
    >>> [n.op for n in g.nodes]
    ['transpose', 'fusion', 'fusion', 'fusion']
    >>> any(n.op == "transpose" for n in g.nodes[1].subgraphs[0].nodes)
    False
    """
    readers: dict[Value, list[tuple[int, int]]] = {}
    for i, n in enumerate(g.nodes):
        for k in _transposed_rhs(n):
            readers.setdefault(n.inputs[k], []).append((i, k))  # type: ignore[arg-type]
    shared = {w: rs for w, rs in readers.items() if len(rs) >= MIN_READERS}
    if not shared:
        return g
    before: dict[int, list[Value]] = {}
    rewrite: dict[int, list[int]] = {}
    for w, rs in shared.items():
        before.setdefault(min(i for i, _ in rs), []).append(w)
        for i, k in rs:
            rewrite.setdefault(i, []).append(k)
    b = GraphBuilder("scratch")
    transposed: dict[Value, Value] = {}
    nodes: list[Node] = []
    for i, n in enumerate(g.nodes):
        for w in before.get(i, []):
            transposed[w] = b.emit("transpose", w, perm=(1, 0), loc=n.loc)
            nodes.append(b.nodes[-1])
        nodes.append(_reading_transposed(n, rewrite[i], transposed) if i in rewrite else n)
    count("transposes shared", len(shared))
    count("products reading a shared transpose", sum(len(rs) for rs in shared.values()))
    return g.replace(nodes=tuple(nodes))


def _transposed_rhs(n: Node) -> list[int]:
    """Operand positions of fusion ``n`` whose only use in the body is a 2-d
    transpose read only as the right operand of products."""
    if n.op != "fusion" or n.attrs.get("kind") not in _PRODUCT_KINDS:
        return []
    body = n.subgraphs[0]
    found = []
    for k, (formal, actual) in enumerate(zip(body.inputs, n.inputs)):
        if not isinstance(actual, Value) or len(formal.type.shape) != 2:
            continue
        if formal in body.outputs:
            continue
        uses = [bn for bn in body.nodes if formal in bn.inputs]
        if len(uses) != 1 or uses[0].op != "transpose":
            continue
        if tuple(uses[0].attrs["perm"]) != (1, 0) or uses[0].outputs[0] in body.outputs:
            continue
        t = uses[0].outputs[0]
        products = [bn for bn in body.nodes if t in bn.inputs]
        if products and all(
            p.op == "matmul" and p.inputs[1] is t and p.inputs[0] is not t for p in products
        ):
            found.append(k)
    return found


def _reading_transposed(n: Node, positions: list[int], transposed: dict[Value, Value]) -> Node:
    """Fusion ``n`` with its operands at ``positions`` replaced by their shared
    transposes, read in the body without a transpose of its own."""
    body = n.subgraphs[0]
    sub = GraphBuilder(body.name)
    inner: dict[Value, Operand] = {}
    operands: list[Operand] = []
    skip: set[Node] = set()
    for k, (formal, actual) in enumerate(zip(body.inputs, n.inputs)):
        if k in positions:
            assert isinstance(actual, Value)
            plain = sub.input(transposed[actual].type, formal.name)
            (use,) = [bn for bn in body.nodes if formal in bn.inputs]
            skip.add(use)
            inner[use.outputs[0]] = plain
            operands.append(transposed[actual])
        else:
            inner[formal] = sub.input(formal.type, formal.name)
            operands.append(actual)
    for bn in body.nodes:
        if bn in skip:
            continue
        made = sub.copy_node(bn, [x if isinstance(x, Literal) else inner[x] for x in bn.inputs])
        inner.update(zip(bn.outputs, made.outputs))
    new_body = sub.build([inner[o] for o in body.outputs], name=body.name)
    b = GraphBuilder("scratch")
    b.emit("fusion", *operands, subgraphs=[new_body], loc=n.loc, **n.attrs)
    made = b.nodes[-1]
    assert [v.type for v in made.outputs] == [v.type for v in n.outputs]
    # The node keeps its result Values, so every reader is reused as it is.
    return Node(made.op, made.inputs, n.outputs, made.attrs, made.subgraphs, made.loc)
