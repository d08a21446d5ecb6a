"""Schedules at their boundary steps, traced with the step as an input; clipping; L1/L2."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import graphc as gc
import graphc.nn as nn
import graphc.optim as optim


def _at(schedule: Any, steps: list[int]) -> list[float]:
    return [float(schedule(s)) for s in steps]


def test_constant_and_step_decay() -> None:
    assert _at(optim.constant(0.3), [0, 10**6]) == [0.3, 0.3]
    got = _at(optim.step_decay(0.1, 30, 0.5), [0, 29, 30, 59, 60, 61])
    assert got == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rel=1e-15)


def test_exponential_decay() -> None:
    smooth = optim.exponential_decay(2.0, 0.1, decay_steps=4)
    assert _at(smooth, [0, 2, 4, 8]) == pytest.approx([2.0, 2.0 * 0.1**0.5, 0.2, 0.02], rel=1e-14)
    stairs = optim.exponential_decay(2.0, 0.1, decay_steps=4, staircase=True)
    assert _at(stairs, [0, 3, 4, 7, 8]) == pytest.approx([2.0, 2.0, 0.2, 0.2, 0.02], rel=1e-14)


def test_cosine_decay() -> None:
    sched = optim.cosine_decay(1.0, 100, alpha=0.1)
    expected = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / 100)) for s in (0, 1, 50, 99, 100)]
    assert _at(sched, [0, 1, 50, 99, 100]) == pytest.approx(expected, rel=1e-14)
    assert float(sched(1000)) == pytest.approx(0.1)


def test_linear_and_warmup() -> None:
    assert _at(optim.linear(1.0, 0.2, 8), [0, 4, 8, 9]) == pytest.approx([1.0, 0.6, 0.2, 0.2])
    warm = optim.linear_warmup(0.5, 10, init=0.1)
    assert _at(warm, [0, 1, 9, 10, 11]) == pytest.approx([0.1, 0.14, 0.46, 0.5, 0.5])


def test_join_restarts_each_piece_at_its_boundary() -> None:
    sched = optim.join(
        [optim.constant(1.0), optim.linear(0.5, 0.0, 10), optim.constant(0.01)], [5, 15]
    )
    got = _at(sched, [0, 4, 5, 6, 14, 15, 100])
    assert got == pytest.approx([1.0, 1.0, 0.5, 0.45, 0.05, 0.01, 0.01])
    pieces = optim.piecewise_constant([3, 6], [0.3, 0.2, 0.1])
    assert _at(pieces, [2, 3, 5, 6]) == pytest.approx([0.3, 0.2, 0.2, 0.1])


def test_warmup_cosine_boundaries() -> None:
    sched = optim.warmup_cosine(1.0, warmup_steps=4, decay_steps=8, end=0.2)
    got = _at(sched, [0, 2, 4, 8, 12, 20])
    assert got == pytest.approx([0.0, 0.5, 1.0, 0.6, 0.2, 0.2])


def test_schedules_accept_integer_arrays() -> None:
    steps = np.arange(0, 12, dtype=np.int64)
    sched = optim.warmup_cosine(1.0, 4, 8)
    np.testing.assert_allclose(sched(steps), [float(sched(int(s))) for s in steps])


@pytest.mark.parametrize(
    "schedule",
    [
        optim.step_decay(0.1, 3, 0.5),
        optim.exponential_decay(0.1, 0.5, 3),
        optim.exponential_decay(0.1, 0.5, 3, staircase=True),
        optim.cosine_decay(0.1, 7, alpha=0.05),
        optim.linear_warmup(0.1, 4),
        optim.warmup_cosine(0.1, 3, 6),
        optim.piecewise_constant([2, 5], [1.0, 0.5, 0.1]),
    ],
)
def test_one_trace_serves_every_step(schedule: Any) -> None:
    g = gc.trace(schedule, np.int64(0))
    for step in (0, 1, 2, 3, 4, 5, 6, 7, 50):
        traced = gc.ir.interpret(g, np.int64(step))[0]
        assert float(traced) == pytest.approx(float(schedule(step)), rel=1e-12)


def test_bad_schedule_arguments() -> None:
    with pytest.raises(gc.GraphcError):
        optim.cosine_decay(0.1, 0)
    with pytest.raises(gc.GraphcError):
        optim.join([optim.constant(1.0)], [3])
    with pytest.raises(gc.GraphcError):
        optim.join([optim.constant(1.0)] * 3, [5, 2])


# -- clipping and regularization -----------------------------------------------------


def test_global_norm_and_clipping() -> None:
    grads = {"a": np.array([3.0, 0.0]), "b": [np.array([[4.0]]), None]}
    assert float(optim.global_norm(grads)) == 5.0
    clipped, norm = optim.clip_by_global_norm(grads, 2.5)
    assert float(norm) == 5.0
    np.testing.assert_allclose(clipped["a"], [1.5, 0.0])
    np.testing.assert_allclose(clipped["b"][0], [[2.0]])
    assert clipped["b"][1] is None
    np.testing.assert_allclose(float(optim.global_norm(clipped)), 2.5)
    # Inside the ball nothing changes, and zero gradients stay zero (no 0/0).
    same, _ = optim.clip_by_global_norm(grads, 10.0)
    np.testing.assert_array_equal(same["a"], grads["a"])
    zeros, norm0 = optim.clip_by_global_norm({"a": np.zeros(3)}, 1.0)
    assert float(norm0) == 0.0 and not np.isnan(zeros["a"]).any()
    with pytest.raises(gc.GraphcError):
        optim.clip_by_global_norm(grads, 0.0)


def test_clipping_keeps_float32_and_traces() -> None:
    grads = {"a": np.full(4, 3.0, np.float32), "b": np.full(2, -1.0, np.float32)}
    clipped, norm = optim.clip_by_global_norm(grads, 1.0)
    assert clipped["a"].dtype == np.float32 and norm.dtype == np.float32
    g = gc.trace(lambda t: optim.clip_by_global_norm(t, 1.0), grads)
    outs = gc.ir.interpret(g, grads["a"], grads["b"])
    np.testing.assert_allclose(outs[0], clipped["a"], rtol=1e-6)
    np.testing.assert_allclose(outs[1], clipped["b"], rtol=1e-6)


def test_regularizers_add_the_penalty_gradients() -> None:
    params = {"w": np.array([-2.0, 0.0, 3.0])}
    grads = {"w": np.array([0.1, 0.2, 0.3])}
    l2 = optim.l2_regularize(grads, params, 0.05)
    autodiff_l2 = gc.grad(lambda p: nn.l2_penalty(p, 0.05))(params)
    np.testing.assert_allclose(l2["w"], grads["w"] + autodiff_l2["w"])
    l1 = optim.l1_regularize(grads, params, 0.05)
    np.testing.assert_allclose(l1["w"], [0.05, 0.2, 0.35])
