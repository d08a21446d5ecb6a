"""Error classes, builder type-error messages, interpreter input checks, to_dot."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
from hypothesis import given

import graphc
from graphc import ir
from graphc.ir import (
    BackendError,
    DifferentiationError,
    DType,
    Graph,
    GraphBuilder,
    GraphcError,
    GraphcIndexError,
    GraphcOverflowError,
    InputError,
    InputOverflowError,
    InterpretError,
    Literal,
    Loc,
    OpTypeError,
    ParseError,
    TensorType,
    TracingError,
    UnsupportedError,
    VerifyError,
    interpret,
)
from tests.strategies import graphs_with_inputs

# ---------------------------------------------------------------------------
# The error hierarchy
# ---------------------------------------------------------------------------

BUILTIN_BASES = {
    TracingError: (TypeError,),
    UnsupportedError: (TypeError,),
    OpTypeError: (TypeError, ValueError),
    ParseError: (ValueError,),
    VerifyError: (ValueError,),
    InterpretError: (RuntimeError,),
    GraphcIndexError: (IndexError,),
    GraphcOverflowError: (OverflowError,),
    DifferentiationError: (TypeError,),
    BackendError: (RuntimeError,),
    InputError: (TypeError, ValueError),
    InputOverflowError: (TypeError, ValueError, OverflowError),
}


@pytest.mark.parametrize("cls", list(BUILTIN_BASES), ids=lambda c: c.__name__)
def test_error_classes_derive_from_graphc_error_and_the_builtin(cls: type) -> None:
    assert issubclass(cls, GraphcError)
    for base in BUILTIN_BASES[cls]:
        assert issubclass(cls, base), f"{cls.__name__} is not a {base.__name__}"


def test_every_error_class_is_covered() -> None:
    exported = {
        obj
        for obj in vars(ir).values()
        if inspect.isclass(obj) and issubclass(obj, GraphcError) and obj is not GraphcError
    }
    assert exported == set(BUILTIN_BASES)
    assert graphc.GraphcError is GraphcError


def test_parse_error_carries_line_and_column() -> None:
    err = ParseError("bad token", 3, 7)
    assert (err.line, err.col) == (3, 7)
    assert str(err) == "bad token (line 3, column 7)"


def test_errors_are_caught_by_builtin_handlers() -> None:
    b = GraphBuilder("f")
    x = b.input(TensorType((3,), DType.f32), "x")
    with pytest.raises(TypeError):
        b.add(x, b.input(TensorType((4,), DType.f32), "y"))
    with pytest.raises(ValueError):
        b.reshape(x, shape=(2,))
    b = GraphBuilder("g")
    x = b.input(TensorType((3,), DType.f32), "x")
    g = b.build([b.gather(x, np.array([0, 3]), axis=0)])
    with pytest.raises(IndexError, match=r"gather: index 3 is out of bounds for axis of size 3"):
        interpret(g, np.zeros(3, np.float32))


# ---------------------------------------------------------------------------
# Builder type errors: op, operands with types, location, hint
# ---------------------------------------------------------------------------


def here() -> Loc:
    """A location pointing at the caller's line in this file."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return Loc(__file__, frame.f_back.f_lineno, function="test")


def test_type_error_message_has_four_parts() -> None:
    b = GraphBuilder("loss")
    x = b.input(TensorType((128, 64), DType.f32), "x")
    w = b.input(TensorType((32, 256), DType.f32), "w1")
    loc = here()  # the line the message must quote
    with pytest.raises(OpTypeError) as info:
        b.matmul(x, w, loc=loc)
    lines = str(info.value).splitlines()
    assert lines[0] == "matmul: contracting dimensions differ (64 vs 32)"
    assert lines[1] == "  lhs %x : f32[128,64]"
    assert lines[2] == "  rhs %w1 : f32[32,256]"
    assert re.fullmatch(
        rf"  at {re.escape(__file__)}:{loc.line} in test:  loc = here\(\)  # the line .*", lines[3]
    ), lines[3]
    assert lines[4] == "  hint: matmul needs lhs.shape[-1] == rhs.shape[-2]"
    err = info.value
    assert err.op == "matmul" and err.loc == loc  # type: ignore[attr-defined]


