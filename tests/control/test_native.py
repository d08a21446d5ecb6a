"""Native loops and branches on the LLVM backend: a scan is a loop around a
body compiled once, a cond runs only the taken branch. Every result is
checked against the NumPy backend and the interpreter."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.ir import GraphcError, GraphcIndexError

from .test_scan import assert_trees_close, every_way


def agree(f: Any, *args: Any, rtol: float = 1e-9) -> Any:
    found = every_way(f, *args)
    for way, got in found.items():
        if way != "eager":
            assert_trees_close(got, found["eager"], rtol=rtol)
    return found["eager"]


def rnn(w: np.ndarray, xs: np.ndarray, h0: np.ndarray, reverse: bool = False) -> Any:
    def cell(h: Any, x: Any) -> Any:
        h = np.tanh(h @ w + x)
        return h, h.sum(axis=1)

    return gc.scan(cell, h0, xs, reverse=reverse)


@pytest.mark.parametrize("length", [0, 1, 2, 5])
@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_and_directions(length: int, reverse: bool) -> None:
    rng = np.random.default_rng(length)
    w, xs, h0 = (
        rng.normal(size=(3, 3)) * 0.5,
        rng.normal(size=(length, 2, 3)),
        rng.normal(size=(2, 3)),
    )
    agree(lambda w, xs, h0: rnn(w, xs, h0, reverse), w, xs, h0)
    if length:
        grad = gc.grad(lambda w, xs, h0: rnn(w, xs, h0, reverse)[1].sum(), argnums=(0, 1, 2))
        assert_trees_close(gc.jit(grad, backend="llvm")(w, xs, h0), grad(w, xs, h0))
        gc.check_grads(lambda w, xs, h0: rnn(w, xs, h0, reverse)[0].sum(), (w, xs, h0))


def test_mixed_dtype_pytree_carry_with_a_swap() -> None:
    def f(xs: np.ndarray) -> Any:
        def step(c: Any, x: Any) -> Any:
            a, b = c["pair"]
            # The new carry reads the old one crosswise: each step swaps a and b.
            new = {"pair": (b + x, a), "n": c["n"] + 1, "hit": c["hit"] | (x.sum() > 0),
                   "s": c["s"] * np.float32(0.5) + x.astype(np.float32).sum()}  # fmt: skip
            return new, (c["n"], a)

        init = {"pair": (np.zeros(2), np.ones(2)), "n": np.int64(0), "hit": np.bool_(False),
                "s": np.float32(1.0)}  # fmt: skip
        return gc.scan(step, init, xs)

    agree(f, np.random.default_rng(0).normal(size=(4, 2)))


def test_carry_passed_through_unchanged_and_returned_as_a_y() -> None:
    def f(c0: np.ndarray, xs: np.ndarray) -> Any:
        return gc.scan(lambda c, x: ((c[0], c[1] + x), c[0]), (c0, c0 * 2), xs)

    agree(f, np.arange(3.0), np.ones((3, 3)))


def test_nested_scans_with_cond_inside_and_scan_inside_cond() -> None:
    def f(w: np.ndarray, xs: np.ndarray) -> Any:
        def outer(c: Any, row: Any) -> Any:
            inner_c, ys = gc.scan(lambda a, x: (np.sin(a * x + w), a.sum()), c, row)
            c = gc.cond(inner_c.sum() > 0, lambda v: v * 0.5, lambda v: -v + 1.0, inner_c)
            return c, ys

        c, ys = gc.scan(outer, np.zeros(3), xs)
        pick = gc.cond(c.sum() > 0.3, lambda v: gc.scan(lambda a, x: (a + x, a), v, xs[0])[0],
                       lambda v: v, c)  # fmt: skip
        return (pick**2).sum() + ys.sum()

    rng = np.random.default_rng(1)
    w, xs = rng.normal(size=3), rng.normal(size=(3, 2, 3))
    agree(f, w, xs)
    want = gc.grad(f)(w, xs)
    assert_trees_close(gc.jit(gc.grad(f), backend="llvm")(w, xs), want)
    gc.check_grads(f, (w, xs))


def test_remat_and_dropout_inside_a_body() -> None:
    key = gc.random.key(3)

    def f(w: np.ndarray, xs: np.ndarray) -> Any:
        def step(h: Any, inp: Any) -> Any:
            x, t = inp
            h = gc.remat(lambda h: np.tanh(h @ w + x))(h)
            keep = gc.random.bernoulli(key, 0.5, h.shape, counter=t)  # a counter per step
            return h, np.where(keep, h * 2.0, 0.0)

        _, ys = gc.scan(step, np.zeros(3), (xs, np.arange(len(xs))))
        return ys

    rng = np.random.default_rng(2)
    w, xs = rng.normal(size=(3, 3)), rng.normal(size=(6, 3))
    ys = agree(f, w, xs)
    masks = ys != 0
    assert masks.any() and not masks.all()
    assert len({m.tobytes() for m in masks}) > 1, "every step drew the same mask"
    loss = lambda w, xs: (f(w, xs) ** 2).sum()  # noqa: E731
    assert_trees_close(gc.jit(gc.grad(loss), backend="llvm")(w, xs), gc.grad(loss)(w, xs))
    gc.check_grads(loss, (w, xs))


def test_cond_runs_only_the_taken_branch() -> None:
    table = np.arange(4.0)

    def f(i: np.ndarray, x: np.ndarray, table: np.ndarray) -> Any:
        # The true branch indexes out of range whenever it is not taken.
        return gc.cond(i < 4, lambda i, x: table[i] + x, lambda i, x: x, i, x)

    step = gc.jit(f, backend="llvm")
    assert step(np.int64(9), np.float64(1.0), table) == 1.0
    assert step(np.int64(2), np.float64(1.0), table) == 3.0


def test_an_error_inside_a_loop_body_names_the_users_line() -> None:
    table = np.arange(4.0)

    def f(idx: np.ndarray, table: np.ndarray) -> Any:
        return gc.scan(lambda c, i: (c + table[i], c), 0.0, idx)  # the failing line

    step = gc.jit(f, backend="llvm")
    assert step(np.array([1, 2, 3]), table)[0] == 6.0
    with pytest.raises(GraphcIndexError, match=r"index 7 is out of bounds") as info:
        step(np.array([1, 7, 3]), table)
    assert "the failing line" in str(info.value)


def scanned_rnn_step(length: int) -> Any:
    rng = np.random.default_rng(0)
    w, xs = rng.normal(size=(4, 4)) * 0.3, rng.normal(size=(length, 2, 4))
    loss = lambda w, xs: rnn(w, xs, np.zeros((2, 4)))[1].sum()  # noqa: E731
    return gc.jit(gc.value_and_grad(loss), backend="llvm", cache=False), (w, xs)


def test_module_size_does_not_grow_with_the_trip_count() -> None:
    sizes = []
    for length in (50, 800):
        step, args = scanned_rnn_step(length)
        value, grad = step(*args)
        want = gc.value_and_grad(lambda w, xs: rnn(w, xs, np.zeros((2, 4)))[1].sum())(*args)
        assert_trees_close((value, grad), want)
        exe = step.lower(*args).executable
        # Constants (the trip count among them) and names differ; the code must not.
        sizes.append((exe.llvm_ir.count("\n"), len(re.findall(r"^define ", exe.llvm_ir, re.M))))
    assert sizes[1][0] <= sizes[0][0] and sizes[1][1] <= sizes[0][1], sizes


def char_rnn_loss(params: dict[str, Any], xs: np.ndarray, ys: np.ndarray) -> Any:
    """The benchmark's W5 model (embedding, tanh recurrence, softmax over characters)."""

    def cell(h: Any, x_t: Any) -> Any:
        h = np.tanh(params["wxh"][x_t] + h @ params["whh"] + params["bh"])
        return h, h

    batch, seq = xs.shape
    _, hs = gc.scan(cell, np.zeros((batch, params["whh"].shape[0]), np.float32), xs.T)
    logits = hs.reshape(seq * batch, -1) @ params["why"] + params["by"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(seq * batch), ys.T.reshape(-1)])


