"""A damaged disk cache never takes a user down: entries moved under another
name, holding the wrong kind of thing, truncated or planted are reported once,
compiled again and overwritten, in this process and in every later one; a
cache path that cannot be used says so once. (The happy path: test_llvm_cache.)"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc import pipeline_cache
from graphc.backends import get_backend
from graphc.backends.llvm import cache as cache_mod
from graphc.backends.llvm import pool as pool_mod
from graphc.compiler import compile_graph
from graphc.ir import interpret

pytestmark = pytest.mark.usefixtures("private_cache")


X = np.linspace(-1.0, 1.0, 12).reshape(3, 4)


def traced(which: str) -> gc.ir.Graph:
    fns = {"tanh": lambda x: np.tanh(x) * 2.0, "exp": lambda x: np.exp(x) + x}
    return gc.trace(fns[which], X)


def compile_llvm(g: gc.ir.Graph) -> Any:
    return compile_graph(g, backend="llvm")


def new_entries(directory: Path, compile_it: Any) -> dict[str, Path]:
    """The entries ``compile_it()`` adds, by suffix."""
    before = set(directory.iterdir()) if directory.exists() else set()
    compile_it()
    added = sorted(set(directory.iterdir()) - before)
    found = {p.suffix: p for p in added if p.suffix in (".gco", ".gcp")}
    assert sorted(found) == [".gco", ".gcp"], added
    return found


def swap(a: Path, b: Path) -> None:
    tmp = a.with_suffix(".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def check_result(result: Any, g: gc.ir.Graph) -> None:
    (got,) = result.executable(X)
    np.testing.assert_allclose(got, interpret(g, X)[0], rtol=1e-12, atol=1e-12)


def test_entries_moved_under_another_name_are_damaged(private_cache) -> None:  # noqa: ANN001
    pool_mod.pool()  # its own entry is made first
    tanh = new_entries(private_cache, lambda: compile_llvm(traced("tanh")))
    exp = new_entries(private_cache, lambda: compile_llvm(traced("exp")))
    swap(tanh[".gco"], exp[".gco"])
    swap(tanh[".gcp"], exp[".gcp"])
    with pytest.warns(cache_mod.CacheWarning, match="moved or copied") as record:
        again = compile_llvm(traced("tanh"))
    assert len(record) == 2  # the pipeline's entry and the object's
    assert not again.report.from_cache and not again.executable.from_cache
    check_result(again, traced("tanh"))
    # Overwritten with the right contents: the next compile loads both, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warm = compile_llvm(traced("tanh"))
    assert warm.report.from_cache and warm.executable.from_cache
    check_result(warm, traced("tanh"))


class _Plant:
    """Unpickling this creates ``path``: proof that loading ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (self.path,))


def pipeline_entry(directory: Path) -> Path:
    (entry,) = directory.glob("*.gcp")
    return entry


def test_a_planted_pickle_in_a_pipeline_entry_never_runs(private_cache, tmp_path) -> None:  # noqa: ANN001
    g = traced("tanh")
    compile_llvm(g)
    entry = pipeline_entry(private_cache)
    proof = tmp_path / "pwned"
    # Framed and named exactly as the cache writes entries: only its contents are foreign.
    cache_mod.write(private_cache, entry.name, pickle.dumps((_Plant(proof), None, None)))
    with pytest.warns(cache_mod.CacheWarning, match="not a pipeline entry"):
        again = compile_llvm(g)
    assert not proof.exists()
    assert not again.report.from_cache
    check_result(again, g)


def stored_document(directory: Path) -> dict[str, Any]:
    data = cache_mod.read(directory, pipeline_entry(directory).name)
    assert data is not None
    return json.loads(zlib.decompress(data))


def _retyped(change: Any) -> Any:
    def make(document: dict[str, Any]) -> bytes:
        change(document)
        return zlib.compress(json.dumps(document).encode())

    return make


def _deep_graph(document: dict[str, Any]) -> bytes:
    """Subgraphs inside subgraphs until the reader runs out of stack."""
    level = '{"name": "f", "inputs": [["a", "f32[2]"]], "nodes": [["fusion", [0], {}, ["f32[2]"], ['
    inner = '{"name": "f", "inputs": [["a", "f32[2]"]], "nodes": [], "outputs": [0]}'
    graph = level * 3000 + inner + "], null]], " * 3000
    text = json.dumps({**document, "graph": None}).replace('"graph": null', f'"graph": {graph}')
    return zlib.compress(text.encode())


