"""Layers as init/apply pairs over parameter dicts, plus their functional forms.

A layer object only holds hyperparameters. ``layer.init(rng)`` returns a fresh
parameter dict of NumPy arrays; ``layer.apply(params, x)`` (also
``layer(params, x)``) is a pure NumPy function of the parameters and input,
so a loss built from layers can be traced, differentiated and compiled.
Layers without parameters return ``{}`` from ``init``.

>>> layer = Linear(4, 3)
>>> params = layer.init(0)
>>> layer(params, np.ones((2, 4), np.float32)).shape
(2, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import random
from ..ir import OpTypeError
from ..primitives import bind
from . import init as initializers

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Linear",
    "MaxPool2d",
    "avg_pool2d",
    "conv2d",
    "dropout",
    "embedding",
    "flatten",
    "linear",
    "max_pool2d",
]

Initializer = Callable[..., np.ndarray]
Pair = int | Sequence[int]
Padding = int | str | Sequence[Any]


def _pair(value: Pair, what: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise OpTypeError(f"{what} must be an int or a pair of ints, got {value!r}")
    return pair[0], pair[1]


def _padding(
    padding: Padding, kernel: tuple[int, int], dilation: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Normalize padding to ((top, bottom), (left, right))."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        # 'same' keeps the size at stride 1; an odd total puts the extra row at the end.
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        rows, cols = ((t // 2, t - t // 2) for t in totals)
        return rows, cols
    if isinstance(padding, str):
        raise OpTypeError(f"padding must be 'same', 'valid', an int or pairs, not {padding!r}")
    if isinstance(padding, (int, np.integer)):
        return (int(padding), int(padding)), (int(padding), int(padding))
    items = list(padding)
    if len(items) == 2 and all(isinstance(p, (int, np.integer)) for p in items):
        return (int(items[0]), int(items[0])), (int(items[1]), int(items[1]))
    if len(items) == 2:
        return _pair(items[0], "padding"), _pair(items[1], "padding")
    raise OpTypeError(
        f"padding must be an int, (h, w) or ((top, bottom), (left, right)): {padding}"
    )


# -- Linear ------------------------------------------------------------------------


def linear(x: Any, w: Any, b: Any = None) -> Any:
    """x @ w + b, with ``w`` laid out (in, out).

    >>> linear(np.ones((1, 2)), np.ones((2, 3)), np.zeros(3))
    array([[2., 2., 2.]])
    """
    y = x @ w
    return y if b is None else y + b


@dataclass(frozen=True)
class Linear:
    """A dense layer: params ``{"w": (in, out), "b": (out,)}``.

    >>> Linear(3, 2).init(0)["w"].shape
    (3, 2)
    """

    in_features: int
    out_features: int
    bias: bool = True
    w_init: Initializer = initializers.glorot_uniform
    b_init: Initializer = initializers.zeros
    dtype: Any = np.float32

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        params = {"w": self.w_init(rng, (self.in_features, self.out_features), self.dtype)}
        if self.bias:
            params["b"] = self.b_init(rng, (self.out_features,), self.dtype)
        return params

    def apply(self, params: dict[str, Any], x: Any) -> Any:
        return linear(x, params["w"], params.get("b"))

    __call__ = apply


# -- Conv2d ------------------------------------------------------------------------


def conv2d(
    x: Any,
    w: Any,
    b: Any = None,
    *,
    stride: Pair = 1,
    padding: Padding = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> Any:
    """2-d cross-correlation of NCHW ``x`` with OIHW ``w``, plus a per-channel bias.

    ``padding`` is an int, ``(h, w)``, ``((top, bottom), (left, right))``,
    ``"valid"`` or ``"same"`` (for stride 1).

    >>> conv2d(np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3)), padding="same").shape
    (1, 2, 4, 4)
    """
    kernel = (int(w.shape[2]), int(w.shape[3]))
    dil = _pair(dilation, "dilation")
    y = bind(
        "conv2d",
        x,
        w,
        stride=_pair(stride, "stride"),
        padding=_padding(padding, kernel, dil),
        dilation=dil,
        groups=int(groups),
    )
    return y if b is None else y + b.reshape(1, -1, 1, 1)


@dataclass(frozen=True)
class Conv2d:
    """A 2-d convolution on NCHW input: params ``{"w": (out, in/groups, kh, kw), "b": (out,)}``.

    >>> Conv2d(1, 8, 3, padding=1).init(0)["w"].shape
    (8, 1, 3, 3)
    """

    in_channels: int
    out_channels: int
    kernel_size: Pair
    stride: Pair = 1
    padding: Padding = 0
    dilation: Pair = 1
    groups: int = 1
    bias: bool = True
    w_init: Initializer = initializers.glorot_uniform
    b_init: Initializer = initializers.zeros
    dtype: Any = np.float32

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        kh, kw = _pair(self.kernel_size, "kernel_size")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise OpTypeError(
                f"Conv2d: groups={self.groups} must divide in_channels={self.in_channels} "
                f"and out_channels={self.out_channels}"
            )
        shape = (self.out_channels, self.in_channels // self.groups, kh, kw)
        params = {"w": self.w_init(rng, shape, self.dtype)}
        if self.bias:
            params["b"] = self.b_init(rng, (self.out_channels,), self.dtype)
        return params

    def apply(self, params: dict[str, Any], x: Any) -> Any:
        return conv2d(
            x,
            params["w"],
            params.get("b"),
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
        )

    __call__ = apply


# -- pooling -----------------------------------------------------------------------


def max_pool2d(x: Any, window: Pair, stride: Pair | None = None, padding: Padding = 0) -> Any:
    """Maximum over ``window`` patches of an NCHW input; stride defaults to the window.

    >>> max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    win = _pair(window, "window")
    return bind(
        "max_pool2d",
        x,
        window=win,
        stride=_pair(win if stride is None else stride, "stride"),
        padding=_padding(padding, win, (1, 1)),
    )


