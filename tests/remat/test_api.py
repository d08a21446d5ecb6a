"""gc.remat: same values and gradients as the plain function, on every path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.ir import DType, f64, interpret, parse, verify
from graphc.pytree import tree_flatten

BACKENDS = ["numpy", "llvm"]


# Compiled LLVM objects go to a private directory, shared within this module.
pytestmark = pytest.mark.usefixtures("private_llvm_cache")


def gelu(h: Any) -> Any:
    return 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h**3)))


def mlp_loss(remat_layers: bool) -> Any:
    def layer(x: Any, w: Any, b: Any) -> Any:
        return gelu(x @ w + b)

    block = gc.remat(layer) if remat_layers else layer

    def loss(params: Any, x: Any, y: Any) -> Any:
        for w, b in params:
            x = block(x, w, b)
        return ((x - y) ** 2).mean()

    return loss


def mlp_data(seed: int = 0, dtype: Any = np.float64) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    params = [
        (rng.standard_normal((6, 6)).astype(dtype) * 0.5, rng.standard_normal(6).astype(dtype))
        for _ in range(3)
    ]
    x = rng.standard_normal((5, 6)).astype(dtype)
    y = rng.standard_normal((5, 6)).astype(dtype)
    return params, x, y


def assert_trees_close(a: Any, b: Any, rtol: float) -> None:
    leaves_a, tree_a = tree_flatten(a)
    leaves_b, tree_b = tree_flatten(b)
    assert tree_a == tree_b
    for u, v in zip(leaves_a, leaves_b):
        assert np.asarray(u).dtype == np.asarray(v).dtype
        np.testing.assert_allclose(u, v, rtol=rtol, atol=rtol * 1e-3)


def test_trace_holds_one_remat_node_per_call() -> None:
    params, x, y = mlp_data()
    g = gc.trace(mlp_loss(True), params, x, y)
    verify(g)
    assert [n.op for n in g.nodes].count("remat") == 3
    assert parse(str(g)) == g
    first = next(n for n in g.nodes if n.op == "remat")
    assert first.attrs["recompute"] is False
    assert first.subgraphs[0].input_types == (f64[5, 6], f64[6, 6], f64[6])
    assert "matmul" in {m.op for m in first.subgraphs[0].nodes}


def test_gradient_recomputes_in_the_backward() -> None:
    params, x, y = mlp_data()
    joint = gc.trace(gc.value_and_grad(mlp_loss(True)), params, x, y)
    remats = [n for n in joint.nodes if n.op == "remat"]
    assert [n.attrs["recompute"] for n in remats] == [False] * 3 + [True] * 3
    # The recomputation computes the layer again: its body holds the forward matmul.
    backward = remats[3].subgraphs[0]
    assert [m.op for m in backward.nodes].count("matmul") == 3  # forward + two cotangents


def test_values_and_gradients_match_without_remat_uninterpreted() -> None:
    params, x, y = mlp_data()
    want = gc.value_and_grad(mlp_loss(False))(params, x, y)
    got = gc.value_and_grad(mlp_loss(True))(params, x, y)
    assert_trees_close(got, want, 1e-13)


def test_check_grads_first_and_second_order() -> None:
    params, x, y = mlp_data(1)
    gc.check_grads(lambda p: mlp_loss(True)(p, x, y), (params,))
    small = gc.remat(lambda v: np.sin(v) * np.exp(v) + v**3)
    gc.check_grads(lambda v: small(v).sum(), (np.linspace(-1.0, 1.0, 5),), order=2)


def test_grad_of_grad_matches_without_remat() -> None:
    f = gc.remat(lambda v, w: np.tanh(v * w) * v)
    plain = lambda v, w: np.tanh(v * w) * v  # noqa: E731
    v, w = np.linspace(-1.0, 1.0, 4), np.linspace(0.5, 2.0, 4)

    def outer(g: Any) -> Any:
        return gc.grad(lambda v, w: gc.grad(lambda v, w: g(v, w).sum())(v, w).sum(), (0, 1))

    assert_trees_close(outer(f)(v, w), outer(plain)(v, w), 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_values_and_gradients_match(backend: str) -> None:
    params, x, y = mlp_data(2)
    want = gc.value_and_grad(mlp_loss(False))(params, x, y)
    step = gc.jit(gc.value_and_grad(mlp_loss(True)), backend=backend)
    assert_trees_close(step(params, x, y), want, 1e-12)
    ops = {n.op for n in step.optimized_graph.nodes}
    assert not ops & {"remat", "optimization_barrier"}
    counts = step.report.counts
    assert counts["regions inlined"] == 3 and counts["recomputations inlined"] == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_stays_float32(backend: str) -> None:
    params, x, y = mlp_data(3, np.float32)
    joint = gc.trace(gc.value_and_grad(mlp_loss(True)), params, x, y)
    for n in joint.nodes:
        if n.op == "remat":
            assert all(t.dtype is DType.f32 for t in n.subgraphs[0].output_types)
    got = gc.jit(gc.value_and_grad(mlp_loss(True)), backend=backend)(params, x, y)
    want = gc.jit(gc.value_and_grad(mlp_loss(False)), backend=backend)(params, x, y)
    assert_trees_close(got, want, 1e-5)


def test_pytrees_static_arguments_and_closures() -> None:
    scale = np.array([2.0, -1.0, 0.5])

    @gc.remat
    def pair(d: Any) -> Any:
        return {"a": np.exp(d["x"]) * scale, "b": (d["x"] * d["y"], 3.0)}

    @gc.remat(static_argnums=1)
    def power(v: Any, k: int) -> Any:
        return v**k

    def f(x: Any, y: Any) -> Any:
        out = pair({"x": x, "y": y})
        return (out["a"] + power(out["b"][0], 3)).sum() * out["b"][1]

    x, y = np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, -1.0])

    def plain(x: Any, y: Any) -> Any:
        return (np.exp(x) * scale + (x * y) ** 3).sum() * 3.0

    assert_trees_close(
        gc.value_and_grad(f, (0, 1))(x, y), gc.value_and_grad(plain, (0, 1))(x, y), 1e-13
    )
    for backend in BACKENDS:
        got = gc.jit(gc.value_and_grad(f, (0, 1)), backend=backend)(x, y)
        assert_trees_close(got, gc.value_and_grad(plain, (0, 1))(x, y), 1e-12)


def test_integer_and_literal_arguments() -> None:
    pick = gc.remat(lambda v, idx, k: np.tanh(v[idx]) * k)

    def f(v: Any) -> Any:
        return pick(v, np.array([2, 0, 2]), 1.5).sum()

    v = np.array([0.3, -0.7, 1.1])
    want = np.zeros(3)
    np.add.at(want, [2, 0, 2], 1.5 / np.cosh(v[[2, 0, 2]]) ** 2)
    np.testing.assert_allclose(gc.grad(f)(v), want, rtol=1e-13)
    np.testing.assert_allclose(gc.jit(gc.grad(f), backend="numpy")(v), want, rtol=1e-13)


def test_nested_remat() -> None:
    inner = gc.remat(lambda v: np.sin(v) * v)
    outer = gc.remat(lambda v: inner(np.exp(v)) + inner(v))

    def f(v: Any) -> Any:
        return (outer(v) ** 2).sum()

    def plain(v: Any) -> Any:
        e = np.exp(v)
        return ((np.sin(e) * e + np.sin(v) * v) ** 2).sum()

    v = np.linspace(-1.0, 0.5, 4)
    want = gc.value_and_grad(plain)(v)
    assert_trees_close(gc.value_and_grad(f)(v), want, 1e-13)
    for backend in BACKENDS:
        assert_trees_close(gc.jit(gc.value_and_grad(f), backend=backend)(v), want, 1e-12)


def test_eager_call_is_just_the_function() -> None:
    calls = []

    def f(v: Any) -> Any:
        calls.append(type(v))
        return v * 2.0

    out = gc.remat(f)(np.ones(2))
    np.testing.assert_array_equal(out, [2.0, 2.0])
    assert calls == [np.ndarray]


def test_vjp_and_jvp_through_remat() -> None:
    f = gc.remat(lambda v: np.tanh(v) * np.exp(v))
    plain = lambda v: np.tanh(v) * np.exp(v)  # noqa: E731
    v, t = np.array([0.2, -0.4]), np.array([1.0, 3.0])
    out, pullback = gc.vjp(f, v)
    want_out, want_pullback = gc.vjp(plain, v)
    np.testing.assert_allclose(out, want_out, rtol=1e-14)
    np.testing.assert_allclose(pullback(t)[0], want_pullback(t)[0], rtol=1e-13)
    np.testing.assert_allclose(gc.jvp(f, (v,), (t,))[1], gc.jvp(plain, (v,), (t,))[1], rtol=1e-13)


def test_function_with_no_outputs() -> None:
    def f(v: Any) -> Any:
        assert gc.remat(lambda _: ())(v) == ()
        return v.sum()

    assert float(gc.grad(f)(np.ones(2)).sum()) == 2.0


def test_recomputation_keeps_source_locations() -> None:
    params, x, y = mlp_data()
    joint = gc.trace(gc.value_and_grad(mlp_loss(True)), params, x, y)
    backward = [n for n in joint.nodes if n.op == "remat"][-1]
    assert backward.loc is not None and backward.loc.file == __file__
    tanh = next(m for m in backward.subgraphs[0].nodes if m.op == "tanh")
    assert tanh.loc is not None and tanh.loc.file == __file__


def test_interpreted_joint_graph_equals_compiled() -> None:
    params, x, y = mlp_data(4)
    joint = gc.trace(gc.value_and_grad(mlp_loss(True)), params, x, y)
    flat = tree_flatten([params, x, y])[0]
    got = interpret(joint, *flat)
    want = gc.jit(gc.value_and_grad(mlp_loss(False)), backend="numpy")(params, x, y)
    assert_trees_close(list(got), tree_flatten(want)[0], 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_differentiation_the_region_is_plain_code(backend: str) -> None:
    f = gc.jit(lambda v: gc.remat(lambda u: np.sin(u) * u)(v) + 1.0, backend=backend)
    v = np.linspace(-2.0, 2.0, 9)
    np.testing.assert_allclose(f(v), np.sin(v) * v + 1.0, rtol=1e-14)
    assert f.report.counts["regions inlined"] == 1
    assert "recomputations inlined" not in f.report.counts


def test_random_draws_are_recomputed_identically() -> None:
    # Counter-based randomness is a pure function of key and counter, so the
    # recomputed dropout mask is the forward one and gradients are unchanged.
    key = gc.random.key(3)

    def block(v: Any, k: Any) -> Any:
        keep = gc.random.bernoulli(k, 0.5, v.shape, counter=11)
        return np.where(keep, np.tanh(v) * 2.0, 0.0)

    v = np.linspace(-1.0, 1.0, 16)
    want = gc.value_and_grad(lambda v: (block(v, key) ** 2).sum())(v)
    got = gc.value_and_grad(lambda v: (gc.remat(block)(v, key) ** 2).sum())(v)
    assert_trees_close(got, want, 1e-14)
    step = gc.jit(gc.value_and_grad(lambda v, k: (gc.remat(block)(v, k) ** 2).sum()))
    assert_trees_close(step(v, key), want, 1e-12)


def test_errors_inside_the_region_name_the_user_line() -> None:
    def bad(v: Any) -> Any:
        if v.sum() > 0:  # data-dependent control flow
            return v
        return -v

    with pytest.raises(gc.TracingError, match="test_api.py"):
        gc.grad(lambda v: gc.remat(bad)(v).sum())(np.ones(2))
