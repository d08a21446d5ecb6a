"""Parallel regions and the worker pool: the same results on any number of
threads, errors from inside chunks, concurrent callers, fork and shutdown."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

from graphc.backends import llvm as llvm_backend
from graphc.backends.llvm import linalg
from graphc.backends.llvm.pool import pool
from graphc.ir import DType, GraphBuilder, GraphcError, interpret
from graphc.passes.fuse import fuse

f32, f64, i64 = DType.f32, DType.f64, DType.i64
# Small enough that every kernel below is split into many chunks.
SPLIT = {"parallel_work": 1, "chunk_work": 1}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))


def reductions_graph():  # noqa: ANN201
    b = GraphBuilder("par")
    x = b.input(f32[64, 1000], "x")
    y = b.exp(b.mul(x, 0.5))
    return fuse(
        b.build(
            [
                y,
                b.reduce_sum(y, axes=(0,)),
                b.reduce_max(y, axes=(1,)),
                b.reduce_sum(y, axes=(0, 1)),
            ]
        )
    )


def compile_with_threads(g, threads_list, **options):  # noqa: ANN001, ANN201, ANN003
    """One executable per thread count (the second and later from the cache)."""
    return [llvm_backend.compile(g, threads=t, **options) for t in threads_list]


def test_chunked_reductions_are_identical_on_any_number_of_threads() -> None:
    g = reductions_graph()
    exes = compile_with_threads(g, [1, 2, 3], **SPLIT)
    assert "graphc_parallel" in exes[0].llvm_ir
    data = np.random.default_rng(0).standard_normal((64, 1000)).astype(np.float32)
    first = exes[0](data)
    for got, want in zip(first, interpret(g, data)):
        np.testing.assert_allclose(got, want, rtol=2e-5)
    for exe in exes[1:]:
        for _ in range(5):  # which thread runs which chunk varies from call to call
            for got, want in zip(exe(data), first):
                np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [f32, f64])
@pytest.mark.parametrize(
    "lhs, rhs",
    [
        ((300, 70), (70, 90)),  # split along rows of the result
        ((40, 70), (70, 500)),  # along columns
        ((5, 3, 64, 40), (40, 48)),  # batched, whole batch entries per chunk
        ((2, 200, 30), (2, 30, 20)),  # batched, parts of entries per chunk
    ],
)
def test_split_products_are_identical_on_any_number_of_threads(  # noqa: ANN001
    monkeypatch, dtype, lhs, rhs
) -> None:
    monkeypatch.setattr(linalg, "GEMM_SPLIT", 1)
    monkeypatch.setattr(linalg, "GEMM_MIN_SPAN", 16)
    b = GraphBuilder("mm")
    x = b.input(dtype[lhs], "x")
    y = b.input(dtype[rhs], "y")
    g = b.build([b.matmul(x, y)])
    exe = llvm_backend.compile(g, threads=4)  # products split in 4 parts
    assert "graphc_parallel" in exe.llvm_ir
    rng = np.random.default_rng(1)
    xs = rng.standard_normal(lhs).astype(dtype.np)
    ys = rng.standard_normal(rhs).astype(dtype.np)
    want = np.matmul(xs.astype(np.float64), ys.astype(np.float64))
    exe.threads = 1
    one = exe(xs, ys)[0]
    np.testing.assert_allclose(one, want, rtol=1e-4 if dtype is f32 else 1e-12, atol=1e-4)
    for threads in (2, 3, 4):
        exe.threads = threads
        for _ in range(3):
            np.testing.assert_array_equal(exe(xs, ys)[0], one)


def test_an_error_inside_a_chunk_is_reported_and_the_pool_keeps_working() -> None:
    b = GraphBuilder("ipow")
    x = b.input(i64[4096], "x")
    y = b.input(i64[4096], "y")
    exe = llvm_backend.compile(b.build([b.pow(x, y)]), threads=2, **SPLIT)
    assert "graphc_parallel" in exe.llvm_ir
    base = np.full(4096, 3, np.int64)
    good = np.full(4096, 2, np.int64)
    bad = good.copy()
    bad[4000] = -1  # in a late chunk, on whichever thread takes it
    for _ in range(3):
        with pytest.raises(GraphcError, match="negative integer powers"):
            exe(base, bad)
        np.testing.assert_array_equal(exe(base, good)[0], np.full(4096, 9))


@contextlib.contextmanager
def callers(exes, data, want, keep_going):  # noqa: ANN001, ANN201
    """One thread per executable, calling it while ``keep_going(calls_so_far)``;
    yields the list of mismatches against ``want``, complete after the block."""
    failures: list[str] = []

    def call_repeatedly(exe) -> None:  # noqa: ANN001
        calls = 0
        while keep_going(calls):
            for got, ref in zip(exe(data), want):
                if not np.array_equal(got, ref):
                    failures.append("mismatch")
            calls += 1

    threads = [threading.Thread(target=call_repeatedly, args=(e,)) for e in exes]
    for t in threads:
        t.start()
    try:
        yield failures
    finally:
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)


def test_concurrent_callers_share_the_pool() -> None:
    g = reductions_graph()
    exes = compile_with_threads(g, [2, 2, 3], **SPLIT)
    data = np.random.default_rng(2).standard_normal((64, 1000)).astype(np.float32)
    with callers(exes, data, exes[0](data), lambda calls: calls < 30) as failures:
        pass
    assert failures == []


def test_stop_while_other_threads_run_steps_joins_every_worker() -> None:
    # Steps start workers (enter, regions) while stop joins them: stop owns
    # the pool meanwhile, so no worker is started behind its back.
    g = reductions_graph()
    exes = compile_with_threads(g, [2, 3], **SPLIT)
    data = np.random.default_rng(4).standard_normal((64, 1000)).astype(np.float32)
    want = exes[0](data)
    pool().stop()
    baseline = len(os.listdir("/proc/self/task"))  # no worker, no caller thread
    running = threading.Event()
    running.set()
    with callers(exes, data, want, lambda calls: running.is_set()) as failures:
        for _ in range(50):
            pool().stop()
            time.sleep(0.002)
        running.clear()
    assert failures == []
    pool().stop()
    assert pool().workers() == 0
    # Every worker was joined. (A joined Python thread's OS thread may take
    # a moment to go; a worker that was never joined stays for good.)
    deadline = time.monotonic() + 5.0
    while len(os.listdir("/proc/self/task")) != baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(os.listdir("/proc/self/task")) == baseline


def test_stop_joins_the_workers_and_the_next_region_restarts_them() -> None:
    g = reductions_graph()
    (exe,) = compile_with_threads(g, [2], **SPLIT)
    data = np.ones((64, 1000), np.float32)
    want = exe(data)
    p = pool()
    assert p.workers() >= 1
    p.stop()
    assert p.workers() == 0
    for got, ref in zip(exe(data), want):
        np.testing.assert_array_equal(got, ref)
    assert p.workers() >= 1


def test_workers_poll_during_steps_and_sleep_after_them() -> None:
    # Between a step's regions the workers poll (a woken worker would come
    # ~30 us late to each region); once no step has run for a while they
    # must sleep, not burn a core: the process then uses no CPU time.
    g = reductions_graph()
    (exe,) = compile_with_threads(g, [2], **SPLIT)
    data = np.ones((64, 1000), np.float32)
    want = exe(data)
    for _ in range(20):
        for got, ref in zip(exe(data), want):
            np.testing.assert_array_equal(got, ref)
    assert pool().workers() >= 1
    time.sleep(0.5)  # past the pool's linger time (and OpenBLAS's own spinning)
    used = time.process_time()
    time.sleep(0.3)
    assert time.process_time() - used < 0.1


def test_one_thread_starts_no_worker() -> None:
    pool().stop()
    g = reductions_graph()
    (exe,) = compile_with_threads(g, [1], **SPLIT)
    exe(np.ones((64, 1000), np.float32))
    assert pool().workers() == 0


def test_thread_count_from_the_environment_and_options(monkeypatch) -> None:  # noqa: ANN001
    from graphc.backends.llvm.codegen import default_threads

    monkeypatch.setenv("GRAPHC_NUM_THREADS", "3")
    assert default_threads() == 3
    g = reductions_graph()
    assert llvm_backend.compile(g, **SPLIT).threads == 3
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "1")
    assert llvm_backend.compile(g, **SPLIT).threads == 1
    assert llvm_backend.compile(g, num_threads=2, **SPLIT).threads == 2
    exe = llvm_backend.compile(g, threads=4, **SPLIT)
    exe.threads = 2
    assert exe.threads == 2


def test_a_thread_count_that_is_not_a_number_warns_once(monkeypatch) -> None:  # noqa: ANN001
    from graphc.backends.llvm.codegen import default_threads

    monkeypatch.delenv("GRAPHC_NUM_THREADS", raising=False)
    cores = default_threads()
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "four-ish")
    with pytest.warns(RuntimeWarning, match="GRAPHC_NUM_THREADS='four-ish' is not a number"):
        assert default_threads() == cores
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert default_threads() == cores  # said once


def test_a_forked_child_runs_threaded_code() -> None:
    g = reductions_graph()
    (exe,) = compile_with_threads(g, [2], **SPLIT)
    data = np.random.default_rng(3).standard_normal((64, 1000)).astype(np.float32)
    want = exe(data)
    pid = os.fork()
    if pid == 0:  # the child: no worker threads were inherited
        ok = all(np.array_equal(a, r) for a, r in zip(exe(data), want))
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_process_with_running_workers_exits_cleanly(tmp_path) -> None:  # noqa: ANN001
    script = textwrap.dedent(
        """
        import numpy as np
        from graphc.backends import llvm
        from graphc.backends.llvm.pool import pool
        from graphc.ir import GraphBuilder, f32
        b = GraphBuilder("f")
        x = b.input(f32[256, 512], "x")
        exe = llvm.compile(b.build([b.reduce_sum(b.tanh(x), axes=(0,))]), threads=2,
                           parallel_work=1, chunk_work=1)
        out = exe(np.ones((256, 512), np.float32))[0]
        assert pool().workers() == 1, pool().workers()
        print(round(float(out[0]), 3))
        """
    )
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(round(256 * float(np.tanh(np.float32(1))), 3))


def test_a_pool_built_in_the_background_serves_the_compile_and_exit(tmp_path) -> None:  # noqa: ANN001
    # gc.jit starts building the pool when tracing starts (llvm.prepare); the
    # compile must wait for that build, and a process that exits while it
    # runs must exit cleanly.
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import graphc as gc
        from graphc.backends import llvm
        from graphc.backends.llvm import pool as pool_mod
        if sys.argv[1] == "exit":
            llvm.prepare()
            sys.exit(0)
        f = gc.jit(lambda x: np.tanh(x).sum(axis=0), backend="llvm", threads=2,
                   parallel_work=1, chunk_work=1)
        out = f(np.ones((256, 512), np.float32))
        assert pool_mod._builder, "the first compile did not start a background build"
        assert pool_mod.pool().workers() == 1
        print(round(float(out[0]), 3))
        """
    )
    for mode, want in (("exit", ""), ("compile", "194.968")):
        env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / f"cache-{mode}"))
        proc = subprocess.run(
            [sys.executable, "-c", script, mode],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == want
        assert proc.stderr == ""
