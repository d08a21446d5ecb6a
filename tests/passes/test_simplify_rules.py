"""IR in, IR out: one or more cases per simplification rule, and the cases
each rule must leave alone (where NaN, inf or the sign of zero would change)."""

from __future__ import annotations

import pytest

from graphc.passes import SIMPLIFY_RULES, simplify
from tests.passes.helpers import check_pass, normalize

# (rule that must fire, IR before, IR after)
CASES: list[tuple[str, str, str]] = [
    # -- splats and literals
    (
        "fold_splats",
        """
        graph f() -> (f32[3]) {
          %0 = broadcast_in_dim 2.0:f32 {shape=(3,), broadcast_dimensions=()} : f32[3]
          %1 = neg %0 : f32[3]
          return %1
        }""",
        """
        graph f() -> (f32[3]) {
          %0 = broadcast_in_dim -2.0:f32 {shape=(3,), broadcast_dimensions=()} : f32[3]
          return %0
        }""",
    ),
    (
        "fold_splats",
        """
        graph f() -> (i32[]) {
          %0 = add 2:i32, 3:i32 : i32[]
          %1 = mul %0, 4 : i32[]
          return %1
        }""",
        """
        graph f() -> (i32[]) {
          %0 = constant {value=20} : i32[]
          return %0
        }""",
    ),
    (
        "splat_operand_to_literal",
        """
        graph f(%x: f32[2,3]) -> (f32[2,3]) {
          %0 = broadcast_in_dim 2.5:f32 {shape=(2,3), broadcast_dimensions=()} : f32[2,3]
          %1 = mul %x, %0 : f32[2,3]
          return %1
        }""",
        """
        graph f(%x: f32[2,3]) -> (f32[2,3]) {
          %0 = mul %x, 2.5 : f32[2,3]
          return %0
        }""",
    ),
    # -- additive identities
    (
        "add_zero",
        """
        graph f(%x: i32[3]) -> (i32[3]) {
          %0 = add %x, 0 : i32[3]
          return %0
        }""",
        """
        graph f(%x: i32[3]) -> (i32[3]) {
          return %x
        }""",
    ),
    (
        "add_zero",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = add %x, -0.0 : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          return %x
        }""",
    ),
    (
        "add_zero",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = exp %x : f64[3]
          %1 = add 0.0, %0 : f64[3]
          return %1
        }""",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = exp %x : f64[3]
          return %0
        }""",
    ),
    (
        "add_zero",
        """
        graph f(%x: i32[3]) -> (i64[2,3]) {
          %0 = broadcast_in_dim 0:i64 {shape=(2,3), broadcast_dimensions=()} : i64[2,3]
          %1 = add %x, %0 : i64[2,3]
          return %1
        }""",
        """
        graph f(%x: i32[3]) -> (i64[2,3]) {
          %0 = cast %x {dtype=i64} : i64[3]
          %1 = broadcast_in_dim %0 {shape=(2,3), broadcast_dimensions=(1,)} : i64[2,3]
          return %1
        }""",
    ),
    (
        "sub_zero",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = sub %x, 0.0 : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          return %x
        }""",
    ),
    (
        "sub_from_zero",
        """
        graph f(%x: i64[3]) -> (i64[3]) {
          %0 = sub 0, %x : i64[3]
          return %0
        }""",
        """
        graph f(%x: i64[3]) -> (i64[3]) {
          %0 = neg %x : i64[3]
          return %0
        }""",
    ),
    (
        "sub_from_zero",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = sub -0.0, %x : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = neg %x : f32[3]
          return %0
        }""",
    ),
    (
        "sub_self",
        """
        graph f(%x: i32[2]) -> (i32[2]) {
          %0 = sub %x, %x : i32[2]
          return %0
        }""",
        """
        graph f(%x: i32[2]) -> (i32[2]) {
          %0 = broadcast_in_dim 0:i32 {shape=(2,), broadcast_dimensions=()} : i32[2]
          return %0
        }""",
    ),
    (
        "add_neg",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = neg %y : f32[3]
          %1 = add %0, %x : f32[3]
          return %1
        }""",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = sub %x, %y : f32[3]
          return %0
        }""",
    ),
    (
        "sub_neg",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = neg %y : f32[3]
          %1 = sub %x, %0 : f32[3]
          return %1
        }""",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = add %x, %y : f32[3]
          return %0
        }""",
    ),
    # -- signs move out of products and quotients
    (
        "mul_neg_neg",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = neg %x : f32[3]
          %1 = neg %y : f32[3]
          %2 = mul %0, %1 : f32[3]
          return %2
        }""",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = mul %x, %y : f32[3]
          return %0
        }""",
    ),
    (
        "mul_neg_literal",
        """
        graph f(%x: f32[3]) -> (f32[3], f32[3]) {
          %0 = neg %x : f32[3]
          %1 = mul 2.5, %0 : f32[3]
          return %0, %1
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3], f32[3]) {
          %0 = neg %x : f32[3]
          %1 = mul %x, -2.5 : f32[3]
          return %0, %1
        }""",
    ),
    (
        # The neg moves out and then cancels with the one outside.
        "neg_out_of_mul",
        """
        graph f(%x: f64[3], %y: f64[3]) -> (f64[3]) {
          %0 = neg %x : f64[3]
          %1 = mul %y, %0 : f64[3]
          %2 = neg %1 : f64[3]
          return %2
        }""",
        """
        graph f(%x: f64[3], %y: f64[3]) -> (f64[3]) {
          %0 = mul %x, %y : f64[3]
          return %0
        }""",
    ),
    (
        "div_neg_neg",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = neg %x : f32[3]
          %1 = neg %y : f32[3]
          %2 = div %0, %1 : f32[3]
          return %2
        }""",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = div %x, %y : f32[3]
          return %0
        }""",
    ),
    (
        "neg_out_of_div",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = neg %y : f32[3]
          %1 = div %x, %0 : f32[3]
          %2 = sub %x, %1 : f32[3]
          return %2
        }""",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = div %x, %y : f32[3]
          %1 = add %x, %0 : f32[3]
          return %1
        }""",
    ),
    (
        "neg_of_literal_product",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = mul 0.5, %x : f32[3]
          %1 = neg %0 : f32[3]
          return %1
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = mul %x, -0.5 : f32[3]
          return %0
        }""",
    ),
    # -- multiplicative identities
    (
        "mul_one",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = mul 1.0, %x : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          return %x
        }""",
    ),
    (
        "mul_one",
        """
        graph f(%x: f32[3]) -> (f64[3]) {
          %0 = mul %x, 1.0:f64 : f64[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f64[3]) {
          %0 = cast %x {dtype=f64} : f64[3]
          return %0
        }""",
    ),
    (
        "mul_neg_one",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = mul %x, -1.0 : f64[3]
          return %0
        }""",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = neg %x : f64[3]
          return %0
        }""",
    ),
    (
        "mul_zero",
        """
        graph f(%x: i64[3]) -> (i64[3]) {
          %0 = mul %x, 0 : i64[3]
          return %0
        }""",
        """
        graph f(%x: i64[3]) -> (i64[3]) {
          %0 = broadcast_in_dim 0:i64 {shape=(3,), broadcast_dimensions=()} : i64[3]
          return %0
        }""",
    ),
    (
        "mul_zero",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = iota {shape=(3,), dtype=f32} : f32[3]
          %1 = mul %0, 0.0 : f32[3]
          %2 = add %x, %1 : f32[3]
          return %2
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = add %x, 0.0 : f32[3]
          return %0
        }""",
    ),
    (
        "div_one",
        """
        graph f(%x: i32[3]) -> (f64[3]) {
          %0 = div %x, 1 : f64[3]
          return %0
        }""",
        """
        graph f(%x: i32[3]) -> (f64[3]) {
          %0 = cast %x {dtype=f64} : f64[3]
          return %0
        }""",
    ),
    (
        "div_neg_one",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = div %x, -1.0 : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = neg %x : f32[3]
          return %0
        }""",
    ),
    (
        "div_power_of_two",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = div %x, 128.0 : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = mul %x, 0.0078125 : f32[3]
          return %0
        }""",
    ),
    # -- powers
    (
        "pow_zero",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = pow %x, 0.0 : f64[3]
          return %0
        }""",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = broadcast_in_dim 1.0:f64 {shape=(3,), broadcast_dimensions=()} : f64[3]
          return %0
        }""",
    ),
    (
        "pow_one",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = pow %x, 1.0 : f64[3]
          return %0
        }""",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          return %x
        }""",
    ),
    (
        "pow_two",
        """
        graph f(%x: f32[3]) -> (f64[3]) {
          %0 = pow %x, 2.0:f64 : f64[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f64[3]) {
          %0 = cast %x {dtype=f64} : f64[3]
          %1 = mul %0, %0 : f64[3]
          return %1
        }""",
    ),
    (
        "pow_two",
        """
        graph f(%x: i32[3]) -> (i32[3]) {
          %0 = pow %x, 2 : i32[3]
          return %0
        }""",
        """
        graph f(%x: i32[3]) -> (i32[3]) {
          %0 = mul %x, %x : i32[3]
          return %0
        }""",
    ),
    (
        "pow_neg_one",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = pow %x, -1.0 : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = div 1.0, %x : f32[3]
          return %0
        }""",
    ),
    # -- involutions and inverses
    (
        "neg_neg",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = neg %x : f32[3]
          %1 = neg %0 : f32[3]
          %2 = neg %1 : f32[3]
          %3 = neg %2 : f32[3]
          return %3
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          return %x
        }""",
    ),
    (
        "exp_log",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = exp %x : f32[3]
          %1 = log %0 : f32[3]
          %2 = exp %1 : f32[3]
          return %2
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = exp %x : f32[3]
          return %0
        }""",
    ),
    (
        "log_exp",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = sigmoid %x : f64[3]
          %1 = exp %0 : f64[3]
          %2 = log %1 : f64[3]
          return %2
        }""",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = sigmoid %x : f64[3]
          return %0
        }""",
    ),
    (
        "max_self",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = max %x, %x : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          return %x
        }""",
    ),
    (
        "min_self",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = min %x, %x : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          return %x
        }""",
    ),
    (
        "and_self",
        """
        graph f(%x: bool[3]) -> (bool[3]) {
          %0 = and %x, %x : bool[3]
          return %0
        }""",
        """
        graph f(%x: bool[3]) -> (bool[3]) {
          return %x
        }""",
    ),
    (
        "or_self",
        """
        graph f(%x: i32[3]) -> (i32[3]) {
          %0 = or %x, %x : i32[3]
          return %0
        }""",
        """
        graph f(%x: i32[3]) -> (i32[3]) {
          return %x
        }""",
    ),
    # -- shape ops
    (
        "shape_of_splat",
        """
        graph f() -> (f32[3,2]) {
          %0 = broadcast_in_dim 1.0:f32 {shape=(2,3), broadcast_dimensions=()} : f32[2,3]
          %1 = transpose %0 {perm=(1,0)} : f32[3,2]
          return %1
        }""",
        """
        graph f() -> (f32[3,2]) {
          %0 = broadcast_in_dim 1.0:f32 {shape=(3,2), broadcast_dimensions=()} : f32[3,2]
          return %0
        }""",
    ),
    (
        "transpose_identity",
        """
        graph f(%x: f32[2,3]) -> (f32[2,3]) {
          %0 = transpose %x {perm=(0,1)} : f32[2,3]
          return %0
        }""",
        """
        graph f(%x: f32[2,3]) -> (f32[2,3]) {
          return %x
        }""",
    ),
    (
        "transpose_transpose",
        """
        graph f(%x: f32[2,3,4]) -> (f32[3,4,2], f32[2,3,4]) {
          %0 = transpose %x {perm=(1,0,2)} : f32[3,2,4]
          %1 = transpose %0 {perm=(0,2,1)} : f32[3,4,2]
          %2 = transpose %0 {perm=(1,0,2)} : f32[2,3,4]
          return %1, %2
        }""",
        """
        graph f(%x: f32[2,3,4]) -> (f32[3,4,2], f32[2,3,4]) {
          %0 = transpose %x {perm=(1,2,0)} : f32[3,4,2]
          return %0, %x
        }""",
    ),
    (
        "reshape_identity",
        """
        graph f(%x: f32[2,3]) -> (f32[2,3]) {
          %0 = reshape %x {shape=(2,3)} : f32[2,3]
          return %0
        }""",
        """
        graph f(%x: f32[2,3]) -> (f32[2,3]) {
          return %x
        }""",
    ),
    (
        "reshape_reshape",
        """
        graph f(%x: f32[2,3]) -> (f32[3,2]) {
          %0 = reshape %x {shape=(6,)} : f32[6]
          %1 = reshape %0 {shape=(3,2)} : f32[3,2]
          return %1
        }""",
        """
        graph f(%x: f32[2,3]) -> (f32[3,2]) {
          %0 = reshape %x {shape=(3,2)} : f32[3,2]
          return %0
        }""",
    ),
    (
        "broadcast_identity",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = broadcast_in_dim %x {shape=(3,), broadcast_dimensions=(0,)} : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          return %x
        }""",
    ),
    (
        "broadcast_broadcast",
        """
        graph f(%x: f32[3]) -> (f32[4,2,3]) {
          %0 = broadcast_in_dim %x {shape=(2,3), broadcast_dimensions=(1,)} : f32[2,3]
          %1 = broadcast_in_dim %0 {shape=(4,2,3), broadcast_dimensions=(1,2)} : f32[4,2,3]
          return %1
        }""",
        """
        graph f(%x: f32[3]) -> (f32[4,2,3]) {
          %0 = broadcast_in_dim %x {shape=(4,2,3), broadcast_dimensions=(2,)} : f32[4,2,3]
          return %0
        }""",
    ),
    (
        "broadcast_as_reshape",
        """
        graph f(%x: f32[3]) -> (f32[1,3,1]) {
          %0 = broadcast_in_dim %x {shape=(1,3,1), broadcast_dimensions=(1,)} : f32[1,3,1]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[1,3,1]) {
          %0 = reshape %x {shape=(1,3,1)} : f32[1,3,1]
          return %0
        }""",
    ),
    (
        "slice_identity",
        """
        graph f(%x: f32[1,3]) -> (f32[1,3]) {
          %0 = slice %x {start=(0,0), limit=(1,3), stride=(2,1)} : f32[1,3]
          return %0
        }""",
        """
        graph f(%x: f32[1,3]) -> (f32[1,3]) {
          return %x
        }""",
    ),
    (
        "slice_slice",
        """
        graph f(%x: f32[10]) -> (f32[2]) {
          %0 = slice %x {start=(1,), limit=(10,), stride=(2,)} : f32[5]
          %1 = slice %0 {start=(1,), limit=(5,), stride=(2,)} : f32[2]
          return %1
        }""",
        """
        graph f(%x: f32[10]) -> (f32[2]) {
          %0 = slice %x {start=(3,), limit=(8,), stride=(4,)} : f32[2]
          return %0
        }""",
    ),
    (
        "reverse_identity",
        """
        graph f(%x: f32[1,3]) -> (f32[1,3]) {
          %0 = reverse %x {axes=(0,)} : f32[1,3]
          return %0
        }""",
        """
        graph f(%x: f32[1,3]) -> (f32[1,3]) {
          return %x
        }""",
    ),
    (
        "reverse_reverse",
        """
        graph f(%x: f32[2,3]) -> (f32[2,3]) {
          %0 = reverse %x {axes=(0,1)} : f32[2,3]
          %1 = reverse %0 {axes=(-1,)} : f32[2,3]
          return %1
        }""",
        """
        graph f(%x: f32[2,3]) -> (f32[2,3]) {
          %0 = reverse %x {axes=(0,)} : f32[2,3]
          return %0
        }""",
    ),
    # -- casts and markers
    (
        "cast_identity",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = cast %x {dtype=f32} : f32[3]
          return %0
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          return %x
        }""",
    ),
    (
        "cast_cast",
        """
        graph f(%x: i32[3]) -> (f64[3]) {
          %0 = cast %x {dtype=i64} : i64[3]
          %1 = cast %0 {dtype=f64} : f64[3]
          return %1
        }""",
        """
        graph f(%x: i32[3]) -> (f64[3]) {
          %0 = cast %x {dtype=f64} : f64[3]
          return %0
        }""",
    ),
    (
        "cast_cast",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = cast %x {dtype=f64} : f64[3]
          %1 = cast %0 {dtype=f32} : f32[3]
          return %1
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          return %x
        }""",
    ),
    (
        "remove_stop_gradient",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = stop_gradient %x : f32[3]
          %1 = exp %0 : f32[3]
          return %1
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = exp %x : f32[3]
          return %0
        }""",
    ),
    # -- select
    (
        "select_constant_condition",
        """
        graph f(%x: f32[3], %y: f32[2,3]) -> (f32[2,3]) {
          %0 = select false:bool, %x, %y : f32[2,3]
          %1 = select true:bool, %x, %y : f32[2,3]
          %2 = add %0, %1 : f32[2,3]
          return %2
        }""",
        """
        graph f(%x: f32[3], %y: f32[2,3]) -> (f32[2,3]) {
          %0 = broadcast_in_dim %x {shape=(2,3), broadcast_dimensions=(1,)} : f32[2,3]
          %1 = add %y, %0 : f32[2,3]
          return %1
        }""",
    ),
    (
        "select_same",
        """
        graph f(%c: bool[3], %x: f32[3]) -> (f32[3]) {
          %0 = select %c, %x, %x : f32[3]
          return %0
        }""",
        """
        graph f(%c: bool[3], %x: f32[3]) -> (f32[3]) {
          return %x
        }""",
    ),
    (
        "select_not",
        """
        graph f(%c: bool[3], %x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = not %c : bool[3]
          %1 = select %0, %x, %y : f32[3]
          return %1
        }""",
        """
        graph f(%c: bool[3], %x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = select %c, %y, %x : f32[3]
          return %0
        }""",
    ),
    # -- reductions
    (
        "reduce_no_axes",
        """
        graph f(%x: i32[3]) -> (i64[3]) {
          %0 = reduce_sum %x {axes=()} : i64[3]
          return %0
        }""",
        """
        graph f(%x: i32[3]) -> (i64[3]) {
          %0 = cast %x {dtype=i64} : i64[3]
          return %0
        }""",
    ),
    (
        "reduce_no_axes",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = reduce_sum %x {axes=()} : f64[3]
          return %0
        }""",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = add %x, 0.0 : f64[3]
          return %0
        }""",
    ),
    (
        "reduce_unit_axes",
        """
        graph f(%x: f32[2,1,3]) -> (f32[2,3]) {
          %0 = reduce_max %x {axes=(1,)} : f32[2,3]
          return %0
        }""",
        """
        graph f(%x: f32[2,1,3]) -> (f32[2,3]) {
          %0 = reshape %x {shape=(2,3)} : f32[2,3]
          return %0
        }""",
    ),
    (
        "reduce_of_broadcast",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = exp %x : f32[3]
          %1 = broadcast_in_dim %0 {shape=(4,3), broadcast_dimensions=(1,)} : f32[4,3]
          %2 = reduce_sum %1 {axes=(0,)} : f32[3]
          return %2
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = exp %x : f32[3]
          %1 = mul %0, 4.0 : f32[3]
          return %1
        }""",
    ),
    (
        # Sums start from +0.0, so a sum of copies of -0.0 is +0.0: x + 0.0 keeps that.
        "reduce_of_broadcast",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = broadcast_in_dim %x {shape=(4,3), broadcast_dimensions=(1,)} : f32[4,3]
          %1 = reduce_sum %0 {axes=(0,)} : f32[3]
          return %1
        }""",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = add %x, 0.0 : f32[3]
          %1 = mul %0, 4.0 : f32[3]
          return %1
        }""",
    ),
    (
        "reduce_of_broadcast",
        """
        graph f(%x: f64[3]) -> (f64[1,1]) {
          %0 = broadcast_in_dim %x {shape=(2,3,5), broadcast_dimensions=(1,)} : f64[2,3,5]
          %1 = reduce_max %0 {axes=(1,2), keepdims=true} : f64[2,1,1]
          %2 = reduce_max %1 {axes=(0,), keepdims=false} : f64[1,1]
          return %2
        }""",
        """
        graph f(%x: f64[3]) -> (f64[1,1]) {
          %0 = reduce_max %x {axes=(0,), keepdims=true} : f64[1]
          %1 = reshape %0 {shape=(1,1)} : f64[1,1]
          return %1
        }""",
    ),
    (
        "reduce_of_broadcast",
        """
        graph f(%x: i32[2,1]) -> (i64[2]) {
          %0 = broadcast_in_dim %x {shape=(5,2,3), broadcast_dimensions=(1,2)} : i32[5,2,3]
          %1 = reduce_sum %0 {axes=(0,2)} : i64[2]
          return %1
        }""",
        """
        graph f(%x: i32[2,1]) -> (i64[2]) {
          %0 = cast %x {dtype=i64} : i64[2,1]
          %1 = mul %0, 15 : i64[2,1]
          %2 = reshape %1 {shape=(2,)} : i64[2]
          return %2
        }""",
    ),
    (
        "reduce_of_broadcast",
        """
        graph f() -> (f32[]) {
          %0 = broadcast_in_dim 0.5:f32 {shape=(4,8), broadcast_dimensions=()} : f32[4,8]
          %1 = reduce_sum %0 {axes=(0,1)} : f32[]
          return %1
        }""",
        """
        graph f() -> (f32[]) {
          %0 = constant {value=16.0} : f32[]
          return %0
        }""",
    ),
]

