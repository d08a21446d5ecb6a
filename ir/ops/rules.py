"""Shared pieces of type rules: broadcasting, promotion, axis checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core import Graph, TensorType
from ..dtypes import DType
from ..errors import OpTypeError, UnsupportedError


def type_error(reason: str, hint: str | None = None) -> OpTypeError:
    """An OpTypeError carrying a hint; the builder adds operands and location."""
    exc = OpTypeError(reason)
    exc.hint = hint  # type: ignore[attr-defined]
    return exc


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy broadcasting of shapes; raises :class:`OpTypeError` when they clash.

    >>> broadcast_shapes((3, 1), (4,))
    (3, 4)
    """
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        dims = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            shown = " and ".join(str(list(s)) for s in shapes)
            raise type_error(
                f"shapes {shown} cannot be broadcast together",
                hint="broadcasting needs each pair of trailing dimensions to be equal or 1",
            )
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def resolve_ufunc(ufunc: np.ufunc, dtypes: Sequence[DType]) -> tuple[DType, ...]:
    """The dtypes NumPy's loop for ``ufunc`` uses: ``(inputs..., output)``."""
    try:
        resolved = ufunc.resolve_dtypes((*(d.np for d in dtypes), None))
    except (TypeError, np.exceptions.DTypePromotionError) as exc:
        shown = ", ".join(str(d) for d in dtypes)
        raise type_error(f"not defined for dtype(s) {shown}") from exc
    try:
        return tuple(DType.from_numpy(d) for d in resolved)
    except UnsupportedError as exc:
        raise type_error(str(exc), hint="cast the operand to a float type first") from exc


def normalize_axes(axes: Sequence[int], ndim: int, what: str = "axis") -> tuple[int, ...]:
    """Axes made non-negative and checked for range and repeats."""
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise type_error(f"{what} {a} is out of range for a {ndim}-d operand")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise type_error(f"repeated {what} in {tuple(axes)}")
    return tuple(out)


def require_float(ty: TensorType, what: str = "operand") -> None:
    if not ty.dtype.is_float:
        raise type_error(f"{what} must be f32 or f64, got {ty.dtype}")


def require_int(ty: TensorType, what: str = "operand") -> None:
    if not ty.dtype.is_int:
        raise type_error(f"{what} must be i32 or i64, got {ty.dtype}")


def call_types(xs: Sequence[TensorType], body: Graph, what: str) -> tuple[TensorType, ...]:
    """The result types of an op that calls ``body`` on operands of types ``xs``
    (a fusion, a remat region): the operands must be the body's arguments."""
    if tuple(xs) != body.input_types:
        got = ", ".join(map(str, xs))
        want = ", ".join(map(str, body.input_types))
        raise type_error(f"operands ({got}) do not match the body's arguments ({want})")
    if not body.outputs:
        raise type_error(f"a {what} body must return at least one value")
    return body.output_types
