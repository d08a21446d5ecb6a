"""W3: value and gradient of sum(tanh(x)*sigmoid(2x) + 0.5*x*x - exp(-x*x)), 2^22 floats.

Pure elementwise work plus one reduction: it measures fusion and the throughput of
tanh/exp, not BLAS. The "state" compared by `--check` is the gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Problem, Runner, Workload, require
from ..graphc_entries import jit_entries, memory_note, require_graphc

SIZE, QUICK_SIZE = 2**22, 2**12


def _stateless() -> None:
    """Nothing to reset: every W3 step computes the same function of the same input."""


def make_problem(quick: bool) -> Problem:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(QUICK_SIZE if quick else SIZE, dtype=np.float32) * np.float32(2.0)
    return Problem(params={}, batches=[(x,)], hyper={})


def f(x: Any) -> Any:
    """The function as a user writes it for graphc, plain NumPy (sigmoid spelled out)."""
    sigmoid_2x = 1.0 / (1.0 + np.exp(-2.0 * x))
    return np.sum(np.tanh(x) * sigmoid_2x + 0.5 * x * x - np.exp(-x * x))


def numpy_impl(problem: Problem) -> Runner:
    """Value and hand-derived gradient with preallocated full-size buffers, all in place."""
    (x,) = problem.batches[0]
    t, s, e, a, grad = (np.empty_like(x) for _ in range(5))

    def step() -> Any:
        np.tanh(x, out=t)
        np.multiply(x, -2.0, out=s)
        np.exp(s, out=s)
        np.add(s, 1.0, out=s)
        np.reciprocal(s, out=s)  # sigmoid(2x)
        np.multiply(x, x, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)  # exp(-x*x)
        np.multiply(x, x, out=a)
        np.multiply(a, 0.5, out=a)
        np.subtract(a, e, out=a)
        np.multiply(t, s, out=grad)
        np.add(a, grad, out=a)
        value = a.sum()
        # d/dx = (1 - t^2) s + 2 t s (1 - s) + x + 2 x e
        np.multiply(t, t, out=grad)
        np.subtract(1.0, grad, out=grad)
        np.multiply(grad, s, out=grad)
        np.subtract(1.0, s, out=a)
        np.multiply(a, s, out=a)
        np.multiply(a, t, out=a)
        np.multiply(a, 2.0, out=a)
        np.add(grad, a, out=grad)
        np.multiply(x, e, out=a)
        np.multiply(a, 2.0, out=a)
        np.add(grad, a, out=grad)
        np.add(grad, x, out=grad)
        return value

    return Runner(step=step, reset=_stateless, state=lambda: {"grad": grad})


def torch_impl(problem: Problem) -> Runner:
    """Eager ops with autograd, torch.sigmoid."""
    torch = require("torch")
    x = torch.from_numpy(problem.batches[0][0].copy()).requires_grad_()

    def step() -> Any:
        x.grad = None
        value = torch.sum(torch.tanh(x) * torch.sigmoid(2.0 * x) + 0.5 * x * x - torch.exp(-x * x))
        value.backward()
        return value.detach()

    return Runner(step=step, reset=_stateless, state=lambda: {"grad": x.grad.numpy()})


def jax_impl(problem: Problem) -> Runner:
    """jax.jit(jax.value_and_grad(f)) with jax.nn.sigmoid."""
    jax = require("jax")
    jnp = require("jax.numpy")

    def f_jax(x: Any) -> Any:
        return jnp.sum(jnp.tanh(x) * jax.nn.sigmoid(2.0 * x) + 0.5 * x * x - jnp.exp(-x * x))

    jitted = jax.jit(jax.value_and_grad(f_jax))
    x = jax.device_put(problem.batches[0][0])
    last: list[Any] = [None]
    compiled: list[Any] = [jitted]

    def prepare() -> None:
        compiled[0] = jitted.lower(x).compile()

    def step() -> Any:
        value, grad = compiled[0](x)
        jax.block_until_ready((value, grad))
        last[0] = grad
        return value

    return Runner(
        step=step,
        reset=_stateless,
        state=lambda: {"grad": np.asarray(last[0])},
        prepare=prepare,
    )


def graphc_impl(problem: Problem, *, backend: str) -> Runner:
    """gc.jit(gc.value_and_grad(f)) on one backend (DESIGN §1)."""
    gc = require_graphc("jit", "value_and_grad")
    compiled = gc.jit(gc.value_and_grad(f), backend=backend)
    (x,) = problem.batches[0]
    last: list[Any] = [None]

    def step() -> Any:
        value, grad = compiled(x)
        last[0] = grad
        if not runner.note and backend != "interpret":  # once compiled
            runner.note = memory_note(compiled.memory) or " "
        return value

    def prepare() -> None:
        compiled.lower(x)

    runner = Runner(
        step=step,
        reset=_stateless,
        state=lambda: {"grad": np.asarray(last[0])},
        prepare=prepare if backend != "interpret" else None,
    )
    return runner


WORKLOAD = Workload(
    name="W3",
    title="value_and_grad of sum(tanh(x)*sigmoid(2x) + 0.5x^2 - exp(-x^2)), 2^22 f32",
    make_problem=make_problem,
    impls={
        "numpy": numpy_impl,
        "torch": torch_impl,
        "jax": jax_impl,
        **jit_entries(graphc_impl),
    },
    default_repeat=15,
)
