"""IR in, IR out for the simplification rules on shape ops, casts, select and
reductions (the elementwise rules and the cases no rule may touch are in
``test_simplify_rules``)."""

from __future__ import annotations

import pytest

from tests.passes.rule_table import case, case_ids, check_counted, check_rewrite

# (rule that must fire, IR before, IR after)
CASES: list[tuple[str, str, str]] = [
    # -- shape ops
    case(
        "shape_of_splat",
        "() -> (f32[3,2])",
        """
        %0 = broadcast_in_dim 1.0:f32 {shape=(2,3), broadcast_dimensions=()} : f32[2,3]
        %1 = transpose %0 {perm=(1,0)} : f32[3,2]
        return %1""",
        """
        %0 = broadcast_in_dim 1.0:f32 {shape=(3,2), broadcast_dimensions=()} : f32[3,2]
        return %0""",
    ),
    case(
        "transpose_identity",
        "(%x: f32[2,3]) -> (f32[2,3])",
        """
        %0 = transpose %x {perm=(0,1)} : f32[2,3]
        return %0""",
        "return %x",
    ),
    case(
        "transpose_transpose",
        "(%x: f32[2,3,4]) -> (f32[3,4,2], f32[2,3,4])",
        """
        %0 = transpose %x {perm=(1,0,2)} : f32[3,2,4]
        %1 = transpose %0 {perm=(0,2,1)} : f32[3,4,2]
        %2 = transpose %0 {perm=(1,0,2)} : f32[2,3,4]
        return %1, %2""",
        """
        %0 = transpose %x {perm=(1,2,0)} : f32[3,4,2]
        return %0, %x""",
    ),
    case(
        "reshape_identity",
        "(%x: f32[2,3]) -> (f32[2,3])",
        """
        %0 = reshape %x {shape=(2,3)} : f32[2,3]
        return %0""",
        "return %x",
    ),
    case(
        "reshape_reshape",
        "(%x: f32[2,3]) -> (f32[3,2])",
        """
        %0 = reshape %x {shape=(6,)} : f32[6]
        %1 = reshape %0 {shape=(3,2)} : f32[3,2]
        return %1""",
        """
        %0 = reshape %x {shape=(3,2)} : f32[3,2]
        return %0""",
    ),
    case(
        "broadcast_identity",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = broadcast_in_dim %x {shape=(3,), broadcast_dimensions=(0,)} : f32[3]
        return %0""",
        "return %x",
    ),
    case(
        "broadcast_broadcast",
        "(%x: f32[3]) -> (f32[4,2,3])",
        """
        %0 = broadcast_in_dim %x {shape=(2,3), broadcast_dimensions=(1,)} : f32[2,3]
        %1 = broadcast_in_dim %0 {shape=(4,2,3), broadcast_dimensions=(1,2)} : f32[4,2,3]
        return %1""",
        """
        %0 = broadcast_in_dim %x {shape=(4,2,3), broadcast_dimensions=(2,)} : f32[4,2,3]
        return %0""",
    ),
    case(
        "broadcast_as_reshape",
        "(%x: f32[3]) -> (f32[1,3,1])",
        """
        %0 = broadcast_in_dim %x {shape=(1,3,1), broadcast_dimensions=(1,)} : f32[1,3,1]
        return %0""",
        """
        %0 = reshape %x {shape=(1,3,1)} : f32[1,3,1]
        return %0""",
    ),
    case(
        "slice_identity",
        "(%x: f32[1,3]) -> (f32[1,3])",
        """
        %0 = slice %x {start=(0,0), limit=(1,3), stride=(2,1)} : f32[1,3]
        return %0""",
        "return %x",
    ),
    case(
        "slice_slice",
        "(%x: f32[10]) -> (f32[2])",
        """
        %0 = slice %x {start=(1,), limit=(10,), stride=(2,)} : f32[5]
        %1 = slice %0 {start=(1,), limit=(5,), stride=(2,)} : f32[2]
        return %1""",
        """
        %0 = slice %x {start=(3,), limit=(8,), stride=(4,)} : f32[2]
        return %0""",
    ),
    case(
        "reverse_identity",
        "(%x: f32[1,3]) -> (f32[1,3])",
        """
        %0 = reverse %x {axes=(0,)} : f32[1,3]
        return %0""",
        "return %x",
    ),
    case(
        "reverse_reverse",
        "(%x: f32[2,3]) -> (f32[2,3])",
        """
        %0 = reverse %x {axes=(0,1)} : f32[2,3]
        %1 = reverse %0 {axes=(-1,)} : f32[2,3]
        return %1""",
        """
        %0 = reverse %x {axes=(0,)} : f32[2,3]
        return %0""",
    ),
    # -- casts and markers
    case(
        "cast_identity",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = cast %x {dtype=f32} : f32[3]
        return %0""",
        "return %x",
    ),
    case(
        "cast_cast",
        "(%x: i32[3]) -> (f64[3])",
        """
        %0 = cast %x {dtype=i64} : i64[3]
        %1 = cast %0 {dtype=f64} : f64[3]
        return %1""",
        """
        %0 = cast %x {dtype=f64} : f64[3]
        return %0""",
    ),
    case(
        "cast_cast",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = cast %x {dtype=f64} : f64[3]
        %1 = cast %0 {dtype=f32} : f32[3]
        return %1""",
        "return %x",
    ),
    case(
        "remove_stop_gradient",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = stop_gradient %x : f32[3]
        %1 = exp %0 : f32[3]
        return %1""",
        """
        %0 = exp %x : f32[3]
        return %0""",
    ),
    # -- select
    case(
        "select_constant_condition",
        "(%x: f32[3], %y: f32[2,3]) -> (f32[2,3])",
        """
        %0 = select false:bool, %x, %y : f32[2,3]
        %1 = select true:bool, %x, %y : f32[2,3]
        %2 = add %0, %1 : f32[2,3]
        return %2""",
        """
        %0 = broadcast_in_dim %x {shape=(2,3), broadcast_dimensions=(1,)} : f32[2,3]
        %1 = add %y, %0 : f32[2,3]
        return %1""",
    ),
    case(
        "select_same",
        "(%c: bool[3], %x: f32[3]) -> (f32[3])",
        """
        %0 = select %c, %x, %x : f32[3]
        return %0""",
        "return %x",
    ),
    case(
        "select_not",
        "(%c: bool[3], %x: f32[3], %y: f32[3]) -> (f32[3])",
        """
        %0 = not %c : bool[3]
        %1 = select %0, %x, %y : f32[3]
        return %1""",
        """
        %0 = select %c, %y, %x : f32[3]
        return %0""",
    ),
    # -- reductions
    case(
        "reduce_no_axes",
        "(%x: i32[3]) -> (i64[3])",
        """
        %0 = reduce_sum %x {axes=()} : i64[3]
        return %0""",
        """
        %0 = cast %x {dtype=i64} : i64[3]
        return %0""",
    ),
    case(
        "reduce_no_axes",
        "(%x: f64[3]) -> (f64[3])",
        """
        %0 = reduce_sum %x {axes=()} : f64[3]
        return %0""",
        """
        %0 = add %x, 0.0 : f64[3]
        return %0""",
    ),
    case(
        "reduce_unit_axes",
        "(%x: f32[2,1,3]) -> (f32[2,3])",
        """
        %0 = reduce_max %x {axes=(1,)} : f32[2,3]
        return %0""",
        """
        %0 = reshape %x {shape=(2,3)} : f32[2,3]
        return %0""",
    ),
    case(
        "reduce_of_broadcast",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = exp %x : f32[3]
        %1 = broadcast_in_dim %0 {shape=(4,3), broadcast_dimensions=(1,)} : f32[4,3]
        %2 = reduce_sum %1 {axes=(0,)} : f32[3]
        return %2""",
        """
        %0 = exp %x : f32[3]
        %1 = mul %0, 4.0 : f32[3]
        return %1""",
    ),
    case(
        "reduce_of_broadcast",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = broadcast_in_dim %x {shape=(4,3), broadcast_dimensions=(1,)} : f32[4,3]
        %1 = reduce_sum %0 {axes=(0,)} : f32[3]
        return %1""",
        """
        %0 = add %x, 0.0 : f32[3]
        %1 = mul %0, 4.0 : f32[3]
        return %1""",
    ),
    case(
        "reduce_of_broadcast",
        "(%x: f64[3]) -> (f64[1,1])",
        """
        %0 = broadcast_in_dim %x {shape=(2,3,5), broadcast_dimensions=(1,)} : f64[2,3,5]
        %1 = reduce_max %0 {axes=(1,2), keepdims=true} : f64[2,1,1]
        %2 = reduce_max %1 {axes=(0,), keepdims=false} : f64[1,1]
        return %2""",
        """
        %0 = reduce_max %x {axes=(0,), keepdims=true} : f64[1]
        %1 = reshape %0 {shape=(1,1)} : f64[1,1]
        return %1""",
    ),
    case(
        "reduce_of_broadcast",
        "(%x: i32[2,1]) -> (i64[2])",
        """
        %0 = broadcast_in_dim %x {shape=(5,2,3), broadcast_dimensions=(1,2)} : i32[5,2,3]
        %1 = reduce_sum %0 {axes=(0,2)} : i64[2]
        return %1""",
        """
        %0 = cast %x {dtype=i64} : i64[2,1]
        %1 = mul %0, 15 : i64[2,1]
        %2 = reshape %1 {shape=(2,)} : i64[2]
        return %2""",
    ),
    case(
        "reduce_of_broadcast",
        "() -> (f32[])",
        """
        %0 = broadcast_in_dim 0.5:f32 {shape=(4,8), broadcast_dimensions=()} : f32[4,8]
        %1 = reduce_sum %0 {axes=(0,1)} : f32[]
        return %1""",
        """
        %0 = constant {value=16.0} : f32[]
        return %0""",
    ),
]


@pytest.mark.parametrize("rule,before,after", CASES, ids=case_ids(CASES))
def test_rule(rule: str, before: str, after: str) -> None:
    check_rewrite(before, after)


@pytest.mark.parametrize("rule,before,after", CASES, ids=case_ids(CASES))
def test_rule_is_counted(rule: str, before: str, after: str) -> None:
    check_counted(rule, before)
