"""Graph records: analyses, structural equality, copying, dtypes and types."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from graphc.ir import (
    DType,
    Graph,
    GraphBuilder,
    Literal,
    TensorType,
    UnsupportedError,
    Value,
    f32,
    i64,
    interpret,
)
from tests.strategies import graphs, graphs_with_inputs


@given(graphs(max_nodes=10))
def test_analyses_match_their_definitions(g: Graph) -> None:
    producers = g.producers()
    for n in g.nodes:
        for v in n.outputs:
            assert producers[v] is n
    assert set(producers) == {v for n in g.nodes for v in n.outputs}
    users = g.users()
    counts = g.use_counts()
    for v in list(g.inputs) + list(producers):
        readers = [n for n in g.nodes for x in n.inputs if x is v]
        assert users[v] == readers
        assert counts[v] == len(readers) + sum(1 for o in g.outputs if o is v)


def rebuild(g: Graph) -> Graph:
    """A copy made node by node through the builder, as a pass would."""
    b = GraphBuilder(g.name)
    env: dict[Value, Value] = {v: b.input(v.type, v.name) for v in g.inputs}
    for n in g.nodes:
        copy = b.copy_node(n, [env[x] if isinstance(x, Value) else x for x in n.inputs])
        env.update(zip(n.outputs, copy.outputs))
    return b.build([env[v] for v in g.outputs])


@given(graphs(max_nodes=8))
def test_copies_are_equal_and_hash_alike(g: Graph) -> None:
    h = rebuild(g)
    assert h == g and hash(h) == hash(g)
    assert [n.loc for n in h.nodes] == [n.loc for n in g.nodes]
    assert h.num_nodes(recursive=True) == g.num_nodes(recursive=True)


@given(graphs_with_inputs(max_nodes=6))
def test_call_inlines_a_graph(case: tuple[Graph, tuple[np.ndarray, ...]]) -> None:
    g, arrays = case
    b = GraphBuilder("outer")
    xs = [b.input(v.type) for v in g.inputs]
    outer = b.build(b.call(g, *xs))
    try:
        want = interpret(g, *arrays)
    except Exception as exc:
        with pytest.raises(type(exc)):
            interpret(outer, *arrays)
        return
    for got, expected in zip(interpret(outer, *arrays), want):
        np.testing.assert_array_equal(got, expected)


def test_equality_sees_wiring_attributes_and_literals() -> None:
    def build(swap: bool = False, axes: tuple[int, ...] = (0,), lit: float = 1.0) -> Graph:
        b = GraphBuilder("f")
        x = b.input(f32[3], "x")
        y = b.input(f32[3], "y")
        s = b.sub(*((y, x) if swap else (x, y)))
        return b.build([b.reduce_sum(b.add(s, lit), axes=axes)])

    base = build()
    assert base == build()
    assert base != build(swap=True)
    assert base != build(axes=(-1,))
    assert base != build(lit=-1.0)
    assert build(lit=0.0) != build(lit=-0.0)
    assert build(lit=float("nan")) == build(lit=float("nan"))


def test_equality_of_constants_compares_contents() -> None:
    def build(value: np.ndarray) -> Graph:
        b = GraphBuilder("f")
        return b.build([b.constant(value=value)])

    a = np.array([1.0, np.nan])
    assert build(a) == build(a.copy())
    assert build(a) != build(np.array([1.0, 2.0]))
    assert build(np.array([1, 2])) != build(np.array([1, 2], np.int32))


def test_constants_are_private_read_only_copies() -> None:
    value = np.array([1.0, 2.0])
    b = GraphBuilder("f")
    g = b.build([b.constant(value=value)])
    value[0] = 99.0  # the caller's array changes; the graph's must not
    (out,) = interpret(g)
    np.testing.assert_array_equal(out, [1.0, 2.0])


def test_literal_text_and_equality() -> None:
    assert Literal(True, DType.bool).text() == "true"
    assert Literal(3, DType.i64).text() == "3"
    assert Literal(float("-inf"), DType.f32).text() == "-inf"
    assert Literal(2.0, DType.f64) == Literal(2, DType.f64)
    assert Literal(2, DType.f64) != Literal(2, DType.i64)
    assert hash(Literal(2.0, DType.f64)) == hash(Literal(2, DType.f64))
    assert Literal(0.1, DType.f32).as_array().dtype == np.float32


def test_dtype_sugar_and_conversions() -> None:
    assert f32[2, 3] == TensorType((2, 3), DType.f32)
    assert f32[()] == TensorType((), DType.f32)
    assert i64[5] == TensorType((5,), DType.i64)
    assert str(f32[2, 3]) == "f32[2,3]" and str(f32[()]) == "f32[]"
    assert TensorType((2, 3), DType.f64).nbytes == 48
    for d in DType:
        assert DType.from_numpy(d.np) is d
        assert DType.parse(d.value) is d
        assert DType.parse(str(d.np)) is d
    for bad in (np.complex64, np.longdouble, "datetime64[s]", "object"):
        with pytest.raises(UnsupportedError):
            DType.from_numpy(bad)
    with pytest.raises(UnsupportedError):
        DType.parse("c64")
