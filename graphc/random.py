"""Counter-based random numbers that compile into graphs.

Every draw is a pure function of a *key* (an i64 scalar) and a *counter* (an
integer scalar, typically the training step), computed by the ``random_bits``
op (Philox-4x32-10). Nothing is hidden in global state, so the same key and
counter give the same numbers eagerly, under the interpreter and on every
backend, and a compiled step takes the step number as an ordinary input
instead of retracing.

>>> import graphc as gc
>>> k = gc.random.key(0)
>>> u = gc.random.uniform(k, (2, 3), counter=7)
>>> bool(np.all((0 <= u) & (u < 1))), u.dtype
(True, dtype('float32'))
>>> bool(np.array_equal(u, gc.random.uniform(k, (2, 3), counter=7)))
True

Use :func:`fold_in` or :func:`split` to give independent streams to
different consumers (two dropout layers, say) that share one key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .ir import OpTypeError
from .primitives import bind

__all__ = ["bernoulli", "bits", "fold_in", "key", "normal", "split", "uniform"]

# fold_in/split draw under the parent key xor-ed with these tags, so derived keys
# come from streams of their own rather than from the parent's bits() values.
_FOLD_TAG = 0x3C6EF372FE94F82B
_SPLIT_TAG = 0x1F83D9ABFB41BD6B
_MANTISSA_BITS = {np.dtype(np.float32): 24, np.dtype(np.float64): 53}


def _i64(value: Any) -> Any:
    """Python ints become i64 scalars (wrapping into the signed range)."""
    if isinstance(value, (bool, np.bool_)):
        raise OpTypeError(f"random: keys and counters are integers, got {value!r}")
    if isinstance(value, int):
        return np.array(((value + 2**63) % 2**64) - 2**63, dtype=np.int64)
    return value


def _shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)


def _float_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in _MANTISSA_BITS:
        raise OpTypeError(f"random: floats must be float32 or float64, got {dt}")
    return dt


def key(seed: int) -> np.ndarray:
    """A key from an integer seed: the seed's 64 bits as a 0-d int64 array.

    >>> key(42)
    array(42)
    """
    return np.asarray(_i64(int(seed)))


def bits(key: Any, shape: int | Sequence[int] = (), *, counter: Any = 0) -> Any:
    """An int64 array of 64 random bits per element, drawn under ``(key, counter)``.

    >>> bits(key(1), (3,), counter=0).dtype
    dtype('int64')
    """
    return bind("random_bits", _i64(key), _i64(counter), shape=_shape(shape))


def uniform(
    key: Any,
    shape: int | Sequence[int] = (),
    dtype: Any = np.float32,
    *,
    counter: Any = 0,
    low: float = 0.0,
    high: float = 1.0,
) -> Any:
    """Uniform floats in ``[low, high)``.

    The unit draw is ``m * 2**-p`` with ``m`` a random ``p``-bit integer
    (p = 24 for float32, 53 for float64), so it is exactly representable and
    never reaches 1; scaling to ``[low, high)`` rounds in ``dtype``.

    >>> u = uniform(key(3), (1000,), np.float64, low=-1.0, high=1.0)
    >>> bool(u.min() >= -1.0 and u.max() < 1.0)
    True
    """
    dt = _float_dtype(dtype)
    p = _MANTISSA_BITS[dt]
    r = bits(key, shape, counter=counter)
    u = (r & ((1 << p) - 1)).astype(dt) * 2.0**-p
    if (low, high) != (0.0, 1.0):
        u = u * (high - low) + low
    return u


def normal(
    key: Any,
    shape: int | Sequence[int] = (),
    dtype: Any = np.float32,
    *,
    counter: Any = 0,
    mean: float = 0.0,
    std: float = 1.0,
) -> Any:
    """Normal samples by the Box-Muller transform.

    The radius uses ``1 - u`` in (0, 1], so the logarithm is finite; the
    tails are therefore cut at about 5.8 std in float32 and 8.6 in float64.

    >>> z = normal(key(0), (20000,), np.float64)
    >>> bool(abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05)
    True
    """
    u = uniform(key, (2, *_shape(shape)), dtype, counter=counter)
    radius = np.sqrt(-2.0 * np.log(1.0 - u[0]))
    z = radius * np.cos((2.0 * np.pi) * u[1])
    if (mean, std) != (0.0, 1.0):
        z = z * std + mean
    return z


def bernoulli(key: Any, p: Any = 0.5, shape: int | Sequence[int] = (), *, counter: Any = 0) -> Any:
    """Booleans that are True with probability ``p`` (resolution 2**-24).

    >>> bernoulli(key(0), 0.3, (4,)).dtype
    dtype('bool')
    """
    return uniform(key, shape, np.float32, counter=counter) < p


def fold_in(key: Any, data: Any) -> Any:
    """A new key derived from ``key`` and an integer ``data`` (a layer index, a step).

    >>> bool(fold_in(key(0), 1) != fold_in(key(0), 2))
    True
    """
    return bits(_i64(key) ^ _FOLD_TAG, (), counter=data)


def split(key: Any, num: int = 2) -> Any:
    """``num`` new keys as an int64 array of shape ``(num,)``; index it to use one.

    >>> k1, k2 = split(key(0))
    >>> bool(k1 != k2)
    True
    """
    return bits(_i64(key) ^ _SPLIT_TAG, (int(num),), counter=0)
