"""W4: 32 × (Linear 1024→1024 + tanh), batch 512, MSE, plain SGD: time and peak memory.

Deep and narrow: 128 MiB of weights and 64 MiB of activations. Whether all gradients
exist at once (parameters + gradients + activations) or each is applied as soon as it is
computed (parameters + activations) shows in the peak-memory column.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from ..core import Problem, Runner, Workload, cycle, numpy_reset
from ..graphc_entries import train_step_entry, training_entries
from .common import glorot_uniform_mlp, jax_mlp, torch_mlp

DEPTH, WIDTH, BATCH = 32, 1024, 512
QUICK_DEPTH, QUICK_WIDTH, QUICK_BATCH = 4, 64, 16
HYPER = {"lr": 1e-2}
# graphc-llvm-ts-budget: intermediates held to 92% of the activations the backward keeps,
# so that five of the 32 layers (evenly spread) are computed again instead of kept.
BUDGET_FRACTION = 0.92


def make_problem(quick: bool) -> Problem:
    depth, width, batch = (
        (QUICK_DEPTH, QUICK_WIDTH, QUICK_BATCH) if quick else (DEPTH, WIDTH, BATCH)
    )
    rng = np.random.default_rng(4)
    batches = [
        (
            rng.standard_normal((batch, width), dtype=np.float32),
            rng.uniform(-0.5, 0.5, size=(batch, width)).astype(np.float32),
        )
        for _ in range(2)
    ]
    params = glorot_uniform_mlp((width,) * (depth + 1), seed=0)
    activation_bytes = (depth - 1) * batch * width * 4  # the last layer's is not kept
    info = {
        "depth": depth,
        "activation_bytes": activation_bytes,
        "memory_budget": int(BUDGET_FRACTION * activation_bytes),
    }
    return Problem(params=params, batches=batches, hyper=dict(HYPER), info=info)


def loss(params: dict[str, Any], x: Any, y: Any) -> Any:
    """The model as a user writes it for graphc, plain NumPy."""
    h = x
    for i in range(1, len(params) // 2 + 1):
        h = np.tanh(h @ params[f"w{i}"] + params[f"b{i}"])
    return np.mean((h - y) ** 2)


def numpy_impl(problem: Problem) -> Runner:
    """Hand-written backprop that applies each layer's SGD update as soon as its gradient
    exists, so one gradient buffer is reused for all 32 layers (the memory-frugal way an
    engineer writing backprop by hand would do it)."""
    p = {k: v.copy() for k, v in problem.params.items()}
    depth = len(p) // 2
    lr = problem.hyper["lr"]
    feed = cycle(problem.batches)
    n, width = problem.batches[0][0].shape
    acts = [np.empty((n, width), np.float32) for _ in range(depth)]
    d, dz = np.empty((n, width), np.float32), np.empty((n, width), np.float32)
    g_w, g_b = np.empty((width, width), np.float32), np.empty(width, np.float32)

    def step() -> Any:
        x, y = feed()
        h = x
        for i, a in enumerate(acts):
            np.matmul(h, p[f"w{i + 1}"], out=a)
            np.add(a, p[f"b{i + 1}"], out=a)
            np.tanh(a, out=a)
            h = a
        np.subtract(h, y, out=d)
        loss = np.vdot(d, d) / d.size
        np.multiply(d, 2.0 / d.size, out=d)
        for i in reversed(range(depth)):
            w, b = p[f"w{i + 1}"], p[f"b{i + 1}"]
            np.multiply(acts[i], acts[i], out=dz)
            np.subtract(1.0, dz, out=dz)
            np.multiply(dz, d, out=dz)  # through tanh
            below = acts[i - 1] if i else x
            np.matmul(below.T, dz, out=g_w)
            np.sum(dz, axis=0, out=g_b)
            if i:
                np.matmul(dz, w.T, out=d)  # before w changes
            np.multiply(g_w, lr, out=g_w)
            np.subtract(w, g_w, out=w)
            np.multiply(g_b, lr, out=g_b)
            np.subtract(b, g_b, out=b)
        return loss

    return Runner(step=step, reset=numpy_reset(p, problem.params, feed), state=lambda: p)


def torch_impl(problem: Problem) -> Runner:
    """nn.Sequential of Linear+Tanh, F.mse_loss, torch.optim.SGD."""
    return torch_mlp(problem, problem.info["depth"], "Tanh", False, "mse_loss", "sgd")


def jax_impl(problem: Problem) -> Runner:
    """jax.jit of value_and_grad + SGD in one function, parameters donated."""
    return jax_mlp(problem, problem.info["depth"], "Tanh", False, "mse_loss", "sgd")


WORKLOAD = Workload(
    name="W4",
    title="32 x (Linear 1024-1024 + tanh), batch 512, MSE, SGD (train step; peak memory)",
    make_problem=make_problem,
    impls={
        "numpy": numpy_impl,
        "torch": torch_impl,
        "jax": jax_impl,
        **training_entries(loss, "sgd"),
        "graphc-llvm-ts-budget": partial(
            train_step_entry, loss, "sgd", backend="llvm", budgeted=True
        ),
    },
    default_repeat=7,
)
