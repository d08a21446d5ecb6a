"""Ops marked ``lowering_only`` (fusion) are rejected by the differentiator."""

from __future__ import annotations

import pytest

from graphc.autodiff import differentiate
from graphc.ir import DifferentiationError, GraphBuilder, all_ops, f64, get_op
from graphc.passes.fuse import fuse


def test_fusion_is_the_lowering_only_op() -> None:
    assert [name for name in all_ops() if get_op(name).has("lowering_only")] == ["fusion"]


def test_differentiating_a_fused_graph_names_the_op() -> None:
    b = GraphBuilder("f")
    x = b.input(f64[3], "x")
    g = b.build([b.reduce_sum(b.exp(b.mul(b.sin(x), 2.0)), axes=(0,))])
    fused = fuse(g)
    assert any(n.op == "fusion" for n in fused.nodes)
    differentiate(g, wrt=[0], seed_outputs=[0])
    with pytest.raises(DifferentiationError, match="cannot differentiate through 'fusion'"):
        differentiate(fused, wrt=[0], seed_outputs=[0])
