"""gc.train_step: the compiled step against the same math run uncompiled, on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc import nn, optim
from graphc.pytree import tree_leaves

from .compiled import BACKENDS

F32 = {"rtol": 2e-5, "atol": 2e-6}


def _regression_data() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5)).astype(np.float32)
    y = rng.normal(size=(16, 3)).astype(np.float32)
    params = {
        "w": rng.normal(size=(5, 3)).astype(np.float32),
        "b": rng.normal(size=3).astype(np.float32),
    }
    return x, y, params


def _regression_loss(p: Any, x: Any, y: Any) -> Any:
    r = x @ p["w"] + p["b"] - y
    return np.mean(r * r)


def _regression_grads(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict:
    """The gradient of the mean squared error, derived by hand."""
    r = x @ p["w"] + p["b"] - y
    d = 2.0 * r / r.size
    return {"w": x.T @ d, "b": d.sum(axis=0)}


def _sgd_momentum_by_hand(p, x, y, steps, lr, momentum):
    p = {k: v.astype(np.float64) for k, v in p.items()}
    buf = {k: np.zeros_like(v) for k, v in p.items()}
    for _ in range(steps):
        g = _regression_grads(p, x, y)
        for k in p:
            buf[k] = momentum * buf[k] + g[k]
            p[k] = p[k] - lr * buf[k]
    return p


def _adam_by_hand(p, x, y, steps, lr, b1=0.9, b2=0.999, eps=1e-8):
    p = {k: v.astype(np.float64) for k, v in p.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    for t in range(1, steps + 1):
        g = _regression_grads(p, x, y)
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            m_hat, v_hat = m[k] / (1 - b1**t), v[k] / (1 - b2**t)
            p[k] = p[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "make, by_hand",
    [
        (lambda: optim.SGD(0.05, momentum=0.9), lambda *a: _sgd_momentum_by_hand(*a, 0.05, 0.9)),
        (lambda: optim.Adam(0.01), lambda *a: _adam_by_hand(*a, 0.01)),
    ],
    ids=["sgd_momentum", "adam"],
)
def test_compiled_step_matches_a_hand_written_numpy_step(backend, make, by_hand) -> None:
    x, y, params = _regression_data()
    step = gc.train_step(_regression_loss, make(), backend=backend)
    state = step.init(params)
    for _ in range(5):
        state, loss = step(state, x, y)
    expected = by_hand(params, x, y, 5)
    for k in params:
        assert state.params[k].dtype == np.float32
        np.testing.assert_allclose(state.params[k], expected[k], rtol=1e-4, atol=1e-5)
    assert state.step == 5
    # The loss reported by step 5 is the loss of the parameters step 4 produced.
    before_last = by_hand(params, x, y, 4)
    np.testing.assert_allclose(float(loss), _regression_loss(before_last, x, y), rtol=1e-4)


MLP = (nn.Linear(6, 16), nn.Linear(16, 4))


def _mlp_loss(p: Any, x: Any, y: Any, rng: Any) -> Any:
    h = rng.dropout(nn.relu(MLP[0](p[0], x)), 0.25)
    logits = MLP[1](p[1], h)
    return nn.cross_entropy(logits, y) + nn.l2_penalty(p, 1e-4), {
        "accuracy": nn.accuracy(logits, y)
    }


def _mlp_setup() -> tuple[list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = rng.integers(0, 4, size=32)
    return [layer.init(i) for i, layer in enumerate(MLP)], x, y


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.SGD(optim.step_decay(0.1, 2, 0.5), momentum=0.9, nesterov=True),
        lambda: optim.Adam(optim.warmup_cosine(0.02, 2, 6), clip_norm=1.0),
    ],
    ids=["sgd_nesterov_step_decay", "adam_warmup_cosine_clipped"],
)
def test_compiled_step_equals_uncompiled_step_with_dropout_and_aux(backend, make) -> None:
    params, x, y = _mlp_setup()
    step = gc.train_step(_mlp_loss, make(), backend=backend, has_aux=True)
    compiled, eager = step.init(params, seed=3), step.init(params, seed=3)
    for _ in range(4):
        compiled, c_loss, c_aux = step(compiled, x, y)
        eager, e_loss, e_aux = step.apply_eagerly(eager, x, y)
        np.testing.assert_allclose(c_loss, e_loss, **F32)
        assert float(c_aux["accuracy"]) == float(e_aux["accuracy"])
        for c, e in zip(tree_leaves(compiled), tree_leaves(eager)):
            assert np.asarray(c).dtype == np.asarray(e).dtype
            np.testing.assert_allclose(c, e, **F32)
    assert compiled.step == eager.step == 4
    # The step count and the schedule are inputs: four steps, one compilation.
    assert len(step.jitted.cache) == 1 and step.jitted.retrace_reasons == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_traced_step_interprets_like_the_compiled_one(backend) -> None:
    params, x, y = _mlp_setup()
    step = gc.train_step(_mlp_loss, optim.AdamW(0.01), backend=backend, has_aux=True)
    state = step.init(params)
    g = step.trace(state, x, y)
    expected = gc.ir.interpret(g, *tree_leaves([*state, x, y]))
    state, loss, aux = step(state, x, y)
    got = tree_leaves((state.params, state.opt_state, state.model_state, loss, aux))
    assert len(got) == len(expected)
    for c, e in zip(got, expected):
        np.testing.assert_allclose(c, e, **F32)


def test_one_graph_holds_forward_backward_and_update() -> None:
    params, x, y = _mlp_setup()
    step = gc.train_step(_mlp_loss, optim.Adam(1e-3), backend="interpret", has_aux=True)
    compiled = step.lower(step.init(params), x, y)
    ops = {n.op for n in compiled.graph.nodes}
    # matmul (forward and backward), random_bits (dropout), sqrt (Adam's denominator).
    assert {"matmul", "random_bits", "sqrt"} <= ops
    outputs = tree_leaves(step.init(params).params) + tree_leaves(step.init(params).opt_state)
    assert len(compiled.graph.outputs) == len(outputs) + 2  # + loss and accuracy
    assert "graph _mlp_loss_train_step(" in str(compiled.optimized_graph)


def test_init_copies_so_donation_never_touches_the_callers_arrays() -> None:
    x, y, params = _regression_data()
    original = {k: v.copy() for k, v in params.items()}
    step = gc.train_step(_regression_loss, optim.SGD(0.1, momentum=0.5), backend=BACKENDS[0])
    state = step.init(params)
    for _ in range(3):
        state, _ = step(state, x, y)
    for k in params:
        assert np.array_equal(params[k], original[k])
        assert not np.array_equal(state.params[k], original[k])


# -- dropout ---------------------------------------------------------------------


def _masks_loss(p: Any, x: Any, rng: Any) -> Any:
    h1 = rng.dropout(x * p, 0.5)
    h2 = rng.dropout(x * p, 0.5)
    return np.mean(h1 + h2), {"first": h1 != 0, "second": h2 != 0}


def _masks(backend: str, seed: int, steps: int) -> list[dict[str, np.ndarray]]:
    step = gc.train_step(_masks_loss, optim.SGD(0.0), backend=backend, has_aux=True)
    state = step.init(np.float32(1.0), seed=seed)
    out = []
    for _ in range(steps):
        state, _, aux = step(state, np.ones(256, np.float32))
        out.append({k: np.array(v) for k, v in aux.items()})
    return out


def test_dropout_masks_are_keyed_by_seed_step_and_site() -> None:
    backend = BACKENDS[0]
    run = _masks(backend, seed=7, steps=3)
    again = _masks(backend, seed=7, steps=3)
    other_seed = _masks(backend, seed=8, steps=1)
    for a, b in zip(run, again):
        assert np.array_equal(a["first"], b["first"]) and np.array_equal(a["second"], b["second"])
    assert not np.array_equal(run[0]["first"], run[1]["first"])  # a new step, a new mask
    assert not np.array_equal(run[0]["first"], run[0]["second"])  # each site its own stream
    assert not np.array_equal(run[0]["first"], other_seed[0]["first"])
    rate = np.mean([m["first"].mean() for m in run])
    assert 0.4 < rate < 0.6


def test_dropout_masks_are_the_same_on_every_backend_and_eagerly() -> None:
    step = gc.train_step(_masks_loss, optim.SGD(0.0), backend="interpret", has_aux=True)
    state = step.init(np.float32(1.0), seed=7)
    eager = []
    for _ in range(3):
        state, _, aux = step.apply_eagerly(state, np.ones(256, np.float32))
        eager.append(aux)
    for backend in BACKENDS:
        for got, want in zip(_masks(backend, seed=7, steps=3), eager):
            assert np.array_equal(got["first"], want["first"]), backend
            assert np.array_equal(got["second"], want["second"]), backend


def test_rng_outside_training_is_the_identity_when_not_training() -> None:
    rng = gc.Rng(gc.random.key(0), 0)
    x = np.arange(4.0, dtype=np.float32)
    assert rng.dropout(x, 0.5, train=False) is x


# -- model state (BatchNorm running statistics) ------------------------------------------

BN = nn.BatchNorm(3)


def _bn_loss(p: Any, x: Any, y: Any, model_state: Any) -> Any:
    h, new_state = BN(p["bn"], model_state["bn"], x @ p["w"], train=True)
    return np.mean((h - y) ** 2), {"bn": new_state}


@pytest.mark.parametrize("backend", BACKENDS)
def test_model_state_flows_through_the_step(backend) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(2.0, 3.0, size=(16, 4)).astype(np.float32)
    y = rng.normal(size=(16, 3)).astype(np.float32)
    params = {"w": rng.normal(size=(4, 3)).astype(np.float32), "bn": BN.init()}
    step = gc.train_step(_bn_loss, optim.Adam(0.01), backend=backend)
    compiled = step.init(params, model_state={"bn": BN.init_state()})
    eager = step.init(params, model_state={"bn": BN.init_state()})
    compiled, _ = step(compiled, x, y)
    # One step moves the running mean a tenth of the way from 0 to the batch mean.
    np.testing.assert_allclose(
        compiled.model_state["bn"]["mean"], 0.1 * (x @ params["w"]).mean(axis=0), **F32
    )
    eager, _ = step.apply_eagerly(eager, x, y)
    for _ in range(2):
        compiled, _ = step(compiled, x, y)
        eager, _ = step.apply_eagerly(eager, x, y)
    for c, e in zip(tree_leaves(compiled), tree_leaves(eager)):
        np.testing.assert_allclose(c, e, **F32)


def _aux_and_state_loss(p: Any, x: Any, model_state: Any) -> Any:
    total = model_state["seen"] + x.shape[0]
    return np.sum(p * x) ** 2, {"total": total}, {"seen": total}


def test_aux_and_model_state_together() -> None:
    step = gc.train_step(_aux_and_state_loss, optim.SGD(0.01), backend=BACKENDS[0], has_aux=True)
    state = step.init(np.ones(2, np.float32), model_state={"seen": np.int64(0)})
    for _ in range(3):
        state, _, aux = step(state, np.ones(2, np.float32))
    assert int(state.model_state["seen"]) == 6 and int(aux["total"]) == 6


# -- misuse ----------------------------------------------------------------------------


def test_a_loss_with_the_wrong_return_shape_is_reported() -> None:
    step = gc.train_step(lambda p, x: p.sum() * x.sum(), optim.SGD(0.1), has_aux=True)
    state = step.init(np.ones(2, np.float32))
    with pytest.raises(gc.InputError, match=r"must return \(loss, aux\)"):
        step(state, np.ones(2, np.float32))


def test_model_state_must_be_given_to_init() -> None:
    step = gc.train_step(_bn_loss, optim.SGD(0.1))
    with pytest.raises(gc.InputError, match="model_state"):
        step.init({"w": np.ones((4, 3), np.float32), "bn": BN.init()})


def test_the_step_wants_a_train_state() -> None:
    step = gc.train_step(_regression_loss, optim.SGD(0.1))
    with pytest.raises(gc.InputError, match="TrainState"):
        step({"w": np.ones((5, 3))}, np.ones((2, 5)), np.ones((2, 3)))
