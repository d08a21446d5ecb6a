"""The LLVM executable as a callable: input checks, fresh outputs, errors
from native code, artifacts and the on-disk cache (threads: test_llvm_threads)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from graphc.backends import llvm as llvm_backend
from graphc.backends.llvm import cache as cache_mod
from graphc.backends.llvm import target
from graphc.ir import (
    DType,
    GraphBuilder,
    GraphcError,
    GraphcIndexError,
    InputError,
    Loc,
    TensorType,
    interpret,
)
from graphc.passes.fuse import fuse
from graphc.passes.plan_memory import plan_memory

f32, f64, i64 = DType.f32, DType.f64, DType.i64


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def small_graph():  # noqa: ANN201
    b = GraphBuilder("small")
    x = b.input(f32[3, 4], "x")
    y = b.input(f32[4], "y")
    return b.build([b.tanh(b.add(x, y)), b.reduce_sum(x, axes=(1,))])


def test_outputs_are_fresh_arrays() -> None:
    exe = llvm_backend.compile(small_graph())
    x = np.ones((3, 4), np.float32)
    y = np.zeros(4, np.float32)
    first = exe(x, y)
    kept = [a.copy() for a in first]
    second = exe(x * 2, y)
    for a, k in zip(first, kept):
        np.testing.assert_array_equal(a, k)
    assert not np.shares_memory(first[0], second[0])
    np.testing.assert_allclose(second[1], np.full(3, 8.0))


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.ones((3, 4), np.float64), np.zeros(4, np.float32)), "dtype"),
        ((np.ones((4, 3), np.float32), np.zeros(4, np.float32)), "shape"),
        ((np.ones((4, 3), np.float32).T, np.zeros(4, np.float32)), "contiguous"),
        ((np.ones((3, 4), np.float32),), "expected 2 input"),
        ((np.ones((3, 4), np.float32), np.zeros(4, np.float32), np.zeros(1)), "expected 2"),
        (([[1.0] * 4] * 3, np.zeros(4, np.float32)), "dtype"),
    ],
)
def test_bad_inputs_raise_before_native_code(args, message) -> None:  # noqa: ANN001
    exe = llvm_backend.compile(small_graph())
    with pytest.raises(InputError, match=message):
        exe(*args)


class Tagged(np.ndarray):
    """An ndarray subclass (the native input check leaves these to Python)."""


def test_inputs_the_native_check_declines_still_work() -> None:
    exe = llvm_backend.compile(small_graph())
    assert exe._check is not None  # the fast path is in use on this machine
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    y = np.arange(4, dtype=np.float32)
    want = exe(x, y)
    with_metadata = np.dtype(np.float32, metadata={"unit": "m"})  # not the canonical dtype
    variants = [
        (x.view(Tagged), y),
        (x, y.view(with_metadata)),
        (x.copy(order="C"), np.ascontiguousarray(np.arange(8, dtype=np.float32)[::2]) * 0 + y),
    ]
    for args in variants:
        for got, ref in zip(exe(*args), want):
            np.testing.assert_array_equal(got, ref)
    with pytest.raises(InputError, match="contiguous"):
        exe(x, np.arange(8, dtype=np.float32)[::2])


def test_outputs_that_alias_inputs_constants_or_each_other() -> None:
    b = GraphBuilder("alias")
    x = b.input(f64[3], "x")
    c = b.emit("constant", value=np.arange(3.0))
    e = b.exp(x)
    g = b.build([x, c, e, e])
    exe = llvm_backend.compile(g)
    data = np.array([0.0, 1.0, 2.0])
    out = exe(data)
    for got, want in zip(out, interpret(g, data)):
        np.testing.assert_array_equal(got, want)
    assert not np.shares_memory(out[0], data)
    assert not np.shares_memory(out[2], out[3])


def test_out_of_range_gather_raises_with_location() -> None:
    b = GraphBuilder("take")
    x = b.input(f32[5], "x")
    idx = b.input(i64[3], "idx")
    with b.at(Loc("model.py", 12, function="loss")):
        out = b.gather(x, idx, axis=0)
    exe = llvm_backend.compile(b.build([out]))
    data = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(exe(data, np.array([0, -1, 4]))[0], [0, 4, 4])
    with pytest.raises(GraphcIndexError, match=r"index 7 is out of bounds.*size 5") as info:
        exe(data, np.array([0, 7, 1]))
    assert "model.py:12" in str(info.value)
    with pytest.raises(GraphcIndexError, match="index -6"):
        exe(data, np.array([-6, 0, 0]))
    # The executable still works after an error.
    np.testing.assert_array_equal(exe(data, np.array([1, 2, 3]))[0], [1, 2, 3])


def test_out_of_range_scatter_raises() -> None:
    b = GraphBuilder("scatter")
    x = b.input(f64[4, 2], "x")
    idx = b.input(i64[2], "idx")
    u = b.input(f64[2, 2], "u")
    exe = llvm_backend.compile(b.build([b.scatter_add(x, idx, u, axis=0)]))
    with pytest.raises(GraphcIndexError):
        exe(np.zeros((4, 2)), np.array([1, 4]), np.ones((2, 2)))


def test_negative_integer_power_raises() -> None:
    b = GraphBuilder("ipow")
    x = b.input(i64[2], "x")
    y = b.input(i64[2], "y")
    exe = llvm_backend.compile(b.build([b.pow(x, y)]))
    np.testing.assert_array_equal(exe(np.array([2, 3]), np.array([10, 3]))[0], [1024, 27])
    with pytest.raises(GraphcError, match="negative integer powers"):
        exe(np.array([2, 3]), np.array([1, -1]))


def test_artifacts_llvm_ir_asm_and_memory_report() -> None:
    g = fuse(small_graph())
    exe = llvm_backend.compile(g, plan_memory(g))
    assert 'define void @"graphc_main"' in exe.llvm_ir
    assert "fusion" in exe.llvm_ir  # kernels are named after IR nodes
    target.parse_and_verify(exe.llvm_ir)
    assert "graphc_main" in exe.asm
    report = exe.memory
    assert report.output_bytes == 3 * 4 * 4 + 3 * 4
    assert report.input_bytes == 3 * 4 * 4 + 4 * 4
    assert "arena_bytes" in str(report)


def test_memory_plan_offsets_are_used() -> None:
    b = GraphBuilder("chain")
    x = b.input(f64[1000], "x")
    h = x
    for _ in range(6):
        h = b.exp(b.neg(h))
    g = b.build([h])
    plan = plan_memory(g)
    exe = llvm_backend.compile(g, plan)
    assert exe.memory.plan_bytes == plan.arena_bytes
    assert exe.memory.extra_bytes == 0
    data = np.linspace(-1, 1, 1000)
    np.testing.assert_allclose(exe(data)[0], interpret(g, data)[0], rtol=1e-12)


# -- the cache -------------------------------------------------------------------------


def test_cache_hit_gives_the_same_results(private_cache) -> None:  # noqa: ANN001
    g = small_graph()
    first = llvm_backend.compile(g)
    assert not first.from_cache
    second = llvm_backend.compile(small_graph())  # equal graph, new objects
    assert second.from_cache
    assert second.llvm_ir == first.llvm_ir
    x, y = np.ones((3, 4), np.float32), np.arange(4, dtype=np.float32)
    for a, b in zip(first(x, y), second(x, y)):
        np.testing.assert_array_equal(a, b)
    mode = stat.S_IMODE(os.stat(private_cache).st_mode)
    assert mode == 0o700
    assert "graphc_main" in second.asm


def test_cache_key_depends_on_graph_and_options(private_cache) -> None:  # noqa: ANN001
    llvm_backend.compile(small_graph(), threads=1)
    assert not llvm_backend.compile(small_graph(), threads=2).from_cache  # products split in 2
    assert not llvm_backend.compile(small_graph(), threads=1, parallel_work=1).from_cache
    b = GraphBuilder("small")
    x = b.input(f32[3, 4], "x")
    y = b.input(f32[4], "y")
    other = b.build([b.tanh(b.sub(x, y)), b.reduce_sum(x, axes=(1,))])
    assert not llvm_backend.compile(other, threads=1).from_cache


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_cache_entry_is_reported_once_and_recompiled(private_cache, damage) -> None:  # noqa: ANN001
    g = small_graph()
    llvm_backend.compile(g)
    (entry,) = list(private_cache.glob("*.gco"))
    data = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        mid = len(data) // 2
        entry.write_bytes(data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :])
    else:
        entry.write_bytes(b"not an object file")
    cache_mod._reported.clear()
    with pytest.warns(cache_mod.CacheWarning, match="corrupt cache entry"):
        exe = llvm_backend.compile(small_graph())
    assert not exe.from_cache
    x, y = np.ones((3, 4), np.float32), np.zeros(4, np.float32)
    np.testing.assert_allclose(exe(x, y)[1], [4, 4, 4])
    # The entry was rewritten, so the next compile is a clean hit.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert llvm_backend.compile(small_graph()).from_cache


def test_cache_writes_are_atomic(private_cache) -> None:  # noqa: ANN001
    llvm_backend.compile(small_graph())
    names = [p.name for p in private_cache.iterdir()]
    assert all(n.endswith(".gco") for n in names), names


def test_cache_can_be_disabled(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("GRAPHC_CACHE_DIR", "")
    assert cache_mod.cache_dir() is None
    assert not llvm_backend.compile(small_graph()).from_cache
    assert not llvm_backend.compile(small_graph()).from_cache


def test_unsupported_dtype_in_a_graph_names_the_op() -> None:
    from graphc.backends.llvm.codegen import unsupported

    b = GraphBuilder("f")
    x = b.input(TensorType((2,), f32), "x")
    with b.at(Loc("net.py", 3)):
        y = b.exp(x)
    g = b.build([y])
    err = unsupported(g.nodes[0], "no kernel")
    assert "exp(f32[2])" in str(err) and "net.py:3" in str(err)


def test_a_failing_lowering_is_reported_at_the_users_line(monkeypatch) -> None:  # noqa: ANN001
    from graphc.backends.llvm import codegen
    from graphc.ir import BackendError

    def broken(mb, n):  # noqa: ANN001, ANN202
        raise ValueError("boom")

    monkeypatch.setitem(codegen.LOWERINGS, "cumsum", broken)
    b = GraphBuilder("f")
    x = b.input(f64[4], "x")
    with b.at(Loc("train.py", 41)):
        y = b.cumsum(x, axis=0)
    with pytest.raises(BackendError, match="cumsum") as info:
        llvm_backend.compile(b.build([y]), cache=False)
    assert "train.py:41" in str(info.value) and "boom" in str(info.value)


def test_reshapes_share_buffers_only_when_safe() -> None:
    b = GraphBuilder("views")
    x = b.input(f64[4, 6], "x")
    a = b.exp(x)
    r = b.reshape(a, shape=(24,))  # shares a's buffer...
    c = b.neg(b.reshape(x, shape=(24,)))  # ...unless c was placed on top of it
    d = b.add(b.mul(c, 2.0), 1.0)
    out = b.add(r, d)
    g = b.build([out, b.reshape(x, shape=(6, 4))])
    plan = plan_memory(g)
    exe = llvm_backend.compile(g, plan)
    data = np.random.default_rng(1).standard_normal((4, 6))
    for got, want in zip(exe(data), interpret(g, data)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # Of three reshapes, only two copy: the one whose bytes the plan reuses
    # while its result is still read, and the graph output (fresh memory).
    entry = exe.llvm_ir.split("define internal")[0]
    calls = [line for line in entry.splitlines() if "call void" in line and ".reshape." in line]
    assert len(calls) == 2, calls


def test_either_blas_computes_products_and_convolutions(tmp_path) -> None:  # noqa: ANN001
    script = textwrap.dedent(
        """
        import numpy as np
        from graphc.backends import llvm
        from graphc.backends.llvm.blas import register_blas
        from graphc.ir import GraphBuilder, f32, f64
        rng = np.random.default_rng(0)
        for t in (f32, f64):
            b = GraphBuilder("f")
            x = b.input(t[5, 7], "x")
            y = b.input(t[2, 7, 3], "y")
            im = b.input(t[2, 3, 6, 6], "im")
            k = b.input(t[4, 3, 3, 3], "k")
            g = b.build([b.matmul(x, y), b.conv2d(im, k)])
            args = [rng.standard_normal(v.type.shape).astype(v.type.dtype.np) for v in g.inputs]
            mm, conv = llvm.compile(g)(*args)
            np.testing.assert_allclose(mm, args[0] @ args[1], rtol=1e-5)
            want = np.zeros_like(conv)
            for i in range(4):
                for j in range(4):
                    patch = args[2][:, None, :, i:i + 3, j:j + 3]
                    want[:, :, i, j] = (patch * args[3][None]).sum(axis=(2, 3, 4))
            np.testing.assert_allclose(conv, want, rtol=1e-4, atol=1e-5)
        print(register_blas().int_bits)
        """
    )
    for choice, bits in (("scipy", "32"), ("", None)):
        env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / "cache"), GRAPHC_BLAS=choice)
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
        )
        assert proc.returncode == 0, proc.stderr
        assert bits is None or proc.stdout.split()[-1] == bits


def test_a_large_graph_runs_its_entry_unoptimized_with_the_same_results():
    """A long graph's entry function (calls to optimized kernels) skips LLVM's
    pipeline to compile faster; a short one's is optimized; both compute alike."""
    from graphc.backends.llvm.codegen import UNOPTIMIZED_ENTRY_NODES
    from graphc.ir import f64, interpret

    def chain(n: int) -> object:
        b = GraphBuilder(f"chain{n}")
        x = b.input(f64[5], "x")
        y = x
        for k in range(n):
            y = b.tanh(b.add(y, float(k % 3))) if k % 2 else b.mul(y, 0.5)
        return b.build([y])

    x = np.linspace(-1.0, 1.0, 5)
    for n, unoptimized in ((8, False), (UNOPTIMIZED_ENTRY_NODES, True)):
        g = chain(n)
        exe = llvm_backend.compile(g, cache=False)
        entry = [ln for ln in exe.llvm_ir.splitlines() if '@"graphc_main"(' in ln][0]
        assert ("optnone" in entry) == unoptimized
        np.testing.assert_allclose(exe(x)[0], interpret(g, x)[0], rtol=1e-13)
