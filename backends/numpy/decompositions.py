"""DECOMPOSITIONS: ops the NumPy backend rewrites into ops it lowers directly.

Each entry builds the replacement with a builder from the node and its new
operands and returns the values standing for the node's outputs;
:func:`graphc.ir.decompose.decompose` applies the table (see there).
"""

from __future__ import annotations

from collections.abc import Sequence

from graphc.ir import Graph, GraphBuilder, Literal, Node, Operand
from graphc.ir.decompose import Decomposed, Decomposition, inline_body, pass_through
from graphc.ir.decompose import decompose as decompose_with
from graphc.ir.ops.incomplete_grad import decompose_betainc_grad, decompose_gammainc_grad_a


def _rsqrt(b: GraphBuilder, n: Node, inputs: Sequence[Operand]) -> Sequence[Operand]:
    # Exactly the reference's formula, so results agree bit for bit.
    one = Literal(1.0, n.outputs[0].type.dtype)
    return [b.div(one, b.sqrt(inputs[0]))]


DECOMPOSITIONS: dict[str, Decomposition] = {
    # Semantics of fusion = call the body.
    "fusion": inline_body,
    "rsqrt": _rsqrt,
    # remat means "call the body" too; the pipeline inlines it before any backend runs.
    "remat": inline_body,
    # optimization_barrier only constrains passes; by the time code is generated it is an identity.
    "optimization_barrier": pass_through,
    # A convergence loop of ordinary ops (the while loop lowers natively).
    "gammainc_grad_a": decompose_gammainc_grad_a,
    "betainc_grad": decompose_betainc_grad,
}


def decompose(g: Graph) -> Decomposed:
    """``g`` with this backend's :data:`DECOMPOSITIONS` applied."""
    return decompose_with(g, DECOMPOSITIONS)


__all__ = ["DECOMPOSITIONS", "Decomposed", "Decomposition", "decompose"]
