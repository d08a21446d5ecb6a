"""The text form: printing and parsing round-trip, and the parser fails only
with ParseError (carrying a line and a column), whatever the input."""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from graphc.ir import (
    DType,
    Graph,
    GraphBuilder,
    Literal,
    Loc,
    Node,
    OpTypeError,
    ParseError,
    TensorType,
    Value,
    all_ops,
    interpret,
    parse,
    verify,
)
from tests.strategies import OP_MAKERS, graphs, graphs_with_inputs, ops_with_trait

# Mutation tests look for parser crashes, so they run more examples than the
# profile's default (and scale with it in the nightly profile).
MORE = settings(max_examples=settings().max_examples * 4)
F2 = TensorType((2,), DType.f32)


def test_every_op_can_appear_in_random_graphs() -> None:
    assert set(OP_MAKERS) == set(all_ops()), set(all_ops()) ^ set(OP_MAKERS)


@pytest.mark.parametrize("op", sorted(all_ops()))
def test_every_forward_case_round_trips(op: str) -> None:
    """Each one-op graph of the forward test (every op, attribute and dtype
    there) prints, parses back equal, and prints the same again."""
    from .test_ops_forward import CASES, build_case

    rng = np.random.default_rng(0)
    built = 0
    for case in CASES[op](rng):
        try:
            g, _ = build_case(op, case)
        except OpTypeError:
            continue
        built += 1
        text = str(g)
        assert parse(text) == g, text
        assert str(parse(text)) == text
    assert built


@given(graphs(locations=True))
def test_print_parse_round_trip(g: Graph) -> None:
    verify(g)
    text = str(g)
    h = parse(text)
    assert h == g
    assert hash(h) == hash(g)
    assert str(h) == text
    verify(h)


@given(graphs(locations=True))
def test_locations_round_trip(g: Graph) -> None:
    text = g.format(locations=True)
    h = parse(text)
    assert h == g
    assert h.format(locations=True) == text

    def locs(graph: Graph) -> list[tuple[str, int, int | None] | None]:
        found: list[tuple[str, int, int | None] | None] = []
        for n in graph.nodes:
            found.append((n.loc.file, n.loc.line, n.loc.col) if n.loc else None)
            for sub in n.subgraphs:
                found += locs(sub)
        return found

    assert locs(h) == locs(g)


@given(graphs(locations=True))
def test_annotated_text_parses(g: Graph) -> None:
    assert parse(g.format(annotate=True)) == g
    assert parse(g.format(annotate=True, locations=True)) == g


@given(graphs_with_inputs(max_nodes=6, special_inputs=True))
def test_parsed_graph_computes_the_same(case: tuple[Graph, tuple[np.ndarray, ...]]) -> None:
    g, arrays = case
    try:
        want = interpret(g, *arrays)
    except Exception as exc:  # e.g. integer pow with a negative exponent
        with pytest.raises(type(exc)):
            interpret(parse(str(g)), *arrays)
        return
    got = interpret(parse(str(g)), *arrays)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_graph_equality_ignores_names_and_locations() -> None:
    def build(name: str, arg: str, loc: Loc | None) -> Graph:
        b = GraphBuilder(name)
        x = b.input(TensorType((3,), DType.f32), arg)
        with b.at(loc):
            return b.build([b.exp(b.add(x, 1.0))])

    a = build("f", "x", None)
    b = build("g", "y", Loc("model.py", 3))
    assert a == b and hash(a) == hash(b)
    c = GraphBuilder("f")
    x = c.input(TensorType((3,), DType.f32), "x")
    assert a != c.build([c.exp(c.add(x, 2.0))])


