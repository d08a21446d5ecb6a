"""conv2d and 2-d pooling, NCHW layout.

The VJPs are written with conv2d, pad, slice, reshape and transpose, as JAX
writes conv transposes with conv_general_dilated, so second derivatives and
every backend come for free.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Literal, TensorType
from .registry import Attr, OpDef, register
from .rules import require_float, resolve_ufunc, type_error

_WINDOW_ATTRS = (Attr("stride", "ints", (1, 1)), Attr("padding", "intss", ((0, 0), (0, 0))))


def _check_pair(name: str, value: tuple[int, ...], minimum: int) -> None:
    if len(value) != 2 or any(v < minimum for v in value):
        raise type_error(f"{name} must be two integers >= {minimum}, got {value}")


def _check_padding(padding: tuple[tuple[int, ...], ...]) -> None:
    if len(padding) != 2 or any(len(p) != 2 or min(p) < 0 for p in padding):
        raise type_error(f"padding must be ((top, bottom), (left, right)) >= 0, got {padding}")


def _out_size(n: int, lo: int, hi: int, k: int, stride: int, dilation: int) -> int:
    return (n + lo + hi - dilation * (k - 1) - 1) // stride + 1


def _windows(xp: np.ndarray, kh: int, kw: int, stride: Any, dilation: Any, ho: int, wo: int) -> Any:
    """Yield ((i, j), strided view of xp for kernel offset i, j)."""
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilation[0], j * dilation[1]
            yield (
                (i, j),
                xp[
                    ...,
                    r0 : r0 + stride[0] * (ho - 1) + 1 : stride[0],
                    c0 : c0 + stride[1] * (wo - 1) + 1 : stride[1],
                ],
            )


# -- conv2d ------------------------------------------------------------------------


def _conv_rule(
    x: TensorType, w: TensorType, *, stride: Any, padding: Any, dilation: Any, groups: int
) -> TensorType:
    if x.ndim != 4 or w.ndim != 4:
        raise type_error(f"conv2d needs x as NCHW and w as OIHW (4-d), got {x} and {w}")
    _check_pair("stride", stride, 1)
    _check_pair("dilation", dilation, 1)
    _check_padding(padding)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if groups < 1 or c % groups or o % groups:
        raise type_error(f"groups={groups} must divide in-channels {c} and out-channels {o}")
    if cg * groups != c:
        raise type_error(f"weight expects {cg * groups} input channels, x has {c}")
    ho = _out_size(h, padding[0][0], padding[0][1], kh, stride[0], dilation[0])
    wo = _out_size(wd, padding[1][0], padding[1][1], kw, stride[1], dilation[1])
    if ho < 1 or wo < 1:
        raise type_error(f"the kernel does not fit the padded input (output {ho}x{wo})")
    dtype = resolve_ufunc(np.multiply, [x.dtype, w.dtype])[-1]
    require_float(TensorType((), dtype), "conv2d operands")
    return TensorType((n, o, ho, wo), dtype)


def _conv_ref(
    x: np.ndarray, w: np.ndarray, *, stride: Any, padding: Any, dilation: Any, groups: int
) -> np.ndarray:
    dtype = np.result_type(x, w)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho = _out_size(h, padding[0][0], padding[0][1], kh, stride[0], dilation[0])
    wo = _out_size(wd, padding[1][0], padding[1][1], kw, stride[1], dilation[1])
    xp = np.pad(x.astype(dtype), ((0, 0), (0, 0), padding[0], padding[1]))
    og = o // groups
    out = np.zeros((n, o, ho, wo), dtype)
    for (i, j), view in _windows(xp, kh, kw, stride, dilation, ho, wo):
        for g in range(groups):
            patch = view[:, g * cg : (g + 1) * cg]
            out[:, g * og : (g + 1) * og] += np.einsum(
                "nchw,oc->nohw", patch, w[g * og : (g + 1) * og, :, i, j].astype(dtype)
            )
    return out


def _conv_vjp(
    b: Any,
    ct: Any,
    out: Any,
    x: Any,
    w: Any,
    *,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
) -> tuple[Any, Any]:
    n, c, h, wd = x.type.shape
    o, cg, kh, kw = w.type.shape
    ho, wo = out.type.shape[2:]
    og = o // groups
    ct_x = ct_w = None
    if not isinstance(x, Literal):
        # Input: correlate the stride-dilated cotangent with the flipped kernel,
        # channels swapped within each group.
        wt = b.reshape(w, shape=(groups, og, cg, kh, kw))
        wt = b.transpose(wt, perm=(0, 2, 1, 3, 4))
        wt = b.reverse(b.reshape(wt, shape=(c, og, kh, kw)), axes=(2, 3))
        lows = [dilation[d] * (k - 1) - padding[d][0] for d, k in enumerate((kh, kw))]
        highs = [
            size + padding[d][0] - (outn - 1) * stride[d] - 1
            for d, (size, outn) in enumerate(((h, ho), (wd, wo)))
        ]
        ct_p = b.pad(
            ct,
            Literal(0, ct.type.dtype),
            low=(0, 0, *lows),
            high=(0, 0, *highs),
            interior=(0, 0, stride[0] - 1, stride[1] - 1),
        )
        ct_x = b.conv2d(
            ct_p, wt, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=dilation, groups=groups
        )
    if not isinstance(w, Literal):
        # Weight: a conv over the batch, with the roles of stride and dilation
        # swapped. Groups move into the channel axis: A[cg, g*N + n] = x[n, g*cg + cg].
        a = b.reshape(x, shape=(n, groups, cg, h, wd))
        a = b.reshape(b.transpose(a, perm=(2, 1, 0, 3, 4)), shape=(cg, groups * n, h, wd))
        k = b.transpose(ct, perm=(1, 0, 2, 3))
        full = b.conv2d(a, k, stride=dilation, padding=padding, dilation=stride, groups=groups)
        fh, fw = full.type.shape[2:]
        if (fh, fw) != (kh, kw):
            full = b.slice(full, start=(0, 0, 0, 0), limit=(cg, o, kh, kw), stride=(1, 1, 1, 1))
        ct_w = b.transpose(full, perm=(1, 0, 2, 3))
    return ct_x, ct_w


register(
    OpDef(
        "conv2d",
        ("x", "w"),
        _WINDOW_ATTRS + (Attr("dilation", "ints", (1, 1)), Attr("groups", "int", 1)),
        _conv_rule,
        _conv_ref,
        _conv_vjp,
        frozenset({"pure"}),
        doc="2-d cross-correlation, x: NCHW, w: OIHW (I = C / groups); padding ((t,b),(l,r))",
    )
)

# -- pooling -----------------------------------------------------------------------


def _pool_rule(x: TensorType, *, window: Any, stride: Any, padding: Any, **_: Any) -> TensorType:
    if x.ndim != 4:
        raise type_error(f"pooling needs a 4-d NCHW operand, got {x}")
    require_float(x)
    _check_pair("window", window, 1)
    _check_pair("stride", stride, 1)
    _check_padding(padding)
    # A window made only of padding would have no element to pool over.
    if max(padding[0]) >= window[0] or max(padding[1]) >= window[1]:
        raise type_error("padding must be smaller than the window")
    ho = _out_size(x.shape[2], padding[0][0], padding[0][1], window[0], stride[0], 1)
    wo = _out_size(x.shape[3], padding[1][0], padding[1][1], window[1], stride[1], 1)
    if ho < 1 or wo < 1:
        raise type_error(f"the window does not fit the padded input (output {ho}x{wo})")
    return TensorType(x.shape[:2] + (ho, wo), x.dtype)


def _pool_geometry(x_shape: Any, window: Any, stride: Any, padding: Any) -> tuple[int, int]:
    return (
        _out_size(x_shape[2], padding[0][0], padding[0][1], window[0], stride[0], 1),
        _out_size(x_shape[3], padding[1][0], padding[1][1], window[1], stride[1], 1),
    )


def _max_pool_ref(x: np.ndarray, *, window: Any, stride: Any, padding: Any) -> np.ndarray:
    ho, wo = _pool_geometry(x.shape, window, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), padding[0], padding[1]), constant_values=-np.inf)
    out = None
    for _, view in _windows(xp, window[0], window[1], stride, (1, 1), ho, wo):
        out = view.copy() if out is None else np.maximum(out, view)
    assert out is not None
    return out


def _scatter_windows(
    b: Any, parts: Any, x_type: TensorType, window: Any, stride: Any, padding: Any, ho: int, wo: int
) -> Any:
    """Sum window-offset contributions back onto the (unpadded) input grid."""
    h, wd = x_type.shape[2:]
    total = None
    for (i, j), part in parts:
        lows = (i - padding[0][0], j - padding[1][0])
        highs = (
            h + padding[0][0] - i - stride[0] * (ho - 1) - 1,
            wd + padding[1][0] - j - stride[1] * (wo - 1) - 1,
        )
        placed = b.pad(
            part,
            Literal(0, part.type.dtype),
            low=(0, 0, *lows),
            high=(0, 0, *highs),
            interior=(0, 0, stride[0] - 1, stride[1] - 1),
        )
        total = placed if total is None else b.add(total, placed)
    return total


def _window_slices(b: Any, xp: Any, window: Any, stride: Any, ho: int, wo: int) -> Any:
    n, c = xp.type.shape[:2]
    for i in range(window[0]):
        for j in range(window[1]):
            yield (
                (i, j),
                b.slice(
                    xp,
                    start=(0, 0, i, j),
                    limit=(n, c, i + stride[0] * (ho - 1) + 1, j + stride[1] * (wo - 1) + 1),
                    stride=(1, 1, stride[0], stride[1]),
                ),
            )


def _max_pool_vjp(
    b: Any, ct: Any, out: Any, x: Any, *, window: Any, stride: Any, padding: Any
) -> tuple[Any]:
    # Like reduce_max: the cotangent is shared equally among tied maxima.
    ho, wo = out.type.shape[2:]
    dtype = x.type.dtype
    xp = b.pad(
        x,
        Literal(float("-inf"), dtype),
        low=(0, 0, padding[0][0], padding[1][0]),
        high=(0, 0, padding[0][1], padding[1][1]),
        interior=(0, 0, 0, 0),
    )
    hits = [
        (ij, b.cast(b.eq(view, out), dtype=dtype))
        for ij, view in _window_slices(b, xp, window, stride, ho, wo)
    ]
    count = hits[0][1]
    for _, h in hits[1:]:
        count = b.add(count, h)
    share = b.div(ct, count)
    parts = [(ij, b.mul(h, share)) for ij, h in hits]
    return (_scatter_windows(b, parts, x.type, window, stride, padding, ho, wo),)


register(
    OpDef(
        "max_pool2d",
        ("x",),
        (Attr("window", "ints"),) + _WINDOW_ATTRS,
        _pool_rule,
        _max_pool_ref,
        _max_pool_vjp,
        frozenset({"pure"}),
        doc="max over windows of an NCHW input; padding counts as -inf",
    )
)


def _avg_divisor(
    x_shape: Any, window: Any, stride: Any, padding: Any, include_pad: bool
) -> np.ndarray:
    ho, wo = _pool_geometry(x_shape, window, stride, padding)
    if include_pad:
        return np.full((ho, wo), float(window[0] * window[1]))
    ones = np.pad(np.ones(x_shape[2:]), (padding[0], padding[1]))
    count = np.zeros((ho, wo))
    for _, view in _windows(ones, window[0], window[1], stride, (1, 1), ho, wo):
        count += view
    return count


def _avg_pool_ref(
    x: np.ndarray, *, window: Any, stride: Any, padding: Any, count_include_pad: bool
) -> np.ndarray:
    ho, wo = _pool_geometry(x.shape, window, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), padding[0], padding[1]))
    total = np.zeros(x.shape[:2] + (ho, wo), x.dtype)
    for _, view in _windows(xp, window[0], window[1], stride, (1, 1), ho, wo):
        total += view
    divisor = _avg_divisor(x.shape, window, stride, padding, count_include_pad)
    return (total / divisor).astype(x.dtype)


def _avg_pool_vjp(
    b: Any,
    ct: Any,
    out: Any,
    x: Any,
    *,
    window: Any,
    stride: Any,
    padding: Any,
    count_include_pad: bool,
) -> tuple[Any]:
    ho, wo = out.type.shape[2:]
    divisor = _avg_divisor(x.type.shape, window, stride, padding, count_include_pad)
    if count_include_pad:
        share = b.div(ct, float(divisor.flat[0]))
    else:
        share = b.div(ct, divisor.astype(x.type.dtype.np))
    parts = [((i, j), share) for i in range(window[0]) for j in range(window[1])]
    return (_scatter_windows(b, parts, x.type, window, stride, padding, ho, wo),)


register(
    OpDef(
        "avg_pool2d",
        ("x",),
        (Attr("window", "ints"),) + _WINDOW_ATTRS + (Attr("count_include_pad", "bool", True),),
        _pool_rule,
        _avg_pool_ref,
        _avg_pool_vjp,
        frozenset({"pure", "linear"}),
        doc="mean over windows of an NCHW input (padding counted in the divisor by default)",
    )
)
