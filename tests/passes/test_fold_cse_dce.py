"""IR in, IR out: fold_constants, eliminate_common_subexpressions, eliminate_dead_code."""

from __future__ import annotations

import numpy as np

from graphc.ir import GraphBuilder, f32, interpret, parse
from graphc.passes import (
    eliminate_common_subexpressions,
    eliminate_dead_code,
    fold_constants,
)
from graphc.passes.fold import FOLD_LIMIT
from tests.passes.helpers import check_pass

# -- fold_constants ------------------------------------------------------------------


def test_fold_literal_arithmetic_to_a_literal() -> None:
    check_pass(
        fold_constants,
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = add 1.5:f32, 2.0:f32 : f32[]
          %1 = exp 0.0:f32 : f32[]
          %2 = mul %0, %1 : f32[]
          %3 = mul %x, %2 : f32[3]
          return %3
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = mul %x, 3.5 : f32[3]
          return %0
        }""",
        fired={"folded": 3},
    )


def test_fold_constants_through_non_elementwise_ops() -> None:
    check_pass(
        fold_constants,
        """
        graph f(%x: f64[2]) -> (f64[2]) {
          %0 = constant {value=(1.0, 2.0, 3.0, 4.0)} : f64[2,2]
          %1 = transpose %0 {perm=(1,0)} : f64[2,2]
          %2 = reduce_sum %1 {axes=(1,)} : f64[2]
          %3 = add %x, %2 : f64[2]
          return %3
        }""",
        """
        graph f(%x: f64[2]) -> (f64[2]) {
          %0 = constant {value=(4.0, 6.0)} : f64[2]
          %1 = add %x, %0 : f64[2]
          return %1
        }""",
    )


def test_fold_splat_elementwise_without_materializing() -> None:
    # 10^6 elements: the result stays a broadcast literal, never an array.
    check_pass(
        fold_constants,
        """
        graph f() -> (f32[1000,1000]) {
          %0 = broadcast_in_dim 0.0:f32 {shape=(1000,1000), broadcast_dimensions=()}
             : f32[1000,1000]
          %1 = exp %0 : f32[1000,1000]
          return %1
        }""",
        """
        graph f() -> (f32[1000,1000]) {
          %0 = broadcast_in_dim 1.0:f32 {shape=(1000,1000), broadcast_dimensions=()}
             : f32[1000,1000]
          return %0
        }""",
    )


def test_fold_keeps_large_non_splat_results() -> None:
    text = f"""
        graph f() -> (i64[{FOLD_LIMIT + 1}]) {{
          %0 = iota {{shape=({FOLD_LIMIT + 1},)}} : i64[{FOLD_LIMIT + 1}]
          %1 = mul %0, 2 : i64[{FOLD_LIMIT + 1}]
          return %1
        }}"""
    check_pass(fold_constants, text, text, fired={})


def test_fold_splat_constant_becomes_broadcast_literal() -> None:
    check_pass(
        fold_constants,
        """
        graph f(%x: f32[2,2]) -> (f32[2,2]) {
          %0 = constant {value=(7.0, 7.0, 7.0, 7.0)} : f32[2,2]
          %1 = sub %x, %0 : f32[2,2]
          return %1
        }""",
        """
        graph f(%x: f32[2,2]) -> (f32[2,2]) {
          %0 = broadcast_in_dim 7.0:f32 {shape=(2,2), broadcast_dimensions=()} : f32[2,2]
          %1 = sub %x, %0 : f32[2,2]
          return %1
        }""",
    )


def test_fold_leaves_failing_nodes_for_run_time() -> None:
    text = """
        graph f() -> (f32[1]) {
          %0 = constant {value=(1.0, 2.0)} : f32[2]
          %1 = constant {value=(5,)} : i64[1]
          %2 = gather %0, %1 {axis=0} : f32[1]
          return %2
        }"""
    check_pass(fold_constants, text, text, fired={})


def test_fold_keeps_source_locations() -> None:
    g = parse(
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = broadcast_in_dim 2.0:f32 {shape=(3,), broadcast_dimensions=()} : f32[3] loc("m.py":4)
          %1 = neg %0 : f32[3] loc("m.py":5)
          %2 = add %x, %1 : f32[3] loc("m.py":6)
          return %2
        }"""
    )
    out = fold_constants(g)
    assert [str(n.loc) for n in out.nodes] == ["m.py:5", "m.py:6"]


# -- CSE ---------------------------------------------------------------------------------


def test_cse_keeps_max_and_min_with_swapped_operands_apart() -> None:
    # NumPy's maximum/minimum return the second operand on a +0.0/-0.0 tie.
    g = parse(
        """
        graph f(%x: f32[2], %y: f32[2]) -> (f32[2], f32[2], f32[2], f32[2]) {
          %0 = max %x, %y : f32[2]
          %1 = max %y, %x : f32[2]
          %2 = min %x, %y : f32[2]
          %3 = min %y, %x : f32[2]
          return %0, %1, %2, %3
        }"""
    )
    x, y = np.array([-0.0, 0.0], np.float32), np.array([0.0, -0.0], np.float32)
    want = (np.maximum(x, y), np.maximum(y, x), np.minimum(x, y), np.minimum(y, x))
    got = interpret(eliminate_common_subexpressions(g), x, y)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


