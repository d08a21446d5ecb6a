"""Reductions over axes, arg-reductions, and cumulative sums."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core import Literal, TensorType
from ..dtypes import DType
from .registry import Attr, OpDef, register
from .rules import normalize_axes, type_error
from .vjp_util import expand_reduced

_REDUCE_ATTRS = (Attr("axes", "ints"), Attr("keepdims", "bool", False))


def _reduced_shape(x: TensorType, axes: tuple[int, ...], keepdims: bool) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return tuple(d for i, d in enumerate(x.shape) if i not in axes)


def _accumulating_dtype(d: DType) -> DType:
    return d.accumulator


def define_reduction(
    name: str,
    ufunc: np.ufunc,
    vjp: Callable[..., Any] | None,
    *,
    widens: bool,
    needs_identity: bool,
) -> OpDef:
    """Register ``name(x) {axes, keepdims}`` with NumPy's ``ufunc.reduce`` semantics.

    ``widens`` follows np.sum's dtype widening; ``needs_identity`` rejects
    reducing an empty axis (np.max has no identity).
    """

    def rule(x: TensorType, *, axes: tuple[int, ...], keepdims: bool) -> TensorType:
        axes_n = normalize_axes(axes, x.ndim)
        if needs_identity and any(x.shape[a] == 0 for a in axes_n):
            raise type_error("cannot reduce an empty axis: the reduction has no identity")
        dtype = _accumulating_dtype(x.dtype) if widens else x.dtype
        return TensorType(_reduced_shape(x, axes_n, keepdims), dtype)

    def ref(x: np.ndarray, *, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        dtype = _accumulating_dtype(DType.from_numpy(x.dtype)).np if widens else x.dtype
        if widens and DType.from_numpy(x.dtype).is_16bit_float:
            # 16-bit sums and products accumulate in float32 and round once
            # (NumPy's pairwise float16 sum does; ml_dtypes' loop would not)
            wide = ufunc.reduce(x, axis=tuple(axes), keepdims=keepdims, dtype=np.float32)
            return np.asarray(wide).astype(x.dtype)
        return np.asarray(ufunc.reduce(x, axis=tuple(axes), keepdims=keepdims, dtype=dtype))

    rule_vjp = None
    if vjp is not None:

        def rule_vjp(
            b: Any, ct: Any, out: Any, x: Any, *, axes: tuple[int, ...], keepdims: bool
        ) -> Any:
            axes_n = normalize_axes(axes, x.type.ndim)
            return (vjp(b, ct, out, x, axes_n, keepdims),)

    return register(
        OpDef(name, ("x",), _REDUCE_ATTRS, rule, ref, rule_vjp, frozenset({"reduction", "pure"}))
    )


def _sum_vjp(b: Any, ct: Any, out: Any, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    return expand_reduced(b, ct, x.type.shape, axes, keepdims)


def _extremum_vjp(b: Any, ct: Any, out: Any, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    # Ties share the cotangent equally among the elements equal to the result.
    dtype = x.type.dtype
    shape = x.type.shape
    hit = b.cast(b.eq(x, expand_reduced(b, out, shape, axes, keepdims)), dtype=dtype)
    count = b.reduce_sum(hit, axes=axes, keepdims=True)
    share = b.div(
        expand_reduced(b, ct, shape, axes, keepdims), expand_reduced(b, count, shape, axes, True)
    )
    return b.mul(share, hit)


def _shift_in_ones(b: Any, p: Any, by: int) -> Any:
    """``p`` moved ``by`` places along its last axis, filled with ones at the front."""
    n = p.type.ndim
    zeros = (0,) * (n - 1)
    one = Literal(1, p.type.dtype)
    return b.pad(p, one, low=zeros + (by,), high=zeros + (-by,), interior=(0,) * n)


def _exclusive_cumprod(b: Any, x: Any) -> Any:
    """Products of the elements before each one along the last axis, in
    log2(n) steps of shift-and-multiply (a Hillis-Steele scan)."""
    n = x.type.shape[-1]
    p, step = x, 1
    while step < n:
        p = b.mul(p, _shift_in_ones(b, p, step))
        step *= 2
    return _shift_in_ones(b, p, 1) if n else p


def _prod_vjp(b: Any, ct: Any, out: Any, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    # d prod / d x_i = (product before i) * (product after i), along the reduced
    # elements. Unlike out / x_i this needs no case split at zeros, so the rule
    # is smooth and its own derivative (through pad, mul, reverse) is right too.
    shape = x.type.shape
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    order = kept + tuple(axes)
    n = math.prod(shape[a] for a in axes)
    moved = x if order == tuple(range(len(shape))) else b.transpose(x, perm=order)
    flat = _reshaped(b, moved, tuple(shape[i] for i in kept) + (n,))
    before = _exclusive_cumprod(b, flat)
    last = (flat.type.ndim - 1,)
    after = b.reverse(_exclusive_cumprod(b, b.reverse(flat, axes=last)), axes=last)
    grad = _reshaped(b, b.mul(before, after), moved.type.shape)
    if moved is not x:
        grad = b.transpose(grad, perm=tuple(order.index(i) for i in range(len(shape))))
    return b.mul(expand_reduced(b, ct, shape, axes, keepdims), grad)


def _reshaped(b: Any, x: Any, shape: tuple[int, ...]) -> Any:
    return x if x.type.shape == shape else b.reshape(x, shape=shape)


define_reduction("reduce_sum", np.add, _sum_vjp, widens=True, needs_identity=False)
define_reduction("reduce_prod", np.multiply, _prod_vjp, widens=True, needs_identity=False)
define_reduction("reduce_max", np.maximum, _extremum_vjp, widens=False, needs_identity=True)
define_reduction("reduce_min", np.minimum, _extremum_vjp, widens=False, needs_identity=True)


def _define_argreduce(name: str, fn: Callable[..., np.ndarray]) -> None:
    def rule(x: TensorType, *, axis: int, keepdims: bool) -> TensorType:
        (a,) = normalize_axes((axis,), x.ndim)
        if x.shape[a] == 0:
            raise type_error(f"attempt to get {name} of an empty axis")
        return TensorType(_reduced_shape(x, (a,), keepdims), DType.i64)

    def ref(x: np.ndarray, *, axis: int, keepdims: bool) -> np.ndarray:
        return np.asarray(fn(x, axis=axis, keepdims=keepdims)).astype(np.int64)

    register(
        OpDef(
            name,
            ("x",),
            (Attr("axis", "int"), Attr("keepdims", "bool", False)),
            rule,
            ref,
            None,
            frozenset({"pure"}),
            doc=f"np.{name} along one axis (first index on ties)",
        )
    )


_define_argreduce("argmax", np.argmax)
_define_argreduce("argmin", np.argmin)


def _cumsum_rule(x: TensorType, *, axis: int, reverse: bool) -> TensorType:
    normalize_axes((axis,), x.ndim)
    return TensorType(x.shape, _accumulating_dtype(x.dtype))


def _cumsum_ref(x: np.ndarray, *, axis: int, reverse: bool) -> np.ndarray:
    dtype = _accumulating_dtype(DType.from_numpy(x.dtype)).np
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=dtype), axis)
    return np.cumsum(x, axis=axis, dtype=dtype)


def _cumsum_vjp(b: Any, ct: Any, out: Any, x: Any, *, axis: int, reverse: bool) -> Any:
    return (b.cumsum(ct, axis=axis, reverse=not reverse),)


register(
    OpDef(
        "cumsum",
        ("x",),
        (Attr("axis", "int"), Attr("reverse", "bool", False)),
        _cumsum_rule,
        _cumsum_ref,
        _cumsum_vjp,
        frozenset({"pure", "linear"}),
        doc="inclusive cumulative sum along axis (from the end when reverse)",
    )
)