def test_literals_keep_their_exact_value() -> None:
    b = GraphBuilder("f")
    x = b.input(TensorType((2,), DType.f64), "x")
    values = [0.1, -0.0, 1e-310, 1.7976931348623157e308, float("inf"), float("nan"), 1 / 3]
    outs = [b.add(x, v) for v in values]
    outs.append(b.add(x, Literal(2**53 + 1, DType.i64)))
    outs.append(b.add(b.cast(x, dtype=DType.i32), Literal(-(2**31), DType.i32)))
    g = b.build(outs)
    h = parse(str(g))
    assert h == g
    for n, m in zip(g.nodes, h.nodes):
        lit_g = [x for x in n.inputs if isinstance(x, Literal)]
        lit_h = [x for x in m.inputs if isinstance(x, Literal)]
        assert [x.as_array().tobytes() for x in lit_g] == [x.as_array().tobytes() for x in lit_h]


def test_constants_round_trip_bit_for_bit() -> None:
    b = GraphBuilder("f")
    values = [
        np.array([0.1, -0.0, np.inf, -np.inf, np.nan, 5e-324], np.float64),
        np.array([[1.1, -2.5], [3.4028235e38, 1e-45]], np.float32),
        np.array([np.iinfo(np.int64).min, 0, np.iinfo(np.int64).max]),
        np.array([True, False]),
        np.zeros((0, 3), np.int32),
        np.array(7, np.int32),
    ]
    g = b.build([b.constant(value=v) for v in values])
    h = parse(str(g))
    assert h == g
    for n, v in zip(h.nodes, values):
        got = n.attrs["value"]
        assert got.dtype == v.dtype and got.shape == v.shape
        assert got.tobytes() == v.tobytes()


DESIGN_EXAMPLE = """
graph loss(%b1: f32[16], %b2: f32[1], %w1: f32[4,16], %w2: f32[16,1],
           %x: f32[32,4], %y: f32[32,1]) -> (f32[]) {
  %0 = matmul %x, %w1                 : f32[32,16]
  %1 = add %0, %b1                    : f32[32,16]
  %2 = max %1, 0.0                    : f32[32,16]
  %3 = matmul %2, %w2                 : f32[32,1]
  %4 = add %3, %b2                    : f32[32,1]
  %5 = sub %4, %y                     : f32[32,1]
  %6 = mul %5, %5                     : f32[32,1]
  %7 = reduce_sum %6 {axes=(0,1)}     : f32[]   # a comment
  %8 = div %7, 32.0                   : f32[]
  return %8
}
"""

FUSION_EXAMPLE = """
graph f(%4: f32[32,1], %y: f32[32,1]) -> (f32[32,1], f32[32,1]) {
  %5, %6 = fusion %4, %y : f32[32,1], f32[32,1] {
    (%a: f32[], %b: f32[]) {
      %t0 = sub %a, %b   : f32[]
      %t1 = mul %t0, %t0 : f32[]
      return %t0, %t1
    }
  } loc("examples/mlp.py":9)
  return %5, %6
}
"""


def test_design_example_parses_and_computes() -> None:
    g = parse(DESIGN_EXAMPLE)
    assert [n.op for n in g.nodes] == [
        "matmul", "add", "max", "matmul", "add", "sub", "mul", "reduce_sum", "div",
    ]  # fmt: skip
    assert g.nodes[7].attrs == {"axes": (0, 1), "keepdims": False}
    assert parse(str(g)) == g
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(t.shape).astype(np.float32) for t in g.input_types]
    b1, b2, w1, w2, x, y = arrays
    want = np.sum((np.maximum(x @ w1 + b1, 0) @ w2 + b2 - y) ** 2) / 32
    (got,) = interpret(g, *arrays)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_fusion_example_with_scalar_body_is_rejected_clearly() -> None:
    # The body of a fusion takes whole tensors (DESIGN's scalar-body sketch is
    # not the format): the operand types must match the body's arguments.
    with pytest.raises(ParseError, match=r"fusion.*do not match the body's arguments") as info:
        parse(FUSION_EXAMPLE)
    assert info.value.line == 3


