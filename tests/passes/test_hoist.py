"""hoist_loop_sums: BPTT's per-step weight, bias and embedding gradients
become one product, reduction and scatter after the reverse loop, with the
same gradients (up to the order of float additions) as the per-step form."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.passes.hoist import hoist_loop_sums


def rnn_loss(params: dict[str, Any], ids: np.ndarray) -> Any:
    """W5's recurrence: an embedding lookup, a recurrent product and a bias."""

    def cell(h: Any, x: Any) -> Any:
        h = np.tanh(params["emb"][x] + h @ params["whh"] + params["b"])
        return h, h

    h0 = np.zeros((ids.shape[1], params["whh"].shape[0]))
    _, hs = gc.scan(cell, h0, ids)
    return (hs * hs).sum() + hs[-1].sum()


def problem() -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    params = {
        "emb": rng.normal(size=(7, 4)) * 0.5,
        "whh": rng.normal(size=(4, 4)) * 0.4,
        "b": rng.normal(size=4) * 0.1,
    }
    return params, rng.integers(0, 7, size=(6, 3))


def scans(g: Any) -> list[Any]:
    return [n for n in g.nodes if n.op == "scan"]


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_hoisted_gradients_match_the_per_step_sums(backend: str) -> None:
    params, ids = problem()
    step = gc.value_and_grad(rnn_loss)
    hoisted = gc.jit(step, backend=backend)
    per_step = gc.jit(step, backend=backend, disable_passes=("hoist_loop_sums",))
    got, want = hoisted(params, ids), per_step(params, ids)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(got[1][k], want[1][k], rtol=1e-10, atol=1e-12)
    gc.check_grads(lambda p: rnn_loss(p, ids), (params,))
    # The reverse loop now carries only the hidden state's cotangent.
    (backward,) = [n for n in scans(hoisted.optimized_graph) if n.attrs["reverse"]]
    assert backward.attrs["num_carry"] == 1
    (before,) = [n for n in scans(per_step.optimized_graph) if n.attrs["reverse"]]
    assert before.attrs["num_carry"] == 4


def test_only_accumulations_of_per_step_values_move() -> None:
    from graphc.ir import GraphBuilder, f64, interpret

    body = GraphBuilder("body")
    acc, k, w = body.input(f64[2, 2], "acc"), body.input(f64[2, 2], "k"), body.input(f64[2, 2], "w")
    x = body.input(f64[2, 2], "x")
    # acc + k @ x (k is a carry: it changes between steps, so it stays); w's
    # product with the step's x is hoisted when w is per-step only.
    new_k = body.tanh(body.add(k, x))
    step = body.build([body.add(acc, body.matmul(k, x)), new_k, body.matmul(w, x)])
    b = GraphBuilder("f")
    a0, k0, w0 = b.input(f64[2, 2], "a0"), b.input(f64[2, 2], "k0"), b.input(f64[2, 2], "w0")
    xs = b.input(f64[3, 2, 2], "xs")
    outs = b.scan(a0, k0, xs, w0, subgraphs=[step.replace(inputs=(acc, k, x, w))],
                  length=3, num_carry=2, num_xs=1, num_consts=1)  # fmt: skip
    g = b.build(list(outs))
    assert hoist_loop_sums(g) is g
    rng = np.random.default_rng(1)
    args = [rng.normal(size=(2, 2)) for _ in range(3)] + [rng.normal(size=(3, 2, 2))]
    np.testing.assert_allclose(interpret(hoist_loop_sums(g), *args)[0], interpret(g, *args)[0])


def test_a_transposed_carry_is_stacked_as_rows_and_multiplied_transposed() -> None:
    """``acc + kᵀ @ x`` with ``k`` a carry: the loop stacks ``k`` itself (its value
    at the start of each step) and the product after it reads the stack
    transposed, with no transpose left in the loop."""
    from graphc.ir import GraphBuilder, f64, interpret

    body = GraphBuilder("body")
    acc, k = body.input(f64[3, 3], "acc"), body.input(f64[2, 3], "k")
    x = body.input(f64[2, 3], "x")
    new_k = body.tanh(body.add(k, x))
    step = body.build([body.add(acc, body.matmul(body.transpose(k, perm=(1, 0)), x)), new_k])
    b = GraphBuilder("f")
    a0, k0 = b.input(f64[3, 3], "a0"), b.input(f64[2, 3], "k0")
    xs = b.input(f64[4, 2, 3], "xs")
    outs = b.scan(a0, k0, xs, subgraphs=[step], length=4, num_carry=2, num_xs=1, num_consts=0)
    g = b.build(list(outs))
    h = hoist_loop_sums(g)
    (loop,) = scans(h)
    assert loop.attrs["num_carry"] == 1
    assert "transpose" not in [n.op for n in loop.subgraphs[0].nodes]
    rng = np.random.default_rng(2)
    args = [rng.normal(size=(3, 3)), rng.normal(size=(2, 3)), rng.normal(size=(4, 2, 3))]
    for got, want in zip(interpret(h, *args), interpret(g, *args)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "llvm", "interpret"])
def test_the_recurrent_weight_gradient_reads_the_stacked_states(backend: str) -> None:
    """The derivative of ``h @ W`` saves the states ``h``, not their transposes,
    so after hoisting no loop transposes a state and no stack is transposed."""
    params, ids = problem()
    f = gc.jit(gc.value_and_grad(rnn_loss), backend=backend)
    value, grads = f(params, ids)
    want = gc.value_and_grad(rnn_loss)(params, ids)
    np.testing.assert_allclose(value, want[0], rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k], want[1][k], rtol=1e-10, atol=1e-12)
    g = f.optimized_graph
    for loop in scans(g):
        inner = [n for n in loop.subgraphs[0].nodes if n.op == "transpose"]
        assert not inner, loop.subgraphs[0]
    for n in g.nodes:
        if n.op == "transpose":
            assert n.inputs[0].type.ndim == 2, n  # Wᵀ and the ids, no stack


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_a_transposed_state_that_other_residuals_read(backend: str) -> None:
    """The backward loop transposes the saved state itself; a forward value
    computed from the same transpose (here sin's derivative) is still saved."""
    rng = np.random.default_rng(5)
    w, xs = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(4, 2, 3))

    def loss(w: Any, xs: Any) -> Any:
        def cell(h: Any, x: Any) -> Any:
            ht = h.T
            h = np.tanh(h @ w + np.sin(ht).T * x)
            return h, (ht * ht).sum()

        h, ys = gc.scan(cell, np.ones((2, 3)) * 0.1, xs)
        return (h * h).sum() + ys.sum()

    got = gc.jit(gc.value_and_grad(loss, argnums=(0, 1)), backend=backend)(w, xs)
    want = gc.value_and_grad(loss, argnums=(0, 1))(w, xs)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    for a, b in zip(got[1], want[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    gc.check_grads(loss, (w, xs))
