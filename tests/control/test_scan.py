"""gc.scan against plain Python loops: eager, traced and interpreted, and
compiled for both backends; gradients against finite differences."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.ir import interpret
from graphc.pytree import tree_flatten

BACKENDS = ["numpy", "llvm"]
RTOL = 1e-9


def assert_trees_close(got: Any, want: Any, rtol: float = RTOL) -> None:
    got_leaves, got_tree = tree_flatten(got)
    want_leaves, want_tree = tree_flatten(want)
    assert got_tree == want_tree, (got_tree, want_tree)
    for a, b in zip(got_leaves, want_leaves):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, (a.shape, b.shape)
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)


def interpreted(f: Callable[..., Any], *args: Any) -> Any:
    """``f`` traced to a graph and run by the reference interpreter."""
    from graphc.pytree import tree_unflatten
    from graphc.tracing import trace_flat

    traced = trace_flat(f, args)
    flat = tree_flatten(list(args))[0]
    return tree_unflatten(traced.out_tree, interpret(traced.graph, *flat))


def every_way(f: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """``f``'s results eagerly, interpreted, and compiled for each backend."""
    found = {"eager": f(*args), "interpreter": interpreted(f, *args)}
    for backend in BACKENDS:
        found[backend] = gc.jit(f, backend=backend)(*args)
    return found


# -- the models and their plain-Python twins -------------------------------------------


def rnn_scan(params: dict[str, np.ndarray], xs: np.ndarray, reverse: bool = False) -> Any:
    def cell(h: Any, x: Any) -> Any:
        h = np.tanh(x @ params["wx"] + h @ params["wh"] + params["b"])
        return h, {"h": h, "norm": (h * h).sum()}

    h0 = np.zeros((xs.shape[1], params["wh"].shape[0]), xs.dtype)
    return gc.scan(cell, h0, xs, reverse=reverse)


def rnn_loop(params: dict[str, np.ndarray], xs: np.ndarray, reverse: bool = False) -> Any:
    h = np.zeros((xs.shape[1], params["wh"].shape[0]), xs.dtype)
    hs: dict[int, np.ndarray] = {}
    for t in reversed(range(len(xs))) if reverse else range(len(xs)):
        h = np.tanh(xs[t] @ params["wx"] + h @ params["wh"] + params["b"])
        hs[t] = h
    steps = range(len(xs))
    return h, {
        "h": np.stack([hs[t] for t in steps]),
        "norm": np.stack([(hs[t] ** 2).sum() for t in steps]),
    }


def make_params(rng: np.random.Generator, n_in: int = 3, hidden: int = 4) -> dict[str, np.ndarray]:
    return {
        "wx": rng.standard_normal((n_in, hidden)) * 0.5,
        "wh": rng.standard_normal((hidden, hidden)) * 0.5,
        "b": rng.standard_normal(hidden) * 0.1,
    }


@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_matches_the_python_loop_every_way(reverse: bool) -> None:
    rng = np.random.default_rng(0)
    params, xs = make_params(rng), rng.standard_normal((7, 2, 3))
    want = rnn_loop(params, xs, reverse)
    for way, got in every_way(lambda p, x: rnn_scan(p, x, reverse), params, xs).items():
        assert_trees_close(got, want), way


State = namedtuple("State", ["total", "count", "last"])


def test_pytree_carry_and_xs_with_integers_and_bools() -> None:
    """A namedtuple carry with an integer counter, a dict of xs, several ys
    (one bool), against the Python loop."""

    def step(state: State, x: dict[str, Any]) -> Any:
        total = state.total + x["v"] * x["w"][:, None]
        count = state.count + (x["w"] > 0).sum()
        new = State(total, count, x["v"])
        return new, (total.sum(axis=1), total > 0.5, count)

    rng = np.random.default_rng(1)
    init = State(np.zeros((2, 3)), np.int64(0), np.zeros(3))
    xs = {"v": rng.standard_normal((5, 3)), "w": rng.standard_normal((5, 2))}

    def run(init: State, xs: dict[str, Any]) -> Any:
        return gc.scan(step, init, xs)

    state, ys = init, []
    for t in range(5):
        state, y = step(state, {"v": xs["v"][t], "w": xs["w"][t]})
        ys.append(y)
    want = (state, tuple(np.stack([y[j] for y in ys]) for j in range(3)))
    for way, got in every_way(run, init, xs).items():
        assert isinstance(got[0], State), way
        assert_trees_close(got, want)


def test_no_xs_with_length_and_python_scalar_carries() -> None:
    """xs=None runs ``length`` steps with x None; a Python-float init takes
    the dtype the body gives it (float32 here)."""

    def run(w: np.ndarray) -> Any:
        def step(c: Any, x: None) -> Any:
            assert x is None
            c = c * 0.5 + w.sum()
            return c, c * w

        return gc.scan(step, 0.0, None, length=4)

    w = np.array([1.0, -2.0], np.float32)
    c, want = 0.0, []
    for _ in range(4):
        c = c * 0.5 + w.sum()
        want.append(c * w)
    for way, (carry, ys) in every_way(run, w).items():
        assert carry.dtype == np.float32 and ys.dtype == np.float32, way
        np.testing.assert_allclose(carry, c, rtol=1e-6)
        np.testing.assert_allclose(ys, want, rtol=1e-6)


def test_zero_steps_return_the_init_and_empty_ys() -> None:
    def run(h: np.ndarray, xs: np.ndarray) -> Any:
        return gc.scan(lambda c, x: (c + x, (c * x).sum()), h, xs)

    h, xs = np.array([1.0, 2.0]), np.zeros((0, 2))
    for way, (carry, ys) in every_way(run, h, xs).items():
        np.testing.assert_array_equal(carry, h)
        assert ys.shape == (0,) and ys.dtype == np.float64, way


def test_captured_values_and_nested_scans() -> None:
    """The body closes over traced values (they become constants of the
    scan) and runs a scan of its own."""

    def run(a: np.ndarray, grid: np.ndarray) -> Any:
        scale = np.exp(a)

        def row(c: Any, r: Any) -> Any:
            inner, partial = gc.scan(lambda s, v: (s * 0.9 + v * scale, s), c, r)
            return inner, partial.sum(axis=0)

        return gc.scan(row, np.zeros(2), grid, reverse=True)

    rng = np.random.default_rng(2)
    a, grid = rng.standard_normal(2), rng.standard_normal((3, 4, 2))
    c, ys = np.zeros(2), {}
    for i in reversed(range(3)):
        partial = []
        for v in grid[i]:
            partial.append(c)
            c = c * 0.9 + v * np.exp(a)
        ys[i] = np.sum(partial, axis=0)
    want = (c, np.stack([ys[i] for i in range(3)]))
    for got in every_way(run, a, grid).values():
        assert_trees_close(got, want)
    g = gc.trace(run, a, grid)
    assert [n.op for n in g.nodes].count("scan") == 1
    (outer,) = [n for n in g.nodes if n.op == "scan"]
    assert any(m.op == "scan" for m in outer.subgraphs[0].nodes)


def test_traced_scan_is_one_node_whatever_the_length() -> None:
    """The loop stays a loop: the graph, and the NumPy backend's compiled
    graph, have the same nodes for 10 and 1000 steps."""
    rng = np.random.default_rng(3)
    params = make_params(rng)
    loss = gc.value_and_grad(lambda p, xs: rnn_scan(p, xs)[1]["norm"].sum())
    sizes = []
    for steps in (10, 1000):
        xs = rng.standard_normal((steps, 2, 3))
        jitted = gc.jit(loss, backend="numpy")
        value, grads = jitted(params, xs)
        want_value, want_grads = loss(params, xs)
        assert_trees_close((value, grads), (want_value, want_grads))
        sizes.append((gc.trace(loss, params, xs).num_nodes(True), jitted.graph.num_nodes(True)))
        assert "k_scan" in jitted.source
    assert sizes[0] == sizes[1]


# -- gradients ---------------------------------------------------------------------------


def test_gradients_of_an_rnn_against_finite_differences() -> None:
    rng = np.random.default_rng(4)
    params, xs = make_params(rng), rng.standard_normal((6, 2, 3))

    def loss(p: Any, xs: Any) -> Any:
        h, ys = rnn_scan(p, xs)
        return (ys["h"] ** 3).sum() + np.sin(h).sum() + ys["norm"].mean()

    gc.check_grads(loss, (params, xs))


def test_second_order_through_a_reverse_scan() -> None:
    """check_grads(order=2) differentiates the VJP (two scans) again."""

    def loss(w: np.ndarray, xs: np.ndarray) -> Any:
        def step(carry: Any, x: Any) -> Any:
            a, b = carry
            a = np.tanh(a * w + x)
            b = b + np.sin(a) * x
            return (a, b), a.sum() ** 2

        (a, b), ys = gc.scan(step, (np.zeros(3), np.ones(3)), xs, reverse=True)
        return ys.sum() + (a * b).sum()

    rng = np.random.default_rng(5)
    gc.check_grads(loss, (rng.standard_normal(3), rng.standard_normal((5, 3))), order=2)