# IR the simplifier must leave exactly as it is (each with the reason).
KEEPS: list[tuple[str, str]] = [
    (
        "x + 0.0 is +0.0 where x is -0.0",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = add %x, 0.0 : f32[3]
          return %0
        }""",
    ),
    (
        "x - (-0.0) is +0.0 where x is -0.0",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = sub %x, -0.0 : f32[3]
          return %0
        }""",
    ),
    (
        "0.0 - x is +0.0 where -x is -0.0",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = sub 0.0, %x : f32[3]
          return %0
        }""",
    ),
    (
        "x * 0.0 is NaN for inf and NaN",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = mul %x, 0.0 : f32[3]
          return %0
        }""",
    ),
    (
        "sigmoid may be NaN, so x * 0.0 may be NaN",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = sigmoid %x : f32[3]
          %1 = mul %0, 0.0 : f32[3]
          return %1
        }""",
    ),
    (
        "x - x is NaN for inf",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = sub %x, %x : f64[3]
          return %0
        }""",
    ),
    (
        "exp(log x) is NaN for negative x",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = log %x : f32[3]
          %1 = exp %0 : f32[3]
          return %1
        }""",
    ),
    (
        "log(exp x) is inf where exp overflows",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = exp %x : f32[3]
          %1 = log %0 : f32[3]
          return %1
        }""",
    ),
    (
        "x / 3 and x * (1/3) round differently",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = div %x, 3.0 : f32[3]
          return %0
        }""",
    ),
    (
        "pow(x, 0.5) is +0 at -0 and inf at -inf, unlike sqrt",
        """
        graph f(%x: f32[3]) -> (f32[3]) {
          %0 = pow %x, 0.5 : f32[3]
          return %0
        }""",
    ),
    (
        "f64 -> f32 -> f64 rounds",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = cast %x {dtype=f32} : f32[3]
          %1 = cast %0 {dtype=f64} : f64[3]
          return %1
        }""",
    ),
    (
        "the splat cannot become a literal without changing the shape",
        """
        graph f(%x: f32[3]) -> (f32[2,3]) {
          %0 = broadcast_in_dim 2.0:f32 {shape=(2,3), broadcast_dimensions=()} : f32[2,3]
          %1 = mul %x, %0 : f32[2,3]
          return %1
        }""",
    ),
    (
        "the neg is read elsewhere too: moving it out would add a node",
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3], f32[3]) {
          %0 = neg %x : f32[3]
          %1 = mul %0, %y : f32[3]
          return %0, %1
        }""",
    ),
    (
        "a real reduction of a broadcast operand",
        """
        graph f(%x: f32[4,3]) -> (f32[3]) {
          %0 = reduce_sum %x {axes=(0,)} : f32[3]
          return %0
        }""",
    ),
]


@pytest.mark.parametrize(
    "rule,before,after", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule(rule: str, before: str, after: str) -> None:
    out = check_pass(simplify, before, after)
    assert out is not None


@pytest.mark.parametrize(
    "rule,before,after", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_is_counted(rule: str, before: str, after: str) -> None:
    from graphc.ir import parse
    from graphc.passes import Pass, run_passes

    _, report = run_passes(parse(before), [Pass("simplify", simplify)])
    assert report.passes[0].counts.get(rule, 0) >= 1, report.passes[0].counts


@pytest.mark.parametrize("why,text", KEEPS, ids=[k[0] for k in KEEPS])
def test_rule_does_not_fire(why: str, text: str) -> None:
    check_pass(simplify, text, text, fired={})


def test_every_rule_has_a_case() -> None:
    covered = {rule for rule, _, _ in CASES}
    missing = sorted({r.name for r in SIMPLIFY_RULES} - covered)
    assert not missing, f"rules without an IR test: {missing}"


def test_normalize_ignores_alignment() -> None:
    assert normalize("  a  =  b   : c\n") == "a = b : c"


def test_replacements_keep_the_source_location() -> None:
    from graphc.ir import parse

    g = parse(
        """
        graph f(%x: f32[3], %y: f32[3]) -> (f32[3]) {
          %0 = neg %x : f32[3] loc("m.py":1)
          %1 = mul %0, 2.0 : f32[3] loc("m.py":2)
          %2 = pow %1, 2.0 : f32[3] loc("m.py":3)
          %3 = add %2, %y : f32[3] loc("m.py":4)
          return %3
        }"""
    )
    out = simplify(g)
    assert [(n.op, str(n.loc)) for n in out.nodes] == [
        ("mul", "m.py:2"),  # mul_neg_literal: x * -2.0 replaces %1
        ("mul", "m.py:3"),  # pow_two: %1 * %1 replaces %2
        ("add", "m.py:4"),
    ]
