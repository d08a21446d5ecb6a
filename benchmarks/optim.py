"""The update rules of the workloads, once per library, all computing PyTorch's formulas.

Adam follows `torch.optim.Adam` (bias corrections applied to the step size and to
sqrt(v), eps added after), SGD with momentum follows `torch.optim.SGD` (dampening 0, the
buffer starts at the first gradient, which equals starting it at zero). The cross-check
(`--check`) relies on every implementation doing exactly this arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

# The NumPy updates walk each parameter in chunks of this many elements, through one
# small scratch buffer: no temporary the size of a parameter (W2's largest is 64 MiB), and
# the chunk's operands stay in cache between the update's several passes.
CHUNK = 1 << 16


def _chunks(*arrays: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    # Flattening must give views, or the in-place updates would land in copies.
    arrays = tuple(np.ascontiguousarray(a) for a in arrays)
    flat = [a.reshape(-1) for a in arrays]
    for start in range(0, flat[0].size, CHUNK):
        yield tuple(a[start : start + CHUNK] for a in flat)


class NumpyAdam:
    """Adam updating NumPy parameters in place."""

    def __init__(self, params: dict[str, np.ndarray], lr: float, b1: float, b2: float, eps: float):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.scratch = np.empty(CHUNK, np.float32)
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
        b1, b2, eps = self.b1, self.b2, self.eps
        for k, p in params.items():
            assert p.flags.c_contiguous, "parameters are updated through flat views"
            for p_, g, m, v in _chunks(p, grads[k], self.m[k], self.v[k]):
                tmp = self.scratch[: p_.size]
                m *= b1
                np.multiply(g, 1.0 - b1, out=tmp)
                m += tmp
                v *= b2
                np.multiply(g, g, out=tmp)
                tmp *= 1.0 - b2
                v += tmp
                np.sqrt(v, out=tmp)
                tmp *= inv_sqrt_bc2
                tmp += eps
                np.divide(m, tmp, out=tmp)
                tmp *= step_size
                p_ -= tmp


class NumpySGD:
    """SGD (with optional momentum) updating NumPy parameters in place."""

    def __init__(self, params: dict[str, np.ndarray], lr: float, momentum: float = 0.0):
        self.lr, self.momentum = lr, momentum
        self.buf = {k: np.zeros_like(p) for k, p in params.items()} if momentum else {}
        self.scratch = np.empty(CHUNK, np.float32)

    def reset(self) -> None:
        for buf in self.buf.values():
            buf.fill(0.0)

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for k, p in params.items():
            assert p.flags.c_contiguous, "parameters are updated through flat views"
            if self.momentum:
                for p_, g, buf in _chunks(p, grads[k], self.buf[k]):
                    buf *= self.momentum
                    buf += g
                    tmp = self.scratch[: p_.size]
                    np.multiply(buf, self.lr, out=tmp)
                    p_ -= tmp
            else:
                for p_, g in _chunks(p, grads[k]):
                    tmp = self.scratch[: p_.size]
                    np.multiply(g, self.lr, out=tmp)
                    p_ -= tmp


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