def test_fusion_with_tensor_body_round_trips() -> None:
    text = FUSION_EXAMPLE.replace("f32[]", "f32[32,1]")
    g = parse(text)
    assert g.nodes[0].loc == Loc("examples/mlp.py", 9)
    assert len(g.nodes[0].outputs) == 2
    assert parse(str(g)) == g
    assert parse(g.format(locations=True)).nodes[0].loc == Loc("examples/mlp.py", 9)


# ---------------------------------------------------------------------------
# Malformed text
# ---------------------------------------------------------------------------

HEAD = "graph f(%x: f32[2], %i: i32[2]) -> (f32[2]) {\n"


def body(*lines: str) -> str:
    return HEAD + "".join(f"  {line}\n" for line in lines) + "}"


MALFORMED = [
    # (text, message pattern, line, column)
    ("", r"expected 'graph', found end of input", 1, 1),
    ("graph", r"expected a graph name", 1, 6),
    ("graph f(%x f32[2]) -> () {}", r"expected ':'", 1, 12),
    ("graph f(%x: f8[2]) -> (f8[2]) {}", r"unknown dtype 'f8'", 1, 13),
    ("graph f(%x: f32[-1]) -> (f32[2]) {}", r"dimensions must be non-negative", 1, 17),
    ("graph f(%x: f32[2], %x: f32[2]) -> () {}", r"argument %x defined twice", 1, 21),
    (body("%0 = frob %x : f32[2]", "return %0"), r"unknown op 'frob'", 2, 8),
    (body("%0 = exp %y : f32[2]", "return %0"), r"undefined value %y", 2, 12),
    (body("%0 = exp %x : f64[2]", "return %0"), r"'exp' produces f32\[2\].*f64\[2\]", 2, 3),
    (body("%0 = add %x, %i : f32[2]", "return %0"), r"'add' produces f64\[2\]", 2, 3),
    (body("%0 = exp %x : f32[2]"), r"expected a statement or 'return'", 3, 1),
    (body("%0 = exp %x : f32[2]", "%0 = exp %x : f32[2]", "return %0"), r"%0 defined twice", 3, 3),
    (body("%0 = add 1, 2 : f32[]", "return %0"), r"a literal needs a dtype", 2, 12),
    (body("%0 = add %i, 99999999999 : i32[2]", "return %x"), r"out of range for i32", 2, 16),
    (body("%0 = add %i, 1.5 : i32[2]", "return %x"), r"1\.5 is not an integer literal", 2, 16),
    (body("%0 = add %x, true : f32[2]", "return %0"), r"'true' is not a f32 literal", 2, 16),
    (body("%0 = add %x, 2:i4 : f32[2]", "return %0"), r"unknown dtype 'i4'", 2, 18),
    (body("%0 = reduce_sum %x : f32[]", "return %x"), r"missing required attribute 'axes'", 2, 3),
    (
        body("%0 = reduce_sum %x {axes=(0.5,)} : f32[]", "return %x"),
        r"attribute 'axes' takes integers",
        2,
        23,
    ),
    (
        body("%0 = reduce_sum %x {axes=(0,), axes=(0,)} : f32[]", "return %x"),
        r"attribute 'axes' given twice",
        2,
        34,
    ),
    (body("%0 = exp %x {foo=1} : f32[2]", "return %0"), r"'exp' has no attribute 'foo'", 2, 16),
    (body("%0 = cast %x {dtype=wat} : f32[2]", "return %x"), r"unexpected name 'wat'", 2, 17),
    (body("%0 = exp %x : f32[2]", "return %0, %x"), r"return types .* differ from the decl", 3, 3),
    (body("return 1.0:f32"), r"return takes values, not literals", 2, 3),
    (body('%0 = exp %x : f32[2] loc("a.py":x)', "return %0"), r"expected a line number", 2, 35),
    (body('%0 = exp %x : f32[2] loc("a.py:1)', "return %0"), r"unexpected character '\"'", 2, 28),
    (body("%0 = exp %x : f32[2] $", "return %0"), r"unexpected character '\$'", 2, 24),
    (body("%0 = exp %x : f32[2]", "return %0") + " extra", r"expected end of input", 4, 3),
    (
        body("%0 = constant {value=(1.0, 2.0)} : f32[3]", "return %0"),
        r"constant has 2 values but f32\[3\] needs 3",
        2,
        18,
    ),
    (
        body("%0 = constant {value=(1.5, 2)} : i64[2]", "return %x"),
        r"integer constants take integers",
        2,
        18,
    ),
    (
        body('%0 = fusion %x {kind="\\q"} : f32[2] { (%a: f32[2]) { return %a } }', "return %0"),
        r"bad string \(Invalid \\escape\)",
        2,
        24,
    ),
    (body("%0 = add %x, 1" + "0" * 400 + " : f32[2]", "return %0"), r"out of range for f32", 2, 16),
    (
        body("%0 = reshape %x {shape=" + "(" * 3000 + "} : f32[2]", "return %0"),
        r"nested too deeply",
        2,
        58,
    ),
    (body("%0, %1 = exp %x : f32[2]", "return %0"), r"'exp' has 1 results, 2 names given", 2, 3),
    (body("%0, %1 = exp %x : f32[2], f32[2]", "return %0"), r"'exp' produces f32\[2\], but", 2, 3),
    (body("%0 = fusion %x : f32[2]", "return %0"), r"expects 1 subgraph\(s\), got 0", 2, 3),
]


