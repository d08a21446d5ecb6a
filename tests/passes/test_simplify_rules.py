"""IR in, IR out: one or more cases per simplification rule, and the cases
each rule must leave alone (where NaN, inf or the sign of zero would change).

This file holds the elementwise rules; ``test_simplify_rules_shape`` holds the
rules for shape ops, casts, select and reductions. The table format is in
``tests.passes.rule_table``."""

from __future__ import annotations

import pytest

from graphc.ir import parse
from graphc.passes import SIMPLIFY_RULES, simplify
from tests.passes import test_simplify_rules_shape
from tests.passes.helpers import check_pass, normalize
from tests.passes.rule_table import case, case_ids, check_counted, check_rewrite, keep

# (rule that must fire, IR before, IR after)
CASES: list[tuple[str, str, str]] = [
    # -- splats and literals
    case(
        "fold_splats",
        "() -> (f32[3])",
        """
        %0 = broadcast_in_dim 2.0:f32 {shape=(3,), broadcast_dimensions=()} : f32[3]
        %1 = neg %0 : f32[3]
        return %1""",
        """
        %0 = broadcast_in_dim -2.0:f32 {shape=(3,), broadcast_dimensions=()} : f32[3]
        return %0""",
    ),
    case(
        "fold_splats",
        "() -> (i32[])",
        """
        %0 = add 2:i32, 3:i32 : i32[]
        %1 = mul %0, 4 : i32[]
        return %1""",
        """
        %0 = constant {value=20} : i32[]
        return %0""",
    ),
    case(
        "splat_operand_to_literal",
        "(%x: f32[2,3]) -> (f32[2,3])",
        """
        %0 = broadcast_in_dim 2.5:f32 {shape=(2,3), broadcast_dimensions=()} : f32[2,3]
        %1 = mul %x, %0 : f32[2,3]
        return %1""",
        """
        %0 = mul %x, 2.5 : f32[2,3]
        return %0""",
    ),
    # -- additive identities
    case(
        "add_zero",
        "(%x: i32[3]) -> (i32[3])",
        """
        %0 = add %x, 0 : i32[3]
        return %0""",
        "return %x",
    ),
    case(
        "add_zero",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = add %x, -0.0 : f32[3]
        return %0""",
        "return %x",
    ),
    case(
        "add_zero",
        "(%x: f64[3]) -> (f64[3])",
        """
        %0 = exp %x : f64[3]
        %1 = add 0.0, %0 : f64[3]
        return %1""",
        """
        %0 = exp %x : f64[3]
        return %0""",
    ),
    case(
        "add_zero",
        "(%x: i32[3]) -> (i64[2,3])",
        """
        %0 = broadcast_in_dim 0:i64 {shape=(2,3), broadcast_dimensions=()} : i64[2,3]
        %1 = add %x, %0 : i64[2,3]
        return %1""",
        """
        %0 = cast %x {dtype=i64} : i64[3]
        %1 = broadcast_in_dim %0 {shape=(2,3), broadcast_dimensions=(1,)} : i64[2,3]
        return %1""",
    ),
    case(
        "sub_zero",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = sub %x, 0.0 : f32[3]
        return %0""",
        "return %x",
    ),
    case(
        "sub_from_zero",
        "(%x: i64[3]) -> (i64[3])",
        """
        %0 = sub 0, %x : i64[3]
        return %0""",
        """
        %0 = neg %x : i64[3]
        return %0""",
    ),
    case(
        "sub_from_zero",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = sub -0.0, %x : f32[3]
        return %0""",
        """
        %0 = neg %x : f32[3]
        return %0""",
    ),
    case(
        "sub_self",
        "(%x: i32[2]) -> (i32[2])",
        """
        %0 = sub %x, %x : i32[2]
        return %0""",
        """
        %0 = broadcast_in_dim 0:i32 {shape=(2,), broadcast_dimensions=()} : i32[2]
        return %0""",
    ),
    case(
        "add_neg",
        "(%x: f32[3], %y: f32[3]) -> (f32[3])",
        """
        %0 = neg %y : f32[3]
        %1 = add %0, %x : f32[3]
        return %1""",
        """
        %0 = sub %x, %y : f32[3]
        return %0""",
    ),
    case(
        "sub_neg",
        "(%x: f32[3], %y: f32[3]) -> (f32[3])",
        """
        %0 = neg %y : f32[3]
        %1 = sub %x, %0 : f32[3]
        return %1""",
        """
        %0 = add %x, %y : f32[3]
        return %0""",
    ),
    # -- signs move out of products and quotients
    case(
        "mul_neg_neg",
        "(%x: f32[3], %y: f32[3]) -> (f32[3])",
        """
        %0 = neg %x : f32[3]
        %1 = neg %y : f32[3]
        %2 = mul %0, %1 : f32[3]
        return %2""",
        """
        %0 = mul %x, %y : f32[3]
        return %0""",
    ),
    case(
        "mul_neg_literal",
        "(%x: f32[3]) -> (f32[3], f32[3])",
        """
        %0 = neg %x : f32[3]
        %1 = mul 2.5, %0 : f32[3]
        return %0, %1""",
        """
        %0 = neg %x : f32[3]
        %1 = mul %x, -2.5 : f32[3]
        return %0, %1""",
    ),
    case(
        "neg_out_of_mul",
        "(%x: f64[3], %y: f64[3]) -> (f64[3])",
        """
        %0 = neg %x : f64[3]
        %1 = mul %y, %0 : f64[3]
        %2 = neg %1 : f64[3]
        return %2""",
        """
        %0 = mul %x, %y : f64[3]
        return %0""",
    ),
    case(
        "div_neg_neg",
        "(%x: f32[3], %y: f32[3]) -> (f32[3])",
        """
        %0 = neg %x : f32[3]
        %1 = neg %y : f32[3]
        %2 = div %0, %1 : f32[3]
        return %2""",
        """
        %0 = div %x, %y : f32[3]
        return %0""",
    ),
    case(
        "neg_out_of_div",
        "(%x: f32[3], %y: f32[3]) -> (f32[3])",
        """
        %0 = neg %y : f32[3]
        %1 = div %x, %0 : f32[3]
        %2 = sub %x, %1 : f32[3]
        return %2""",
        """
        %0 = div %x, %y : f32[3]
        %1 = add %x, %0 : f32[3]
        return %1""",
    ),
    case(
        "neg_of_literal_product",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = mul 0.5, %x : f32[3]
        %1 = neg %0 : f32[3]
        return %1""",
        """
        %0 = mul %x, -0.5 : f32[3]
        return %0""",
    ),
    # -- multiplicative identities
    case(
        "mul_one",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = mul 1.0, %x : f32[3]
        return %0""",
        "return %x",
    ),
    case(
        "mul_one",
        "(%x: f32[3]) -> (f64[3])",
        """
        %0 = mul %x, 1.0:f64 : f64[3]
        return %0""",
        """
        %0 = cast %x {dtype=f64} : f64[3]
        return %0""",
    ),
    case(
        "mul_neg_one",
        "(%x: f64[3]) -> (f64[3])",
        """
        %0 = mul %x, -1.0 : f64[3]
        return %0""",
        """
        %0 = neg %x : f64[3]
        return %0""",
    ),
    case(
        "mul_zero",
        "(%x: i64[3]) -> (i64[3])",
        """
        %0 = mul %x, 0 : i64[3]
        return %0""",
        """
        %0 = broadcast_in_dim 0:i64 {shape=(3,), broadcast_dimensions=()} : i64[3]
        return %0""",
    ),
    case(
        "mul_zero",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = iota {shape=(3,), dtype=f32} : f32[3]
        %1 = mul %0, 0.0 : f32[3]
        %2 = add %x, %1 : f32[3]
        return %2""",
        """
        %0 = add %x, 0.0 : f32[3]
        return %0""",
    ),
    case(
        "div_one",
        "(%x: i32[3]) -> (f64[3])",
        """
        %0 = div %x, 1 : f64[3]
        return %0""",
        """
        %0 = cast %x {dtype=f64} : f64[3]
        return %0""",
    ),
    case(
        "div_neg_one",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = div %x, -1.0 : f32[3]
        return %0""",
        """
        %0 = neg %x : f32[3]
        return %0""",
    ),
    case(
        "div_power_of_two",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = div %x, 128.0 : f32[3]
        return %0""",
        """
        %0 = mul %x, 0.0078125 : f32[3]
        return %0""",
    ),
    # -- powers
    case(
        "pow_zero",
        "(%x: f64[3]) -> (f64[3])",
        """
        %0 = pow %x, 0.0 : f64[3]
        return %0""",
        """
        %0 = broadcast_in_dim 1.0:f64 {shape=(3,), broadcast_dimensions=()} : f64[3]
        return %0""",
    ),
    case(
        "pow_one",
        "(%x: f64[3]) -> (f64[3])",
        """
        %0 = pow %x, 1.0 : f64[3]
        return %0""",
        "return %x",
    ),
    case(
        "pow_two",
        "(%x: f32[3]) -> (f64[3])",
        """
        %0 = pow %x, 2.0:f64 : f64[3]
        return %0""",
        """
        %0 = cast %x {dtype=f64} : f64[3]
        %1 = mul %0, %0 : f64[3]
        return %1""",
    ),
    case(
        "pow_two",
        "(%x: i32[3]) -> (i32[3])",
        """
        %0 = pow %x, 2 : i32[3]
        return %0""",
        """
        %0 = mul %x, %x : i32[3]
        return %0""",
    ),
    case(
        "pow_neg_one",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = pow %x, -1.0 : f32[3]
        return %0""",
        """
        %0 = div 1.0, %x : f32[3]
        return %0""",
    ),
    # -- involutions and inverses
    case(
        "neg_neg",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = neg %x : f32[3]
        %1 = neg %0 : f32[3]
        %2 = neg %1 : f32[3]
        %3 = neg %2 : f32[3]
        return %3""",
        "return %x",
    ),
    case(
        "exp_log",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = exp %x : f32[3]
        %1 = log %0 : f32[3]
        %2 = exp %1 : f32[3]
        return %2""",
        """
        %0 = exp %x : f32[3]
        return %0""",
    ),
    case(
        "log_exp",
        "(%x: f64[3]) -> (f64[3])",
        """
        %0 = sigmoid %x : f64[3]
        %1 = exp %0 : f64[3]
        %2 = log %1 : f64[3]
        return %2""",
        """
        %0 = sigmoid %x : f64[3]
        return %0""",
    ),
    case(
        "max_self",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = max %x, %x : f32[3]
        return %0""",
        "return %x",
    ),
    case(
        "min_self",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = min %x, %x : f32[3]
        return %0""",
        "return %x",
    ),
    case(
        "and_self",
        "(%x: bool[3]) -> (bool[3])",
        """
        %0 = and %x, %x : bool[3]
        return %0""",
        "return %x",
    ),
    case(
        "or_self",
        "(%x: i32[3]) -> (i32[3])",
        """
        %0 = or %x, %x : i32[3]
        return %0""",
        "return %x",
    ),
]

# IR the simplifier must leave exactly as it is (each with the reason).
KEEPS: list[tuple[str, str]] = [
    keep(
        "x + 0.0 is +0.0 where x is -0.0",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = add %x, 0.0 : f32[3]
        return %0""",
    ),
    keep(
        "x - (-0.0) is +0.0 where x is -0.0",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = sub %x, -0.0 : f32[3]
        return %0""",
    ),
    keep(
        "0.0 - x is +0.0 where -x is -0.0",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = sub 0.0, %x : f32[3]
        return %0""",
    ),
    keep(
        "x * 0.0 is NaN for inf and NaN",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = mul %x, 0.0 : f32[3]
        return %0""",
    ),
    keep(
        "sigmoid may be NaN, so x * 0.0 may be NaN",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = sigmoid %x : f32[3]
        %1 = mul %0, 0.0 : f32[3]
        return %1""",
    ),
    keep(
        "x - x is NaN for inf",
        "(%x: f64[3]) -> (f64[3])",
        """
        %0 = sub %x, %x : f64[3]
        return %0""",
    ),
    keep(
        "exp(log x) is NaN for negative x",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = log %x : f32[3]
        %1 = exp %0 : f32[3]
        return %1""",
    ),
    keep(
        "log(exp x) is inf where exp overflows",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = exp %x : f32[3]
        %1 = log %0 : f32[3]
        return %1""",
    ),
    keep(
        "x / 3 and x * (1/3) round differently",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = div %x, 3.0 : f32[3]
        return %0""",
    ),
    keep(
        "pow(x, 0.5) is +0 at -0 and inf at -inf, unlike sqrt",
        "(%x: f32[3]) -> (f32[3])",
        """
        %0 = pow %x, 0.5 : f32[3]
        return %0""",
    ),
    keep(
        "f64 -> f32 -> f64 rounds",
        "(%x: f64[3]) -> (f64[3])",
        """
        %0 = cast %x {dtype=f32} : f32[3]
        %1 = cast %0 {dtype=f64} : f64[3]
        return %1""",
    ),
    keep(
        "the splat cannot become a literal without changing the shape",
        "(%x: f32[3]) -> (f32[2,3])",
        """
        %0 = broadcast_in_dim 2.0:f32 {shape=(2,3), broadcast_dimensions=()} : f32[2,3]
        %1 = mul %x, %0 : f32[2,3]
        return %1""",
    ),
    keep(
        "the neg is read elsewhere too: moving it out would add a node",
        "(%x: f32[3], %y: f32[3]) -> (f32[3], f32[3])",
        """
        %0 = neg %x : f32[3]
        %1 = mul %0, %y : f32[3]
        return %0, %1""",
    ),
    keep(
        "a real reduction of a broadcast operand",
        "(%x: f32[4,3]) -> (f32[3])",
        """
        %0 = reduce_sum %x {axes=(0,)} : f32[3]
        return %0""",
    ),
]


@pytest.mark.parametrize("rule,before,after", CASES, ids=case_ids(CASES))
def test_rule(rule: str, before: str, after: str) -> None:
    check_rewrite(before, after)


@pytest.mark.parametrize("rule,before,after", CASES, ids=case_ids(CASES))
def test_rule_is_counted(rule: str, before: str, after: str) -> None:
    check_counted(rule, before)


@pytest.mark.parametrize("why,text", KEEPS, ids=[k[0] for k in KEEPS])
def test_rule_does_not_fire(why: str, text: str) -> None:
    check_pass(simplify, text, text, fired={})


def test_every_rule_has_a_case() -> None:
    covered = {rule for rule, _, _ in CASES + test_simplify_rules_shape.CASES}
    missing = sorted({r.name for r in SIMPLIFY_RULES} - covered)
    assert not missing, f"rules without an IR test: {missing}"


def test_normalize_ignores_alignment() -> None:
    assert normalize("  a  =  b   : c\n") == "a = b : c"


def test_replacements_keep_the_source_location() -> None:
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