def test_the_char_rnn_train_step_module_does_not_grow_with_the_sequence() -> None:
    """W5's whole train step (forward and backward loops, hoisted weight
    gradients, softmax, SGD update) compiles to the same code for any length."""
    rng = np.random.default_rng(3)
    vocab, hidden, batch = 7, 8, 2
    params = {
        "wxh": rng.normal(size=(vocab, hidden)).astype(np.float32) * 0.3,
        "whh": rng.normal(size=(hidden, hidden)).astype(np.float32) * 0.3,
        "bh": np.zeros(hidden, np.float32),
        "why": rng.normal(size=(hidden, vocab)).astype(np.float32) * 0.3,
        "by": np.zeros(vocab, np.float32),
    }
    sizes = []
    for length in (50, 800):
        xs, ys = rng.integers(0, vocab, size=(2, batch, length))
        step = gc.train_step(char_rnn_loss, gc.optim.SGD(0.1), backend="llvm", cache=False)
        state, loss = step(step.init(params), xs, ys)
        want = gc.train_step(char_rnn_loss, gc.optim.SGD(0.1), backend="numpy")
        want_state, want_loss = want(want.init(params), xs, ys)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
        for k in params:
            np.testing.assert_allclose(state.params[k], want_state.params[k], rtol=1e-4, atol=1e-6)
        ir = step.lower(step.init(params), xs, ys).executable.llvm_ir
        sizes.append((ir.count("\n"), len(re.findall(r"^define ", ir, re.M))))
    assert sizes[1][0] <= sizes[0][0] and sizes[1][1] <= sizes[0][1], sizes