@pytest.mark.parametrize(("text", "message", "line", "col"), MALFORMED)
def test_malformed_text(text: str, message: str, line: int, col: int) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    err = info.value
    assert re.search(message, str(err)), str(err)
    assert (err.line, err.col) == (line, col), str(err)
    assert f"(line {line}, column {col})" in str(err)


def test_parse_rejects_non_text() -> None:
    with pytest.raises(ParseError, match="expected IR text"):
        parse(b"graph f() -> () { return }")  # type: ignore[arg-type]


def test_parse_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse("graph")


# ---------------------------------------------------------------------------
# Random mutations of printed graphs
# ---------------------------------------------------------------------------

PIECES = [
    "%", "(", ")", "{", "}", "[", "]", ",", "=", ":", "#", '"', "\\", "-", ".", "->", "\n",
    " ", "0", "1", "-1", "1e999", "9" * 25, "inf", "-inf", "nan", "true", "false", "f32",
    "i64", "bool", "f16", "9" * 400, "loc", 'loc("x.py":1)', "return", "graph", "fusion", "%0",
    "%x", "add", "reduce_sum", "constant", "{axes=(0,)}", "{value=(1.0,)}", "é", "\x00", "\t",
    '"\\u12"', '"\\q"', "((((((((", "))))",
]  # fmt: skip
TOKEN = re.compile(r'%[\w.]+|-?\d[\w.+-]*|"(?:[^"\\\n]|\\.)*"|\w+|->|\S')


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "token", "line"]))
        if not text:
            kind = "insert"
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 6)) :]
        elif kind == "insert":
            piece = draw(st.sampled_from(PIECES) | st.text(max_size=3))
            text = text[:at] + piece + text[at:]
        elif kind == "replace":
            text = text[:at] + draw(st.sampled_from(PIECES)) + text[at + 1 :]
        elif kind == "token":
            tokens = [m.span() for m in TOKEN.finditer(text)]
            start, end = draw(st.sampled_from(tokens))
            other = draw(st.sampled_from([text[s:e] for s, e in tokens] + PIECES + [""]))
            text = text[:start] + other + text[end:]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            action = draw(st.sampled_from(["drop", "dup", "swap"]))
            if action == "drop":
                del lines[i]
            elif action == "dup":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