def test_type_error_uses_the_builder_location() -> None:
    b = GraphBuilder("f")
    x = b.input(TensorType((3,), DType.f32), "x")
    with b.at(Loc("model.py", 12, function="loss")):
        with pytest.raises(
            OpTypeError,
            match=r"(?s)add: shapes \[3\] and \[4\] cannot.*"
            r"at model\.py:12 in loss.*hint: broadcasting",
        ):
            b.add(x, b.input(TensorType((4,), DType.f32), "y"))


def test_literal_operands_are_described() -> None:
    b = GraphBuilder("f")
    x = b.input(TensorType((3,), DType.f32), "x")
    with pytest.raises(OpTypeError) as info:
        b.matmul(x, Literal(2.0, DType.f32))
    assert str(info.value).splitlines()[:3] == [
        "matmul: matmul operands must be at least 1-d",
        "  lhs %x : f32[3]",
        "  rhs literal 2.0 : f32[]",
    ]


@pytest.mark.parametrize(
    ("dtype", "scalar", "message"),
    [
        (DType.bool, 2, r"add: Python scalar 2 is not a bool but the operand is bool"),
        (DType.bool, 1.0, r"add: Python scalar 1\.0 is not a bool"),
        (DType.i32, 2.5, r"add: literal 2\.5 is not an integer but the operand is i32"),
        (DType.i32, 2**31, r"add: Python integer 2147483648 out of bounds for i32"),
        (DType.i64, float("inf"), r"add: literal inf is not an integer"),
    ],
)
def test_weak_scalars_that_do_not_fit_are_errors(
    dtype: DType, scalar: object, message: str
) -> None:
    """A Python scalar takes the tensor's dtype only when it fits exactly;
    ``bool(2)`` or ``int(2.5)`` would silently change the program."""
    b = GraphBuilder("f")
    x = b.input(TensorType((2,), dtype), "x")
    with pytest.raises(OpTypeError, match=message) as info:
        b.add(x, scalar)
    assert "hint: pass a typed literal" in str(info.value)


def test_weak_scalars_that_fit_take_the_tensor_dtype() -> None:
    b = GraphBuilder("f")
    x = b.input(TensorType((2,), DType.i32), "x")
    m = b.input(TensorType((2,), DType.bool), "m")
    assert b.add(x, 2.0).type == TensorType((2,), DType.i32)
    assert b.add(m, True).type == TensorType((2,), DType.bool)
    # Without a tensor operand, a scalar keeps NumPy's type for it.
    assert b.add(Literal(1, DType.i32), 2.5).type.dtype is DType.f64


def test_select_scalars_take_the_data_operand_dtype() -> None:
    """The condition never lends its bool dtype to a scalar branch."""
    b = GraphBuilder("f")
    c = b.input(TensorType((2,), DType.bool), "c")
    x = b.input(TensorType((2,), DType.f32), "x")
    y = b.select(c, x, 0.5)
    assert y.type == TensorType((2,), DType.f32)
    (got,) = interpret(b.build([y]), np.array([True, False]), np.array([3.0, 3.0], np.float32))
    np.testing.assert_array_equal(got, np.array([3.0, 0.5], np.float32))
    with pytest.raises(OpTypeError, match="not a bool"):
        b.select(c, 1.0, 0.0)


def test_unknown_op_and_attribute() -> None:
    b = GraphBuilder("f")
    x = b.input(TensorType((3,), DType.f32), "x")
    with pytest.raises(UnsupportedError, match="unknown op 'frob'"):
        b.emit("frob", x)
    with pytest.raises(AttributeError, match="no op or attribute 'frob'"):
        b.frob(x)  # noqa: B018
    with pytest.raises(OpTypeError, match=r"exp: unknown attribute\(s\) fast"):
        b.exp(x, fast=True)
    with pytest.raises(OpTypeError, match=r"reduce_sum: missing required attribute 'axes'"):
        b.reduce_sum(x)
    with pytest.raises(OpTypeError, match=r"reduce_sum: attribute 'axes' must be of kind ints"):
        b.reduce_sum(x, axes=(0.5,))
    with pytest.raises(OpTypeError, match=r"add: operand 'a' of type str is not a value"):
        b.add(x, "a")