def avg_pool2d(
    x: Any,
    window: Pair,
    stride: Pair | None = None,
    padding: Padding = 0,
    count_include_pad: bool = True,
) -> Any:
    """Mean over ``window`` patches of an NCHW input; stride defaults to the window.

    >>> avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    win = _pair(window, "window")
    return bind(
        "avg_pool2d",
        x,
        window=win,
        stride=_pair(win if stride is None else stride, "stride"),
        padding=_padding(padding, win, (1, 1)),
        count_include_pad=bool(count_include_pad),
    )


@dataclass(frozen=True)
class MaxPool2d:
    """Layer form of :func:`max_pool2d` (no parameters).

    >>> MaxPool2d(2)({}, np.zeros((1, 3, 8, 8))).shape
    (1, 3, 4, 4)
    """

    window: Pair
    stride: Pair | None = None
    padding: Padding = 0

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        return {}

    def apply(self, params: dict[str, Any], x: Any) -> Any:
        return max_pool2d(x, self.window, self.stride, self.padding)

    __call__ = apply


@dataclass(frozen=True)
class AvgPool2d:
    """Layer form of :func:`avg_pool2d` (no parameters).

    >>> AvgPool2d(2)({}, np.zeros((1, 3, 8, 8))).shape
    (1, 3, 4, 4)
    """

    window: Pair
    stride: Pair | None = None
    padding: Padding = 0
    count_include_pad: bool = True

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        return {}

    def apply(self, params: dict[str, Any], x: Any) -> Any:
        return avg_pool2d(x, self.window, self.stride, self.padding, self.count_include_pad)

    __call__ = apply


def flatten(x: Any) -> Any:
    """Collapse every axis after the first.

    >>> flatten(np.zeros((2, 3, 4))).shape
    (2, 12)
    """
    return x.reshape(x.shape[0], -1)


# -- Dropout -----------------------------------------------------------------------


def dropout(x: Any, rate: float, *, key: Any, step: Any, train: bool = True) -> Any:
    """Zero each element with probability ``rate`` and scale the rest by 1 / (1 - rate).

    The mask is drawn by the counter-based RNG under ``(key, step)``: the same
    key and step give the same mask eagerly and in every compiled backend. Give
    each dropout site its own key (``gc.random.fold_in(key, i)``). With
    ``train=False`` (or ``rate == 0``) it is the identity.

    >>> x = np.ones((2, 4), np.float32)
    >>> y = dropout(x, 0.5, key=random.key(0), step=3)
    >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    """
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise OpTypeError(f"dropout: rate must be in [0, 1), got {rate}")
    if not train or rate == 0.0:
        return x
    keep = random.bernoulli(key, 1.0 - rate, x.shape, counter=step)
    return np.where(keep, x * (1.0 / (1.0 - rate)), 0.0)


@dataclass(frozen=True)
class Dropout:
    """Layer form of :func:`dropout` (no parameters).

    >>> Dropout(0.1)({}, np.ones(3), key=random.key(0), step=0, train=False)
    array([1., 1., 1.])
    """

    rate: float

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        return {}

    def apply(self, params: dict[str, Any], x: Any, *, key: Any, step: Any, train: bool) -> Any:
        return dropout(x, self.rate, key=key, step=step, train=train)

    __call__ = apply


# -- Embedding ---------------------------------------------------------------------


def embedding(weight: Any, ids: Any) -> Any:
    """Rows of ``weight`` picked by integer ``ids`` of any shape.

    >>> embedding(np.eye(3), np.array([[2, 0]])).shape
    (1, 2, 3)
    """
    return weight[ids]


@dataclass(frozen=True)
class Embedding:
    """A lookup table: params ``{"weight": (num_embeddings, dim)}``, initialized N(0, 1).

    >>> Embedding(10, 4).init(0)["weight"].shape
    (10, 4)
    """

    num_embeddings: int
    dim: int
    w_init: Initializer = initializers.normal
    dtype: Any = np.float32

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        return {"weight": self.w_init(rng, (self.num_embeddings, self.dim), self.dtype)}

    def apply(self, params: dict[str, Any], ids: Any) -> Any:
        return embedding(params["weight"], ids)

    __call__ = apply
