"""A character-level RNN (the benchmark's W5 model, small) trained through
gc.scan matches the same model with its time loop unrolled in Python:
losses, gradients and the parameters after a few SGD steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import graphc as gc

from .test_scan import BACKENDS, assert_trees_close

VOCAB, HIDDEN, SEQ, BATCH = 11, 8, 12, 3


def cross_entropy(hidden: Any, params: dict[str, Any], targets: Any) -> Any:
    logits = hidden @ params["why"] + params["by"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(targets)), targets])


def loss_unrolled(params: dict[str, Any], xs: Any, ys: Any) -> Any:
    """W5's model as written for graphc before scan: the loop unrolled."""
    batch, seq = xs.shape
    h = np.zeros((batch, params["whh"].shape[0]))
    hs = []
    for t in range(seq):
        h = np.tanh(params["wxh"][xs[:, t]] + h @ params["whh"] + params["bh"])
        hs.append(h)
    hidden = np.stack(hs).reshape(seq * batch, -1)
    return cross_entropy(hidden, params, ys.T.reshape(-1))


def loss_scan(params: dict[str, Any], xs: Any, ys: Any) -> Any:
    """The same model with the time loop as one scan (time-major xs)."""
    batch, seq = xs.shape

    def cell(h: Any, x_t: Any) -> Any:
        h = np.tanh(params["wxh"][x_t] + h @ params["whh"] + params["bh"])
        return h, h

    _, hs = gc.scan(cell, np.zeros((batch, params["whh"].shape[0])), xs.T)
    return cross_entropy(hs.reshape(seq * batch, -1), params, ys.T.reshape(-1))


def problem(seed: int = 0) -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    params = {
        "wxh": rng.standard_normal((VOCAB, HIDDEN)) * 0.3,
        "whh": rng.standard_normal((HIDDEN, HIDDEN)) * (0.9 / np.sqrt(HIDDEN)),
        "bh": np.zeros(HIDDEN),
        "why": rng.standard_normal((HIDDEN, VOCAB)) / np.sqrt(HIDDEN),
        "by": np.zeros(VOCAB),
    }
    text = rng.integers(0, VOCAB, 400)
    batches = []
    for _ in range(3):
        starts = rng.integers(0, len(text) - SEQ - 1, BATCH)
        window = np.stack([text[s : s + SEQ + 1] for s in starts])
        batches.append((window[:, :-1].copy(), window[:, 1:].copy()))
    return params, batches


def test_loss_and_gradients_match_the_unrolled_model() -> None:
    params, batches = problem()
    xs, ys = batches[0]
    want = gc.value_and_grad(loss_unrolled)(params, xs, ys)
    assert_trees_close(gc.value_and_grad(loss_scan)(params, xs, ys), want)
    gc.check_grads(loss_scan, (params, xs, ys))


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_matches_the_unrolled_model(backend: str) -> None:
    def train(loss: Any) -> tuple[list[float], dict[str, np.ndarray]]:
        params, batches = problem()
        step = gc.jit(gc.value_and_grad(loss), backend=backend)
        losses = []
        for k in range(6):
            xs, ys = batches[k % len(batches)]
            value, grads = step(params, xs, ys)
            params = {name: params[name] - 0.5 * grads[name] for name in params}
            losses.append(float(value))
        return losses, params

    got_losses, got_params = train(loss_scan)
    want_losses, want_params = train(loss_unrolled)
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-9)
    assert got_losses[-1] < got_losses[0]  # it does learn
    assert_trees_close(got_params, want_params)
