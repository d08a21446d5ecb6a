"""Products and norms: dot, vdot, inner, outer, kron, cross, trace,
matvec/vecmat/vecdot, np.linalg's norm, vector_norm, matrix_norm, multi_dot
and the array-API aliases. Decompositions and solvers are in
:mod:`.decomp_functions`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from graphc.ir import OpTypeError, UnsupportedError

from .dispatch import as_tracer, error, implements, no_out, normalize_axis
from .ops import cast


@implements(np.dot)
def _dot(a: Any, b: Any, out: Any = None) -> Any:
    no_out("dot", out)
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return np.multiply(a, b)
    if np.ndim(b) <= 2:
        return np.matmul(a, b)
    return np.tensordot(a, b, axes=([-1], [-2]))


@implements(np.vdot)
def _vdot(a: Any, b: Any) -> Any:
    return np.matmul(np.ravel(a), np.ravel(b))


@implements(np.inner)
def _inner(a: Any, b: Any) -> Any:
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return np.multiply(a, b)
    return np.tensordot(a, b, axes=([-1], [-1]))


@implements(np.outer)
def _outer(a: Any, b: Any, out: Any = None) -> Any:
    no_out("outer", out)
    return np.reshape(a, (-1, 1)) * np.reshape(b, (1, -1))


@implements(np.kron)
def _kron(a: Any, b: Any) -> Any:
    a, b = as_tracer(a, b), as_tracer(b, a)
    ndim = max(a.ndim, b.ndim)
    sa = (1,) * (ndim - a.ndim) + a.shape
    sb = (1,) * (ndim - b.ndim) + b.shape
    # out[i * nb + j] = a[i] * b[j]: interleave the axes of a and b
    ea = np.reshape(a, tuple(d for n in sa for d in (n, 1)))
    eb = np.reshape(b, tuple(d for n in sb for d in (1, n)))
    return np.reshape(ea * eb, tuple(m * n for m, n in zip(sa, sb)))


@implements(np.cross)
def _cross(
    a: Any, b: Any, axisa: Any = -1, axisb: Any = -1, axisc: Any = -1, axis: Any = None
) -> Any:
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = as_tracer(a, b), as_tracer(b, a)
    a = np.moveaxis(a, normalize_axis(axisa, a.ndim)[0], -1)
    b = np.moveaxis(b, normalize_axis(axisb, b.ndim)[0], -1)
    if a.shape[-1] != 3 or b.shape[-1] != 3:
        raise error(
            UnsupportedError,
            "np.cross is only supported for 3-element vectors on traced arrays",
        )
    a0, a1, a2 = (a[..., i] for i in range(3))
    b0, b1, b2 = (b[..., i] for i in range(3))
    result = np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return np.moveaxis(result, -1, normalize_axis(axisc, result.ndim)[0])


@implements(np.trace)
def _trace(
    a: Any, offset: Any = 0, axis1: Any = 0, axis2: Any = 1, dtype: Any = None, out: Any = None
) -> Any:
    no_out("trace", out)
    return np.sum(np.diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def matvec(a: Any, v: Any) -> Any:
    """``np.matvec``: a stack of matrices times a stack of vectors."""
    return np.matmul(a, np.expand_dims(v, -1))[..., 0]


def vecmat(v: Any, a: Any) -> Any:
    """``np.vecmat``: a stack of vectors times a stack of matrices."""
    return np.matmul(np.expand_dims(v, -2), a)[..., 0, :]


def vecdot(a: Any, b: Any, axis: Any = -1) -> Any:
    """``np.vecdot``: dot products along ``axis``, broadcasting the rest."""
    a, b = as_tracer(a, b), as_tracer(b, a)
    a = np.moveaxis(a, normalize_axis(axis, a.ndim)[0], -1)
    b = np.moveaxis(b, normalize_axis(axis, b.ndim)[0], -1)
    return np.matmul(np.expand_dims(a, -2), np.expand_dims(b, -1))[..., 0, 0]


# -- norms ------------------------------------------------------------------------------------


def _vector_norm(x: Any, ord: Any, axis: Any, keepdims: bool) -> Any:
    if ord == math.inf:
        return np.max(np.abs(x), axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return np.min(np.abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:
        return np.sum(cast(x != 0, x.dtype), axis=axis, keepdims=keepdims)
    if ord == 1:
        return np.sum(np.abs(x), axis=axis, keepdims=keepdims)
    if ord is None or ord == 2:
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    if isinstance(ord, str):
        raise error(OpTypeError, f"Invalid norm order '{ord}' for vectors")
    total = np.sum(np.abs(x) ** ord, axis=axis, keepdims=keepdims)
    return total ** np.reciprocal(np.asarray(ord, dtype=total.dtype))


def _matrix_norm(x: Any, ord: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    row, col = axes
    if row == col:
        raise error(OpTypeError, "Duplicate axes given.")
    if ord in (None, "fro", "f"):
        result = np.sqrt(np.sum(x * x, axis=axes))
    elif ord in (1, -1):
        reduce = np.max if ord == 1 else np.min
        result = reduce(np.sum(np.abs(x), axis=row), axis=col - 1 if col > row else col)
    elif ord in (math.inf, -math.inf):
        reduce = np.max if ord == math.inf else np.min
        result = reduce(np.sum(np.abs(x), axis=col), axis=row - 1 if row > col else row)
    elif ord in (2, -2, "nuc"):
        from .decomp_functions import singular_values

        s = singular_values(np.moveaxis(x, (row, col), (-2, -1)))
        result = (
            np.max(s, axis=-1)
            if ord == 2
            else np.min(s, axis=-1)
            if ord == -2
            else np.sum(s, axis=-1)
        )
    else:
        raise error(OpTypeError, "Invalid norm order for matrices.")
    if keepdims:
        result = np.expand_dims(result, tuple(sorted(axes)))
    return result


@implements(np.linalg.norm)
def _norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    x = as_tracer(x)
    if not x.value.type.dtype.is_float:
        x = cast(x, np.float64)
    if axis is None and (
        ord is None or (ord in ("f", "fro") and x.ndim == 2) or (ord == 2 and x.ndim == 1)
    ):
        flat = np.ravel(x)
        result = np.sqrt(np.matmul(flat, flat))
        return np.reshape(result, (1,) * x.ndim) if keepdims else result
    axes = normalize_axis(axis, x.ndim)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes, keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise error(OpTypeError, "Improper number of dimensions to norm.")


if hasattr(np.linalg, "vector_norm"):

    @implements(np.linalg.vector_norm)
    def _linalg_vector_norm(
        x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: Any = 2
    ) -> Any:
        x = as_tracer(x)
        shape = x.shape
        axes = normalize_axis(axis, x.ndim)
        rest = tuple(i for i in range(x.ndim) if i not in axes)
        # fold the normed axes into one, as NumPy does, so ord means a vector norm
        x = np.transpose(x, axes + rest)
        x = np.reshape(x, (math.prod(shape[i] for i in axes),) + tuple(shape[i] for i in rest))
        result = _norm(x, ord=ord, axis=0)
        if keepdims:
            result = np.reshape(result, tuple(1 if i in axes else n for i, n in enumerate(shape)))
        return result

    @implements(np.linalg.matrix_norm)
    def _linalg_matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
        return _norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)

    @implements(np.linalg.matmul)
    def _linalg_matmul(a: Any, b: Any, /) -> Any:
        return np.matmul(a, b)

    @implements(np.linalg.vecdot)
    def _linalg_vecdot(a: Any, b: Any, /, *, axis: Any = -1) -> Any:
        return vecdot(a, b, axis)

    @implements(np.linalg.outer)
    def _linalg_outer(a: Any, b: Any, /) -> Any:
        if np.ndim(a) != 1 or np.ndim(b) != 1:
            raise error(OpTypeError, "np.linalg.outer needs 1-dimensional inputs")
        return np.outer(a, b)

    @implements(np.linalg.tensordot)
    def _linalg_tensordot(a: Any, b: Any, /, *, axes: Any = 2) -> Any:
        return np.tensordot(a, b, axes=axes)

    @implements(np.linalg.trace)
    def _linalg_trace(x: Any, /, *, offset: Any = 0, dtype: Any = None) -> Any:
        return np.trace(x, offset, -2, -1, dtype)

    @implements(np.linalg.diagonal)
    def _linalg_diagonal(x: Any, /, *, offset: Any = 0) -> Any:
        return np.diagonal(x, offset, -2, -1)

    @implements(np.linalg.matrix_transpose)
    def _linalg_matrix_transpose(x: Any, /) -> Any:
        return np.matrix_transpose(x)

    @implements(np.linalg.cross)
    def _linalg_cross(a: Any, b: Any, /, *, axis: Any = -1) -> Any:
        return _cross(a, b, axis=axis)


@implements(np.linalg.multi_dot)
def _multi_dot(arrays: Any, *, out: Any = None) -> Any:
    no_out("linalg.multi_dot", out)
    arrays = list(arrays)
    if len(arrays) < 2:
        raise error(OpTypeError, "Expecting at least two arrays.")
    result = arrays[0]
    for x in arrays[1:]:
        result = np.dot(result, x)
    return result
