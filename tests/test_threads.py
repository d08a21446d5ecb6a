"""Tracing, transforms and compiled calls from several threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import graphc as gc


def loss(w, x):
    return np.sum(np.tanh(x @ w) ** 2)


def test_concurrent_grad_and_jit_give_each_thread_its_own_answer():
    rng = np.random.default_rng(0)
    cases = [(rng.normal(size=(4, 3)), rng.normal(size=(5, 4))) for _ in range(8)]
    expected = [gc.grad(loss)(w, x) for w, x in cases]
    jitted = gc.jit(gc.grad(loss), backend="numpy")

    def work(k):
        w, x = cases[k % len(cases)]
        eager = gc.grad(loss)(w, x)  # traces in this thread
        compiled = jitted(w, x)
        return k, eager, compiled

    with ThreadPoolExecutor(4) as pool:
        for k, eager, compiled in pool.map(work, range(64)):
            assert isinstance(eager, np.ndarray) and isinstance(compiled, np.ndarray)
            np.testing.assert_allclose(eager, expected[k % len(cases)], rtol=1e-12)
            np.testing.assert_allclose(compiled, expected[k % len(cases)], rtol=1e-12)


def test_a_leaked_tracer_is_a_clear_error():
    leaked = []

    def f(x):
        leaked.append(x * 2.0)
        return np.sum(x)

    gc.grad(f)(np.ones(3))
    for use in (
        lambda: leaked[0] + 1.0,
        lambda: np.exp(leaked[0]),
        lambda: gc.grad(lambda y: np.sum(y * leaked[0]))(np.ones(3)),
    ):
        try:
            use()
        except gc.TracingError as exc:
            assert "escaped from a finished trace" in str(exc)
        else:
            raise AssertionError("expected TracingError")


def test_concurrent_calls_to_one_llvm_executable_keep_their_own_arguments():
    # Each thread's inputs and outputs are distinct arrays; a shared pointer
    # array would let one call compute into (or from) another thread's arrays.
    f = gc.jit(lambda a, b: (a * 2.0 + b, np.sum(a)), backend="llvm")
    n = 50_000
    f(np.zeros(n), np.zeros(n))
    wrong = []

    def work(k):
        for i in range(150):
            x = np.full(n, float(k * 1000 + i))
            y = np.arange(n, dtype=np.float64) * k
            out, total = f(x, y)
            if not (np.array_equal(out, x * 2.0 + y) and total == x.sum()):
                wrong.append((k, i))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert wrong == []


def test_concurrent_llvm_calls_leave_the_blas_thread_count_as_it_was():
    from graphc.backends.llvm import blas

    before = blas.blas_threads()
    assert before is not None  # NumPy's or SciPy's OpenBLAS is present
    blas.blas_threads(2)  # several threads, so a count stuck at 1 shows
    try:
        product = gc.jit(lambda a, w: np.tanh(a @ w), backend="llvm")
        total = gc.jit(lambda a, w: (a @ w).sum(), backend="llvm")
        a = np.ones((48, 48))
        product(a, a), total(a, a)
        assert blas.blas_threads() == 2

        def work(fn):
            for _ in range(1500):
                fn(a, a)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(work, (product, total, product, total)))
        assert blas.calls_inside() == 0
        assert blas.blas_threads() == 2
        np.testing.assert_allclose(product(a, a), np.tanh(a @ a))
    finally:
        blas.blas_threads(before)
