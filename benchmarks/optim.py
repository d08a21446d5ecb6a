"""The update rules of the workloads, once per library, all computing PyTorch's formulas.

Adam follows `torch.optim.Adam` (bias corrections applied to the step size and to
sqrt(v), eps added after), SGD with momentum follows `torch.optim.SGD` (dampening 0, the
buffer starts at the first gradient, which equals starting it at zero). The cross-check
(`--check`) relies on every implementation doing exactly this arithmetic.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class NumpyAdam:
    """Adam updating NumPy parameters in place, with preallocated state and scratch."""

    def __init__(self, params: dict[str, np.ndarray], lr: float, b1: float, b2: float, eps: float):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.tmp = {k: np.empty_like(p) for k, p in params.items()}
        self.t = 0

    def reset(self) -> None:
        for m, v in zip(self.m.values(), self.v.values()):
            m.fill(0.0)
            v.fill(0.0)
        self.t = 0

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        step_size = self.lr / (1.0 - self.b1**self.t)
        inv_sqrt_bc2 = 1.0 / math.sqrt(1.0 - self.b2**self.t)
        for k, p in params.items():
            self.update_one(p, grads[k], self.m[k], self.v[k], self.tmp[k], step_size, inv_sqrt_bc2)

    def update_one(self, p, g, m, v, tmp, step_size: float, inv_sqrt_bc2: float) -> None:
        m *= self.b1
        np.multiply(g, 1.0 - self.b1, out=tmp)
        m += tmp
        v *= self.b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp *= inv_sqrt_bc2
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        p -= tmp


class NumpySGD:
    """SGD (with optional momentum) updating NumPy parameters in place."""

    def __init__(self, params: dict[str, np.ndarray], lr: float, momentum: float = 0.0):
        self.lr, self.momentum = lr, momentum
        self.buf = {k: np.zeros_like(p) for k, p in params.items()} if momentum else {}
        self.tmp = {k: np.empty_like(p) for k, p in params.items()}

    def reset(self) -> None:
        for buf in self.buf.values():
            buf.fill(0.0)

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for k, p in params.items():
            g = grads[k]
            if self.momentum:
                buf = self.buf[k]
                buf *= self.momentum
                buf += g
                g = buf
            np.multiply(g, self.lr, out=self.tmp[k])
            p -= self.tmp[k]


def numpy_optimizer(kind: str, params: dict[str, np.ndarray], hyper: dict[str, float]) -> Any:
    if kind == "adam":
        return NumpyAdam(params, hyper["lr"], hyper["b1"], hyper["b2"], hyper["eps"])
    if kind == "sgd":
        return NumpySGD(params, hyper["lr"], hyper.get("momentum", 0.0))
    raise ValueError(f"unknown optimizer {kind!r}")


def torch_optimizer(kind: str, params: list[Any], hyper: dict[str, float]) -> Any:
    import torch

    if kind == "adam":
        betas = (hyper["b1"], hyper["b2"])
        return torch.optim.Adam(params, lr=hyper["lr"], betas=betas, eps=hyper["eps"])
    if kind == "sgd":
        return torch.optim.SGD(params, lr=hyper["lr"], momentum=hyper.get("momentum", 0.0))
    raise ValueError(f"unknown optimizer {kind!r}")


def jax_optimizer(kind: str, hyper: dict[str, float]) -> tuple[Any, Any]:
    """`(init(params) -> state, update(params, grads, state) -> (params, state))`, jittable."""
    import jax
    import jax.numpy as jnp

    tree_map = jax.tree_util.tree_map
    if kind == "adam":
        lr, b1, b2, eps = hyper["lr"], hyper["b1"], hyper["b2"], hyper["eps"]

        def init(params: Any) -> Any:
            zeros = tree_map(jnp.zeros_like, params)
            return {"m": zeros, "v": tree_map(jnp.zeros_like, params), "t": jnp.zeros((), "int32")}

        def update(params: Any, grads: Any, state: Any) -> tuple[Any, Any]:
            t = state["t"] + 1
            tf = t.astype(jnp.float32)
            step_size = lr / (1.0 - b1**tf)
            inv_sqrt_bc2 = 1.0 / jnp.sqrt(1.0 - b2**tf)
            m = tree_map(lambda m, g: b1 * m + (1.0 - b1) * g, state["m"], grads)
            v = tree_map(lambda v, g: b2 * v + (1.0 - b2) * g * g, state["v"], grads)
            new = tree_map(
                lambda p, m, v: p - step_size * (m / (jnp.sqrt(v) * inv_sqrt_bc2 + eps)),
                params,
                m,
                v,
            )
            return new, {"m": m, "v": v, "t": t}

        return init, update
    if kind == "sgd":
        lr, mu = hyper["lr"], hyper.get("momentum", 0.0)

        def init_sgd(params: Any) -> Any:
            return tree_map(jnp.zeros_like, params) if mu else ()

        def update_sgd(params: Any, grads: Any, state: Any) -> tuple[Any, Any]:
            if mu:
                state = tree_map(lambda b, g: mu * b + g, state, grads)
                return tree_map(lambda p, b: p - lr * b, params, state), state
            return tree_map(lambda p, g: p - lr * g, params, grads), state

        return init_sgd, update_sgd
    raise ValueError(f"unknown optimizer {kind!r}")
