"""W1: MLP 64→256→256→10 with ReLU, softmax cross-entropy, Adam, batch 128, digits.

One full training step (forward, backward, Adam update) on scikit-learn's bundled 8×8
digits, pixels scaled to [0, 1]. Small enough that per-call overhead shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Problem, Runner, Unavailable, Workload, cycle, numpy_reset
from ..graphc_entries import training_entries
from ..optim import numpy_optimizer
from .common import he_uniform_mlp, jax_mlp, torch_mlp

SIZES = (64, 256, 256, 10)
BATCH = 128
HYPER = {"lr": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8}


def make_problem(quick: bool) -> Problem:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise Unavailable(f"scikit-learn not installed ({e})") from None
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(x))
    n_batches = 2 if quick else len(x) // BATCH
    batches = [
        (np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx]))
        for idx in (order[i * BATCH : (i + 1) * BATCH] for i in range(n_batches))
    ]
    params = he_uniform_mlp(SIZES, seed=0)
    return Problem(params=params, batches=batches, hyper=dict(HYPER), info={"examples": len(x)})


def loss(params: dict[str, Any], x: Any, y: Any) -> Any:
    """The model as a user writes it for graphc (DESIGN §1), plain NumPy."""
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    h = np.maximum(h @ params["w2"] + params["b2"], 0.0)
    logits = h @ params["w3"] + params["b3"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(y)), y])


def numpy_impl(problem: Problem) -> Runner:
    """Hand-written forward and backward into preallocated buffers, Adam in place."""
    p = {k: v.copy() for k, v in problem.params.items()}
    grads = {k: np.empty_like(v) for k, v in p.items()}
    opt = numpy_optimizer("adam", p, problem.hyper)
    feed = cycle(problem.batches)
    n = problem.batches[0][0].shape[0]
    rows = np.arange(n)
    f32 = np.float32
    h1, h2 = np.empty((n, SIZES[1]), f32), np.empty((n, SIZES[2]), f32)
    z, e = np.empty((n, SIZES[3]), f32), np.empty((n, SIZES[3]), f32)
    d1, d2 = np.empty_like(h1), np.empty_like(h2)
    m1, m2 = np.empty(h1.shape, bool), np.empty(h2.shape, bool)

    def step() -> Any:
        x, y = feed()
        np.matmul(x, p["w1"], out=h1)
        np.add(h1, p["b1"], out=h1)
        np.maximum(h1, 0.0, out=h1)
        np.matmul(h1, p["w2"], out=h2)
        np.add(h2, p["b2"], out=h2)
        np.maximum(h2, 0.0, out=h2)
        np.matmul(h2, p["w3"], out=z)
        np.add(z, p["b3"], out=z)
        np.subtract(z, z.max(axis=1, keepdims=True), out=z)
        np.exp(z, out=e)
        s = e.sum(axis=1, keepdims=True)
        loss = np.log(s[:, 0]).mean() - z[rows, y].mean()
        # d loss / d logits = (softmax - onehot) / n
        np.divide(e, s, out=e)
        e[rows, y] -= 1.0
        np.multiply(e, 1.0 / n, out=e)
        np.matmul(h2.T, e, out=grads["w3"])
        np.sum(e, axis=0, out=grads["b3"])
        np.matmul(e, p["w3"].T, out=d2)
        np.greater(h2, 0.0, out=m2)
        np.multiply(d2, m2, out=d2)
        np.matmul(h1.T, d2, out=grads["w2"])
        np.sum(d2, axis=0, out=grads["b2"])
        np.matmul(d2, p["w2"].T, out=d1)
        np.greater(h1, 0.0, out=m1)
        np.multiply(d1, m1, out=d1)
        np.matmul(x.T, d1, out=grads["w1"])
        np.sum(d1, axis=0, out=grads["b1"])
        opt.update(p, grads)
        return loss

    return Runner(step=step, reset=numpy_reset(p, problem.params, opt, feed), state=lambda: p)


def torch_impl(problem: Problem) -> Runner:
    """nn.Linear/ReLU stack, F.cross_entropy, torch.optim.Adam: what a PyTorch user writes."""
    return torch_mlp(problem, len(SIZES) - 1, "ReLU", True, "cross_entropy", "adam")


def jax_impl(problem: Problem) -> Runner:
    """jax.jit of value_and_grad + Adam in one function, parameters donated."""
    return jax_mlp(problem, len(SIZES) - 1, "ReLU", True, "cross_entropy", "adam")


WORKLOAD = Workload(
    name="W1",
    title="MLP 64-256-256-10 ReLU, softmax CE, Adam, batch 128, digits (train step)",
    make_problem=make_problem,
    impls={
        "numpy": numpy_impl,
        "torch": torch_impl,
        "jax": jax_impl,
        **training_entries(loss, "adam"),
    },
    default_repeat=30,
)