def test_call_checks_its_operands() -> None:
    inner = GraphBuilder("inner")
    p = inner.input(TensorType((3,), DType.f32), "p")
    g = inner.build([inner.exp(p)])
    b = GraphBuilder("outer")
    x = b.input(TensorType((3,), DType.f64), "x")
    with pytest.raises(OpTypeError, match="expects 1 operands, got 0"):
        b.call(g)
    with pytest.raises(OpTypeError, match=r"argument %p is f32\[3\], got f64\[3\]"):
        b.call(g, x)


# ---------------------------------------------------------------------------
# interpret: input checking
# ---------------------------------------------------------------------------


def small_graph() -> Graph:
    b = GraphBuilder("f")
    x = b.input(TensorType((2,), DType.f32), "x")
    k = b.input(TensorType((), DType.i32), "k")
    return b.build([b.mul(x, b.cast(k, dtype=DType.f32))])


def test_interpret_accepts_lossless_conversions() -> None:
    g = small_graph()
    (got,) = interpret(g, [1.5, 2.0], 3)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [4.5, 6.0])
    (got,) = interpret(g, np.array([1.0, 2.0]), np.int64(2))
    np.testing.assert_array_equal(got, [2.0, 4.0])
    (got,) = interpret(g, np.array([True, False]), np.array(4, np.int32))
    np.testing.assert_array_equal(got, [4.0, 0.0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1.0, 2.0],), r"graph f takes 2 inputs, got 1"),
        (([1.0, 2.0], 1, 2), r"graph f takes 2 inputs, got 3"),
        (([1.0, 2.0, 3.0], 1), r"input %x expects shape \[2\], got \[3\]"),
        (([[1.0, 2.0]], 1), r"input %x expects shape \[2\], got \[1, 2\]"),
        (([1.0, 2.0], 1.5), r"input %k expects i32, got float64"),
        ((np.array([1 + 2j, 0]), 1), r"input %x expects f32, got complex128"),
        ((["a", "b"], 1), r"input %x expects f32, got <U1"),
        (([1.0, None], 1), r"input %x expects f32, got object"),
        (([1.0, [2.0]], 1), r"input %x expects an array of f32\[2\]"),
        (([1.0, 2.0], 2**40), r"input %k is i32, and some int64 values do not fit"),
        (([1e300, 2.0], 1), r"input %x is f32, and some float64 values overflow it"),
        ((np.array([1, 2], "datetime64[s]"), 1), r"input %x expects f32, got datetime64\[s\]"),
    ],
)
def test_interpret_rejects_bad_inputs(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        interpret(small_graph(), *args)


def test_interpret_keeps_non_finite_inputs() -> None:
    (got,) = interpret(small_graph(), np.array([np.inf, np.nan]), 1)
    assert np.isinf(got[0]) and np.isnan(got[1])


def test_runtime_errors_name_the_node_and_location() -> None:
    b = GraphBuilder("f")
    x = b.input(TensorType((3,), DType.f32), "x")
    with b.at(Loc("model.py", 7, function="loss")):
        y = b.gather(x, np.array([0, -4]), axis=0)
    with pytest.raises(GraphcIndexError) as info:
        interpret(b.build([y]), np.zeros(3, np.float32))
    message = str(info.value)
    assert "gather: index -4 is out of bounds for axis of size 3" in message
    assert "while running gather(f32[3], i64[2]) -> f32[2]" in message
    assert "at model.py:7 in loss" in message


def test_numpy_failures_become_interpret_errors() -> None:
    b = GraphBuilder("f")
    x = b.input(TensorType((2,), DType.i32), "x")
    with b.at(Loc("model.py", 3)):
        y = b.pow(x, b.input(TensorType((2,), DType.i32), "y"))
    with pytest.raises(InterpretError, match=r"(?s)pow failed: Integers to negative.*model\.py:3"):
        interpret(b.build([y]), np.array([2, 3]), np.array([1, -1]))


@given(graphs_with_inputs(max_nodes=6, special_inputs=True))
def test_interpret_never_modifies_its_inputs(case: tuple[Graph, tuple[np.ndarray, ...]]) -> None:
    g, arrays = case
    before = [a.copy() for a in arrays]
    try:
        interpret(g, *arrays)
    except GraphcError:
        pass
    for a, b in zip(arrays, before):
        assert a.tobytes() == b.tobytes()


# ---------------------------------------------------------------------------
# to_dot
# ---------------------------------------------------------------------------

_DOT_STRING = r'"(?:[^"\\]|\\.)*"'
_DOT_NODE = re.compile(rf"  (\w+) \[shape=(\w+), label=({_DOT_STRING})\];")
_DOT_EDGE = re.compile(rf"  (\w+) -> (\w+) \[label=({_DOT_STRING})\];")


def dot_unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), body)