def test_hessian_vector_product_matches_the_unrolled_loop() -> None:
    def loss(w: np.ndarray, xs: np.ndarray) -> Any:
        _, ys = gc.scan(lambda c, x: (np.tanh(c * w + x), (c * c).sum()), np.ones(2), xs)
        return ys.sum()

    def unrolled(w: np.ndarray, xs: np.ndarray) -> Any:
        c, total = np.ones(2), 0.0
        for x in xs:
            total = total + (c * c).sum()
            c = np.tanh(c * w + x)
        return total

    rng = np.random.default_rng(6)
    w, xs, v = rng.standard_normal(2), rng.standard_normal((4, 2)), rng.standard_normal(2)
    got = gc.hvp(lambda w: loss(w, xs), (w,), (v,))
    want = gc.hvp(lambda w: unrolled(w, xs), (w,), (v,))
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_integer_carries_and_indices_get_no_gradient() -> None:
    """A counter carry indexes a table; only the float operands get gradients."""

    def loss(table: np.ndarray, scale: float) -> Any:
        def step(carry: Any, _: None) -> Any:
            k, acc = carry
            picked = table[k % 4]
            return (k + 3, acc + picked * scale), picked * acc

        (_, acc), ys = gc.scan(step, (np.int64(1), 0.0), None, length=6)
        return acc**2 + ys.sum()

    rng = np.random.default_rng(7)
    gc.check_grads(loss, (rng.standard_normal(4), 0.7))
    grads = gc.grad(loss, argnums=(0, 1))(rng.standard_normal(4), 0.7)
    assert grads[0].shape == (4,) and np.asarray(grads[1]).dtype == np.float64


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_gradients_match_the_unrolled_loop(backend: str) -> None:
    rng = np.random.default_rng(8)
    params, xs = make_params(rng), rng.standard_normal((5, 2, 3))

    def with_scan(p: Any, xs: Any) -> Any:
        h, ys = rnn_scan(p, xs, reverse=True)
        return ys["norm"].sum() + (h**2).sum()

    def with_loop(p: Any, xs: Any) -> Any:
        h, ys = rnn_loop(p, xs, reverse=True)
        return ys["norm"].sum() + (h**2).sum()

    got = gc.jit(gc.value_and_grad(with_scan), backend=backend)(params, xs)
    assert_trees_close(got, gc.value_and_grad(with_loop)(params, xs))


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_stays_float32(backend: str) -> None:
    rng = np.random.default_rng(9)
    params = {k: v.astype(np.float32) for k, v in make_params(rng).items()}
    xs = rng.standard_normal((5, 2, 3)).astype(np.float32)

    def loss(p: Any, xs: Any) -> Any:
        return rnn_scan(p, xs)[1]["norm"].sum()

    value, grads = gc.jit(gc.value_and_grad(loss), backend=backend)(params, xs)
    assert value.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    want_value, want_grads = gc.value_and_grad(loss)(p64, xs.astype(np.float64))
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    for k in grads:
        np.testing.assert_allclose(grads[k], want_grads[k], rtol=1e-4, atol=1e-5)


def test_forward_loop_runs_once_under_differentiation() -> None:
    """The VJP's residual scan is merged into the forward scan: one forward
    loop and one reverse loop."""
    rng = np.random.default_rng(10)
    params, xs = make_params(rng), rng.standard_normal((5, 2, 3))
    joint = gc.trace(gc.value_and_grad(lambda p, xs: rnn_scan(p, xs)[1]["norm"].sum()), params, xs)
    scans = [n for n in joint.nodes if n.op == "scan"]
    assert [n.attrs["reverse"] for n in scans] == [False, True]
    for backend in BACKENDS:
        jitted = gc.jit(
            gc.value_and_grad(lambda p, xs: rnn_scan(p, xs)[1]["norm"].sum()), backend=backend
        )
        jitted(params, xs)
        if backend == "numpy":
            assert [n.op for n in jitted.optimized_graph.nodes].count("scan") == 2


def test_vjp_and_jvp_through_scan() -> None:
    def f(xs: np.ndarray) -> Any:
        return gc.scan(lambda c, x: (c * np.cos(x), c + x), np.ones(3), xs)[1]

    def loop(xs: np.ndarray) -> Any:
        c, ys = np.ones(3), []
        for x in xs:
            ys.append(c + x)
            c = c * np.cos(x)
        return np.stack(ys)

    rng = np.random.default_rng(11)
    xs, ct = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    out, pullback = gc.vjp(f, xs)
    want_out, want_pullback = gc.vjp(loop, xs)
    np.testing.assert_allclose(out, want_out, rtol=RTOL)
    np.testing.assert_allclose(pullback(ct)[0], want_pullback(ct)[0], rtol=RTOL)
    _, tangent = gc.jvp(f, (xs,), (ct,))
    _, want_tangent = gc.jvp(loop, (xs,), (ct,))
    np.testing.assert_allclose(tangent, want_tangent, rtol=RTOL)
