"""Losses and penalties against hand-derived references, extremes, gradients, tracing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import graphc as gc
import graphc.nn as nn

from .helpers import assert_traces_like_eager, numeric_grad

RNG = np.random.default_rng(0)
PRED = RNG.normal(size=(6, 3))
TARGET = RNG.normal(size=(6, 3))


def test_mse_and_mae() -> None:
    diffs = [(p - t) for p, t in zip(PRED.ravel(), TARGET.ravel())]
    assert math.isclose(float(nn.mse(PRED, TARGET)), sum(d * d for d in diffs) / len(diffs))
    assert math.isclose(float(nn.mae(PRED, TARGET)), sum(abs(d) for d in diffs) / len(diffs))
    assert math.isclose(float(nn.mse(PRED, TARGET, "sum")), sum(d * d for d in diffs))
    np.testing.assert_allclose(nn.mae(PRED, TARGET, "none"), np.abs(PRED - TARGET))
    assert nn.mse(PRED.astype(np.float32), TARGET.astype(np.float32)).dtype == np.float32
    with pytest.raises(gc.GraphcError, match="reduction"):
        nn.mse(PRED, TARGET, "avg")


def _ce_reference(logits: np.ndarray, labels: np.ndarray) -> list[float]:
    # -log(exp(z_y) / sum exp(z)), computed with Python's exact-ish fsum in
    # a shifted form so large logits stay representable.
    out = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        m = max(row)
        out.append(m + math.log(math.fsum(math.exp(v - m) for v in row)) - row[y])
    return out


def test_cross_entropy_matches_reference_including_huge_logits() -> None:
    logits = np.array([[2.0, -1.0, 0.5], [1e4, 0.0, -1e4], [-1e4, 1e4, 3.0], [7.0, 7.0, 7.0]])
    labels = np.array([2, 0, 0, 1])
    per_example = nn.cross_entropy(logits, labels, reduction="none")
    np.testing.assert_allclose(per_example, _ce_reference(logits, labels), rtol=1e-13)
    assert math.isclose(float(nn.cross_entropy(logits, labels)), float(per_example.mean()))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss32 = nn.cross_entropy(logits.astype(np.float32), labels)
    assert loss32.dtype == np.float32 and np.isfinite(loss32)


def test_cross_entropy_with_leading_axes() -> None:
    logits = RNG.normal(size=(2, 5, 4))
    labels = RNG.integers(0, 4, size=(2, 5))
    got = nn.cross_entropy(logits, labels, reduction="none")
    assert got.shape == (2, 5)
    np.testing.assert_allclose(
        got.ravel(), _ce_reference(logits.reshape(10, 4), labels.ravel()), rtol=1e-12
    )


def test_cross_entropy_gradient_is_softmax_minus_onehot() -> None:
    logits = np.array([[2.0, -1.0, 0.5], [1e4, 0.0, -1e4], [-800.0, 800.0, 3.0]])
    labels = np.array([2, 0, 0])
    g = gc.grad(nn.cross_entropy)(logits, labels)
    z = logits - logits.max(axis=1, keepdims=True)
    softmax = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = (softmax - np.eye(3)[labels]) / 3
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(g))


def test_binary_cross_entropy_with_logits() -> None:
    logits = np.array([-1e4, -50.0, -2.0, 0.0, 0.7, 50.0, 1e4])
    targets = np.array([1.0, 0.0, 0.3, 1.0, 0.0, 1.0, 0.0])

    # t * softplus(-x) + (1 - t) * softplus(x), with a careful scalar softplus.
    def softplus(v: float) -> float:
        return max(v, 0.0) + math.log1p(math.exp(-abs(v)))

    want = [t * softplus(-x) + (1 - t) * softplus(x) for x, t in zip(logits, targets)]
    got = nn.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-13)
    g = gc.grad(nn.binary_cross_entropy_with_logits)(logits, targets)
    sigmoid = np.array([1 / (1 + math.exp(-x)) if x > -700 else 0.0 for x in logits])
    np.testing.assert_allclose(g, (sigmoid - targets) / len(logits), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize(
    "loss",
    [
        lambda x: nn.mse(x, TARGET),
        lambda x: nn.mae(x, TARGET),
        lambda x: nn.binary_cross_entropy_with_logits(x, (TARGET > 0) * 1.0),
        lambda x: nn.cross_entropy(x, np.array([0, 1, 2, 2, 1, 0])),
    ],
    ids=["mse", "mae", "bce", "ce"],
)
def test_loss_gradients_match_finite_differences(loss: Any) -> None:
    np.testing.assert_allclose(gc.grad(loss)(PRED), numeric_grad(loss, PRED), rtol=1e-6, atol=1e-9)


def test_penalties() -> None:
    params = {"w": np.array([[1.0, -2.0]]), "b": [np.array([0.5]), None], "s": np.float64(-3.0)}
    assert math.isclose(float(nn.l1_penalty(params, 0.1)), 0.1 * (1 + 2 + 0.5 + 3))
    assert math.isclose(float(nn.l2_penalty(params, 0.1)), 0.1 * (1 + 4 + 0.25 + 9))
    g = gc.grad(lambda p: nn.l2_penalty(p, 0.1))(params)
    np.testing.assert_allclose(g["w"], 0.2 * params["w"])


def test_accuracy() -> None:
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert float(nn.accuracy(logits, np.array([1, 0, 0]))) == pytest.approx(2 / 3)


def test_losses_trace_like_eager() -> None:
    labels = np.array([0, 1, 2, 2, 1, 0])
    p32, t32 = PRED.astype(np.float32), TARGET.astype(np.float32)
    assert_traces_like_eager(lambda x, y: nn.cross_entropy(x, y), p32, labels)
    assert_traces_like_eager(lambda x, t: nn.binary_cross_entropy_with_logits(x, t), p32, t32)
    assert_traces_like_eager(lambda x, t: (nn.mse(x, t), nn.mae(x, t, "sum")), p32, t32)
    assert_traces_like_eager(lambda x, y: nn.accuracy(x, y), p32, labels)
