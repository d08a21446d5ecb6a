"""gc.scatter_add and gc.segment_sum: additive updates that return their result.

``np.add.at(a, idx, v)`` adds in place, which a trace cannot record soundly
(a NumPy view of ``a`` taken earlier would see the update; a traced value
cannot be changed under it). ``scatter_add`` is the same sum returned as a
new array, one ``scatter_add`` node in the graph, differentiable with
respect to ``a`` and the updates (the gradient of the updates gathers the
output's gradient at the indices). ``segment_sum`` is the
graph-neural-network form: sum rows of ``data`` into ``num_segments`` bins.

Called on concrete arrays outside any trace, both compute with NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import GraphcIndexError, OpTypeError, format_message

from .tracing import TracedArray, user_location
from .tracing.dispatch import as_tracer, normalize_axis, static_int
from .tracing.ops import cast, emit, tracers_in


def scatter_add(a: Any, indices: Any, updates: Any, axis: int = 0) -> Any:
    """``a`` with ``updates`` added at ``indices`` along ``axis``, as a new array.

    The result equals ``b = a.copy(); np.add.at(b, (slice(None),) * axis +
    (indices,), updates)``: repeated indices accumulate, negative ones count
    from the end, and ``updates`` broadcasts to ``a.shape[:axis] +
    indices.shape + a.shape[axis + 1:]`` and is cast to ``a``'s dtype (NumPy's
    same-kind rule). An index outside the axis is an ``IndexError`` (at run
    time for traced indices). Differentiable in ``a`` and ``updates``.

    >>> import numpy as np, graphc as gc
    >>> gc.scatter_add(np.zeros(3), np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]))
    array([4., 0., 2.])
    >>> gc.grad(lambda v: gc.scatter_add(np.zeros(2), np.array([1, 1]), v)[1])(np.ones(2))
    array([1., 1.])
    """
    if not tracers_in((a, indices, updates)):
        return _scatter_numpy(np.asarray(a), np.asarray(indices), updates, axis)
    a = as_tracer(a, indices, updates)
    idx = as_tracer(indices, a)
    if not idx.value.type.dtype.is_int:
        raise OpTypeError(
            format_message(
                f"scatter_add: indices must be integers, got {idx.dtype}", loc=user_location(2)
            )
        )
    (ax,) = normalize_axis(axis, a.ndim, allow_none=False)
    if not isinstance(indices, TracedArray):
        _check_range(np.asarray(indices), a.shape[ax], "scatter_add")
    shape = a.shape[:ax] + idx.shape + a.shape[ax + 1 :]
    upd = as_tracer(updates, a)
    if not np.can_cast(upd.dtype, a.dtype, "same_kind") and not upd.weak:
        raise OpTypeError(
            format_message(
                f"scatter_add: cannot add {upd.dtype} updates into a {a.dtype} array "
                "(NumPy's same-kind casting rule)",
                loc=user_location(2),
                hint=f"cast the updates first, e.g. v.astype(np.{a.dtype})",
            )
        )
    upd = np.broadcast_to(cast(upd, a.dtype), shape)
    t = a.trace
    return emit(t, "scatter_add", [t.value_of(a), t.value_of(idx), t.value_of(upd)], axis=ax)


def segment_sum(data: Any, segment_ids: Any, num_segments: int) -> Any:
    """Sum the rows of ``data`` by segment: ``out[s] = sum of data[i] with
    segment_ids[i] == s``, for ``s`` in ``range(num_segments)``.

    ``segment_ids`` is a 1-d integer array as long as ``data``'s first axis;
    ``num_segments`` is a static int (the output's length). An id outside
    ``[0, num_segments)`` is an ``IndexError`` (at run time for traced ids).
    Empty segments are zero. Differentiable in ``data``: message passing in a
    graph neural network is ``segment_sum(messages, receivers, n_nodes)``.

    >>> import numpy as np, graphc as gc
    >>> gc.segment_sum(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 2, 0]), 3)
    array([7., 0., 3.])
    """
    n = static_int(num_segments, "num_segments")
    if n < 0:
        raise OpTypeError(format_message("num_segments must be >= 0", loc=user_location(2)))
    ids_shape, data_shape = np.shape(segment_ids), np.shape(data)
    if len(ids_shape) != 1 or not data_shape or ids_shape[0] != data_shape[0]:
        raise OpTypeError(
            format_message(
                f"segment_sum: segment_ids must be 1-d and as long as data's first axis; got "
                f"ids of shape {ids_shape} for data of shape {data_shape}",
                loc=user_location(2),
            )
        )
    if not tracers_in((data, segment_ids)):
        ids = np.asarray(segment_ids)
        _check_range(ids, n, "segment_sum", negative_ok=False)
        data = np.asarray(data)
        return _scatter_numpy(np.zeros((n,) + data.shape[1:], data.dtype), ids, data, 0)
    if isinstance(segment_ids, TracedArray):
        # a negative id is no segment: send it out of range, where the op raises
        ids: Any = np.where(segment_ids < 0, n, segment_ids)
    else:
        ids = np.asarray(segment_ids)
        _check_range(ids, n, "segment_sum", negative_ok=False)
    data = as_tracer(data, segment_ids)
    zeros = np.zeros((n,) + data.shape[1:], data.dtype)
    return scatter_add(zeros, ids, data, axis=0)


def _check_range(idx: np.ndarray, n: int, what: str, negative_ok: bool = True) -> None:
    if idx.dtype.kind not in "iu":
        raise OpTypeError(
            format_message(
                f"{what}: indices must be integers, got {idx.dtype}", loc=user_location(3)
            )
        )
    low = -n if negative_ok else 0
    bad = idx[(idx < low) | (idx >= n)]
    if bad.size:
        raise GraphcIndexError(
            format_message(
                f"{what}: index {bad.flat[0]} is out of bounds for an axis of size {n}",
                loc=user_location(3),
            )
        )


def _scatter_numpy(a: np.ndarray, idx: np.ndarray, updates: Any, axis: int) -> np.ndarray:
    ax = axis % a.ndim if a.ndim else axis
    _check_range(idx, a.shape[ax], "scatter_add")
    out = a.copy()
    np.add.at(out, (slice(None),) * ax + (idx,), updates)
    return out
