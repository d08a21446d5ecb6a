"""Shape ops: reshape, broadcast_in_dim, transpose, slice, reverse, pad, concatenate."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core import Literal, TensorType
from .registry import Attr, OpDef, register
from .rules import normalize_axes, type_error

SHAPE = frozenset({"shape", "pure"})

# -- reshape -------------------------------------------------------------------


def _reshape_rule(x: TensorType, *, shape: tuple[int, ...]) -> TensorType:
    if any(d < 0 for d in shape):
        raise type_error(f"target shape {list(shape)} has a negative dimension")
    if math.prod(shape) != x.size:
        raise type_error(f"cannot reshape {x.size} elements into shape {list(shape)}")
    return TensorType(shape, x.dtype)


register(
    OpDef(
        "reshape",
        ("x",),
        (Attr("shape", "ints"),),
        _reshape_rule,
        lambda x, *, shape: np.reshape(x, shape),
        lambda b, ct, out, x, *, shape: (b.reshape(ct, shape=x.type.shape),),
        SHAPE | {"linear"},
        doc="row-major reshape to a fully specified shape",
    )
)

# -- broadcast_in_dim ------------------------------------------------------------


def _broadcast_rule(
    x: TensorType, *, shape: tuple[int, ...], broadcast_dimensions: tuple[int, ...]
) -> TensorType:
    dims = broadcast_dimensions
    if len(dims) != x.ndim:
        raise type_error(f"broadcast_dimensions {dims} must name one output dim per operand dim")
    if any(not 0 <= d < len(shape) for d in dims) or list(dims) != sorted(set(dims)):
        raise type_error(f"broadcast_dimensions {dims} must be increasing and < {len(shape)}")
    for i, d in enumerate(dims):
        if x.shape[i] not in (1, shape[d]):
            raise type_error(
                f"operand dim {i} has size {x.shape[i]}, which cannot broadcast to {shape[d]}"
            )
    return TensorType(shape, x.dtype)


def _broadcast_ref(
    x: np.ndarray, *, shape: tuple[int, ...], broadcast_dimensions: tuple[int, ...]
) -> np.ndarray:
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return np.broadcast_to(np.reshape(x, expanded), shape).copy()


def _broadcast_vjp(
    b: Any,
    ct: Any,
    out: Any,
    x: Any,
    *,
    shape: tuple[int, ...],
    broadcast_dimensions: tuple[int, ...],
) -> tuple[Any]:
    if isinstance(x, Literal):
        return (None,)
    dims = broadcast_dimensions
    summed = tuple(
        d
        for d in range(len(shape))
        if d not in dims or (x.type.shape[dims.index(d)] == 1 and shape[d] != 1)
    )
    if summed:
        ct = b.reduce_sum(ct, axes=summed, keepdims=True)
    return (b.reshape(ct, shape=x.type.shape) if ct.type.shape != x.type.shape else ct,)


register(
    OpDef(
        "broadcast_in_dim",
        ("x",),
        (Attr("shape", "ints"), Attr("broadcast_dimensions", "ints")),
        _broadcast_rule,
        _broadcast_ref,
        _broadcast_vjp,
        SHAPE | {"linear"},
        doc="place operand dim i at output dim broadcast_dimensions[i]; size-1 dims stretch",
    )
)

# -- transpose -------------------------------------------------------------------


def _transpose_rule(x: TensorType, *, perm: tuple[int, ...]) -> TensorType:
    if sorted(perm) != list(range(x.ndim)):
        raise type_error(f"perm {perm} is not a permutation of {x.ndim} axes")
    return TensorType(tuple(x.shape[p] for p in perm), x.dtype)


def _transpose_vjp(b: Any, ct: Any, out: Any, x: Any, *, perm: tuple[int, ...]) -> tuple[Any]:
    return (b.transpose(ct, perm=tuple(int(i) for i in np.argsort(perm))),)


register(
    OpDef(
        "transpose",
        ("x",),
        (Attr("perm", "ints"),),
        _transpose_rule,
        lambda x, *, perm: np.transpose(x, perm).copy(order="C"),
        _transpose_vjp,
        SHAPE | {"linear"},
    )
)

# -- slice -----------------------------------------------------------------------


def slice_length(start: int, limit: int, stride: int) -> int:
    """Number of elements in ``range(start, limit, stride)``."""
    return max(0, -(-(limit - start) // stride))


def _slice_rule(
    x: TensorType, *, start: tuple[int, ...], limit: tuple[int, ...], stride: tuple[int, ...]
) -> TensorType:
    if not len(start) == len(limit) == len(stride) == x.ndim:
        raise type_error(f"start, limit and stride need one entry per dim ({x.ndim})")
    for d, (s, l, st) in enumerate(zip(start, limit, stride)):
        if st < 1:
            raise type_error(
                f"stride {st} in dim {d} must be >= 1", hint="use reverse for negative steps"
            )
        if not 0 <= s <= l <= x.shape[d]:
            raise type_error(f"dim {d}: need 0 <= start {s} <= limit {l} <= size {x.shape[d]}")
    return TensorType(tuple(slice_length(*t) for t in zip(start, limit, stride)), x.dtype)


def _slice_ref(x: np.ndarray, *, start: Any, limit: Any, stride: Any) -> np.ndarray:
    return x[tuple(slice(s, l, st) for s, l, st in zip(start, limit, stride))].copy()


def _slice_vjp(
    b: Any, ct: Any, out: Any, x: Any, *, start: Any, limit: Any, stride: Any
) -> tuple[Any]:
    high = []
    for dim, s, st, n in zip(x.type.shape, start, stride, out.type.shape):
        last = s + (n - 1) * st if n else s - 1
        high.append(dim - 1 - last)
    low = tuple(s if n else 0 for s, n in zip(start, out.type.shape))
    high = [h if n else dim - lo for h, n, dim, lo in zip(high, out.type.shape, x.type.shape, low)]
    interior = tuple(st - 1 for st in stride)
    return (b.pad(ct, Literal(0, ct.type.dtype), low=low, high=tuple(high), interior=interior),)


register(
    OpDef(
        "slice",
        ("x",),
        (Attr("start", "ints"), Attr("limit", "ints"), Attr("stride", "ints")),
        _slice_rule,
        _slice_ref,
        _slice_vjp,
        SHAPE | {"linear"},
        doc="x[start:limit:stride] in every dim; strides are positive",
    )
)

# -- reverse ---------------------------------------------------------------------


def _reverse_rule(x: TensorType, *, axes: tuple[int, ...]) -> TensorType:
    normalize_axes(axes, x.ndim)
    return x


register(
    OpDef(
        "reverse",
        ("x",),
        (Attr("axes", "ints"),),
        _reverse_rule,
        lambda x, *, axes: np.flip(x, axes).copy(),
        lambda b, ct, out, x, *, axes: (b.reverse(ct, axes=axes),),
        SHAPE | {"linear"},
    )
)

# -- pad -------------------------------------------------------------------------


def _pad_rule(
    x: TensorType,
    value: TensorType,
    *,
    low: tuple[int, ...],
    high: tuple[int, ...],
    interior: tuple[int, ...],
) -> TensorType:
    if value.shape != ():
        raise type_error(f"padding value must be a scalar, got {value}")
    if value.dtype != x.dtype:
        raise type_error(f"padding value dtype {value.dtype} differs from operand {x.dtype}")
    if not len(low) == len(high) == len(interior) == x.ndim:
        raise type_error(f"low, high and interior need one entry per dim ({x.ndim})")
    shape = []
    for d, (n, lo, hi, it) in enumerate(zip(x.shape, low, high, interior)):
        if it < 0:
            raise type_error(f"interior padding {it} in dim {d} must be >= 0")
        size = lo + hi + (n + max(n - 1, 0) * it)
        if size < 0:
            raise type_error(f"dim {d}: negative padding crops more than the operand has")
        shape.append(size)
    return TensorType(tuple(shape), x.dtype)


def _pad_ref(x: np.ndarray, value: np.ndarray, *, low: Any, high: Any, interior: Any) -> np.ndarray:
    grown = [n + max(n - 1, 0) * it for n, it in zip(x.shape, interior)]
    full = [max(lo, 0) + g + max(hi, 0) for g, lo, hi in zip(grown, low, high)]
    out = np.full(full, value, dtype=x.dtype)
    out[
        tuple(slice(max(lo, 0), max(lo, 0) + g, it + 1) for g, lo, it in zip(grown, low, interior))
    ] = x
    crop = tuple(slice(max(-lo, 0), f - max(-hi, 0)) for f, lo, hi in zip(full, low, high))
    return out[crop].copy()


def _pad_vjp(
    b: Any, ct: Any, out: Any, x: Any, value: Any, *, low: Any, high: Any, interior: Any
) -> tuple[Any, Any]:
    grown = tuple(n + max(n - 1, 0) * it for n, it in zip(x.type.shape, interior))
    t = ct
    if any(low) or any(high):
        t = b.pad(
            ct,
            Literal(0, ct.type.dtype),
            low=tuple(-v for v in low),
            high=tuple(-v for v in high),
            interior=(0,) * len(low),
        )
    ct_x = t
    if any(interior):
        ct_x = b.slice(
            t, start=(0,) * len(grown), limit=grown, stride=tuple(i + 1 for i in interior)
        )
    ct_value = None
    if not isinstance(value, Literal):
        all_axes = tuple(range(ct.type.ndim))
        ct_value = b.sub(b.reduce_sum(ct, axes=all_axes), b.reduce_sum(ct_x, axes=all_axes))
    return ct_x, ct_value


register(
    OpDef(
        "pad",
        ("x", "value"),
        (Attr("low", "ints"), Attr("high", "ints"), Attr("interior", "ints")),
        _pad_rule,
        _pad_ref,
        _pad_vjp,
        SHAPE,
        doc="pad with `value`: low/high at the edges (negative crops), interior between elements",
    )
)

# -- concatenate -----------------------------------------------------------------


def _concat_rule(*xs: TensorType, axis: int) -> TensorType:
    if not xs:
        raise type_error("needs at least one operand")
    first = xs[0]
    (a,) = normalize_axes((axis,), first.ndim) if first.ndim else (None,)
    if a is None:
        raise type_error("zero-dimensional arrays cannot be concatenated")
    for x in xs[1:]:
        if x.dtype != first.dtype:
            raise type_error(f"operands have different dtypes {first.dtype} and {x.dtype}")
        if x.ndim != first.ndim or any(
            d != e for i, (d, e) in enumerate(zip(x.shape, first.shape)) if i != a
        ):
            raise type_error(
                f"shapes {list(first.shape)} and {list(x.shape)} differ outside axis {a}"
            )
    shape = list(first.shape)
    shape[a] = sum(x.shape[a] for x in xs)
    return TensorType(tuple(shape), first.dtype)


def _concat_vjp(b: Any, ct: Any, out: Any, *xs: Any, axis: int) -> tuple[Any, ...]:
    a = axis % out.type.ndim
    cts, offset = [], 0
    for x in xs:
        n = x.type.shape[a]
        start = tuple(offset if i == a else 0 for i in range(out.type.ndim))
        limit = tuple(offset + n if i == a else d for i, d in enumerate(out.type.shape))
        cts.append(
            None
            if isinstance(x, Literal)
            else b.slice(ct, start=start, limit=limit, stride=(1,) * out.type.ndim)
        )
        offset += n
    return tuple(cts)


register(
    OpDef(
        "concatenate",
        ("*xs",),
        (Attr("axis", "int"),),
        _concat_rule,
        lambda *xs, axis: np.concatenate(xs, axis=axis),
        _concat_vjp,
        SHAPE | {"linear"},
    )
)
