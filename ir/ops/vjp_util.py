"""Helpers shared by VJP rules. They emit IR through a builder and nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core import Literal, TensorType


def zeros(b: Any, ty: TensorType) -> Any:
    """A value of zeros of type ``ty`` (a broadcast literal, cheap to fold)."""
    zero = Literal(False if ty.dtype.is_bool else 0, ty.dtype)
    return b.broadcast_in_dim(zero, shape=ty.shape, broadcast_dimensions=())


def unbroadcast(b: Any, ct: Any, to: TensorType) -> Any:
    """Fit cotangent ``ct`` to an operand of type ``to``.

    Sums over the dimensions broadcasting added or stretched, then casts to
    the operand's dtype. This is the single place that undoes broadcasting.
    """
    shape = ct.type.shape
    if shape != to.shape:
        lead = len(shape) - len(to.shape)
        assert lead >= 0, f"cannot unbroadcast {ct.type} to {to}"
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(to.shape) if d == 1 and shape[lead + i] != 1
        )
        if axes:
            ct = b.reduce_sum(ct, axes=axes)
        if ct.type.shape != to.shape:
            ct = b.reshape(ct, shape=to.shape)
    if ct.type.dtype != to.dtype:
        ct = b.cast(ct, dtype=to.dtype)
    return ct


def expand_reduced(
    b: Any, ct: Any, shape: Sequence[int], axes: Sequence[int], keepdims: bool
) -> Any:
    """Broadcast a reduction's cotangent back over the reduced ``axes`` of ``shape``."""
    kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
    if not keepdims and ct.type.shape != kept:
        ct = b.reshape(ct, shape=kept)
    if tuple(shape) == kept:
        return ct
    return b.broadcast_in_dim(ct, shape=tuple(shape), broadcast_dimensions=tuple(range(len(shape))))