def _node(document: dict[str, Any], *path: int) -> list[Any]:
    """A node of the stored graph: top-level node path[0], then node path[2] of its
    subgraph path[1], and so on."""
    graph = document["graph"]
    node = graph["nodes"][path[0]]
    for sub, index in zip(path[1::2], path[2::2]):
        node = node[4][sub]["nodes"][index]
    return node


# The traced graph below is optimized into two fusions, each with a subgraph:
#   fusion(x) {transpose, matmul, tanh}, fusion(%0, x) {matmul, reduce_sum}.
RETYPED = {
    # A well-formed pickle of the wrong object: it crashed every later process.
    "pickle_of_a_tuple": lambda document: pickle.dumps(("graph", None, None)),
    "json_list": lambda document: zlib.compress(b"[1, 2, 3]"),
    "json_nested_too_deep": lambda document: zlib.compress(b"[" * 100_000 + b"]" * 100_000),
    "graph_nested_too_deep": _deep_graph,
    "graph_number": _retyped(lambda d: d.update(graph=42)),
    "graph_as_ir_text": _retyped(lambda d: d.update(graph="graph f(%x: f32[3,4]) -> (")),
    "graph_of_another_signature": _retyped(
        lambda d: d.update(
            graph={"name": "f", "inputs": [["x", "f32[2]"]], "nodes": [], "outputs": [0]}
        )
    ),
    "operand_defined_later": _retyped(lambda d: _node(d, 1).__setitem__(1, [2, 0])),
    "unknown_op": _retyped(lambda d: _node(d, 0, 0, 2).__setitem__(0, "launch")),
    "result_type_differs": _retyped(lambda d: _node(d, 0, 0, 2).__setitem__(3, ["f32[3,4]"])),
    "ill_typed_operands": _retyped(lambda d: _node(d, 0, 0, 1).__setitem__(1, [0, 0])),
    "attribute_of_wrong_kind": _retyped(lambda d: _node(d, 0, 0, 0)[2].update(perm=[True, 0])),
    "malformed_type": _retyped(lambda d: d["graph"]["inputs"][0].__setitem__(1, "f32[-3,4]")),
    "negative_line": _retyped(lambda d: _node(d, 0).__setitem__(5, ["f.py", -1, None, None, None])),
    "plan_string": _retyped(lambda d: d.update(plan="plan")),
    "offset_outside_the_arena": _retyped(
        lambda d: d["plan"].update(offsets=[[1, 1 << 40]], arena_bytes=64)
    ),
    "report_passes_dict": _retyped(lambda d: d["report"].update(passes={})),
    "pass_time_string": _retyped(lambda d: d["report"]["passes"][0].update(seconds="fast")),
    "wrong_format": _retyped(lambda d: d.update(format="graphc-pipeline-1")),
}


