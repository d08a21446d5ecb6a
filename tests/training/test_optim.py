"""Optimizers: first steps against hand-written references, state, tracing, errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import graphc as gc
import graphc.nn as nn
import graphc.optim as optim
import graphc.random as grandom
from graphc.pytree import tree_leaves

RNG = np.random.default_rng(3)
PARAMS = {"w": RNG.normal(size=(3, 2)), "b": [RNG.normal(size=2), None]}
GRADS = [
    {"w": RNG.normal(size=(3, 2)), "b": [RNG.normal(size=2), None]} for _ in range(5)
]  # a different gradient at each of five steps


def _run(opt: optim.Optimizer, params: Any = PARAMS, grads: Any = GRADS) -> tuple[Any, Any]:
    state = opt.init(params)
    for g in grads:
        params, state = opt.update(g, state, params)
    return params, state


def _reference(step_fn: Any, init_slots: dict[str, float] | None = None) -> list[np.ndarray]:
    """Apply a per-element update rule written with Python floats to every leaf."""
    results = []
    for leaf_index, p0 in enumerate(tree_leaves(PARAMS)):
        out = np.empty_like(p0)
        for idx in np.ndindex(p0.shape):
            p = float(p0[idx])
            slots = dict(init_slots or {})
            for t, g_tree in enumerate(GRADS, start=1):
                g = float(tree_leaves(g_tree)[leaf_index][idx])
                p = step_fn(p, g, slots, t)
            out[idx] = p
        results.append(out)
    return results


def _assert_leaves_close(tree: Any, expected: list[np.ndarray]) -> None:
    leaves = tree_leaves(tree)
    assert len(leaves) == len(expected)
    for got, want in zip(leaves, expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_plain_sgd() -> None:
    params, state = _run(optim.SGD(0.1))
    _assert_leaves_close(params, _reference(lambda p, g, s, t: p - 0.1 * g))
    assert int(state["step"]) == 5 and set(state) == {"step"}


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_and_weight_decay(nesterov: bool) -> None:
    lr, mu, wd = 0.05, 0.9, 0.01

    def rule(p: float, g: float, s: dict[str, float], t: int) -> float:
        g = g + wd * p
        s["buf"] = g if t == 1 else mu * s["buf"] + g  # torch.optim.SGD's first step
        step = g + mu * s["buf"] if nesterov else s["buf"]
        return p - lr * step

    params, state = _run(optim.SGD(lr, momentum=mu, nesterov=nesterov, weight_decay=wd))
    _assert_leaves_close(params, _reference(rule))
    assert set(state) == {"step", "momentum"}


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam(weight_decay: float) -> None:
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-6

    def rule(p: float, g: float, s: dict[str, float], t: int) -> float:
        g = g + weight_decay * p
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        m_hat = s["m"] / (1 - b1**t)
        v_hat = s["v"] / (1 - b2**t)
        return p - lr * m_hat / (math.sqrt(v_hat) + eps)

    opt = optim.Adam(lr, b1, b2, eps, weight_decay=weight_decay)
    params, state = _run(opt)
    _assert_leaves_close(params, _reference(rule, {"m": 0.0, "v": 0.0}))
    assert set(state) == {"step", "m", "v"} and int(state["step"]) == 5


def test_adamw_decouples_weight_decay() -> None:
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.3

    def rule(p: float, g: float, s: dict[str, float], t: int) -> float:
        p = p * (1 - lr * wd)
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        return p - lr * (s["m"] / (1 - b1**t)) / (math.sqrt(s["v"] / (1 - b2**t)) + eps)

    params, _ = _run(optim.AdamW(lr, b1, b2, eps, weight_decay=wd))
    _assert_leaves_close(params, _reference(rule, {"m": 0.0, "v": 0.0}))


@pytest.mark.parametrize(("centered", "momentum"), [(False, 0.0), (True, 0.0), (True, 0.7)])
def test_rmsprop(centered: bool, momentum: float) -> None:
    lr, alpha, eps, wd = 0.02, 0.9, 1e-8, 0.05

    def rule(p: float, g: float, s: dict[str, float], t: int) -> float:
        g = g + wd * p
        s["sq"] = alpha * s["sq"] + (1 - alpha) * g * g
        mean_sq = s["sq"]
        if centered:
            s["avg"] = alpha * s["avg"] + (1 - alpha) * g
            mean_sq = mean_sq - s["avg"] ** 2
        step = g / (math.sqrt(mean_sq) + eps)
        if momentum:
            s["buf"] = momentum * s["buf"] + step
            step = s["buf"]
        return p - lr * step

    opt = optim.RMSprop(lr, alpha, eps, momentum=momentum, centered=centered, weight_decay=wd)
    params, _ = _run(opt)
    _assert_leaves_close(params, _reference(rule, {"sq": 0.0, "avg": 0.0, "buf": 0.0}))


def test_adagrad() -> None:
    lr, eps, acc0 = 0.1, 1e-10, 0.2

    def rule(p: float, g: float, s: dict[str, float], t: int) -> float:
        s["sum"] += g * g
        return p - lr * g / (math.sqrt(s["sum"]) + eps)

    params, state = _run(optim.Adagrad(lr, eps, initial_accumulator=acc0))
    _assert_leaves_close(params, _reference(rule, {"sum": acc0}))
    assert set(state) == {"step", "sum"}


def test_schedule_is_read_at_the_step_count_before_the_update() -> None:
    sched = optim.step_decay(1.0, 2, gamma=0.5)  # 1, 1, 0.5, 0.5, 0.25
    params, _ = _run(optim.SGD(sched))
    rates = [1.0, 1.0, 0.5, 0.5, 0.25]
    _assert_leaves_close(params, _reference(lambda p, g, s, t: p - rates[t - 1] * g))


def test_clip_norm_option_clips_before_the_update() -> None:
    grads = [{"w": np.full((3, 2), 10.0), "b": [np.zeros(2), None]}]
    params, _ = _run(optim.SGD(1.0, clip_norm=1.0), grads=grads)
    np.testing.assert_allclose(params["w"], PARAMS["w"] - 1 / math.sqrt(6))


def test_dtypes_are_preserved_in_float32() -> None:
    params = {"w": np.ones((2, 2), np.float32)}
    grads = {"w": np.full((2, 2), 0.5, np.float32)}
    sched = optim.warmup_cosine(0.1, 2, 10)
    for opt in (
        optim.SGD(sched, momentum=0.9),
        optim.Adam(sched),
        optim.AdamW(sched),
        optim.RMSprop(sched, centered=True),
        optim.Adagrad(sched),
    ):
        state = opt.init(params)
        p, state = opt.update(grads, state, params)
        p, state = opt.update(grads, state, p)
        for leaf in tree_leaves((p, state)):
            assert np.asarray(leaf).dtype in (np.float32, np.int64), (type(opt), leaf)
        assert state["step"].dtype == np.int64 and int(state["step"]) == 2


def test_update_does_not_modify_its_inputs() -> None:
    params = {"w": np.ones(3)}
    opt = optim.Adam(0.1)
    state = opt.init(params)
    before = [leaf.copy() for leaf in tree_leaves((params, state))]
    opt.update({"w": np.ones(3)}, state, params)
    for a, b in zip(tree_leaves((params, state)), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "opt",
    [
        optim.SGD(optim.cosine_decay(0.1, 10), momentum=0.9, nesterov=True, weight_decay=1e-3),
        optim.Adam(optim.warmup_cosine(0.01, 2, 8), clip_norm=1.0),
        optim.AdamW(optim.exponential_decay(0.01, 0.5, 3)),
        optim.RMSprop(0.01, momentum=0.5, centered=True),
        optim.Adagrad(optim.linear_warmup(0.1, 3)),
    ],
    ids=["sgd", "adam", "adamw", "rmsprop", "adagrad"],
)
def test_one_traced_update_serves_every_step(opt: optim.Optimizer) -> None:
    params = {"w": RNG.normal(size=(3, 2)).astype(np.float32), "b": np.zeros(2, np.float32)}
    grads = {"w": RNG.normal(size=(3, 2)).astype(np.float32), "b": np.ones(2, np.float32)}
    state = opt.init(params)
    g = gc.trace(opt.update, grads, state, params)
    for _ in range(4):
        flat = gc.ir.interpret(g, *tree_leaves([grads, state, params]))
        params_next, state_next = opt.update(grads, state, params)
        eager = tree_leaves((params_next, state_next))
        for t, e in zip(flat, eager):
            assert t.dtype == np.asarray(e).dtype
            np.testing.assert_allclose(t, e, rtol=1e-6, atol=1e-7)
        params, state = params_next, state_next


def test_structure_mismatch_and_bad_hyperparameters_are_clear_errors() -> None:
    opt = optim.Adam()
    state = opt.init(PARAMS)
    with pytest.raises(optim.OptimizerError, match="gradients have structure"):
        opt.update({"w": GRADS[0]["w"]}, state, PARAMS)
    with pytest.raises(optim.OptimizerError, match="init"):
        opt.update(GRADS[0], optim.SGD(0.1).init(PARAMS), PARAMS)
    for make in (
        lambda: optim.SGD(-1.0),
        lambda: optim.SGD(0.1, nesterov=True),
        lambda: optim.Adam(b1=1.0),
        lambda: optim.RMSprop(alpha=1.5),
        lambda: optim.Adagrad(initial_accumulator=-1.0),
        lambda: optim.SGD(0.1, clip_norm=0.0),
    ):
        with pytest.raises(gc.GraphcError):
            make()


def test_forward_backward_and_update_trace_into_one_graph() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=16)
    l1, l2 = nn.Linear(6, 8), nn.Linear(8, 3)
    params = {"l1": l1.init(0), "l2": l2.init(1)}
    opt = optim.AdamW(optim.warmup_cosine(0.01, 2, 10), clip_norm=1.0)

    def loss(p: Any, x: Any, y: Any, key: Any, step: Any) -> Any:
        h = nn.dropout(nn.gelu(l1(p["l1"], x)), 0.2, key=key, step=step)
        return nn.cross_entropy(l2(p["l2"], h), y) + nn.l2_penalty(p, 1e-4)

    def train_step(p: Any, s: Any, x: Any, y: Any, key: Any) -> Any:
        value, grads = gc.value_and_grad(loss)(p, x, y, key, s["step"])
        p, s = opt.update(grads, s, p)
        return p, s, value

    state = opt.init(params)
    key = grandom.key(5)
    g = gc.trace(train_step, params, state, x, y, key)
    assert sum(n.op == "random_bits" for n in g.nodes) == 1
    eager = (params, state)
    for _ in range(3):
        flat = gc.ir.interpret(g, *tree_leaves([eager[0], eager[1], x, y, key]))
        p, s, value = train_step(eager[0], eager[1], x, y, key)
        for t, e in zip(flat, tree_leaves((p, s, value))):
            assert t.dtype == np.asarray(e).dtype
            np.testing.assert_allclose(t, e, rtol=2e-5, atol=1e-6)
        eager = (p, s)
    assert int(eager[1]["step"]) == 3
