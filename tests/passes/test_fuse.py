"""fuse: IR-in/IR-out cases and properties on random graphs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from graphc.ir import Graph, GraphcError, parse, verify
from graphc.passes.fuse import VIEW_OPS, fuse
from tests.passes.helpers import (
    assert_same_meaning,
    check_pass,
    check_same_meaning,
    interpret_live,
    random_inputs,
)
from tests.strategies import graphs


def test_elementwise_chain_becomes_one_group() -> None:
    check_pass(
        fuse,
        """
        graph f(%x: f32[8], %y: f32[8]) -> (f32[8]) {
          %0 = mul %x, 2.0 : f32[8]
          %1 = exp %0 : f32[8]
          %2 = add %1, %y : f32[8]
          return %2
        }""",
        """
        graph f(%x: f32[8], %y: f32[8]) -> (f32[8]) {
          %0 = fusion %x, %y : f32[8] {
            (%a: f32[8], %b: f32[8]) {
              %t0 = mul %a, 2.0 : f32[8]
              %t1 = exp %t0 : f32[8]
              %t2 = add %t1, %b : f32[8]
              return %t2
            }
          }
          return %0
        }""",
    )


def test_matmul_epilogue_with_bias_and_relu() -> None:
    check_pass(
        fuse,
        """
        graph f(%x: f32[4,3], %w: f32[3,5], %b: f32[5]) -> (f32[4,5]) {
          %0 = matmul %x, %w : f32[4,5]
          %1 = broadcast_in_dim %b {shape=(4,5), broadcast_dimensions=(1,)} : f32[4,5]
          %2 = add %0, %1 : f32[4,5]
          %3 = max %2, 0.0 : f32[4,5]
          return %3
        }""",
        """
        graph f(%x: f32[4,3], %w: f32[3,5], %b: f32[5]) -> (f32[4,5]) {
          %0 = fusion %x, %w, %b {kind="matmul_epilogue"} : f32[4,5] {
            (%a: f32[4,3], %b: f32[3,5], %c: f32[5]) {
              %t0 = matmul %a, %b : f32[4,5]
              %t1 = broadcast_in_dim %c {shape=(4,5), broadcast_dimensions=(1,)} : f32[4,5]
              %t2 = add %t0, %t1 : f32[4,5]
              %t3 = max %t2, 0.0 : f32[4,5]
              return %t3
            }
          }
          return %0
        }""",
    )


def test_transposed_matmul_operand_is_copied_into_the_group() -> None:
    check_pass(
        fuse,
        """
        graph f(%x: f32[4,3], %y: f32[4,5]) -> (f32[3,5]) {
          %0 = transpose %x {perm=(1,0)} : f32[3,4]
          %1 = matmul %0, %y : f32[3,5]
          return %1
        }""",
        """
        graph f(%x: f32[4,3], %y: f32[4,5]) -> (f32[3,5]) {
          %0 = fusion %x, %y {kind="matmul"} : f32[3,5] {
            (%a: f32[4,3], %b: f32[4,5]) {
              %t0 = transpose %a {perm=(1,0)} : f32[3,4]
              %t1 = matmul %t0, %b : f32[3,5]
              return %t1
            }
          }
          return %0
        }""",
    )


def test_softmax_splits_where_a_reduction_is_read_back() -> None:
    # The sum must finish before the division reads it, so the division
    # cannot join the loop that computes the sum.
    check_pass(
        fuse,
        """
        graph f(%x: f32[4,5]) -> (f32[4,5]) {
          %0 = reduce_max %x {axes=(1,), keepdims=true} : f32[4,1]
          %1 = sub %x, %0 : f32[4,5]
          %2 = exp %1 : f32[4,5]
          %3 = reduce_sum %2 {axes=(1,), keepdims=true} : f32[4,1]
          %4 = div %2, %3 : f32[4,5]
          return %4
        }""",
        """
        graph f(%x: f32[4,5]) -> (f32[4,5]) {
          %0 = reduce_max %x {axes=(1,), keepdims=true} : f32[4,1]
          %1, %2 = fusion %x, %0 {kind="reduction"} : f32[4,5], f32[4,1] {
            (%a: f32[4,5], %b: f32[4,1]) {
              %t0 = sub %a, %b : f32[4,5]
              %t1 = exp %t0 : f32[4,5]
              %t2 = reduce_sum %t1 {axes=(1,), keepdims=true} : f32[4,1]
              return %t1, %t2
            }
          }
          %3 = div %1, %2 : f32[4,5]
          return %3
        }""",
    )


def test_views_are_copied_not_materialized_unless_needed() -> None:
    check_pass(
        fuse,
        """
        graph f(%x: f32[4,5], %b: f32[5]) -> (f32[4,5], f32[5,4]) {
          %0 = broadcast_in_dim %b {shape=(4,5), broadcast_dimensions=(1,)} : f32[4,5]
          %1 = mul %x, %0 : f32[4,5]
          %2 = transpose %1 {perm=(1,0)} : f32[5,4]
          %3 = exp %2 : f32[5,4]
          return %0, %3
        }""",
        """
        graph f(%x: f32[4,5], %b: f32[5]) -> (f32[4,5], f32[5,4]) {
          %0 = broadcast_in_dim %b {shape=(4,5), broadcast_dimensions=(1,)} : f32[4,5]
          %1 = fusion %b, %x : f32[4,5] {
            (%a: f32[5], %b: f32[4,5]) {
              %t0 = broadcast_in_dim %a {shape=(4,5), broadcast_dimensions=(1,)} : f32[4,5]
              %t1 = mul %b, %t0 : f32[4,5]
              return %t1
            }
          }
          %2 = fusion %1 : f32[5,4] {
            (%a: f32[4,5]) {
              %t0 = transpose %a {perm=(1,0)} : f32[5,4]
              %t1 = exp %t0 : f32[5,4]
              return %t1
            }
          }
          return %0, %2
        }""",
    )


def test_no_group_depends_on_itself_through_an_outside_node() -> None:
    # %2 reads the group of %0 through the matmul %1 outside it; joining %2
    # to that group would make the group wait for itself.
    g = parse(
        """
        graph f(%x: f32[4,4]) -> (f32[4,4]) {
          %0 = exp %x : f32[4,4]
          %1 = matmul %0, %x : f32[4,4]
          %2 = add %0, %1 : f32[4,4]
          return %2
        }"""
    )
    out = fuse(g)
    verify(out)
    assert_same_meaning(g, out)
    # exp stays outside: the add joins the matmul's epilogue instead.
    assert [n.op for n in out.nodes] == ["exp", "fusion"]
    assert [n.op for n in out.nodes[1].subgraphs[0].nodes] == ["matmul", "add"]


def test_group_size_is_capped() -> None:
    lines = [f"  %{k} = mul %{k - 1}, 1.5 : f32[3]" for k in range(1, 30)]
    text = "graph f(%x: f32[3]) -> (f32[3]) {\n  %0 = neg %x : f32[3]\n"
    text += "\n".join(lines) + "\n  return %29\n}"
    g = parse(text)
    out = fuse(g, max_group=8)
    assert all(len(n.subgraphs[0].nodes) <= 8 for n in out.nodes if n.op == "fusion")
    assert_same_meaning(g, out)


def _work(g: Graph) -> int:
    """Non-view nodes, counted inside fusion bodies too."""
    total = 0
    for n in g.nodes:
        if n.op == "fusion":
            total += _work(n.subgraphs[0])
        elif n.op not in VIEW_OPS:
            total += 1
    return total


@given(graphs(min_nodes=3, max_nodes=10, fusion_depth=0))
def test_fusion_preserves_meaning_and_never_duplicates_work(g: Graph) -> None:
    out = fuse(g)
    verify(out)
    assert parse(str(out)) == out
    assert _work(out) <= _work(g)
    assert fuse(out) == out
    for seed in range(2):
        check_same_meaning(g, out, random_inputs(g, seed))


def test_views_of_literals_are_copied_into_groups() -> None:
    g = parse(
        """
        graph f(%x: f32[3,4]) -> (f32[3,4]) {
          %0 = broadcast_in_dim 2.0:f32 {shape=(3,4), broadcast_dimensions=()} : f32[3,4]
          %1 = mul %x, %0 : f32[3,4]
          %2 = exp %1 : f32[3,4]
          return %2
        }"""
    )
    out = fuse(g)
    verify(out)
    assert [n.op for n in out.nodes] == ["fusion"]
    assert_same_meaning(g, out)


def test_work_on_inputs_alone_joins_the_loop_it_will_meet() -> None:
    # A forward-mode graph: the tangent %t starts its own chain (%2) before it
    # meets the primal's values. One loop computes both sums; alone, %2 would
    # start a second loop and the primal's intermediates would go through memory.
    check_pass(
        fuse,
        """
        graph f(%x: f32[8], %t: f32[8]) -> (f32[], f32[]) {
          %0 = exp %x : f32[8]
          %1 = reduce_sum %0 {axes=(0,)} : f32[]
          %2 = mul %t, 2.0 : f32[8]
          %3 = mul %2, %0 : f32[8]
          %4 = reduce_sum %3 {axes=(0,)} : f32[]
          return %1, %4
        }""",
        """
        graph f(%x: f32[8], %t: f32[8]) -> (f32[], f32[]) {
          %0, %1 = fusion %x, %t {kind="reduction"} : f32[], f32[] {
            (%a: f32[8], %b: f32[8]) {
              %t0 = exp %a : f32[8]
              %t1 = reduce_sum %t0 {axes=(0,)} : f32[]
              %t2 = mul %b, 2.0 : f32[8]
              %t3 = mul %t2, %t0 : f32[8]
              %t4 = reduce_sum %t3 {axes=(0,)} : f32[]
              return %t1, %t4
            }
          }
          return %0, %1
        }""",
    )


def test_unrelated_work_on_inputs_keeps_a_loop_of_its_own() -> None:
    # The state update %2/%3 shares no values with the exp loop: joining it
    # would only make its result live from that loop onwards.
    g = parse(
        """
        graph f(%x: f32[8], %m: f32[8], %d: f32[8]) -> (f32[], f32[8]) {
          %0 = exp %x : f32[8]
          %1 = reduce_sum %0 {axes=(0,)} : f32[]
          %2 = mul %m, 0.9 : f32[8]
          %3 = add %2, %d : f32[8]
          return %1, %3
        }"""
    )
    out = fuse(g)
    verify(out)
    bodies = [sorted(m.op for m in n.subgraphs[0].nodes) for n in out.nodes if n.op == "fusion"]
    assert sorted(bodies) == [["add", "mul"], ["exp", "reduce_sum"]]
    assert_same_meaning(g, out)


def test_work_feeding_only_a_collective_is_live() -> None:
    # An all_reduce nobody reads still runs (it has effects), and so does what feeds
    # it: a failure there is the program's, fused or not.
    g = parse(
        """
        graph f(%x: i8[2,2]) -> (i8[2,2]) {
          %0 = pow %x, %x : i8[2,2]
          %1 = all_reduce %0 {reduction="sum", group=0, compress=""} : i8[2,2]
          %2 = abs %x : i8[2,2]
          return %2
        }"""
    )
    out = fuse(g)
    negative = np.array([[4, 2], [0, -3]], np.int8)
    with pytest.raises(GraphcError, match="negative integer powers"):
        interpret_live(g, negative)
    check_same_meaning(g, out, [negative])
    check_same_meaning(g, out, [np.abs(negative)])
