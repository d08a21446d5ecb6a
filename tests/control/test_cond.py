"""gc.cond against Python's if/else: eager, interpreted, compiled for both
backends; gradients against finite differences; conds inside scans."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import graphc as gc

from .test_scan import BACKENDS, RTOL, assert_trees_close, every_way


def clipped_step(x: np.ndarray, w: np.ndarray) -> Any:
    """A gradient-clipping-like choice on a traced predicate, pytree in and out."""
    norm2 = (x * x).sum()

    def shrink(p: dict[str, Any]) -> Any:
        return {"x": p["x"] / np.sqrt(norm2), "w": p["w"] * 0.5}, norm2

    def keep(p: dict[str, Any]) -> Any:
        return {"x": p["x"], "w": np.sin(p["w"])}, 1.0

    return gc.cond(norm2 > 1.0, shrink, keep, {"x": x, "w": w})


def clipped_python(x: np.ndarray, w: np.ndarray) -> Any:
    norm2 = (x * x).sum()
    if norm2 > 1.0:
        return {"x": x / np.sqrt(norm2), "w": w * 0.5}, norm2
    return {"x": x, "w": np.sin(w)}, np.float64(1.0)


@pytest.mark.parametrize("scale", [0.1, 3.0])
def test_both_outcomes_match_python_every_way(scale: float) -> None:
    rng = np.random.default_rng(0)
    x, w = scale * rng.standard_normal(3), rng.standard_normal((2, 2))
    want = clipped_python(x, w)
    for way, got in every_way(clipped_step, x, w).items():
        assert_trees_close(got, want), way


def test_traced_cond_is_one_node_with_both_branches() -> None:
    g = gc.trace(clipped_step, np.ones(3), np.ones((2, 2)))
    (node,) = [n for n in g.nodes if n.op == "cond"]
    assert len(node.subgraphs) == 2
    assert node.subgraphs[0].input_types == node.subgraphs[1].input_types
    assert node.subgraphs[0].output_types == node.subgraphs[1].output_types


@pytest.mark.parametrize("scale", [0.1, 3.0])
def test_gradients_of_both_branches(scale: float) -> None:
    def loss(x: np.ndarray, w: np.ndarray) -> Any:
        out, extra = clipped_step(x, w)
        return (out["x"] ** 3).sum() + (out["w"] ** 2).sum() * extra

    rng = np.random.default_rng(1)
    args = (scale * rng.standard_normal(3), rng.standard_normal((2, 2)))
    gc.check_grads(loss, args, order=2)
    # The interpreted gradient, which check_grads just checked, is the reference.
    want = gc.grad(loss, argnums=(0, 1))(*args)
    for backend in BACKENDS:
        got = gc.jit(gc.grad(loss, argnums=(0, 1)), backend=backend)(*args)
        assert_trees_close(got, want)


def test_a_concrete_predicate_just_picks_its_branch() -> None:
    def f(x: np.ndarray, flag: bool) -> Any:
        return gc.cond(flag, lambda x: x * 2.0, lambda x: x - 1.0, x)

    x = np.arange(3.0)
    np.testing.assert_array_equal(f(x, True), x * 2.0)
    np.testing.assert_array_equal(f(x, np.bool_(False)), x - 1.0)
    g = gc.trace(lambda x: f(x, True), x)
    assert [n.op for n in g.nodes] == ["mul"]
    jitted = gc.jit(f, backend="numpy", static_argnums=(1,))
    np.testing.assert_array_equal(jitted(x, False), x - 1.0)


def test_cond_inside_scan_and_scan_inside_cond() -> None:
    def run(xs: np.ndarray, w: np.ndarray) -> Any:
        def step(c: Any, x: Any) -> Any:
            c = gc.cond((c * x).sum() > 0, lambda c: c * w + x, lambda c: c - x * w, c)
            return c, c.sum()

        def loop(c: Any) -> Any:
            return gc.scan(step, c, xs)

        def skip(c: Any) -> Any:
            return c, np.zeros(len(xs))

        return gc.cond(w.sum() > -10.0, loop, skip, np.ones(2))

    def python(xs: np.ndarray, w: np.ndarray) -> Any:
        c, ys = np.ones(2), []
        for x in xs:
            c = c * w + x if (c * x).sum() > 0 else c - x * w
            ys.append(c.sum())
        return c, np.stack(ys)

    rng = np.random.default_rng(2)
    xs, w = rng.standard_normal((6, 2)), rng.standard_normal(2)
    want = python(xs, w)
    for got in every_way(run, xs, w).values():
        assert_trees_close(got, want)
    gc.check_grads(lambda xs, w: run(xs, w)[1].sum() + run(xs, w)[0].prod(), (xs, w))


def test_branches_capture_different_values() -> None:
    def f(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> Any:
        ea, lb = np.exp(a), np.log1p(b * b)
        return gc.cond(x.sum() > 0, lambda x: x * ea, lambda x: x + lb, x)

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    for x in (np.ones(3), -np.ones(3)):
        want = x * np.exp(a) if x.sum() > 0 else x + np.log1p(b * b)
        for got in every_way(f, x, a, b).values():
            np.testing.assert_allclose(got, want, rtol=RTOL)
        gc.check_grads(lambda a, b, x=x: f(x, a, b).sum(), (a, b))


def test_weak_python_scalars_take_the_other_branch_dtype() -> None:
    def f(x: np.ndarray) -> Any:
        return gc.cond(x.sum() > 0, lambda x: x.sum(), lambda x: 0.0, x)

    for backend in BACKENDS:
        jitted = gc.jit(f, backend=backend)
        for x in (np.ones(2, np.float32), -np.ones(2, np.float32)):
            out = jitted(x)
            assert out.dtype == np.float32
            assert out == max(x.sum(), 0.0)


def test_gradient_stops_at_the_predicate_and_integer_operands() -> None:
    def f(x: np.ndarray, k: np.ndarray) -> Any:
        return gc.cond(x[0] > 0, lambda x, k: x[k] * 3.0, lambda x, k: x[k] ** 2, x, k)

    x, k = np.array([0.5, -2.0, 4.0]), np.array(2)
    np.testing.assert_allclose(gc.grad(f)(x, k), [0.0, 0.0, 3.0])
    np.testing.assert_allclose(gc.grad(f)(-x, k), [0.0, 0.0, -8.0])
