"""Arrays built from traced values, and constants that take traced indices.

``np.array([a, b])``, ``np.asarray([x, 0.0])``, ``np.r_[x, 0.0]`` and
``np.mean([x, y])`` reach NumPy's C array constructor, which cannot hold a
traced value. While a trace is active, :mod:`.intercept` routes them here:
a nested list holding traced values becomes one traced array with the dtype
and shape ``np.array`` would give it.

Arrays that NumPy constructors make for the user during a trace come back as
:class:`TraceConstant`, an ordinary ndarray whose indexing also accepts traced
indices (``np.eye(C)[y]`` is a gather from a constant).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import OpTypeError, TracingError, UnsupportedError, format_message

from .array import TracedArray
from .context import Trace, innermost, user_location
from .ops import cast, lift, tracers_in

# NumPy's own constructor, captured before anything can replace it.
_NP_ARRAY = np.array


def holds_tracer(obj: Any) -> bool:
    """Whether ``obj`` is a tracer or a (nested) list or tuple holding one."""
    if isinstance(obj, TracedArray):
        return True
    if isinstance(obj, (list, tuple)):
        return any(holds_tracer(o) for o in obj)
    return False


def nested_shape(obj: Any) -> tuple[int, ...] | None:
    """The shape ``np.array(obj)`` would have, or None when ``obj`` is ragged."""
    if isinstance(obj, TracedArray):
        return obj.shape
    if isinstance(obj, (list, tuple)):
        shapes = {nested_shape(o) for o in obj}
        if None in shapes or len(shapes) > 1:
            return None
        return (len(obj),) + (shapes.pop() if shapes else ())
    return tuple(np.shape(obj))


def nested_dtype(obj: Any) -> np.dtype[Any]:
    """The dtype ``np.array(obj)`` would have, for ``obj`` holding traced values."""
    if isinstance(obj, TracedArray):
        return obj.dtype
    if isinstance(obj, (list, tuple)):
        return np.result_type(*[nested_dtype(o) for o in obj]) if obj else np.dtype(np.float64)
    return _NP_ARRAY(obj).dtype


def as_arrays(obj: Any) -> Any:
    """``obj`` with lists holding traced values made arrays: the whole of it when
    it is rectangular, otherwise each of its elements (a sequence of arrays)."""
    if not isinstance(obj, (list, tuple)) or not tracers_in(obj):
        return obj
    if nested_shape(obj) is not None:
        return traced_array(obj)
    return type(obj)(as_arrays(o) for o in obj)


# Arguments that are sequences of arrays: their elements are the arrays.
_SEQUENCE_ARGS: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(
        "concatenate concat stack hstack vstack dstack column_stack row_stack".split(), (0,)
    ),
    "select": (0, 1),
}
# np.block's nesting has its own meaning: its handler takes the lists as they are.
_NESTED_MEANING = frozenset({"block"})


def convert_lists(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The arguments with Python lists holding traced values made traced arrays,
    as NumPy's own conversion of an array-like argument would make them."""
    if name in _NESTED_MEANING:
        return args, kwargs
    sequences = _SEQUENCE_ARGS.get(name, ())
    converted = tuple(
        [as_arrays(e) for e in a]
        if i in sequences and isinstance(a, (list, tuple))
        else as_arrays(a)
        for i, a in enumerate(args)
    )
    return converted, {k: as_arrays(v) for k, v in kwargs.items()}


def traced_array(obj: Any, dtype: Any = None, ndmin: int = 0) -> TracedArray:
    """``np.array(obj, dtype, ndmin=ndmin)`` for ``obj`` holding traced values.

    Python numbers count as float64/int64/bool, as in ``np.array`` (they are
    not weakly typed inside a list); the result is never weakly typed.
    """
    trace = innermost(tracers_in(obj))
    assert trace is not None, "no traced value in the object"
    built = _build(obj, trace)
    target = np.dtype(dtype) if dtype is not None else built.dtype
    out = cast(built, target)
    if out.weak:
        out = TracedArray(out.trace, out.value, False)
    if ndmin > out.ndim:
        out = np.reshape(out, (1,) * (ndmin - out.ndim) + out.shape)
    return out  # type: ignore[no-any-return]


def _build(obj: Any, trace: Trace) -> Any:
    """A tracer (when ``obj`` holds one) or a concrete ndarray."""
    if isinstance(obj, TracedArray):
        return lift(obj, trace)
    if not isinstance(obj, (list, tuple)) or not holds_tracer(obj):
        return _NP_ARRAY(obj)
    parts = [_build(o, trace) for o in obj]
    shapes = {tuple(np.shape(p)) for p in parts}
    if len(shapes) > 1:
        raise OpTypeError(
            format_message(
                "setting an array element with a sequence: the elements have shapes "
                f"{sorted(shapes)}, so the array would be inhomogeneous",
                loc=user_location(3),
                hint="every element of a nested list must have the same shape, as in np.array",
            )
        )
    dtype = nested_dtype(parts)
    return np.stack([lift(cast(p, dtype), trace) for p in parts])


