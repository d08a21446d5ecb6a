"""merge_sum_chains on unrolled loops: the gradients of a plain Python time
loop (weights, biases, embeddings, slices of one tensor) are the same with
the chains merged as with one term per step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.passes.sum_chains import merge_sum_chains


def loss_indexed(p: dict[str, Any], ids: np.ndarray) -> Any:
    """W5's loop as unmodified NumPy: one embedding lookup per step."""
    h = np.zeros((ids.shape[0], p["whh"].shape[0]))
    total = 0.0
    for t in range(ids.shape[1]):
        h = np.tanh(p["emb"][ids[:, t]] + h @ p["whh"] + p["b"])
        total = total + (h * h).sum()
    return total


def loss_sliced(p: dict[str, Any], ids: np.ndarray) -> Any:
    """The same loop over slices of one looked-up tensor."""
    emb = p["emb"][ids]  # (batch, time, hidden)
    h = np.zeros((ids.shape[0], p["whh"].shape[0]))
    total = 0.0
    for t in range(ids.shape[1]):
        h = np.tanh(emb[:, t] + h @ p["whh"] + p["b"])
        total = total + (h * h).sum()
    return total


def problem() -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    params = {
        "emb": rng.normal(size=(6, 4)) * 0.5,
        "whh": rng.normal(size=(4, 4)) * 0.4,
        "b": rng.normal(size=4) * 0.1,
    }
    return params, rng.integers(0, 6, size=(3, 5))


def ops(g: Any) -> list[str]:
    """Op names, fusion bodies included."""
    return [op for n in g.nodes for op in [n.op, *(o for s in n.subgraphs for o in ops(s))]]


@pytest.mark.parametrize("loss", [loss_indexed, loss_sliced])
@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_merged_chains_give_the_per_step_gradients(loss: Any, backend: str) -> None:
    params, ids = problem()
    step = gc.value_and_grad(loss)
    merged = gc.jit(step, backend=backend)
    per_step = gc.jit(step, backend=backend, disable_passes=("merge_sum_chains",))
    got, want = merged(params, ids), per_step(params, ids)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(got[1][k], want[1][k], rtol=1e-10, atol=1e-12)
    gc.check_grads(lambda p: loss(p, ids), (params,))
    # One product for the recurrent weight's gradient instead of one per step.
    assert ops(merged.optimized_graph).count("matmul") < ops(per_step.optimized_graph).count(
        "matmul"
    )


def test_slices_cotangent_is_one_concatenation() -> None:
    params, ids = problem()
    g = gc.trace(gc.grad(lambda p: loss_sliced(p, ids)), params)
    from graphc.passes.pipeline import optimize

    before, _ = optimize(g, disabled=("merge_sum_chains",))
    after, _ = optimize(g)
    assert ops(before).count("pad") >= ids.shape[1]
    assert ops(after).count("pad") == 0


def test_weight_gradients_stack_the_states_once() -> None:
    """Σ_t h_tᵀ @ g_t stacks the states as rows (no transpose per step), and the
    weight, bias and embedding gradients share one stack of the g_t."""
    params, ids = problem()
    f = gc.jit(gc.value_and_grad(loss_indexed), backend="llvm")
    value, grads = f(params, ids)
    want = gc.value_and_grad(loss_indexed)(params, ids)
    for k in params:
        np.testing.assert_allclose(grads[k], want[1][k], rtol=1e-10, atol=1e-12)
    g = f.optimized_graph
    state = (ids.shape[0], params["whh"].shape[0])
    assert not [n for n in g.nodes if n.op == "transpose" and n.inputs[0].type.shape == state]
    (scatter,) = [n for n in g.nodes if n.op == "scatter_add"]
    stack = scatter.inputs[2]  # the pre-activations' cotangents, stacked
    assert g.producers()[stack].op == "concatenate"
    readers = [n for n in g.nodes if stack in n.inputs]
    assert len(readers) == 3  # embedding, bias and recurrent weight gradients


def test_overlapping_pads_and_shared_terms_stay() -> None:
    from graphc.ir import GraphBuilder, f64

    b = GraphBuilder("f")
    x = b.input(f64[4, 3], "x")
    zero = gc.ir.Literal(0.0, gc.ir.DType.f64)
    one = b.pad(x, zero, low=(0, 0), high=(1, 0), interior=(0, 0))  # rows 0-3 of 5
    two = b.pad(x, zero, low=(1, 0), high=(0, 0), interior=(0, 0))  # rows 1-4: overlap
    g = b.build([b.add(one, two)])
    assert merge_sum_chains(g) is g
    b = GraphBuilder("g")
    y = b.input(f64[3, 3], "y")
    prod = b.matmul(y, y)  # also a result: the chain is not its only reader
    shared = b.build([b.add(prod, b.matmul(y, b.neg(y))), prod])
    assert merge_sum_chains(shared) is shared


@settings(max_examples=40, deadline=None)
@given(
    kinds=st.lists(
        st.sampled_from(["matmul", "matmul_t", "splat_t", "reduce", "pad", "scatter", "other"]),
        min_size=2,
        max_size=6,
    ),
    seed=st.integers(0, 2**16),
)
def test_random_chains_keep_their_value(kinds: list[str], seed: int) -> None:
    from graphc.ir import DType, GraphBuilder, Literal, f64, i64, interpret

    rng = np.random.default_rng(seed)
    b = GraphBuilder("chain")
    args: list[np.ndarray] = []

    def arg(shape: tuple[int, ...], ints: bool = False) -> Any:
        args.append(rng.integers(0, 4, size=shape) if ints else rng.normal(size=shape))
        return b.input((i64 if ints else f64)[shape], f"a{len(args)}")

    zero = Literal(0.0, DType.f64)
    terms = []
    for kind in kinds:
        if kind == "matmul":
            inner = int(rng.integers(1, 4))
            terms.append(b.matmul(arg((4, inner)), arg((inner, 3))))
        elif kind == "matmul_t":  # a weight gradient: xᵀ @ g
            inner = int(rng.integers(1, 4))
            terms.append(b.matmul(b.transpose(arg((inner, 4)), perm=(1, 0)), arg((inner, 3))))
        elif kind == "splat_t":  # the first step's constant state, transposed by folding
            inner = int(rng.integers(1, 4))
            splat = b.broadcast_in_dim(
                Literal(0.5, DType.f64), shape=(4, inner), broadcast_dimensions=()
            )
            terms.append(b.matmul(splat, arg((inner, 3))))
        elif kind == "reduce":
            terms.append(b.reduce_sum(arg((int(rng.integers(1, 4)), 4, 3)), axes=(0,)))
        elif kind == "pad":
            start = int(rng.integers(0, 4))
            pad = {"low": (start, 0), "high": (3 - start, 0), "interior": (0, 0)}
            terms.append(b.pad(arg((1, 3)), zero, **pad))
        elif kind == "scatter":
            base = b.broadcast_in_dim(zero, shape=(4, 3), broadcast_dimensions=())
            terms.append(b.scatter_add(base, arg((2,), ints=True), arg((2, 3)), axis=0))
        else:
            terms.append(b.exp(arg((4, 3))))
    total = terms[0]
    for t in terms[1:]:
        total = b.add(total, t)
    g = b.build([total])
    want = interpret(g, *args)[0]
    got = interpret(merge_sum_chains(g), *args)[0]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
