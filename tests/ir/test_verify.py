"""The verifier, on graphs built by hand (the builder cannot make broken ones).

Each broken graph must raise VerifyError whose message names the op and the
rule, and shows the IR around the offending line marked with ``>``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from graphc.ir import (
    DType,
    Graph,
    GraphBuilder,
    InterpretError,
    Literal,
    Node,
    TensorType,
    Value,
    VerifyError,
    interpret,
    verify,
)

F3 = TensorType((3,), DType.f32)
SCALAR = TensorType((), DType.f32)


def graph(nodes: list[Node], outputs: list[Value], inputs: list[Value] | None = None) -> Graph:
    return Graph("f", tuple(inputs if inputs is not None else [X]), tuple(nodes), tuple(outputs))


X = Value(F3, "x")


def node(op: str, inputs: list[object], outputs: list[Value], **attrs: object) -> Node:
    return Node(op, tuple(inputs), tuple(outputs), attrs)  # type: ignore[arg-type]


def marked_line(message: str) -> str:
    lines = [line for line in message.splitlines() if line.startswith(">")]
    assert len(lines) == 1, f"expected one marked line in:\n{message}"
    return lines[0]


def check(g: Graph, first_line: str, marked: str) -> str:
    """Verify ``g``; the error's first line must match ``first_line`` (a regex)
    and the marked IR line must contain ``marked``."""
    with pytest.raises(VerifyError) as info:
        verify(g)
    message = str(info.value)
    assert re.fullmatch(first_line, message.splitlines()[0]), message
    assert marked in marked_line(message), message
    return message


def test_valid_graph_passes_and_is_returned() -> None:
    b = GraphBuilder("f")
    x = b.input(F3, "x")
    g = b.build([b.reduce_sum(b.exp(x), axes=(0,))])
    assert verify(g) is g


def test_use_before_definition() -> None:
    a, b, c = Value(F3), Value(F3), Value(F3)
    g = graph([node("exp", [X], [a]), node("neg", [b], [c]), node("exp", [c], [b])], [b])
    message = check(
        g, r"neg: operand 0 is used before it is defined \(or never defined\)", "neg %<undefined>"
    )
    # Context: the lines around the bad node are shown too.
    assert "%0 = exp %x" in message and "return" in message


def test_never_defined_value() -> None:
    a = Value(F3)
    g = graph([node("exp", [Value(F3)], [a])], [a])
    check(g, r"exp: operand 0 is used before it is defined.*", "exp %<undefined>")


def test_value_from_another_graph_in_a_subgraph() -> None:
    # A fusion body may only read its own arguments, not the enclosing graph's values.
    a, t = Value(F3), Value(F3)
    body = Graph("body", (Value(F3, "a"),), (node("add", [X, X], [t]),), (t,))
    g = Graph("f", (X,), (Node("fusion", (X,), (a,), {"kind": "elementwise"}, (body,)),), (a,))
    with pytest.raises(VerifyError) as info:
        verify(g)
    message = str(info.value)
    assert message.startswith("add: operand 0 is used before it is defined")
    # The body's line is marked, then the enclosing node's.
    marked = [line for line in message.splitlines() if line.startswith(">")]
    assert marked == [
        ">   %0 = add %<undefined>, %<undefined> : f32[3]",
        ">   %0 = fusion %x : f32[3] {",
    ]
    assert "in subgraph 0 of this fusion" in message


def test_redefinition() -> None:
    a = Value(F3)
    g = graph([node("exp", [X], [a]), node("neg", [a], [a])], [a])
    check(g, r"neg: redefines a value \(SSA allows one definition\)", "%1 = neg %0")


def test_redefining_an_argument() -> None:
    g = graph([node("neg", [X], [X])], [X])
    check(g, r"neg: redefines a value.*", "%0 = neg %x")


def test_duplicate_argument() -> None:
    g = Graph("f", (X, X), (), (X,))
    check(g, r"graph f: argument %x appears twice", "graph f(")


def test_wrong_result_type() -> None:
    wrong = Value(TensorType((3,), DType.f64))
    g = graph([node("exp", [X], [wrong])], [wrong])
    check(g, r"exp: result types f64\[3\] differ from the type rule's f32\[3\]", "exp %x")


def test_wrong_number_of_results() -> None:
    a, b = Value(F3), Value(F3)
    g = graph([node("exp", [X], [a, b])], [a])
    check(g, r"exp: result types f32\[3\], f32\[3\] differ from the type rule's f32\[3\]", "exp")


def test_unknown_op() -> None:
    a = Value(F3)
    check(graph([node("frobnicate", [X], [a])], [a]), r"frobnicate: unknown op", "frobnicate %x")


def test_wrong_operand_count() -> None:
    a = Value(F3)
    check(graph([node("add", [X], [a])], [a]), r"add: expects 2 operands, got 1", "add %x")


def test_operand_that_is_not_a_value() -> None:
    a = Value(F3)
    g = graph([node("add", [X, 1.0], [a])], [a])
    check(g, r"add: operand 1 is neither a Value nor a Literal: 1\.0", "<not an operand: 1.0>")


def test_missing_attribute() -> None:
    out = Value(SCALAR)
    g = graph([node("reduce_sum", [X], [out])], [out])
    check(g, r"reduce_sum: missing required attribute 'axes'", "reduce_sum %x")


def test_incomplete_attributes() -> None:
    # Nodes carry complete attributes (defaults filled in); a pass that drops one is caught.
    out = Value(SCALAR)
    g = graph([node("reduce_sum", [X], [out], axes=(0,))], [out])
    check(g, r"reduce_sum: attributes are incomplete \(missing keepdims\)", "{axes=(0,)}")


def test_attribute_of_the_wrong_kind() -> None:
    out = Value(SCALAR)
    g = graph([node("reduce_sum", [X], [out], axes="all", keepdims=False)], [out])
    check(g, r"reduce_sum: attribute 'axes' must be of kind ints, got 'all'", "reduce_sum")


def test_unknown_attribute() -> None:
    a = Value(F3)
    g = graph([node("exp", [X], [a], fast=True)], [a])
    check(g, r"exp: unknown attribute\(s\) fast \(known: none\)", "exp %x")


def test_attribute_rejected_by_the_type_rule() -> None:
    out = Value(SCALAR)
    g = graph([node("reduce_sum", [X], [out], axes=(3,), keepdims=False)], [out])
    check(g, r"reduce_sum: axis 3 is out of range for a 1-d operand", "reduce_sum %x")


def test_fusion_without_body() -> None:
    a = Value(F3)
    g = graph([node("fusion", [X], [a], kind="elementwise")], [a])
    check(g, r"fusion: expects 1 subgraph\(s\), has 0", "fusion %x")


def test_subgraph_on_an_op_without_one() -> None:
    a = Value(F3)
    body = Graph("body", (), (), ())
    g = Graph("f", (X,), (Node("exp", (X,), (a,), {}, (body,)),), (a,))
    check(g, r"exp: expects 0 subgraph\(s\), has 1", "exp %x")


def test_fusion_body_of_the_wrong_arity() -> None:
    a, t = Value(F3), Value(F3)
    p, q = Value(F3, "p"), Value(F3, "q")
    body = Graph("body", (p, q), (node("add", [p, q], [t]),), (t,))
    g = Graph("f", (X,), (Node("fusion", (X,), (a,), {"kind": "elementwise"}, (body,)),), (a,))
    check(g, r"fusion: operands \(f32\[3\]\) do not match the body's arguments.*", "fusion %x")


def test_undefined_output() -> None:
    a = Value(F3)
    g = graph([node("exp", [X], [a])], [Value(F3)])
    check(g, r"return: output 0 is not defined in graph f", "return %<undefined>")


def test_context_is_limited_to_nearby_lines() -> None:
    b = GraphBuilder("long")
    v = b.input(F3, "x")
    for _ in range(20):
        v = b.exp(v)
    g = b.build([v])
    bad = Value(TensorType((3,), DType.i32))
    nodes = list(g.nodes)
    nodes[10] = Node("exp", nodes[10].inputs, (bad,), {})
    message = check(Graph("long", g.inputs, tuple(nodes), g.outputs), r"exp: result types.*", "")
    shown = message.splitlines()[1:]
    assert len(shown) == 9  # four lines each side of the marked one
    assert "%10 = exp %9" in marked_line(message)


def test_literal_operands_are_fine() -> None:
    a = Value(F3)
    assert verify(graph([node("add", [X, Literal(1.0, DType.f32)], [a])], [a]))


def test_interpreting_a_broken_graph_fails_cleanly() -> None:
    a, b = Value(F3), Value(F3)
    g = graph([node("neg", [b], [a])], [a])
    with pytest.raises(InterpretError, match="reads a value before it is defined"):
        interpret(g, np.zeros(3, np.float32))


def test_verify_error_is_a_value_error() -> None:
    assert issubclass(VerifyError, ValueError)


@pytest.mark.parametrize(
    ("literal", "shown"),
    [
        (Literal(2.5, DType.i32), "2.5"),
        (Literal(2**31, DType.i32), "2147483648"),
        (Literal(float("inf"), DType.i64), "inf"),
        (Literal(2, DType.bool), "2"),
        (Literal(True, DType.i64), "True"),
    ],
)
def test_literal_that_does_not_fit_its_dtype(literal: Literal, shown: str) -> None:
    x = Value(TensorType((3,), literal.dtype), "x")
    a = Value(x.type)
    g = Graph("f", (x,), (node("add" if not literal.dtype.is_bool else "or", [x, literal], [a]),),
              (a,))  # fmt: skip
    with pytest.raises(VerifyError, match=rf"literal operand 1 \({re.escape(shown)}\) is not a"):
        verify(g)


def test_malformed_types() -> None:
    bad = Value(TensorType((-1,), DType.f32), "x")
    check(Graph("f", (bad,), (), (bad,)), r"graph f: argument %x has a malformed shape \(-1,\)",
          "graph f(")  # fmt: skip
    a = Value(TensorType((3,), "f32"))  # type: ignore[arg-type]
    check(graph([node("exp", [X], [a])], [a]), r"exp: a result has type .*, not a TensorType",
          "exp %x")  # fmt: skip
