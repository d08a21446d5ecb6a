"""gc.fori_loop, gc.while_loop and gc.scan(..., unroll=k) against plain
Python loops: eager, interpreted and compiled for both backends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.ir import DifferentiationError, OpTypeError

from .test_scan import assert_trees_close, every_way


def agree(f: Any, *args: Any) -> Any:
    found = every_way(f, *args)
    for way, got in found.items():
        assert_trees_close(got, found["eager"]) if way != "eager" else None
    return found["eager"]


def collatz_steps(n: np.ndarray) -> Any:
    """A trip count that depends on the data, and a pytree carry of mixed dtypes."""

    def step(c: Any) -> Any:
        n, count, trail = c["n"], c["count"], c["trail"]
        n = np.where(n % 2 == 0, n // 2, 3 * n + 1)
        return {"n": n, "count": count + 1, "trail": (trail[0] * 0.5 + n, trail[1] | (n > 8))}

    init = {"n": n, "count": np.int32(0), "trail": (np.float64(0.0), np.bool_(False))}
    return gc.while_loop(lambda c: c["n"] != 1, step, init)


@pytest.mark.parametrize("start", [1, 6, 7, 27])
def test_while_loop_with_a_data_dependent_trip_count(start: int) -> None:
    out = agree(collatz_steps, np.int64(start))
    python_count, n = 0, start
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        python_count += 1
    assert int(out["count"]) == python_count
    # One compiled executable serves every trip count.
    step = gc.jit(collatz_steps, backend="llvm")
    assert int(step(np.int64(start))["count"]) == python_count


def test_while_loop_captures_values_and_nests_in_scan_and_cond() -> None:
    def f(xs: np.ndarray, limit: np.ndarray) -> Any:
        def row(c: Any, x: Any) -> Any:
            # Grow x until it passes the captured limit, counting the doublings.
            grown, times = gc.while_loop(lambda s: s[0].sum() < limit,
                                         lambda s: (s[0] * 2.0 + c, s[1] + 1), (x, 0))  # fmt: skip
            return c + times, grown

        total, ys = gc.scan(row, np.int64(0), xs)

        def triple(y: Any) -> Any:
            return gc.while_loop(lambda v: v.max() < 100.0, lambda v: v * 3.0, y)

        picked = gc.cond(total > 5, triple, lambda y: y, ys)
        return total, picked

    rng = np.random.default_rng(0)
    agree(f, np.abs(rng.normal(size=(4, 3))) + 0.1, np.float64(10.0))


def test_fori_loop_static_bounds_is_a_differentiable_scan() -> None:
    def f(x: np.ndarray, w: np.ndarray) -> Any:
        return gc.fori_loop(1, 5, lambda i, v: np.tanh(v @ w) + i * 0.1, x)

    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(2, 3)), rng.normal(size=(3, 3)) * 0.5
    agree(f, x, w)
    assert [n.op for n in gc.trace(f, x, w).nodes].count("scan") == 1
    loss = lambda x, w: (f(x, w) ** 2).sum()  # noqa: E731
    gc.check_grads(loss, (x, w))
    want = gc.grad(loss, argnums=(0, 1))(x, w)
    for backend in ("numpy", "llvm"):
        assert_trees_close(gc.jit(gc.grad(loss, argnums=(0, 1)), backend=backend)(x, w), want)


@pytest.mark.parametrize("bounds", [(0, 0), (3, 1), (2, 3)])
def test_fori_loop_empty_and_short_ranges(bounds: tuple[int, int]) -> None:
    lo, hi = bounds
    agree(lambda x: gc.fori_loop(lo, hi, lambda i, v: v * 2.0 + i, x), np.arange(3.0))
    # The same bounds traced: a while loop, same results.
    traced = lambda x, lo, hi: gc.fori_loop(lo, hi, lambda i, v: v * 2.0 + i, x)  # noqa: E731
    agree(traced, np.arange(3.0), np.int64(lo), np.int64(hi))


def test_differentiating_a_while_loop_names_the_line_and_points_to_fori_loop() -> None:
    def f(x: np.ndarray) -> Any:
        return gc.while_loop(lambda v: v.sum() < 10.0, lambda v: v * 2.0, x)  # the loop

    with pytest.raises(DifferentiationError, match="fori_loop") as info:
        gc.grad(lambda x: f(x).sum())(np.ones(2))
    assert "the loop" in str(info.value)
    # Traced bounds make fori_loop a while loop: the same error.
    with pytest.raises(DifferentiationError):
        gc.grad(lambda x, n: gc.fori_loop(0, n, lambda i, v: v * x, x).sum())(
            np.ones(2), np.int64(3)
        )


@pytest.mark.parametrize("way", ["eager", "traced"])
def test_while_loop_errors(way: str) -> None:
    def run(f: Any, *args: Any) -> Any:
        return f(*args) if way == "eager" else gc.jit(f, backend="numpy")(*args)

    with pytest.raises(OpTypeError, match="bool scalar"):
        run(lambda x: gc.while_loop(lambda v: v, lambda v: v * 2.0, x), np.ones(2))
    with pytest.raises(OpTypeError, match="structure"):
        run(lambda x: gc.while_loop(lambda v: v[0].sum() < 4, lambda v: v[0], (x, x)), np.ones(2))
    if way == "traced":
        with pytest.raises(OpTypeError, match="changed carry"):
            run(lambda x: gc.while_loop(lambda v: v.sum() < 4, lambda v: v[:1], x), np.ones(2))


@pytest.mark.parametrize("unroll", [1, 2, 3, 7, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_unroll_gives_the_same_results_and_gradients(unroll: Any, reverse: bool) -> None:
    def f(w: np.ndarray, xs: np.ndarray) -> Any:
        return gc.scan(lambda h, x: (np.tanh(h * w + x), (h * h).sum()), np.zeros(2), xs,
                       reverse=reverse, unroll=unroll)  # fmt: skip

    rng = np.random.default_rng(2)
    w, xs = rng.normal(size=2), rng.normal(size=(7, 2))
    agree(f, w, xs)
    loss = lambda w, xs: f(w, xs)[1].sum() + f(w, xs)[0].sum()  # noqa: E731
    want = gc.grad(loss, argnums=(0, 1))(w, xs)
    assert_trees_close(gc.jit(gc.grad(loss, argnums=(0, 1)), backend="llvm")(w, xs), want)
    gc.check_grads(loss, (w, xs))
    scans = [n.op for n in gc.trace(f, w, xs).nodes].count("scan")
    assert scans == (0 if unroll is True or unroll == 7 else 1 if 7 % unroll == 0 else 2)


def test_scan_unroll_must_be_positive() -> None:
    with pytest.raises(OpTypeError, match="unroll"):
        gc.scan(lambda c, x: (c, x), 0.0, np.ones(3), unroll=0)