def check_parse_outcome(text: str) -> None:
    """Parsing either succeeds with a valid, stable graph or raises ParseError
    pointing inside the text; any other exception is a parser bug."""
    try:
        g = parse(text)
    except ParseError as err:
        lines = text.split("\n")
        assert 1 <= err.line <= len(lines), (err.line, len(lines))
        assert 1 <= err.col <= len(lines[err.line - 1]) + 1, (err.col, lines[err.line - 1])
        return
    verify(g)
    assert parse(str(g)) == g
    assert str(parse(str(g))) == str(g)


@MORE
@given(st.data())
def test_mutated_text_raises_only_parse_error(data: st.DataObject) -> None:
    g = data.draw(graphs(locations=True, max_nodes=5))
    text = g.format(locations=data.draw(st.booleans()), annotate=data.draw(st.booleans()))
    check_parse_outcome(data.draw(mutated(text)))


@MORE
@given(st.lists(st.sampled_from(PIECES) | st.characters(), max_size=40).map("".join))
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    check_parse_outcome(text)


def test_known_tricky_inputs() -> None:
    base = textwrap.dedent(
        """\
        graph f(%x: f32[2]) -> (f32[2]) {
          %0 = exp %x : f32[2]
          return %0
        }"""
    )
    for text in [
        base.replace("exp", "fusion"),
        base.replace("%x : f32[2]", "%x {kind=1} : f32[2]"),
        base.replace("f32[2]\n", 'f32[2] loc("\\ud800":1)\n'),
        base.replace("%0 = exp %x", "%0 = constant"),
        base.replace("%0 = exp %x", "%0 = iota {shape=(99999999999999999999,)}"),
        base.replace("%0 = exp %x", "%0 = iota {shape=(2,), dtype=5}"),
        base.replace("%0 = exp %x", "%0 = iota {shape=((2,),)}"),
        base.replace("%0 = exp %x", '%0 = cast %x {dtype="float16"}'),
        base.replace("%0 = exp %x", "%0 = conv2d %x, %x {padding=((1,),)}"),
        base.replace("%0 = exp %x", "%0 = max_pool2d %x {window=(1, 1), stride=(0, 1)}"),
        base.replace("%0 = exp %x", "%0 = concatenate"),
        base.replace("%0 = exp %x", "%0 = add %x, 1:i64, 2:i64"),
        base.replace("f32[2]) {", "f32[99999999999999999999]) {"),
        base + "\x00",
        "graph f() -> () {\n  return\n}",
    ]:
        check_parse_outcome(text)


def test_graphs_with_odd_names_still_print_parseable_text() -> None:
    # Names only matter for reading; a graph built without the builder may
    # carry any name and must still print as valid text.
    x, y, z, out = Value(F2, "my x"), Value(F2, "9"), Value(F2, ""), Value(F2)
    g = Graph('name with "quotes"', (x, y, z), (Node("add", (x, y), (out,), {}),), (out,))
    text = str(g)
    assert text.splitlines()[0].startswith("graph name_with__quotes_(%my_x: f32[2], %_9: f32[2]")
    assert parse(text) == g


@pytest.mark.parametrize("op", sorted(all_ops()))
def test_every_maker_can_build_its_op(op: str) -> None:
    """Each op's maker succeeds for some draw, so random graphs really contain it."""
    found = find(
        graphs(ops=[op], max_nodes=3, min_nodes=1),
        lambda g: any(n.op == op for n in g.nodes),
        settings=settings(max_examples=200, database=None, phases=[Phase.generate]),
    )
    assert any(n.op == op for n in found.nodes)


@given(graphs(ops=ops_with_trait("elementwise"), dtypes=[DType.f32], special=False))
def test_op_subsets_are_respected(g: Graph) -> None:
    elementwise = set(ops_with_trait("elementwise"))
    for n in g.nodes:
        assert n.op in elementwise
        for sub in n.subgraphs:
            assert all(m.op in elementwise for m in sub.nodes)
    assert all(v.type.dtype is DType.f32 for v in g.inputs)