def test_cse_merges_equal_expressions_and_commuted_operands() -> None:
    check_pass(
        eliminate_common_subexpressions,
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = add %x, %y : f32[3]
          %1 = add %y, %x : f32[3]
          %2 = sub %x, %y : f32[3]
          %3 = sub %y, %x : f32[3]
          %4 = mul %0, %1 : f32[3]
          %5 = mul %2, %3 : f32[3]
          %6 = add %4, %5 : f32[3]
          return %6
        }""",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = add %x, %y : f32[3]
          %1 = sub %x, %y : f32[3]
          %2 = sub %y, %x : f32[3]
          %3 = mul %0, %0 : f32[3]
          %4 = mul %1, %2 : f32[3]
          %5 = add %3, %4 : f32[3]
          return %5
        }""",
        fired={"merged": 1},
    )


def test_cse_compares_attributes_literals_and_constants() -> None:
    check_pass(
        eliminate_common_subexpressions,
        """
        graph f(%x: f32[2,3]) -> (f32[2], f32[3], f32[2], f32[2,3], f32[2,3]) {
          %0 = reduce_sum %x {axes=(1,)} : f32[2]
          %1 = reduce_sum %x {axes=(0,)} : f32[3]
          %2 = reduce_sum %x {axes=(1,)} : f32[2]
          %3 = constant {value=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0)} : f32[2,3]
          %4 = constant {value=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0)} : f32[2,3]
          %5 = add %x, %3 : f32[2,3]
          %6 = add %x, %4 : f32[2,3]
          %7 = mul %5, 2.0 : f32[2,3]
          %8 = mul %6, 3.0 : f32[2,3]
          return %0, %1, %2, %7, %8
        }""",
        """
        graph f(%x: f32[2,3]) -> (f32[2], f32[3], f32[2], f32[2,3], f32[2,3]) {
          %0 = reduce_sum %x {axes=(1,)} : f32[2]
          %1 = reduce_sum %x {axes=(0,)} : f32[3]
          %2 = constant {value=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0)} : f32[2,3]
          %3 = add %x, %2 : f32[2,3]
          %4 = mul %3, 2.0 : f32[2,3]
          %5 = mul %3, 3.0 : f32[2,3]
          return %0, %1, %0, %4, %5
        }""",
        fired={"merged": 3},
    )


def test_cse_merges_fusion_nodes_with_equal_bodies() -> None:
    check_pass(
        eliminate_common_subexpressions,
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = fusion %x : f32[3] {
            (%a: f32[3]) {
              %t0 = exp %a : f32[3]
              %t1 = exp %a : f32[3]
              %t2 = add %t0, %t1 : f32[3]
              return %t2
            }
          }
          %1 = fusion %x : f32[3] {
            (%b: f32[3]) {
              %t0 = exp %b : f32[3]
              %t1 = add %t0, %t0 : f32[3]
              return %t1
            }
          }
          %2 = mul %0, %1 : f32[3]
          return %2
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = fusion %x : f32[3] {
            (%a: f32[3]) {
              %t0 = exp %a : f32[3]
              %t1 = add %t0, %t0 : f32[3]
              return %t1
            }
          }
          %1 = mul %0, %0 : f32[3]
          return %1
        }""",
    )


# -- DCE ---------------------------------------------------------------------------------


def test_dce_removes_unused_chains() -> None:
    check_pass(
        eliminate_dead_code,
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = exp %x : f32[3]
          %1 = log %0 : f32[3]
          %2 = neg %x : f32[3]
          %3 = tanh %2 : f32[3]
          return %2
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = neg %x : f32[3]
          return %0
        }""",
        fired={"removed": 3},
    )


def test_dce_prunes_unused_fusion_outputs_and_operands() -> None:
    check_pass(
        eliminate_dead_code,
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0, %1 = fusion %x, %y : f32[3], f32[3] {
            (%a: f32[3], %b: f32[3]) {
              %t0 = exp %a : f32[3]
              %t1 = mul %b, %b : f32[3]
              return %t0, %t1
            }
          }
          return %0
        }""",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = fusion %x : f32[3] {
            (%a: f32[3]) {
              %t0 = exp %a : f32[3]
              return %t0
            }
          }
          return %0
        }""",
        fired={"fusion outputs pruned": 1},
    )


def test_dce_returns_the_same_graph_when_nothing_is_dead() -> None:
    b = GraphBuilder("f")
    x = b.input(f32[3], "x")
    g = b.build([b.exp(x)])
    assert eliminate_dead_code(g) is g
    assert eliminate_common_subexpressions(g) is g
    assert fold_constants(g) is g
    assert interpret(g, np.zeros(3, np.float32))[0].tolist() == [1.0, 1.0, 1.0]
