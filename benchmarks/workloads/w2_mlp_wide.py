"""W2: MLP 1024→4096→4096→1024 with ReLU, MSE, SGD with momentum, batch 256.

A training step dominated by six large GEMMs (about 38 GFLOP): it measures whether an
implementation adds anything beyond BLAS.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Problem, Runner, Workload, cycle, numpy_reset
from ..graphc_entries import training_entries
from ..optim import numpy_optimizer
from .common import he_uniform_mlp, jax_mlp, torch_mlp

SIZES = (1024, 4096, 4096, 1024)
QUICK_SIZES = (64, 128, 128, 32)
BATCH, QUICK_BATCH = 256, 32
HYPER = {"lr": 1e-2, "momentum": 0.9}


def make_problem(quick: bool) -> Problem:
    sizes, batch = (QUICK_SIZES, QUICK_BATCH) if quick else (SIZES, BATCH)
    rng = np.random.default_rng(2)
    batches = [
        (
            rng.standard_normal((batch, sizes[0]), dtype=np.float32),
            rng.standard_normal((batch, sizes[-1]), dtype=np.float32),
        )
        for _ in range(2)
    ]
    return Problem(params=he_uniform_mlp(sizes, seed=0), batches=batches, hyper=dict(HYPER))


def loss(params: dict[str, Any], x: Any, y: Any) -> Any:
    """The model as a user writes it for graphc, plain NumPy."""
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    h = np.maximum(h @ params["w2"] + params["b2"], 0.0)
    out = h @ params["w3"] + params["b3"]
    return np.mean((out - y) ** 2)


def numpy_impl(problem: Problem) -> Runner:
    """Hand-written forward and backward into preallocated buffers, momentum SGD in place."""
    p = {k: v.copy() for k, v in problem.params.items()}
    grads = {k: np.empty_like(v) for k, v in p.items()}
    opt = numpy_optimizer("sgd", p, problem.hyper)
    feed = cycle(problem.batches)
    n, f32 = problem.batches[0][0].shape[0], np.float32
    h1 = np.empty((n, p["w1"].shape[1]), f32)
    h2 = np.empty((n, p["w2"].shape[1]), f32)
    out = np.empty((n, p["w3"].shape[1]), f32)
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
        np.matmul(h2, p["w3"], out=out)
        np.add(out, p["b3"], out=out)
        np.subtract(out, y, out=out)
        loss = np.vdot(out, out) / out.size
        np.multiply(out, 2.0 / out.size, out=out)  # d loss / d out
        np.matmul(h2.T, out, out=grads["w3"])
        np.sum(out, axis=0, out=grads["b3"])
        np.matmul(out, p["w3"].T, out=d2)
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
    """nn.Linear/ReLU stack, F.mse_loss, torch.optim.SGD(momentum=0.9)."""
    return torch_mlp(problem, len(SIZES) - 1, "ReLU", True, "mse_loss", "sgd")


def jax_impl(problem: Problem) -> Runner:
    """jax.jit of value_and_grad + momentum SGD in one function, parameters donated."""
    return jax_mlp(problem, len(SIZES) - 1, "ReLU", True, "mse_loss", "sgd")


WORKLOAD = Workload(
    name="W2",
    title="MLP 1024-4096-4096-1024 ReLU, MSE, SGD momentum, batch 256 (train step)",
    make_problem=make_problem,
    impls={
        "numpy": numpy_impl,
        "torch": torch_impl,
        "jax": jax_impl,
        **training_entries(loss, "sgd"),
    },
    default_repeat=10,
)
