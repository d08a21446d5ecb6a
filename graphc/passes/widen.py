"""widen_16bit: float16 and bfloat16 arithmetic beyond elementwise ops, in float32.

NumPy computes float16 matmuls, reductions and convolutions with float32
accumulators and rounds the result once (ml_dtypes does the same for
bfloat16). A backend that only has float32 and float64 kernels for these
ops gets exactly that meaning from this pass: operands are widened to
float32, the op runs in float32, and each 16-bit result is rounded back.
Elementwise ops (which the LLVM emitter computes in float32 lanes and rounds
after each op by itself) and ops that only move data (reshape, transpose,
slice, gather, ...) keep their 16-bit operands, so memory traffic stays
halved where no arithmetic happens.
"""

from __future__ import annotations

from graphc.ir import DType, Graph, Node, Operand, TensorType, Value, get_op

from .manager import count
from .rewrite import Rebuilder, map_subgraphs

# Ops that copy or pick elements without arithmetic on them.
_MOVES = {
    "constant",
    "gather",
    "iota",
    "optimization_barrier",
    "pad",
    "random_bits",
}


def widen_16bit(g: Graph) -> Graph:
    """Run every non-elementwise op on 16-bit floats in float32, rounding its results.

    Contract: a valid graph in; the same meaning out (NumPy's float32
    accumulation for float16), with no matmul, reduction, convolution,
    pooling, cumsum or scatter on a 16-bit float at any depth. Cost: O(nodes).

    >>> from graphc.ir import GraphBuilder, f16
    >>> b = GraphBuilder("f"); x = b.input(f16[2, 3], "x")
    >>> print(widen_16bit(b.build([b.reduce_sum(x, axes=(1,))])))
    graph f(%x: f16[2,3]) -> (f16[2]) {
      %0 = cast %x {dtype=f32}       : f32[2,3]
      %1 = reduce_sum %0 {axes=(1,)} : f32[2]
      %2 = cast %1 {dtype=f16}       : f16[2]
      return %2
    }
    """
    if not _has_16bit(g):
        return g
    rb = Rebuilder(g)
    for n in g.nodes:
        subgraphs = map_subgraphs(n, widen_16bit)
        if not _needs_widening(n):
            rb.keep(n, subgraphs=subgraphs)
            continue
        inputs = [_widened(rb, x, n) for x in rb.operands(n)]
        wide = rb.b.emit_node(n.op, inputs, n.attrs, subgraphs, n.loc)
        outs: list[Operand] = []
        for old, new in zip(n.outputs, wide.outputs):
            if old.type.dtype.is_16bit_float and new.type.dtype != old.type.dtype:
                cast = rb.b.emit_node("cast", [new], {"dtype": old.type.dtype}, (), n.loc)
                outs.append(cast.outputs[0])
            else:
                outs.append(new)
        rb.bind(n, outs)
        rb.changed = True
        count("16-bit ops widened")
    return rb.finish()


def _widened(rb: Rebuilder, x: Operand, n: Node) -> Operand:
    if not isinstance(x, Value) or not x.type.dtype.is_16bit_float:
        return x
    cast = rb.b.emit_node("cast", [x], {"dtype": DType.f32}, (), n.loc)
    out: Value = cast.outputs[0]
    return out


def _needs_widening(n: Node) -> bool:
    if n.op in _MOVES or n.subgraphs:
        return False
    traits = get_op(n.op).traits
    if "elementwise" in traits or "shape" in traits:
        return False
    types: list[TensorType] = [v.type for v in n.outputs]
    types += [x.type for x in n.inputs if isinstance(x, Value)]
    return any(t.dtype.is_16bit_float for t in types)


def _has_16bit(g: Graph) -> bool:
    for n in g.nodes:
        if any(v.type.dtype.is_16bit_float for v in n.outputs):
            return True
        if any(_has_16bit(s) for s in n.subgraphs):
            return True
    return any(v.type.dtype.is_16bit_float for v in g.inputs)