def parse_dot(source: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Nodes (id -> label) and edges of the DOT that to_dot writes; every line
    must be a statement of that small grammar."""
    lines = source.splitlines()
    assert re.fullmatch(rf"digraph {_DOT_STRING} \{{", lines[0]), lines[0]
    assert lines[-1] == "}"
    nodes: dict[str, str] = {}
    edges = []
    for line in lines[1:-1]:
        if line in ("  rankdir=TB;", '  node [fontname="monospace"];'):
            continue
        if m := _DOT_NODE.fullmatch(line):
            nodes[m.group(1)] = dot_unquote(m.group(3))
        elif m := _DOT_EDGE.fullmatch(line):
            edges.append((m.group(1), m.group(2), dot_unquote(m.group(3))))
        else:
            raise AssertionError(f"not a DOT statement: {line!r}")
    for src, dst, _ in edges:
        assert src in nodes and dst in nodes
    return nodes, edges


def test_to_dot_structure_and_labels() -> None:
    b = GraphBuilder('we"ird')
    x = b.input(TensorType((2, 3), DType.f32), "x")
    with b.at(Loc('dir\\sub/"m".py', 4)):
        h = b.add(b.exp(x), 1.0)
    body = GraphBuilder("body")
    p = body.input(TensorType((2, 3), DType.f32))
    fused = b.fusion(h, subgraphs=[body.build([body.neg(body.exp(p))])])
    g = b.build([fused, x])
    nodes, edges = parse_dot(g.to_dot())
    assert nodes["in0"] == "%x: f32[2,3]"
    assert nodes["n0"] == 'exp\ndir\\sub/"m".py:4'
    assert nodes["n1"] == 'add 1.0\ndir\\sub/"m".py:4'
    assert nodes["n2"] == "fusion (2 inner nodes)"
    assert sorted(edges) == sorted(
        [
            ("in0", "n0", "f32[2,3]"),
            ("n0", "n1", "f32[2,3]"),
            ("n1", "n2", "f32[2,3]"),
            ("n2", "out0", "f32[2,3]"),
            ("in0", "out1", "f32[2,3]"),
        ]
    )
    assert g.to_dot().splitlines()[0] == 'digraph "we_ird" {'


@given(graphs_with_inputs(max_nodes=6))
def test_to_dot_has_one_edge_per_use(case: tuple[Graph, tuple[np.ndarray, ...]]) -> None:
    g, _ = case
    nodes, edges = parse_dot(g.to_dot())
    uses = sum(1 for n in g.nodes for x in n.inputs if not isinstance(x, Literal))
    assert len(edges) == uses + len(g.outputs)
    assert len(nodes) == len(g.inputs) + len(g.nodes) + len(g.outputs)
