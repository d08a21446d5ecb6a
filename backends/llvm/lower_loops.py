"""Lowerings that become loop kernels: elementwise ops, reductions, view
ops and fusion groups."""

from __future__ import annotations

from graphc.ir import Node, Value, all_ops

from .codegen import ModuleBuilder, lowering, node_graph, unsupported
from .loopspec import REDUCE_OPS, VIEW_OPS

ELEMENTWISE_OPS = tuple(name for name, op in all_ops().items() if op.has("elementwise"))


@lowering(*ELEMENTWISE_OPS, *VIEW_OPS, *REDUCE_OPS)
def lower_loop_op(mb: ModuleBuilder, n: Node) -> None:
    if n.op == "reshape" and isinstance(n.inputs[0], Value):
        if mb.buf(n.output) == mb.buf(n.inputs[0]):
            return  # the result shares its operand's buffer
    if not mb.lower_as_loop(n, node_graph(n)):
        raise unsupported(n, "this op does not fit a single loop kernel")


@lowering("fusion")
def lower_fusion(mb: ModuleBuilder, n: Node) -> None:
    body = n.subgraphs[0]
    if any(bn.op in ("matmul",) for bn in body.nodes):
        from .linalg import lower_matmul_group

        lower_matmul_group(mb, n, body)
        return
    if not mb.lower_as_loop(n, body):
        # A group that needs more than one loop still runs, node by node.
        mb.lower_body(n, body)


@lowering("constant")
def lower_constant(mb: ModuleBuilder, n: Node) -> None:
    """Nothing to run: the array is passed to the entry function by pointer."""
