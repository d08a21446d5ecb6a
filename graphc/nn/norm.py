"""Normalization layers: BatchNorm (with running statistics as state) and LayerNorm.

BatchNorm's running mean and variance are not parameters: they are a separate
*state* pytree that ``apply`` takes and returns, so a compiled train step
carries them from step to step like the optimizer state.

>>> bn = BatchNorm(3)
>>> params, state = bn.init(0), bn.init_state()
>>> y, state = bn(params, state, np.random.default_rng(0).normal(size=(8, 3)), train=True)
>>> bool(np.allclose(y.mean(axis=0), 0.0, atol=1e-6)), state["mean"].shape
(True, (3,))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir import OpTypeError

__all__ = ["BatchNorm", "LayerNorm", "batch_norm", "layer_norm"]


def batch_norm(
    x: Any,
    scale: Any,
    bias: Any,
    running_mean: Any,
    running_var: Any,
    *,
    train: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
    sync: bool = False,
) -> tuple[Any, Any, Any]:
    """Normalize ``x`` per channel (axis 1) over the batch and any spatial axes.

    Returns ``(y, new_running_mean, new_running_var)``. In training the batch
    statistics normalize (biased variance) and the running ones move toward
    them: ``new = (1 - momentum) * old + momentum * batch``, with the unbiased
    batch variance, as PyTorch does. In evaluation the running statistics
    normalize and are returned unchanged. ``scale``/``bias`` may be None.

    ``sync=True`` (data-parallel training) takes the batch statistics over
    the whole global batch: the per-channel sums are added over the ranks by
    ``all_reduce`` (two of them, for the mean and then the variance), and
    gradients flow back through them. Otherwise each rank normalizes with
    its own batch (a data-parallel step then averages the running
    statistics over the ranks, so replicas stay identical).

    >>> x = np.array([[1.0], [3.0]])
    >>> y, m, v = batch_norm(x, None, None, np.zeros(1), np.ones(1), train=True, eps=0.0)
    >>> y.ravel().tolist(), m.tolist(), v.tolist()
    ([-1.0, 1.0], [0.2], [1.1])
    """
    if len(x.shape) < 2:
        raise OpTypeError(f"batch_norm needs (N, C, ...) input, got shape {tuple(x.shape)}")
    axes = (0, *range(2, len(x.shape)))
    channel_shape = (1, x.shape[1]) + (1,) * (len(x.shape) - 2)
    if train:
        count = math.prod(x.shape) // x.shape[1]
        if sync:
            from ..distributed import all_reduce, world

            count *= world().size
            mean = all_reduce(x.sum(axis=axes)) / count
            centered = x - mean.reshape(channel_shape)
            var = all_reduce((centered * centered).sum(axis=axes)) / count
        else:
            mean = x.mean(axis=axes)
            centered = x - mean.reshape(channel_shape)
            var = (centered * centered).mean(axis=axes)
        unbiased = var * (count / max(count - 1, 1))
        new_mean = running_mean * (1.0 - momentum) + mean * momentum
        new_var = running_var * (1.0 - momentum) + unbiased * momentum
    else:
        mean, var = running_mean, running_var
        centered = x - mean.reshape(channel_shape)
        new_mean, new_var = running_mean, running_var
    y = centered * (1.0 / np.sqrt(var + eps)).reshape(channel_shape)
    if scale is not None:
        y = y * scale.reshape(channel_shape)
    if bias is not None:
        y = y + bias.reshape(channel_shape)
    return y, new_mean, new_var


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalization over axis 1 of (N, C) or (N, C, H, W) input.

    ``init`` gives ``{"scale": ones, "bias": zeros}`` (``{}`` without
    ``affine``), ``init_state`` gives ``{"mean": zeros, "var": ones}``, and
    ``apply(params, state, x, train=...)`` returns ``(y, new_state)``.
    ``sync=True`` normalizes with the statistics of the global batch of a
    data-parallel step (see :func:`batch_norm`).
    """

    num_features: int
    momentum: float = 0.1
    eps: float = 1e-5
    affine: bool = True
    dtype: Any = np.float32
    sync: bool = False

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        if not self.affine:
            return {}
        return {
            "scale": np.ones(self.num_features, self.dtype),
            "bias": np.zeros(self.num_features, self.dtype),
        }

    def init_state(self) -> dict[str, np.ndarray]:
        return {
            "mean": np.zeros(self.num_features, self.dtype),
            "var": np.ones(self.num_features, self.dtype),
        }

    def apply(
        self, params: dict[str, Any], state: dict[str, Any], x: Any, *, train: bool
    ) -> tuple[Any, dict[str, Any]]:
        y, mean, var = batch_norm(
            x,
            params.get("scale"),
            params.get("bias"),
            state["mean"],
            state["var"],
            train=train,
            momentum=self.momentum,
            eps=self.eps,
            sync=self.sync,
        )
        return y, {"mean": mean, "var": var}

    __call__ = apply


def layer_norm(x: Any, scale: Any, bias: Any, *, ndim: int = 1, eps: float = 1e-5) -> Any:
    """Normalize over the last ``ndim`` axes, then scale and shift (either may be None).

    >>> layer_norm(np.array([[1.0, 3.0]]), None, None, eps=0.0)
    array([[-1.,  1.]])
    """
    axes = tuple(range(len(x.shape) - ndim, len(x.shape)))
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)
    y = centered * (1.0 / np.sqrt(var + eps))
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y


@dataclass(frozen=True)
class LayerNorm:
    """Layer normalization over the trailing ``shape``: params ``{"scale", "bias"}`` of that shape.

    >>> LayerNorm(4)(LayerNorm(4).init(), np.arange(8.0).reshape(2, 4)).shape
    (2, 4)
    """

    shape: int | Sequence[int]
    eps: float = 1e-5
    affine: bool = True
    dtype: Any = np.float32
    sync: bool = False

    @property
    def normalized_shape(self) -> tuple[int, ...]:
        if isinstance(self.shape, (int, np.integer)):
            return (int(self.shape),)
        return tuple(int(d) for d in self.shape)

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        if not self.affine:
            return {}
        return {
            "scale": np.ones(self.normalized_shape, self.dtype),
            "bias": np.zeros(self.normalized_shape, self.dtype),
        }

    def apply(self, params: dict[str, Any], x: Any) -> Any:
        shape = self.normalized_shape
        if tuple(x.shape[len(x.shape) - len(shape) :]) != shape:
            raise OpTypeError(
                f"LayerNorm{shape}: input shape {tuple(x.shape)} does not end with {shape}"
            )
        return layer_norm(x, params.get("scale"), params.get("bias"), ndim=len(shape), eps=self.eps)

    __call__ = apply
