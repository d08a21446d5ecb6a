"""W6: 32 × (Linear 256→256 + tanh), batch 8192, MSE, plain SGD: activation memory.

Activation-heavy: the weights are 8 MiB, but each layer's output is 8 MiB and the
backward needs 31 of them (about 256 MiB). Without recomputation a training step cannot
plan fewer bytes than that; a kernel that also keeps each tanh's derivative beside it
doubles it. With `memory_budget=128 MiB` it must recompute to fit (`graphc-llvm-budget`).
`graphc-llvm-relu` runs the same stack with ReLU in place of tanh: its derivative is
`out > 0`, so the plan keeps the same activations and no mask or pre-activation beside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Problem, Runner, Workload
from ..graphc_entries import training_entries, value_and_grad_entry
from .common import glorot_uniform_mlp, jax_mlp, torch_mlp
from .w4_deep_tanh import loss
from .w4_deep_tanh import numpy_impl as w4_numpy_impl

DEPTH, WIDTH, BATCH = 32, 256, 8192
QUICK_DEPTH, QUICK_WIDTH, QUICK_BATCH = 4, 32, 64
BUDGET = 128 << 20  # half the activations the backward needs
HYPER = {"lr": 1e-2}


def make_problem(quick: bool) -> Problem:
    depth, width, batch = (
        (QUICK_DEPTH, QUICK_WIDTH, QUICK_BATCH) if quick else (DEPTH, WIDTH, BATCH)
    )
    rng = np.random.default_rng(6)
    batches = [
        (
            rng.standard_normal((batch, width), dtype=np.float32),
            rng.uniform(-0.5, 0.5, size=(batch, width)).astype(np.float32),
        )
        for _ in range(2)
    ]
    params = glorot_uniform_mlp((width,) * (depth + 1), seed=0)
    activations = (depth - 1) * batch * width * 4
    # Quick sizes: half the activations, but a budget may not be below the inputs.
    inputs = sum(p.nbytes for p in params.values()) + sum(a.nbytes for a in batches[0])
    budget = BUDGET if not quick else max(activations // 2, inputs)
    return Problem(
        params=params,
        batches=batches,
        hyper=dict(HYPER),
        info={"depth": depth, "activation_bytes": activations, "budget": budget},
    )


def numpy_impl(problem: Problem) -> Runner:
    """Hand-written backprop, each layer's update as soon as its gradient exists (W4's)."""
    return w4_numpy_impl(problem)


def torch_impl(problem: Problem) -> Runner:
    return torch_mlp(problem, problem.info["depth"], "Tanh", False, "mse_loss", "sgd")


def jax_impl(problem: Problem) -> Runner:
    return jax_mlp(problem, problem.info["depth"], "Tanh", False, "mse_loss", "sgd")


def loss_relu(params: dict[str, Any], x: Any, y: Any) -> Any:
    """W6 with ReLU layers, as a user writes it for graphc."""
    h = x
    for i in range(1, len(params) // 2 + 1):
        h = np.maximum(h @ params[f"w{i}"] + params[f"b{i}"], 0.0)
    return np.mean((h - y) ** 2)


def relu_entry(problem: Problem) -> Runner:
    """`gc.jit(gc.value_and_grad(loss_relu))` on LLVM: is the arena still the activations?"""
    return value_and_grad_entry(loss_relu, "sgd", problem, backend="llvm")


def budget_entry(problem: Problem) -> Runner:
    """`gc.jit(..., memory_budget=128 MiB)` on LLVM: the plan must fit by recomputing."""
    return value_and_grad_entry(
        loss, "sgd", problem, backend="llvm", memory_budget=problem.info["budget"]
    )


WORKLOAD = Workload(
    name="W6",
    title="32 x (Linear 256-256 + tanh), batch 8192, MSE, SGD (activation memory)",
    make_problem=make_problem,
    impls={
        "numpy": numpy_impl,
        "torch": torch_impl,
        "jax": jax_impl,
        **training_entries(loss, "sgd"),
        "graphc-llvm-budget": budget_entry,
        "graphc-llvm-relu": relu_entry,
    },
    default_repeat=5,
)
