"""The pipeline cache's stored graph: whatever the pipeline makes loads back as
the same graph, with the same locations, checked like the verifier checks.
(Damaged entries: test_cache_damage.)"""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import graphc as gc
from graphc import pipeline_cache
from graphc.compiler import pipeline_for
from graphc.ir import DType, Graph, GraphBuilder, Loc, f32, verify
from graphc.passes.manager import CompileReport
from graphc.passes.pipeline import optimize
from graphc.passes.plan_memory import plan_memory
from graphc.pytree import tree_flatten
from tests.corpus import BY_NAME, CORPUS
from tests.strategies import graphs


def round_trip(g: Graph) -> Graph:
    data = pipeline_cache.encode(g, None, CompileReport(g.name))
    assert data is not None, "every graph the IR can hold must be storable"
    loaded, plan, _ = pipeline_cache.decode(data, g)
    assert plan is None
    return loaded


def assert_same(loaded: Graph, g: Graph) -> None:
    assert loaded == g
    assert loaded.format(locations=True) == g.format(locations=True)
    assert [n.loc for n in pipeline_cache._walk(loaded)] == [n.loc for n in pipeline_cache._walk(g)]
    verify(loaded)


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_optimized_corpus_graphs_load_back_with_their_plan(case) -> None:  # noqa: ANN001
    g = gc.trace(gc.value_and_grad(case.fn, argnums=case.argnums), *case.args(np.float32))
    optimized, report = optimize(g, passes=pipeline_for("llvm"))
    plan = plan_memory(optimized, inplace=False, donated=())
    data = pipeline_cache.encode(optimized, plan, report)
    assert data is not None
    loaded, loaded_plan, loaded_report = pipeline_cache.decode(data, g)
    assert_same(loaded, optimized)
    assert loaded_plan is not None and loaded_plan.arena_bytes == plan.arena_bytes
    assert [p.name for p in loaded_report.passes] == [p.name for p in report.passes]


@given(graphs(locations=True))
def test_random_graphs_load_back(g: Graph) -> None:
    assert_same(round_trip(g), g)


def test_repeated_nodes_get_their_own_values_and_attributes() -> None:
    """Nodes of a signature seen before skip the builder; they must still be new nodes."""
    case = BY_NAME["rnn_unrolled"]
    g = gc.trace(gc.value_and_grad(case.fn), *case.args(np.float64))
    loaded = round_trip(g)
    assert_same(loaded, g)
    outputs = [v for n in loaded.nodes for v in n.outputs]
    assert len(set(outputs)) == len(outputs)
    assert len({id(n.attrs) for n in loaded.nodes}) == len(loaded.nodes)
    args = case.args(np.float64)
    leaves, _ = tree_flatten(args)
    value, grads = gc.value_and_grad(case.fn)(*args)
    got = gc.ir.interpret(loaded, *leaves)
    np.testing.assert_allclose(got[0], value, rtol=1e-12)
    for a, w in zip(got[1:], tree_flatten(grads)[0]):
        np.testing.assert_allclose(a, w, rtol=1e-12, atol=1e-15)


def test_literals_constants_and_attributes_of_every_kind() -> None:
    b = GraphBuilder("kinds")
    x = b.input(f32[2, 3], "x")
    n = b.input(DType.i64[3], "n")
    with b.at(Loc("model.py", 3, 7, "loss", "vjp")):
        y = b.add(b.mul(x, float("nan")), float("-inf"))
        y = b.max(y, float("inf"))
    big = b.add(n, b.literal(np.iinfo(np.int64).min, DType.i64))
    flags = b.emit("constant", value=np.array([True, False, True]))
    picked = b.select(flags, b.cast(big, dtype=DType.f64), b.literal(0.1, DType.f64))
    empty = b.emit("constant", value=np.zeros((0, 2), np.int32))
    scalar = b.emit("constant", value=np.array(-0.0, np.float32))
    g = b.build([b.reduce_sum(y, axes=(1,), keepdims=True), picked, empty, scalar])
    assert_same(round_trip(g), g)


def test_the_stored_graph_is_plain_json() -> None:
    b = GraphBuilder("f")
    x = b.input(f32[3], "x")
    g = b.build([b.exp(b.mul(x, 2.0))])
    data = pipeline_cache.encode(g, None, CompileReport("f"))
    assert data is not None
    stored = json.loads(zlib.decompress(data))["graph"]
    assert stored["inputs"] == [["x", "f32[3]"]]
    assert [node[:4] for node in stored["nodes"]] == [
        ["mul", [0, ["f32", 2.0]], {}, ["f32[3]"]],
        ["exp", [1], {}, ["f32[3]"]],
    ]
    assert stored["outputs"] == [2]


def _document_paths(x: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    children = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else []
    for key, child in children:
        found += _document_paths(child, (*path, key))
    return found


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from(["inf", "nan", "f32[2]", "f64[]", "i64[3]", "add", "fusion", "x", "-1"])
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


def _small_entry() -> tuple[Graph, bytes]:
    b = GraphBuilder("f")
    x = b.input(f32[2, 3], "x")
    n = b.input(DType.i64[3], "n")
    with b.at(Loc("m.py", 2, 1, "f")):
        y = b.reduce_sum(b.mul(b.exp(x), 2.0), axes=(0,))
    idx = b.emit("constant", value=np.array([1, 0], np.int64))
    g = b.build([b.add(y, b.cast(n, dtype=DType.f32)), b.gather(x, idx, axis=0)])
    g, report = optimize(g, passes=pipeline_for("llvm"))  # fuses into subgraphs
    data = pipeline_cache.encode(g, plan_memory(g, inplace=False, donated=()), report)
    assert data is not None
    return g, data


SMALL_GRAPH, SMALL_ENTRY = _small_entry()


@given(st.data())
def test_any_change_to_an_entry_loads_a_valid_graph_or_is_damage(data: Any) -> None:
    document = json.loads(zlib.decompress(SMALL_ENTRY))
    path = data.draw(st.sampled_from(_document_paths(document["graph"])))
    replacement = data.draw(JSON_VALUES)
    if path:
        parent = document["graph"]
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = replacement
    else:
        document["graph"] = replacement
    try:
        loaded, _, _ = pipeline_cache.decode(
            zlib.compress(json.dumps(document).encode()), SMALL_GRAPH
        )
    except pipeline_cache.DamagedEntry:
        return
    verify(loaded)
    assert loaded.input_types == SMALL_GRAPH.input_types


def test_a_type_with_a_dimension_of_thousands_of_digits_is_damage() -> None:
    document = json.loads(zlib.decompress(SMALL_ENTRY))
    document["graph"]["inputs"][0][1] = "f32[" + "9" * 5000 + "]"
    with pytest.raises(pipeline_cache.DamagedEntry, match="is not a type"):
        pipeline_cache.decode(zlib.compress(json.dumps(document).encode()), SMALL_GRAPH)
