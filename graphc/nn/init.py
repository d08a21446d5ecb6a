"""Parameter initializers.

Every initializer has the signature ``init(rng, shape, dtype=np.float32)``;
``rng`` is a ``np.random.Generator`` or an integer seed, so initialization is
reproducible without global state. Hyperparameters are keyword-only and can be
bound with ``functools.partial``.

Fans follow graphc's layouts: a 2-d weight is ``(in, out)`` as in ``x @ w``;
a 3-d or higher weight is ``(out, in, *kernel)`` as in conv2d's OIHW, whose
fans are multiplied by the kernel's size.

>>> w = glorot_uniform(0, (256, 128))
>>> w.dtype, bool(np.abs(w).max() <= np.sqrt(6 / (256 + 128)))
(dtype('float32'), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir import OpTypeError

__all__ = [
    "constant",
    "fans",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "normal",
    "ones",
    "orthogonal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "zeros",
]

Rng = np.random.Generator | int | None
Shape = int | Sequence[int]


def _shape(shape: Shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)


def _generator(rng: Rng) -> np.random.Generator:
    return np.random.default_rng(rng)


def _float(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise OpTypeError(f"initializers make float32 or float64 arrays, not {dt}")
    return dt


def fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of this shape.

    >>> fans((784, 100)), fans((16, 3, 5, 5))
    ((784, 100), (75, 400))
    """
    shape = _shape(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def zeros(rng: Rng, shape: Shape, dtype: Any = np.float32) -> np.ndarray:
    """All zeros (``rng`` is ignored; it keeps the signature uniform).

    >>> zeros(None, 3)
    array([0., 0., 0.], dtype=float32)
    """
    return np.zeros(_shape(shape), _float(dtype))


def ones(rng: Rng, shape: Shape, dtype: Any = np.float32) -> np.ndarray:
    """All ones (``rng`` is ignored).

    >>> ones(None, 2)
    array([1., 1.], dtype=float32)
    """
    return np.ones(_shape(shape), _float(dtype))


def constant(value: float) -> Any:
    """An initializer filling with ``value``.

    >>> constant(0.5)(None, 2)
    array([0.5, 0.5], dtype=float32)
    """

    def init(rng: Rng, shape: Shape, dtype: Any = np.float32) -> np.ndarray:
        return np.full(_shape(shape), value, _float(dtype))

    return init


def normal(
    rng: Rng, shape: Shape, dtype: Any = np.float32, *, std: float = 1.0, mean: float = 0.0
) -> np.ndarray:
    """Samples of N(mean, std**2).

    >>> normal(0, (2, 2), std=0.01).shape
    (2, 2)
    """
    dt = _float(dtype)
    return (_generator(rng).standard_normal(_shape(shape)) * std + mean).astype(dt)


def uniform(
    rng: Rng, shape: Shape, dtype: Any = np.float32, *, low: float = 0.0, high: float = 1.0
) -> np.ndarray:
    """Samples of U[low, high).

    >>> bool((uniform(0, 100, low=-1, high=1) >= -1).all())
    True
    """
    dt = _float(dtype)
    return _generator(rng).uniform(low, high, _shape(shape)).astype(dt)


def glorot_uniform(
    rng: Rng, shape: Shape, dtype: Any = np.float32, *, gain: float = 1.0
) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).

    >>> glorot_uniform(0, (3, 4)).shape
    (3, 4)
    """
    fan_in, fan_out = fans(shape)
    limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(rng, shape, dtype, low=-limit, high=limit)


def glorot_normal(
    rng: Rng, shape: Shape, dtype: Any = np.float32, *, gain: float = 1.0
) -> np.ndarray:
    """Glorot/Xavier normal: N(0, s**2) with s = gain * sqrt(2 / (fan_in + fan_out)).

    >>> glorot_normal(0, (3, 4)).dtype
    dtype('float32')
    """
    fan_in, fan_out = fans(shape)
    return normal(rng, shape, dtype, std=gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _he_fan(shape: Shape, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise OpTypeError(f"he initializers: mode must be 'fan_in' or 'fan_out', not {mode!r}")
    fan_in, fan_out = fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def he_uniform(
    rng: Rng,
    shape: Shape,
    dtype: Any = np.float32,
    *,
    gain: float = math.sqrt(2.0),
    mode: str = "fan_in",
) -> np.ndarray:
    """He/Kaiming uniform: U(-a, a) with a = gain * sqrt(3 / fan); gain sqrt(2) suits ReLU.

    >>> he_uniform(0, (16, 3, 3, 3)).shape
    (16, 3, 3, 3)
    """
    limit = gain * math.sqrt(3.0 / _he_fan(shape, mode))
    return uniform(rng, shape, dtype, low=-limit, high=limit)


def he_normal(
    rng: Rng,
    shape: Shape,
    dtype: Any = np.float32,
    *,
    gain: float = math.sqrt(2.0),
    mode: str = "fan_in",
) -> np.ndarray:
    """He/Kaiming normal: N(0, s**2) with s = gain / sqrt(fan).

    >>> he_normal(0, (64, 32)).shape
    (64, 32)
    """
    return normal(rng, shape, dtype, std=gain / math.sqrt(_he_fan(shape, mode)))


def orthogonal(rng: Rng, shape: Shape, dtype: Any = np.float32, *, gain: float = 1.0) -> np.ndarray:
    """A (semi-)orthogonal matrix scaled by ``gain`` (Saxe et al., 2014).

    The weight is viewed as ``shape[0]`` by ``prod(shape[1:])``; its rows are
    orthonormal when there are fewer rows than columns, its columns otherwise.

    >>> w = orthogonal(0, (4, 4), np.float64)
    >>> bool(np.allclose(w.T @ w, np.eye(4)))
    True
    """
    shape = _shape(shape)
    if len(shape) < 2:
        raise OpTypeError(f"orthogonal needs a shape with at least 2 dimensions, got {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    a = _generator(rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    # Multiplying by sign(diag(r)) makes Q unique, hence Haar-distributed.
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(_float(dtype))


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal
