"""widen_16bit: float16 and bfloat16 arithmetic beyond elementwise ops, in float32.

NumPy computes float16 matmuls, reductions and convolutions with float32
accumulators and rounds the result once (ml_dtypes does the same for
bfloat16). A backend that only has float32 and float64 kernels for these
ops gets exactly that meaning from this rewrite: operands are widened to
float32, the op runs in float32, and each 16-bit result is rounded back.
Elementwise ops (which a backend computes in float32 lanes, rounding after
each op) and ops that only move data (reshape, transpose, slice, gather, ...)
keep their 16-bit operands, so memory traffic stays halved where no
arithmetic happens.

The optimization pipeline runs it before fusion, so the casts fuse with their
neighbours; the LLVM backend runs it again on what it is given, so a graph
that skipped the pipeline never reaches a float32 kernel with 16-bit data.
"""

from __future__ import annotations

from .builder import GraphBuilder
from .core import Graph, Node, Operand, Value
from .dtypes import DType
from .ops.registry import get_op

# Ops that copy or pick elements without arithmetic on them.
_MOVES = frozenset({"constant", "gather", "iota", "optimization_barrier", "pad", "random_bits"})


def widen_16bit(g: Graph) -> Graph:
    """Run every non-elementwise op on 16-bit floats in float32, rounding its results.

    Contract: a valid graph in; the same meaning out (NumPy's float32
    accumulation for float16), with no matmul, reduction, convolution,
    pooling, cumsum or scatter on a 16-bit float at any depth; ``g`` itself
    when there is nothing to widen. Cost: O(nodes).

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
    if not _needs_any(g):
        return g
    b = GraphBuilder(g.name)
    b.inputs.extend(g.inputs)
    env: dict[Value, Operand] = {}
    for n in g.nodes:
        inputs = [env.get(x, x) if isinstance(x, Value) else x for x in n.inputs]
        subgraphs = tuple(widen_16bit(s) for s in n.subgraphs)
        if not _needs_widening(n):
            new = b.emit_node(n.op, inputs, n.attrs, subgraphs, n.loc)
            env.update(zip(n.outputs, new.outputs))
            continue
        low_result = any(v.type.dtype.is_16bit_float for v in n.outputs)
        names = get_op(n.op).operands
        inputs = [
            x if i < len(names) and names[i] == "indices" else _widened(b, x, n, low_result)
            for i, x in enumerate(inputs)
        ]
        wide = b.emit_node(n.op, inputs, n.attrs, subgraphs, n.loc)
        for old, out in zip(n.outputs, wide.outputs):
            if old.type.dtype.is_16bit_float and out.type.dtype != old.type.dtype:
                out = b.emit_node("cast", [out], {"dtype": old.type.dtype}, (), n.loc).outputs[0]
            env[old] = out
    outputs = [env.get(v, v) for v in g.outputs]
    with b.at(None):
        return b.build(outputs, name=g.name)


def _widened(b: GraphBuilder, x: Operand, n: Node, low_result: bool) -> Operand:
    if not isinstance(x, Value):
        return x
    # bool and integer operands of an op with a 16-bit float result (a special
    # function of bools takes NumPy's float16 loop) are computed in float32 too;
    # index operands (scatter_add's) stay integers: they address, not compute
    numeric_input = low_result and (x.type.dtype.is_bool or x.type.dtype.is_int)
    if not (x.type.dtype.is_16bit_float or numeric_input):
        return x
    out: Value = b.emit_node("cast", [x], {"dtype": DType.f32}, (), n.loc).outputs[0]
    return out


def _needs_widening(n: Node) -> bool:
    if n.op in _MOVES or n.subgraphs:
        return False
    traits = get_op(n.op).traits
    if "elementwise" in traits or "shape" in traits:
        return False
    values = list(n.outputs) + [x for x in n.inputs if isinstance(x, Value)]
    return any(v.type.dtype.is_16bit_float for v in values)


def _needs_any(g: Graph) -> bool:
    return any(_needs_widening(n) or any(_needs_any(s) for s in n.subgraphs) for n in g.nodes)