@pytest.mark.parametrize("name", sorted(RETYPED))
def test_a_pipeline_entry_of_the_wrong_kind_is_damaged(private_cache, name) -> None:  # noqa: ANN001
    g = gc.trace(lambda x: (np.tanh(x @ x.T) @ x).sum(axis=1), X)
    compile_llvm(g)
    document = stored_document(private_cache)
    entry = pipeline_entry(private_cache)
    cache_mod.write(private_cache, entry.name, RETYPED[name](document))
    with pytest.warns(cache_mod.CacheWarning, match="corrupt cache entry"):
        again = compile_llvm(g)
    assert not again.report.from_cache
    check_result(again, g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compile_llvm(g).report.from_cache


def test_a_good_document_loads(private_cache) -> None:  # noqa: ANN001
    """The damage above is the only difference from what loads fine."""
    g = gc.trace(lambda x: (np.tanh(x @ x.T) @ x).sum(axis=1), X)
    first = compile_llvm(g)
    document = stored_document(private_cache)
    assert document["plan"]["offsets"]  # so the damage to offsets above is damage to something
    optimized, plan, report = pipeline_cache.decode(zlib.compress(json.dumps(document).encode()), g)
    assert plan is not None and report.from_cache and report.passes
    assert optimized.format(locations=True) == first.graph.format(locations=True)
    # Whole locations, not just the text's file and line: errors name the function too.
    locs = [n.loc for n in pipeline_cache._walk(optimized)]
    assert locs == [n.loc for n in pipeline_cache._walk(first.graph)]
    assert any(loc is not None and loc.function for loc in locs)


@pytest.mark.parametrize(
    "layout",
    [[], {"n_inputs": "one"}, "layout"],
    ids=["list", "missing_fields", "string"],
)
def test_an_object_entry_with_a_layout_of_the_wrong_kind_is_damaged(private_cache, layout) -> None:  # noqa: ANN001
    llvm = get_backend("llvm")
    g = traced("exp")
    llvm.compile(g)
    key = object_key(private_cache)
    good = cache_mod.load(private_cache, key)
    cache_mod.write(private_cache, f"{key}.gco", _encoded(good.obj, layout, good.llvm_ir))
    cache_mod._reported.clear()
    with pytest.warns(cache_mod.CacheWarning, match="corrupt cache entry"):
        exe = llvm.compile(g)
    assert not exe.from_cache
    np.testing.assert_allclose(exe(X)[0], np.exp(X) + X, rtol=1e-12)


def object_key(directory: Path) -> str:
    """The key of the one object entry that is not the worker pool's (which has no layout)."""
    (key,) = [p.stem for p in directory.glob("*.gco") if cache_mod.load(directory, p.stem).layout]
    return key


def _encoded(obj: bytes, layout: Any, text: str) -> bytes:
    import struct

    header = json.dumps(layout).encode()
    ir = zlib.compress(text.encode())
    # no second object: the entry function is in ``obj`` (graphs this small)
    return struct.pack("<QQQQ", len(header), len(obj), len(ir), 0) + header + obj + ir


def test_an_object_entry_with_a_layout_for_another_graph_is_damaged(private_cache) -> None:  # noqa: ANN001
    llvm = get_backend("llvm")
    g = traced("exp")
    exe = llvm.compile(g)
    key = object_key(private_cache)
    good = cache_mod.load(private_cache, key)
    layout = dict(good.layout, n_inputs=good.layout["n_inputs"] + 1)
    cache_mod.store(private_cache, key, cache_mod.Entry(good.obj, layout, good.llvm_ir))
    cache_mod._reported.clear()
    with pytest.warns(cache_mod.CacheWarning, match="another signature"):
        again = llvm.compile(g)
    assert not again.from_cache
    np.testing.assert_array_equal(again(X)[0], exe(X)[0])


@pytest.mark.parametrize("paths", [[[99]], [[0, 0]], "body"], ids=["no_node", "even", "string"])
def test_an_object_entry_whose_error_paths_miss_the_graph_is_damaged(private_cache, paths) -> None:  # noqa: ANN001
    # Failing kernels in loop bodies are named through these paths: one that
    # points nowhere would turn an error report into an IndexError.
    llvm = get_backend("llvm")
    g = traced("exp")
    exe = llvm.compile(g)
    key = object_key(private_cache)
    good = cache_mod.load(private_cache, key)
    layout = dict(good.layout, error_paths=paths)
    cache_mod.write(private_cache, f"{key}.gco", _encoded(good.obj, layout, good.llvm_ir))
    cache_mod._reported.clear()
    with pytest.warns(cache_mod.CacheWarning, match="corrupt cache entry"):
        again = llvm.compile(g)
    assert not again.from_cache
    np.testing.assert_array_equal(again(X)[0], exe(X)[0])
    assert llvm.compile(g).from_cache  # the entry written again is whole


# -- paths that cannot be used ---------------------------------------------------------------


def test_a_cache_dir_that_is_a_file_warns_once(private_cache) -> None:  # noqa: ANN001
    private_cache.write_text("not a directory")
    g = traced("tanh")
    with pytest.warns(cache_mod.CacheWarning, match="not a directory") as record:
        first = compile_llvm(g)
        second = compile_llvm(traced("tanh"))
    assert len([w for w in record if issubclass(w.category, cache_mod.CacheWarning)]) == 1
    assert not second.report.from_cache and not second.executable.from_cache
    check_result(first, g)
    assert private_cache.read_text() == "not a directory"


def test_an_entry_path_that_is_a_directory_warns_once(private_cache) -> None:  # noqa: ANN001
    g = traced("tanh")
    compile_llvm(g)
    entry = pipeline_entry(private_cache)
    entry.unlink()
    entry.mkdir()
    with pytest.warns(cache_mod.CacheWarning, match="it is a directory") as record:
        again = compile_llvm(g)
        compile_llvm(traced("tanh"))
    assert len(record) == 1, [str(w.message) for w in record]
    assert not again.report.from_cache
    check_result(again, g)


# -- between processes --------------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, warnings
    import numpy as np
    import graphc as gc

    from graphc.backends.llvm import pool as pool_mod

    pool_mod.pool()   # its entry first, apart from the rest
    cache = os.environ["GRAPHC_CACHE_DIR"]
    fns = {
        "tanh": lambda x: np.tanh(x) * 2.0,
        "exp": lambda x: np.exp(x) + x,
        "sum": lambda x: (x * x).sum(axis=0),
    }
    x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    out = {"entries": {}, "results": {}, "hits": {}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, f in fns.items():
            before = set(os.listdir(cache))
            step = gc.jit(f, backend="llvm")
            out["results"][name] = np.asarray(step(x)).tolist()
            out["entries"][name] = sorted(set(os.listdir(cache)) - before)
            out["hits"][name] = [step.report.from_cache, step.lower(x).executable.from_cache]
    out["warnings"] = [str(w.message) for w in caught]
    print(json.dumps(out))
    """
)


def run_process(cache: Path) -> dict[str, Any]:
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(cache))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_entries_swapped_retyped_and_truncated_between_processes(private_cache) -> None:  # noqa: ANN001
    x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    want = {"tanh": np.tanh(x) * 2.0, "exp": np.exp(x) + x, "sum": (x * x).sum(axis=0)}
    cold = run_process(private_cache)
    assert cold["warnings"] == []
    paths = {
        name: {Path(e).suffix: private_cache / e for e in found}
        for name, found in cold["entries"].items()
    }
    for found in paths.values():
        assert sorted(found) == [".gco", ".gcp"]
    swap(paths["tanh"][".gco"], paths["exp"][".gco"])
    swap(paths["tanh"][".gcp"], paths["exp"][".gcp"])
    obj = paths["sum"][".gco"]
    obj.write_bytes(obj.read_bytes()[: obj.stat().st_size // 2])
    retyped = zlib.compress(json.dumps({"format": pipeline_cache.FORMAT, "graph": 42}).encode())
    cache_mod.write(private_cache, paths["sum"][".gcp"].name, retyped)

    damaged = run_process(private_cache)
    for name, value in want.items():
        np.testing.assert_allclose(damaged["results"][name], value, rtol=1e-12)
        assert damaged["hits"][name] == [False, False]
    text = "\n".join(damaged["warnings"])
    assert text.count("moved or copied") == 4 and "checksum mismatch" in text
    assert "a graph is int, expected dict" in text and len(damaged["warnings"]) == 6

    warm = run_process(private_cache)
    assert warm["warnings"] == []
    for name, value in want.items():
        np.testing.assert_allclose(warm["results"][name], value, rtol=1e-12)
        assert warm["hits"][name] == [True, True]


OBJECT_CHILD = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    import graphc as gc
    from graphc.backends import get_backend

    warnings.simplefilter("always")
    x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    out = []
    for text, want in json.loads(sys.stdin.read()):
        exe = get_backend("llvm").compile(gc.ir.parse(text))
        out.append([exe.from_cache, float(np.abs(exe(x)[0] - np.array(want)).max())])
    print(json.dumps(out))
    """
)


def object_without_an_entry_point() -> bytes:
    from graphc.backends.llvm import target

    return target.emit_object(target.parse_and_verify("define i64 @f() {\n  ret i64 0\n}\n"))


def test_object_code_of_the_wrong_kind_is_damaged_not_run(private_cache) -> None:  # noqa: ANN001
    llvm = get_backend("llvm")
    fns = [lambda x: np.exp(x) + x, lambda x: np.tanh(x) - x, lambda x: x * x + 1.0]
    graphs = [gc.trace(f, X) for f in fns]
    plants = [
        lambda good: b"garbage" * 10,
        lambda good: good[: len(good) // 2],  # a truncated ELF file
        lambda good: object_without_an_entry_point(),
    ]
    for g, plant in zip(graphs, plants):
        before = {p.stem for p in private_cache.glob("*.gco")}
        llvm.compile(g)
        new = {p.stem for p in private_cache.glob("*.gco")} - before
        (key,) = [k for k in new if cache_mod.load(private_cache, k).layout]  # not the pool's
        good = cache_mod.load(private_cache, key)
        obj = plant(good.obj)
        cache_mod.write(private_cache, f"{key}.gco", _encoded(obj, good.layout, good.llvm_ir))
    # In a child: loading such code used to end the process with a segfault.
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(private_cache))
    work = [[str(g), f(X).tolist()] for g, f in zip(graphs, fns)]
    proc = subprocess.run(
        [sys.executable, "-c", OBJECT_CHILD],
        input=json.dumps(work),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("corrupt cache entry") == 3, proc.stderr
    assert "no graphc_main" in proc.stderr and "not an ELF" in proc.stderr
    for from_cache, error in json.loads(proc.stdout):
        assert not from_cache and error < 1e-12
    assert all(llvm.compile(g).from_cache for g in graphs)  # overwritten with good code
