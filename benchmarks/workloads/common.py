"""Pieces several workloads share: initial parameters, the PyTorch layer stack, JAX's step."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from ..core import Problem, Runner, cycle

LAYER_NAMES = tuple(str(i) for i in range(1, 100))


def uniform_mlp(sizes: tuple[int, ...], seed: int, scale: Callable[[int, int], float]) -> dict:
    """Parameters `w1, b1, w2, b2, ...` with `w_i` of shape (fan_in, fan_out), biases zero."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for name, fan_in, fan_out in zip(LAYER_NAMES, sizes[:-1], sizes[1:]):
        limit = scale(fan_in, fan_out)
        w = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        params["w" + name] = w.astype(np.float32)
        params["b" + name] = np.zeros(fan_out, np.float32)
    return params


def he_uniform_mlp(sizes: tuple[int, ...], seed: int) -> dict:
    return uniform_mlp(sizes, seed, lambda fan_in, fan_out: float(np.sqrt(6.0 / fan_in)))


def glorot_uniform_mlp(sizes: tuple[int, ...], seed: int) -> dict:
    return uniform_mlp(
        sizes, seed, lambda fan_in, fan_out: float(np.sqrt(6.0 / (fan_in + fan_out)))
    )


def torch_linear_stack(
    torch: Any, params: dict[str, np.ndarray], n_layers: int, activation: Any, last_plain: bool
) -> tuple[Any, Callable[[], dict[str, np.ndarray]], Callable[[], None]]:
    """An `nn.Sequential` of Linear(+activation) layers holding copies of `params`.

    Returns the model, `state()` and `load()`. nn.Linear stores its weight as
    (fan_out, fan_in); `state()` maps back to the canonical (fan_in, fan_out) layout for
    the cross-check, `load()` copies `params` in again.
    """
    layers: list[Any] = []
    linears: list[Any] = []
    for i, name in enumerate(LAYER_NAMES[:n_layers]):
        w = params["w" + name]
        lin = torch.nn.Linear(w.shape[0], w.shape[1])
        layers.append(lin)
        linears.append(lin)
        if not (last_plain and i == n_layers - 1):
            layers.append(activation())
    model = torch.nn.Sequential(*layers)

    def load() -> None:
        with torch.no_grad():
            for name, lin in zip(LAYER_NAMES, linears):
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(params["w" + name].T)))
                lin.bias.copy_(torch.from_numpy(params["b" + name]))

    load()

    def state() -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name, lin in zip(LAYER_NAMES, linears):
            out["w" + name] = lin.weight.detach().numpy().T.copy()
            out["b" + name] = lin.bias.detach().numpy().copy()
        return out

    return model, state, load


def torch_reset(load: Callable[[], None], opt: Any, feed: cycle) -> Callable[[], None]:
    """A `Runner.reset` for PyTorch: reload the parameters, drop the optimizer's state (it
    is created again on the next step, as at the start of training), rewind the feed."""

    def reset() -> None:
        load()
        opt.state.clear()
        feed.reset()

    return reset


def jax_runner(
    jax: Any,
    loss_fn: Callable[..., Any],
    optimizer: Any,
    problem: Problem,
    batches: list[tuple[np.ndarray, ...]] | None = None,
) -> Runner:
    """`jax.jit` of loss, gradients and update as one function, parameters and state donated.

    `batches` replaces the problem's batches when the JAX model wants another layout.
    """
    import jax.numpy as jnp

    init, update = optimizer

    @partial(jax.jit, donate_argnums=(0, 1))
    def train(params: Any, opt_state: Any, *batch: Any) -> Any:
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        params, opt_state = update(params, grads, opt_state)
        return params, opt_state, loss

    def fresh() -> list[Any]:
        params = {k: jnp.array(v, copy=True) for k, v in problem.params.items()}
        return [params, init(params)]

    live = fresh()
    # Without jax_enable_x64, JAX holds integers as int32; convert once here, not per step.
    feed = cycle([tuple(jax.device_put(_x32(a)) for a in b) for b in batches or problem.batches])

    def step() -> Any:
        params, opt_state, loss = train(live[0], live[1], *feed())
        live[:] = [params, opt_state]
        jax.block_until_ready((params, opt_state, loss))
        return loss

    def reset() -> None:
        live[:] = fresh()
        feed.reset()

    return Runner(
        step=step, reset=reset, state=lambda: {k: np.asarray(v) for k, v in live[0].items()}
    )


def _x32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.int32) if a.dtype == np.int64 else a
