"""A large graph's entry function is compiled apart from its kernels (-O0 code
generation, see target.emit_split): the two objects must behave as one."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.backends import llvm as llvm_backend
from graphc.backends.llvm import cache as cache_mod
from graphc.backends.llvm import target
from graphc.backends.llvm.codegen import UNOPTIMIZED_ENTRY_NODES
from graphc.ir import GraphBuilder, GraphcIndexError, Loc, f32, i64, interpret

pytestmark = pytest.mark.usefixtures("private_cache")


def unrolled(steps: int):  # noqa: ANN201
    """An unrolled recurrence with a bounds-checked gather in every step, so
    kernels report errors through the status words the entry also writes."""
    b = GraphBuilder("unrolled")
    table = b.input(f32[6, 4], "table")
    idx = b.input(i64[steps], "idx")
    w = b.input(f32[4, 4], "w")
    h = b.broadcast_in_dim(0.0, shape=(4,), broadcast_dimensions=())
    for t in range(steps):
        row = b.slice(idx, start=(t,), limit=(t + 1,), stride=(1,))
        with b.at(Loc("model.py", 100 + t, function="loss")):
            x = b.reshape(b.gather(table, row, axis=0), shape=(4,))
        h = b.tanh(b.add(b.mul(x, 0.5), b.matmul(h, w)))
    g = b.build([h, b.reduce_sum(h, axes=(0,))])
    assert len(g.nodes) >= UNOPTIMIZED_ENTRY_NODES
    return g


def arguments(steps: int):  # noqa: ANN201
    rng = np.random.default_rng(3)
    table = rng.standard_normal((6, 4)).astype(np.float32)
    idx = rng.integers(0, 6, size=steps)
    w = (rng.standard_normal((4, 4)) * 0.5).astype(np.float32)
    return table, idx, w


def test_a_large_graph_runs_from_two_objects_as_the_interpreter_does(private_cache) -> None:  # noqa: ANN001
    steps = 60
    g = unrolled(steps)
    exe = llvm_backend.compile(g)
    args = arguments(steps)
    for got, want in zip(exe(*args), interpret(g, *args)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    stored = [cache_mod.load(private_cache, p.stem) for p in private_cache.glob("*.gco")]
    (entry,) = [e for e in stored if e is not None and e.layout]  # not the worker pool's
    assert entry.obj and entry.entry_obj  # compiled apart: kernels, then the entry


def test_an_error_a_kernel_reports_reaches_the_entry_of_the_other_object() -> None:
    steps = 60
    exe = llvm_backend.compile(unrolled(steps))
    table, idx, w = arguments(steps)
    bad = idx.copy()
    bad[37] = 9
    with pytest.raises(GraphcIndexError, match=r"index 9 is out of bounds.*size 6") as info:
        exe(table, bad, w)
    assert "model.py:137" in str(info.value)
    np.testing.assert_array_equal(exe(table, idx, w)[0], exe(table, idx, w)[0])


def test_a_warm_start_loads_both_objects() -> None:
    steps = 60
    args = arguments(steps)
    cold = llvm_backend.compile(unrolled(steps))
    warm = llvm_backend.compile(unrolled(steps))
    assert warm.from_cache and not cold.from_cache
    for a, b in zip(cold(*args), warm(*args)):
        np.testing.assert_array_equal(a, b)


def test_parallel_regions_run_their_tasks_across_the_objects() -> None:
    steps = 60
    g = unrolled(steps)
    exe = llvm_backend.compile(g, threads=2, parallel_work=1, chunk_work=1)
    assert exe._layout["parallel_regions"]
    args = arguments(steps)
    for got, want in zip(exe(*args), interpret(g, *args)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_entry_text_keeps_only_the_entry_definition() -> None:
    mod = target.parse_and_verify(
        "@state = internal global i64 0\n"
        "define internal void @k(ptr %p) noinline {\n  store i64 1, ptr @state\n  ret void\n}\n"
        "define void @graphc_main(ptr %a, ptr %b) {\n  call void @k(ptr %a)\n  ret void\n}\n"
    )
    text = target._entry_only(str(mod))
    assert "define void @graphc_main" in text
    assert "declare void @k(" in text
    assert "@state = available_externally global i64 0" in text
