"""fold_constants: evaluate nodes whose operands are all known at compile time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphc.ir import DType, Graph, GraphBuilder, Literal, Node, Operand, get_op, run_node

from .dce import eliminate_dead_code
from .facts import Producer, known_array, splat, splat_of_array
from .manager import count
from .rewrite import Rebuilder

# Results with more elements than this stay as nodes, unless every element is
# equal (then they become a broadcast literal, which is small at any size).
FOLD_LIMIT = 1024

# Ops that already are the compact form of their value.
NEVER_FOLD = frozenset({"constant", "iota"})


def fold_constants(g: Graph) -> Graph:
    """Replace nodes whose operands are all literals or constants by their value.

    Contract: any valid graph in; a valid graph out with the same meaning.
    A node is evaluated with its op's reference semantics when all its
    operands are known; the result becomes a literal (0-d), a broadcast
    literal (all elements equal), or a ``constant`` node of at most
    :data:`FOLD_LIMIT` elements; larger results are left alone, so a huge
    broadcast is never turned into a giant array. Elementwise nodes whose
    operands are all splats (a broadcast literal, say) fold to a broadcast
    literal without materializing anything. A constant whose elements are
    all equal becomes a broadcast literal. Evaluation errors (an index out of
    range) leave the node in place, so the error is raised when the graph
    runs. Only ``pure`` ops are folded; nodes left dead by folding are
    removed. Cost: one reference evaluation per
    folded node, on arrays of at most the limit (splats: on scalars).

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> print(fold_constants(b.build([b.mul(x, b.exp(b.constant(value=np.zeros(2, "f4"))))])))
    graph f(%x: f32[2]) -> (f32[2]) {
      %0 = broadcast_in_dim 1.0:f32 {shape=(2,), broadcast_dimensions=()} : f32[2]
      %1 = mul %x, %0 : f32[2]
      return %1
    }
    """
    rb = Rebuilder(g)
    folded = 0
    for n in g.nodes:
        inputs = rb.operands(n)
        opdef = get_op(n.op)
        if n.op in NEVER_FOLD or not opdef.has("pure") or len(n.outputs) != 1:
            if n.op == "constant":
                lit = splat_of_array(n.attrs["value"]) if n.output.type.size > 1 else None
                if lit is not None:
                    with rb.b.at(n.loc):
                        rb.bind(n, [splat_value(rb.b, lit, n.output.type.shape)])
                    folded += 1
                    continue
            rb.keep(n, inputs, tuple(fold_constants(s) for s in n.subgraphs))
            continue
        if n.op == "broadcast_in_dim" and isinstance(inputs[0], Literal):
            rb.keep(n, inputs)  # already the compact form of a splat
            continue
        with rb.b.at(n.loc):
            replacement = _fold(rb.b, n, inputs, rb.producer)
        if replacement is None:
            rb.keep(n, inputs, tuple(fold_constants(s) for s in n.subgraphs))
            continue
        rb.bind(n, [replacement])
        folded += 1
    if not folded:
        return rb.finish()
    count("folded", folded)
    # Operands of folded nodes are often left unread; don't hand them on.
    return eliminate_dead_code(rb.finish())


def _fold(
    b: GraphBuilder, n: Node, inputs: Sequence[Operand], producer: Producer
) -> Operand | None:
    out = n.output.type
    arrays = [known_array(x, producer) for x in inputs]
    if all(a is not None for a in arrays):
        return _evaluated(b, n, [a for a in arrays if a is not None])
    if get_op(n.op).has("elementwise"):
        lits = [splat(x, producer) for x in inputs]
        if all(lit is not None for lit in lits):
            value = evaluate_scalar(n, [lit for lit in lits if lit is not None])
            if value is not None:
                return splat_value(b, value, out.shape)
    return None


def _evaluated(b: GraphBuilder, n: Node, arrays: list[np.ndarray]) -> Operand | None:
    out = n.output.type
    if out.size > FOLD_LIMIT and not get_op(n.op).has("elementwise"):
        return None  # e.g. a broadcast to a huge shape: keep the compact node
    try:
        (result,) = run_node(n, arrays)
    except Exception:
        return None
    return array_operand(b, result, out.dtype)


def array_operand(b: GraphBuilder, a: np.ndarray, dtype: DType) -> Operand | None:
    """The smallest IR form of array ``a``: a literal, a broadcast literal or a
    ``constant`` (None when ``a`` is too big and not a splat)."""
    a = canonical_nan(a)
    if a.ndim == 0:
        return Literal(a.item(), dtype)
    if a.size == 0:
        zero = Literal(np.zeros((), dtype.np).item(), dtype)
        return splat_value(b, zero, a.shape)  # no elements: any splat will do
    lit = splat_of_array(a)
    if lit is not None:
        return splat_value(b, lit, a.shape)
    if a.size > FOLD_LIMIT:
        return None
    return b.constant(value=np.ascontiguousarray(a))


def canonical_nan(a: np.ndarray) -> np.ndarray:
    """``a`` with every NaN the default one: the text form writes ``nan`` for
    all of them (no op can tell them apart), so folded values round-trip."""
    if a.dtype.kind == "f" and np.isnan(a).any():
        a = np.where(np.isnan(a), np.array(np.nan, a.dtype), a)
    return a


def evaluate_scalar(n: Node, lits: Sequence[Literal]) -> Literal | None:
    """``n``'s elementwise op applied to scalars (its output dtype); None if it fails."""
    opdef = get_op(n.op)
    try:
        with np.errstate(all="ignore"):
            result = np.asarray(opdef.reference(*(lit.as_array() for lit in lits), **n.attrs))
    except Exception:
        return None
    want = n.output.type.dtype
    if result.shape != () or result.dtype != want.np:
        return None
    return Literal(canonical_nan(result).item(), want)


def splat_value(b: GraphBuilder, lit: Literal, shape: tuple[int, ...]) -> Operand:
    """A value of ``shape`` whose elements all equal ``lit`` (the literal itself for 0-d)."""
    if shape == ():
        return lit
    return b.broadcast_in_dim(lit, shape=shape, broadcast_dimensions=())
