"""``x[key]`` on traced arrays: basic indexing (ints, slices with any step,
None, Ellipsis) and integer-array indexing with NumPy's placement rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import DType, GraphcIndexError, TracingError, UnsupportedError, format_message

from .array import TracedArray
from .context import innermost, user_location
from .ops import emit, lift, operand, tracers_in


def _index_error(msg: str) -> GraphcIndexError:
    return GraphcIndexError(format_message(msg, loc=user_location(4)))


def _is_int(k: Any) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _is_array_index(k: Any) -> bool:
    if isinstance(k, TracedArray):
        return True
    if isinstance(k, (list, np.ndarray)):
        return True
    return False


def getitem(x: TracedArray, key: Any) -> TracedArray:
    """NumPy indexing semantics for a traced array."""
    from .constructors import traced_array

    if not isinstance(key, tuple):
        key = (key,)
    # a list holding traced values is an index array, as np.array would make it
    key = tuple(traced_array(k) if isinstance(k, list) and tracers_in(k) else k for k in key)
    inner = innermost([x, *key])
    if inner is not None and inner is not x.trace:
        # An index from a nested trace (a scan body indexing a closed-over
        # array with its counter): the array is captured into that trace.
        x = TracedArray(inner, inner.value_of(x), x.weak)
    entries = _expand(x, list(key))
    x, entries = _insert_new_axes(x, entries)
    entries = _concrete_masks(x, entries)
    has_array = any(_is_array_index(k) for k in entries)
    # With an index array present, integers are advanced indices too (NumPy's rule).
    x, entries, squeeze = _apply_basic(x, entries, ints_are_basic=not has_array)
    if has_array:
        x = _apply_advanced(x, entries, _adjacent(key))
    if squeeze:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in squeeze)
        x = np.reshape(x, shape)  # type: ignore[assignment]
    return x


def _adjacent(key: tuple[Any, ...]) -> bool:
    """Whether the advanced indices sit next to each other in the key as written.
    NumPy decides this on the key itself, so even an Ellipsis that stands for
    no axes separates them."""
    advanced = [i for i, k in enumerate(key) if _is_array_index(k) or _is_int(k)]
    return advanced == list(range(advanced[0], advanced[-1] + 1))


def _consumes(k: Any) -> int:
    if k is None:
        return 0
    if isinstance(k, TracedArray) and k.dtype == np.bool_:
        return k.ndim
    if isinstance(k, (list, np.ndarray)):
        arr = np.asarray(k)
        return arr.ndim if arr.dtype == np.bool_ else 1
    return 1


def _expand(x: TracedArray, key: list[Any]) -> list[Any]:
    if sum(k is Ellipsis for k in key) > 1:
        raise _index_error("an index can only have a single ellipsis ('...')")
    for k in key:
        if not (
            k is None
            or k is Ellipsis
            or isinstance(k, slice)
            or _is_int(k)
            or _is_array_index(k)
            or isinstance(k, (bool, np.bool_))
        ):
            raise _index_error(
                f"only integers, slices, ..., None and integer or boolean arrays are valid "
                f"indices, got {type(k).__name__}"
            )
        if isinstance(k, (bool, np.bool_)) or (
            isinstance(k, np.ndarray) and k.dtype == np.bool_ and k.ndim == 0
        ):
            raise UnsupportedError(
                format_message("indexing with a Python bool is not supported", loc=user_location(4))
            )
        if isinstance(k, slice) and any(
            isinstance(v, TracedArray) for v in (k.start, k.stop, k.step)
        ):
            raise TracingError(
                format_message(
                    "slice bounds must be static, but one is a traced value",
                    loc=user_location(4),
                    hint="use integer-array indexing or np.take for data-dependent positions",
                )
            )
    used = sum(_consumes(k) for k in key if k is not Ellipsis)
    if used > x.ndim:
        raise _index_error(
            f"too many indices for array: array is {x.ndim}-dimensional, but {used} were indexed"
        )
    if Ellipsis in [k for k in key if not _is_array_index(k)]:
        at = next(i for i, k in enumerate(key) if k is Ellipsis and not _is_array_index(k))
        key = key[:at] + [slice(None)] * (x.ndim - used) + key[at + 1 :]
    else:
        key = key + [slice(None)] * (x.ndim - used)
    return key


def _insert_new_axes(x: TracedArray, entries: list[Any]) -> tuple[TracedArray, list[Any]]:
    if not any(k is None for k in entries):
        return x, entries
    shape: list[int] = []
    dim = 0
    out = []
    for k in entries:
        if k is None:
            shape.append(1)
            out.append(slice(None))
            continue
        n = _consumes(k)
        shape.extend(x.shape[dim : dim + n])
        dim += n
        out.append(k)
    return np.reshape(x, tuple(shape)), out  # type: ignore[return-value]


def _concrete_masks(x: TracedArray, entries: list[Any]) -> list[Any]:
    out: list[Any] = []
    dim = 0
    for k in entries:
        if isinstance(k, TracedArray) and k.dtype == np.bool_:
            raise TracingError(
                format_message(
                    "boolean-mask indexing with a traced mask has a data-dependent shape",
                    loc=user_location(4),
                    hint="use np.where(mask, x, 0) (and a sum) instead of x[mask]",
                )
            )
        if isinstance(k, (list, np.ndarray)) and np.asarray(k).dtype == np.bool_:
            mask = np.asarray(k)
            for axis, (n, m) in enumerate(zip(x.shape[dim:], mask.shape), dim):
                # NumPy lets an empty mask through, as an empty integer index
                if n != m and mask.size:
                    raise _index_error(
                        f"boolean index did not match indexed array along axis {axis}; size "
                        f"of axis is {n} but size of corresponding boolean axis is {m}"
                    )
            out.extend(np.nonzero(mask))
            dim += mask.ndim
        else:
            out.append(k)
            dim += 1
    return out


def _apply_basic(
    x: TracedArray, entries: list[Any], ints_are_basic: bool
) -> tuple[TracedArray, list[Any], set[int]]:
    start, limit, stride, flip = [], [], [], []
    squeeze: set[int] = set()
    rest: list[Any] = []
    for dim, (k, n) in enumerate(zip(entries, x.shape)):
        if _is_int(k) and ints_are_basic:
            i = int(k)
            if not -n <= i < n:
                raise _index_error(f"index {i} is out of bounds for axis {dim} with size {n}")
            i %= n
            start.append(i), limit.append(i + 1), stride.append(1)
            squeeze.add(dim)
            rest.append(slice(None))
        elif isinstance(k, slice):
            s, e, st = k.indices(n)
            if st > 0:
                start.append(s), limit.append(max(e, s)), stride.append(st)
            else:
                # walk the reversed axis forwards: index i becomes n - 1 - i
                flip.append(dim)
                s2, e2 = n - 1 - s, n - 1 - e
                start.append(s2), limit.append(max(e2, s2)), stride.append(-st)
            rest.append(slice(None))
        else:
            start.append(0), limit.append(n), stride.append(1)
            rest.append(k)
    if flip:
        x = emit(x.trace, "reverse", [x.trace.value_of(x)], axes=tuple(flip))
    if tuple(start) != (0,) * x.ndim or tuple(limit) != x.shape or any(s != 1 for s in stride):
        x = emit(
            x.trace,
            "slice",
            [x.trace.value_of(x)],
            start=tuple(start),
            limit=tuple(limit),
            stride=tuple(stride),
        )
    return x, rest, squeeze


def _apply_advanced(x: TracedArray, entries: list[Any], adjacent: bool) -> TracedArray:
    trace = x.trace
    positions = [i for i, k in enumerate(entries) if not isinstance(k, slice)]
    indices = []
    for i in positions:
        k = entries[i]
        if isinstance(k, TracedArray):
            if not k.value.type.dtype.is_int:
                raise _index_error(f"arrays used as indices must be of integer type, got {k.dtype}")
            indices.append(k)
        else:
            # an empty list is an (empty) integer index, as in NumPy
            arr = np.asarray(k) if not (isinstance(k, list) and not k) else np.zeros(0, np.int64)
            if arr.dtype.kind not in "iu":
                raise _index_error(
                    f"arrays used as indices must be of integer type, got {arr.dtype}"
                )
            n = x.shape[i]
            if arr.size and (arr.min() < -n or arr.max() >= n):
                bad = arr[(arr < -n) | (arr >= n)].flat[0]
                raise _index_error(f"index {bad} is out of bounds for axis {i} with size {n}")
            indices.append(np.where(arr < 0, arr + n, arr).astype(np.int64))
    try:
        bshape = np.broadcast_shapes(*[np.shape(k) for k in indices])
    except ValueError:
        shapes = " ".join(str(np.shape(k)) for k in indices)
        raise _index_error(
            f"shape mismatch: indexing arrays could not be broadcast together with shapes {shapes}"
        ) from None
    others = [i for i in range(x.ndim) if i not in positions]
    if len(positions) == 1:
        # one index array: NumPy puts its dimensions where the indexed axis was
        (idx,) = indices
        return emit(trace, "gather", [trace.value_of(x), operand(trace, idx)], axis=positions[0])
    # Several index arrays: move indexed axes to the front, flatten them into
    # one axis and gather with the row-major linear index.
    perm = positions + others
    if perm != list(range(x.ndim)):
        x = np.transpose(x, perm)  # type: ignore[assignment]
    sizes = [x.shape[j] for j in range(len(positions))]
    total = int(np.prod(sizes))
    flat = np.reshape(x, (total,) + x.shape[len(positions) :])
    linear: Any = 0
    for j, (k, n) in enumerate(zip(indices, sizes)):
        stride = int(np.prod(sizes[j + 1 :]))
        k64 = _checked_axis_index(trace, k, n) if isinstance(k, TracedArray) else k
        term = k64 if stride == 1 else k64 * stride
        linear = term if j == 0 else linear + term
    linear = lift(np.broadcast_to(linear, bshape), trace)
    out = emit(trace, "gather", [trace.value_of(flat), operand(trace, linear)], axis=0)
    if adjacent and positions[0] != 0:
        nb = len(bshape)
        first = positions[0]
        rest = list(range(nb, out.ndim))
        order = rest[:first] + list(range(nb)) + rest[first:]
        out = np.transpose(out, order)
    return out


def _checked_axis_index(trace: Any, k: TracedArray, n: int) -> Any:
    """``k`` as a non-negative int64 index into an axis of size ``n``: a
    gather from ``0, 1, ..., n-1``, so an index out of range fails right
    there, against this axis's size (not as some position of the flattened
    array), and a negative one counts from the end, as in NumPy."""
    positions = emit(trace, "iota", [], shape=(n,), dimension=0, dtype=DType.i64)
    return emit(trace, "gather", [trace.value_of(positions), operand(trace, k)], axis=0)
