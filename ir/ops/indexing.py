"""gather and scatter_add: integer-array indexing along one axis, and its transpose.

Indices may be negative (counted from the end, as in NumPy). An index
outside ``[-n, n)`` is an error at run time in every backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import TensorType
from ..errors import GraphcIndexError
from .registry import Attr, OpDef, register
from .rules import normalize_axes, require_int, type_error
from .vjp_util import zeros


def _gather_shape(x: TensorType, idx: TensorType, axis: int) -> tuple[int, ...]:
    return x.shape[:axis] + idx.shape + x.shape[axis + 1 :]


def _gather_rule(x: TensorType, idx: TensorType, *, axis: int) -> TensorType:
    require_int(idx, "indices")
    (a,) = normalize_axes((axis,), x.ndim)
    if x.shape[a] == 0 and idx.size:
        raise type_error(f"cannot take from an empty axis {a}")
    return TensorType(_gather_shape(x, idx, a), x.dtype)


def check_indices(idx: np.ndarray, n: int, what: str) -> None:
    """Raise GraphcIndexError unless every index is in ``[-n, n)``."""
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = idx[(idx < -n) | (idx >= n)].flat[0]
        raise GraphcIndexError(f"{what}: index {bad} is out of bounds for axis of size {n}")


def _gather_ref(x: np.ndarray, idx: np.ndarray, *, axis: int) -> np.ndarray:
    check_indices(idx, x.shape[axis], "gather")
    return np.take(x, idx, axis=axis)


def _gather_vjp(b: Any, ct: Any, out: Any, x: Any, idx: Any, *, axis: int) -> tuple[Any, Any]:
    return b.scatter_add(zeros(b, x.type), idx, ct, axis=axis), None


register(
    OpDef(
        "gather",
        ("x", "indices"),
        (Attr("axis", "int"),),
        _gather_rule,
        _gather_ref,
        _gather_vjp,
        frozenset({"pure"}),
        doc="np.take(x, indices, axis)",
    )
)


def _scatter_rule(x: TensorType, idx: TensorType, updates: TensorType, *, axis: int) -> TensorType:
    require_int(idx, "indices")
    (a,) = normalize_axes((axis,), x.ndim)
    want = _gather_shape(x, idx, a)
    if updates.shape != want:
        raise type_error(f"updates have shape {list(updates.shape)}, expected {list(want)}")
    if updates.dtype != x.dtype:
        raise type_error(f"updates dtype {updates.dtype} differs from operand {x.dtype}")
    return x


def _scatter_ref(x: np.ndarray, idx: np.ndarray, updates: np.ndarray, *, axis: int) -> np.ndarray:
    axis %= x.ndim
    check_indices(idx, x.shape[axis], "scatter_add")
    out = x.copy()
    np.add.at(out, (slice(None),) * axis + (idx,), updates)  # type: ignore[arg-type]
    return out


def _scatter_vjp(
    b: Any, ct: Any, out: Any, x: Any, idx: Any, updates: Any, *, axis: int
) -> tuple[Any, Any, Any]:
    return ct, None, b.gather(ct, idx, axis=axis)


register(
    OpDef(
        "scatter_add",
        ("x", "indices", "updates"),
        (Attr("axis", "int"),),
        _scatter_rule,
        _scatter_ref,
        _scatter_vjp,
        frozenset({"pure"}),
        doc="x with updates added at indices along axis; repeated indices accumulate",
    )
)
