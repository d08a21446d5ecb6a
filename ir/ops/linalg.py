"""matmul with NumPy's semantics: 1-D operands, batching, batch broadcasting."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import TensorType
from .registry import OpDef, register
from .rules import broadcast_shapes, resolve_ufunc, type_error


def _matmul_rule(a: TensorType, b: TensorType) -> TensorType:
    if a.ndim == 0 or b.ndim == 0:
        raise type_error("matmul operands must be at least 1-d", hint="use mul for scalars")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise type_error(
            f"contracting dimensions differ ({k_a} vs {k_b})",
            hint="matmul needs lhs.shape[-1] == rhs.shape[-2]",
        )
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    shape = batch + (a.shape[-2:-1] if a.ndim >= 2 else ()) + (b.shape[-1:] if b.ndim >= 2 else ())
    return TensorType(shape, resolve_ufunc(np.matmul, [a.dtype, b.dtype])[-1])


def _swap_last(b: Any, x: Any) -> Any:
    n = x.type.ndim
    return b.transpose(x, perm=tuple(range(n - 2)) + (n - 1, n - 2))


def _matmul_vjp(b: Any, ct: Any, out: Any, x: Any, y: Any) -> tuple[Any, Any]:
    # Work on the 2-d-or-more forms, then drop the dims a 1-d operand added.
    x2 = x if x.type.ndim >= 2 else b.reshape(x, shape=(1,) + x.type.shape)
    y2 = y if y.type.ndim >= 2 else b.reshape(y, shape=y.type.shape + (1,))
    m, n = x2.type.shape[-2], y2.type.shape[-1]
    batch = out.type.shape[: len(out.type.shape) - (x.type.ndim >= 2) - (y.type.ndim >= 2)]
    ct2 = ct if ct.type.shape == batch + (m, n) else b.reshape(ct, shape=batch + (m, n))
    ct_x = b.matmul(ct2, _swap_last(b, y2))
    ct_y = b.matmul(_swap_last(b, x2), ct2)
    if x.type.ndim == 1:
        ct_x = b.reshape(ct_x, shape=ct_x.type.shape[:-2] + ct_x.type.shape[-1:])
    if y.type.ndim == 1:
        ct_y = b.reshape(ct_y, shape=ct_y.type.shape[:-1])
    return ct_x, ct_y


register(
    OpDef(
        "matmul",
        ("lhs", "rhs"),
        (),
        _matmul_rule,
        lambda a, b: np.asarray(np.matmul(a, b)),
        _matmul_vjp,
        frozenset({"pure", "bilinear"}),
        doc="np.matmul",
    )
)
