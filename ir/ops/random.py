"""Counter-based random numbers: ``random_bits``, built on Philox-4x32-10.

A counter-based generator is a pure function of (key, counter), so it needs no
hidden state: the same graph run twice, on any backend, draws the same bits,
and a training step keyed by a seed and its step number is reproducible.
Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
SC 2011) maps a 128-bit counter and a 64-bit key to 128 random bits with ten
rounds of 32x32->64-bit multiplies and xors.

``random_bits(key, counter) {shape}`` fills an ``i64[shape]`` tensor. Element
``j`` (row-major) takes 64 bits from Philox block ``j // 2``, whose counter
words are ``(lo(j // 2), hi(j // 2), lo(counter), hi(counter))`` and whose key
words are ``(lo(key), hi(key))``; even elements take output words 0 (low
half) and 1 (high half), odd elements words 2 and 3. ``key`` and ``counter``
are integer scalars read as 64-bit two's complement. The layout makes element
``j`` independent of the tensor's shape, so a backend can compute any element
on its own.

The IR has no unsigned types; the reference computes in ``uint64``, where a
product of two 32-bit words is exact, and reinterprets the result as ``i64``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core import TensorType
from ..dtypes import DType
from .registry import Attr, OpDef, register
from .rules import type_error

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9  # golden ratio
PHILOX_W1 = 0xBB67AE85  # sqrt(3) - 1
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)

U64 = Any  # a uint64 ndarray holding 32-bit words


def philox4x32(
    counter: Sequence[U64], key: Sequence[U64], rounds: int = 10
) -> tuple[U64, U64, U64, U64]:
    """The Philox-4x32 block function on arrays of 32-bit words held in uint64.

    ``counter`` is four word arrays, ``key`` two; they broadcast together.

    >>> zero = np.zeros(1, np.uint64)
    >>> [hex(int(w[0])) for w in philox4x32([zero] * 4, [zero] * 2)]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    c0, c1, c2, c3 = (np.asarray(w, np.uint64) & _MASK32 for w in counter)
    k0, k1 = (np.asarray(w, np.uint64) & _MASK32 for w in key)
    m0, m1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)
    for r in range(rounds):
        if r:
            k0 = (k0 + np.uint64(PHILOX_W0)) & _MASK32
            k1 = (k1 + np.uint64(PHILOX_W1)) & _MASK32
        p0 = c0 * m0
        p1 = c2 * m1
        c0, c1, c2, c3 = (
            (p1 >> _SHIFT32) ^ c1 ^ k0,
            p1 & _MASK32,
            (p0 >> _SHIFT32) ^ c3 ^ k1,
            p0 & _MASK32,
        )
    return c0, c1, c2, c3


def _split64(x: np.ndarray) -> tuple[U64, U64]:
    bits = np.asarray(x).astype(np.int64).view(np.uint64)
    return bits & _MASK32, bits >> _SHIFT32


def _random_bits_rule(key: TensorType, counter: TensorType, *, shape: Any) -> TensorType:
    for what, ty in (("key", key), ("counter", counter)):
        if ty.shape != () or ty.dtype not in (DType.i32, DType.i64):
            raise type_error(
                f"{what} must be an i32 or i64 scalar, got {ty}",
                hint="derive per-element streams from the shape, not from a key array",
            )
    if any(d < 0 for d in shape):
        raise type_error(f"shape {list(shape)} has a negative dimension")
    return TensorType(tuple(shape), DType.i64)


def _random_bits_ref(key: np.ndarray, counter: np.ndarray, *, shape: Any) -> np.ndarray:
    size = int(np.prod(shape, dtype=np.int64))
    block = np.arange((size + 1) // 2, dtype=np.uint64)
    words = philox4x32(
        (block & _MASK32, block >> _SHIFT32, *_split64(counter)), _split64(key), rounds=10
    )
    lo_pair = words[0] | (words[1] << _SHIFT32)
    hi_pair = words[2] | (words[3] << _SHIFT32)
    interleaved = np.stack([lo_pair, hi_pair], axis=1).reshape(-1)[:size]
    return interleaved.view(np.int64).reshape(tuple(shape))


register(
    OpDef(
        "random_bits",
        ("key", "counter"),
        (Attr("shape", "ints"),),
        _random_bits_rule,
        _random_bits_ref,
        None,
        # Pure: the bits are a function of (key, counter), so CSE may merge two
        # identical draws, which is exactly their meaning.
        frozenset({"pure"}),
        doc="64 Philox-4x32-10 random bits per element, keyed by (key, counter) scalars",
    )
)