def test_bad_input_is_still_an_error_not_a_crash() -> None:
    step, (w, xs) = scanned_rnn_step(3)
    step(w, xs)
    with pytest.raises(GraphcError):
        step.lower(w, xs).executable(w, xs[:2])


@pytest.mark.parametrize("parallel_work", [1 << 40, 256])
def test_body_kernels_split_over_threads_only_when_large(parallel_work: int) -> None:
    def f(w: np.ndarray, xs: np.ndarray) -> Any:
        return gc.scan(lambda h, x: (np.tanh(h @ w + x) * 0.5 + np.sin(h), h.sum()), xs[0], xs)

    rng = np.random.default_rng(4)
    w, xs = rng.normal(size=(48, 48)) * 0.1, rng.normal(size=(3, 40, 48))
    step = gc.jit(f, backend="llvm", threads=2, parallel_work=parallel_work, cache=False)
    assert_trees_close(step(w, xs), f(w, xs))
    regions = step.lower(w, xs).executable._layout["parallel_regions"]
    assert (regions > 0) == (parallel_work == 256)


def test_a_remat_left_inside_a_body_with_a_literal_operand() -> None:
    """Without the pipeline (inline_remat), a body's remat is a plain call."""
    from graphc.backends.llvm import compile as compile_llvm
    from graphc.ir import DType, GraphBuilder, Literal, f64, interpret

    region = GraphBuilder("region")
    a, s = region.input(f64[3], "a"), region.input(f64[()], "s")
    scaled = region.build([region.mul(region.exp(a), s)])
    cell = GraphBuilder("cell")
    c = cell.input(f64[3], "c")
    body = cell.build([cell.remat(c, Literal(0.5, DType.f64), subgraphs=[scaled])])
    b = GraphBuilder("g")
    x = b.input(f64[3], "x")
    g = b.build([b.scan(x, subgraphs=[body], length=3, num_carry=1, num_xs=0, num_consts=0)])
    data = np.arange(3.0) * 0.1
    np.testing.assert_allclose(compile_llvm(g, cache=False)(data)[0], interpret(g, data)[0])
