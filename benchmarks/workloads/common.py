"""Pieces several workloads share: initial parameters, the PyTorch layer stack, JAX's step,
and the PyTorch and JAX runners of the MLP workloads (W1, W2, W4)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from ..core import Problem, Runner, cycle, require
from ..optim import jax_optimizer, torch_optimizer

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
    device_batches = [tuple(jax.device_put(_x32(a)) for a in b) for b in batches or problem.batches]
    feed = cycle(device_batches)
    compiled: list[Any] = [train]

    def prepare() -> None:
        # Ahead-of-time: the executable the steps then call, compiled without running.
        compiled[0] = train.lower(live[0], live[1], *device_batches[0]).compile()

    def step() -> Any:
        params, opt_state, loss = compiled[0](live[0], live[1], *feed())
        live[:] = [params, opt_state]
        jax.block_until_ready((params, opt_state, loss))
        return loss

    def reset() -> None:
        live[:] = fresh()
        feed.reset()

    return Runner(
        step=step,
        reset=reset,
        state=lambda: {k: np.asarray(v) for k, v in live[0].items()},
        prepare=prepare,
    )


def torch_mlp(
    problem: Problem, n_layers: int, activation: str, last_plain: bool, loss: str, optimizer: str
) -> Runner:
    """A PyTorch train step over the `torch_linear_stack` of `problem.params`.

    `activation` names a `torch.nn` module ("ReLU", "Tanh"), `loss` a
    `torch.nn.functional` function ("cross_entropy", "mse_loss"), `optimizer` a
    `benchmarks.optim` rule ("adam", "sgd"); `last_plain` leaves the last layer linear.
    """
    torch = require("torch")
    model, state, load = torch_linear_stack(
        torch, problem.params, n_layers, getattr(torch.nn, activation), last_plain
    )
    opt = torch_optimizer(optimizer, list(model.parameters()), problem.hyper)
    feed = cycle([(torch.from_numpy(x), torch.from_numpy(y)) for x, y in problem.batches])
    loss_fn = getattr(torch.nn.functional, loss)

    def step() -> Any:
        x, y = feed()
        opt.zero_grad(set_to_none=True)
        value = loss_fn(model(x), y)
        value.backward()
        opt.step()
        return value.detach()

    return Runner(step=step, reset=torch_reset(load, opt, feed), state=state)


def jax_mlp(
    problem: Problem, n_layers: int, activation: str, last_plain: bool, loss: str, optimizer: str
) -> Runner:
    """The same model as `torch_mlp` (same argument names) as a `jax_runner`."""
    jax = require("jax")
    jnp = require("jax.numpy")
    act = {"ReLU": jax.nn.relu, "Tanh": jnp.tanh}[activation]

    def cross_entropy(h: Any, y: Any) -> Any:
        logp = jax.nn.log_softmax(h, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def mse_loss(h: Any, y: Any) -> Any:
        return jnp.mean((h - y) ** 2)

    loss_fn = {"cross_entropy": cross_entropy, "mse_loss": mse_loss}[loss]

    def loss_jax(params: Any, x: Any, y: Any) -> Any:
        h = x
        for i, name in enumerate(LAYER_NAMES[:n_layers]):
            h = h @ params["w" + name] + params["b" + name]
            if not (last_plain and i == n_layers - 1):
                h = act(h)
        return loss_fn(h, y)

    return jax_runner(jax, loss_jax, jax_optimizer(optimizer, problem.hyper), problem)


def _x32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.int32) if a.dtype == np.int64 else a