class TraceConstant(np.ndarray):
    """An ndarray made by a NumPy constructor while tracing.

    It is an ordinary array, except that indexing it with a traced index (and
    ``.take``/``.dot`` with a traced operand) records a gather or product
    instead of asking the traced value for data NumPy cannot have.
    """

    def __getitem__(self, key: Any) -> Any:
        if holds_tracer(key):
            from .indexing import getitem

            found = innermost(tracers_in(key))
            assert found is not None
            return getitem(lift(self.view(np.ndarray), found), key)
        return super().__getitem__(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        if holds_tracer(key) or holds_tracer(value):
            from .array import _STORE_HINT

            raise TracingError(
                format_message(
                    "assigning a traced value into a NumPy array (a[i] = v): arrays are not "
                    "updated in place while tracing",
                    loc=user_location(2),
                    hint=_STORE_HINT,
                )
            )
        super().__setitem__(key, value)

    def take(self, indices: Any, axis: Any = None, out: Any = None, mode: str = "raise") -> Any:
        if holds_tracer(indices):
            from .elementwise_functions import _take

            return _take(self.view(np.ndarray), indices, axis, out, mode)
        return super().take(indices, axis, out, mode)  # type: ignore[call-overload]

    def dot(self, b: Any, out: Any = None) -> Any:
        if isinstance(b, TracedArray):
            return np.dot(self.view(np.ndarray), b)
        return super().dot(b, out)  # type: ignore[call-overload]

    def __repr__(self) -> str:
        return repr(self.view(np.ndarray))

    def __reduce__(self) -> Any:
        # a copy saved or sent elsewhere is a plain ndarray
        return self.view(np.ndarray).__reduce__()


def as_constant(result: Any) -> Any:
    """``result`` as a :class:`TraceConstant` view when it is a plain ndarray."""
    if type(result) is np.ndarray:
        return result.view(TraceConstant)
    return result


# -- np.r_ and np.c_ ---------------------------------------------------------------


def concatenator(
    key: Any, axis: int, ndmin: int, trans1d: int, matrix: bool, concatenate: Any
) -> Any:
    """``np.r_[key]`` / ``np.c_[key]`` (an AxisConcatenator's settings) when the
    key holds traced values: NumPy's rules for slices, directives, scalars and
    the shared dtype, with the parts concatenated as traced arrays."""
    if isinstance(key, str) or matrix:
        raise _matrix_error()
    key = key if isinstance(key, tuple) else (key,)
    objs: list[Any] = []
    kinds: list[Any] = []  # dtypes, or Python scalars (weakly typed), for result_type
    for k, item in enumerate(key):
        if isinstance(item, slice):
            objs.append(_slice_part(item, ndmin, trans1d))
            kinds.append(objs[-1].dtype)
        elif isinstance(item, str):
            if k != 0:
                raise OpTypeError(
                    format_message(
                        "special directives must be the first entry", loc=user_location(3)
                    )
                )
            if item in ("r", "c"):
                raise _matrix_error()
            axis, ndmin, trans1d = _directive(item, axis, ndmin, trans1d)
        elif type(item) in np.ScalarType:
            objs.append(item)
            kinds.append(item)
        else:
            part = _part(item, ndmin, trans1d)
            objs.append(part)
            kinds.append(_weak_kind(item) if isinstance(item, TracedArray) else part.dtype)
    final = np.result_type(*kinds) if kinds else None
    parts = [_part(o, ndmin, -1, final) for o in objs]
    return concatenate(tuple(parts), axis=axis)


def _weak_kind(x: TracedArray) -> Any:
    # a tracer standing for a Python scalar keeps its weak typing, as the scalar would
    if not x.weak:
        return x.dtype
    kind = x.dtype.kind
    return False if kind == "b" else 0 if kind in "iu" else 0.0


def _part(item: Any, ndmin: int, trans1d: int, dtype: Any = None) -> Any:
    base = traced_array(item, dtype) if holds_tracer(item) else _NP_ARRAY(item, dtype=dtype)
    out = base
    if base.ndim < ndmin:
        out = np.reshape(base, (1,) * (ndmin - base.ndim) + base.shape)
        if trans1d != -1:
            k2 = ndmin - base.ndim
            k1 = trans1d + k2 + 1 if trans1d < 0 else trans1d
            axes = list(range(ndmin))
            out = np.transpose(out, axes[:k1] + axes[k2:] + axes[k1:k2])
    return out


def _slice_part(item: slice, ndmin: int, trans1d: int) -> np.ndarray:
    if any(isinstance(v, TracedArray) for v in (item.start, item.stop, item.step)):
        raise UnsupportedError(
            format_message(
                "np.r_/np.c_: slice bounds must be static, but one is a traced value",
                loc=user_location(4),
                hint="build the range with np.linspace(start, stop, num), which takes traced "
                "endpoints",
            )
        )
    start = 0 if item.start is None else item.start
    step = 1 if item.step is None else item.step
    if isinstance(step, (complex, np.complexfloating)):
        part = np.linspace(start, item.stop, num=int(abs(step)))
    else:
        part = np.arange(start, item.stop, step)
    part = np.asarray(part)
    if ndmin > 1:
        part = _NP_ARRAY(part, ndmin=ndmin)
        if trans1d != -1:
            part = part.swapaxes(-1, trans1d)
    return part


def _directive(item: str, axis: int, ndmin: int, trans1d: int) -> tuple[int, int, int]:
    try:
        if "," in item:
            vec = [int(v) for v in item.split(",")]
            if len(vec) not in (2, 3):
                raise ValueError(item)
            return vec[0], vec[1], vec[2] if len(vec) == 3 else trans1d
        return int(item), ndmin, trans1d
    except ValueError:
        raise OpTypeError(
            format_message(f"unknown special directive {item!r}", loc=user_location(4))
        ) from None


def _matrix_error() -> UnsupportedError:
    return UnsupportedError(
        format_message(
            "np.r_/np.c_ with a matrix directive ('r', 'c' or a string key) builds an "
            "np.matrix, which graphc does not support",
            loc=user_location(4),
            hint="leave out the directive to get an ndarray",
        )
    )
