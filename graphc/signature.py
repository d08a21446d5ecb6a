"""What a jitted function's cache is keyed by, and the checks a call makes
before it reaches a cached executable.

A :class:`Signature` is the pytree structure of the dynamic arguments, each
leaf's shape, dtype and weak-typedness, and the static arguments' values.
:func:`fast_key` is the cheap form of the same key that cache hits use;
:func:`weak_int_uses` finds Python int arguments that the graph narrows, so a
call can refuse a value that would wrap.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ir import DType, Graph, InputOverflowError, Loc, UnsupportedError, format_message
from graphc.ir.inputs import int_in_range

from .pytree import TreeDef


@dataclass(frozen=True)
class Signature:
    """What a compiled executable is specialized to."""

    tree: TreeDef
    leaves: tuple[tuple[tuple[int, ...], Any, bool], ...]  # (shape, dtype or kind, weak)
    static: tuple[Hashable, ...]

    def describe_difference(self, other: Signature, names: Sequence[str]) -> str:
        if self.tree != other.tree:
            return f"argument structure changed: {other.tree} -> {self.tree}"
        if self.static != other.static:
            return f"static arguments changed: {other.static!r} -> {self.static!r}"
        parts = []
        for name, new, old in zip(names, self.leaves, other.leaves):
            if new == old:
                continue
            if new[2] != old[2]:
                parts.append(f"{name}: {_describe_leaf(old)} -> {_describe_leaf(new)}")
                continue
            what = []
            if new[0] != old[0]:
                what.append(f"shape {list(old[0])} -> {list(new[0])}")
            if new[1] != old[1]:
                what.append(f"dtype {old[1]} -> {new[1]}")
            parts.append(f"{name}: {', '.join(what)}")
        return "; ".join(parts) or "signature changed"


def _describe_leaf(key: tuple[tuple[int, ...], Any, bool]) -> str:
    shape, dtype, weak = key
    return f"Python {dtype}" if weak else f"{dtype} array of shape {list(shape)}"


@dataclass(frozen=True)
class WeakUse:
    """A Python int argument the function uses at a narrower integer dtype."""

    leaf: int
    name: str
    dtype: DType
    loc: Loc | None


def weak_int_uses(g: Graph, input_weak: Sequence[bool]) -> tuple[WeakUse, ...]:
    """The Python int inputs of traced graph ``g`` that tracing casts to a
    narrower integer type (``int32_array * n`` casts ``n``, NumPy's weak
    scalar rule), with the narrowest such type. NumPy raises OverflowError when
    the int does not fit that type; the compiled graph would wrap, so the call
    checks the value first. Casts of values computed from the int (``n + 1``)
    are not followed: their range is not the argument's."""
    users = g.users()
    found = []
    for k, (v, weak) in enumerate(zip(g.inputs, input_weak)):
        if not weak or v.type.dtype is not DType.i64:
            continue
        narrowest: tuple[DType, Loc | None] | None = None
        reached = [v]
        while reached:
            for n in users.get(reached.pop(), ()):
                if n.op in ("reshape", "broadcast_in_dim"):  # the same values, shaped
                    reached.extend(n.outputs)
                elif n.op == "cast" and n.attrs["dtype"].is_int:
                    dtype = n.attrs["dtype"]
                    if dtype.itemsize < v.type.dtype.itemsize and narrowest is None:
                        narrowest = (dtype, n.loc)
        if narrowest is not None:
            found.append(WeakUse(k, v.name or f"input {k}", *narrowest))
    return tuple(found)


def check_weak_ints(uses: Sequence[WeakUse], flat: Sequence[Any]) -> None:
    for use in uses:
        x = flat[use.leaf]
        if not int_in_range(x, use.dtype):
            raise InputOverflowError(
                format_message(
                    f"argument {use.name} = {x} is out of range for {use.dtype.np}, "
                    "the dtype it is used at",
                    loc=use.loc,
                    hint="a Python int takes the dtype of the array it meets, and NumPy raises "
                    "OverflowError here too; pass a value that fits, or widen the array "
                    "(x.astype(np.int64))",
                )
            )


def fast_key(x: Any, leaves: list[Any]) -> Any:
    """A hashable key for the structure, shapes and dtypes of ``x``, collecting its
    leaves in pytree order; ``None`` for anything unusual (then the general path
    decides). Nested tuples hash in C, which keeps cache hits cheap."""
    kind = type(x)
    if kind is np.ndarray:
        leaves.append(x)
        return (x.shape, x.dtype)
    if kind is dict:
        try:
            keys = sorted(x)
        except TypeError:
            return None
        parts = tuple(fast_key(x[k], leaves) for k in keys)
        return None if None in parts else (dict, tuple(keys), parts)
    if kind is tuple or kind is list:
        parts = tuple(fast_key(c, leaves) for c in x)
        return None if None in parts else (kind, parts)
    if kind is float or kind is int or kind is bool:
        leaves.append(x)
        return kind
    if x is None:  # an empty subtree (train_step's model_state without one)
        return _NONE_KEY
    return None


_NONE_KEY = ("None",)


def leaf_key(x: Any) -> tuple[tuple[int, ...], Any, bool]:
    # NumPy scalars first: np.float64 is also a Python float, but strongly typed.
    if isinstance(x, (np.ndarray, np.generic)):
        if type(x) is not np.ndarray and isinstance(x, (np.matrix, np.ma.MaskedArray)):
            # never the key of an ndarray's executable: compiling refuses it by name
            return (x.shape, (type(x).__name__, x.dtype), False)
        return (x.shape, x.dtype, False)
    if isinstance(x, bool):
        return ((), "bool", True)
    if isinstance(x, int):
        return ((), "int", True)
    if isinstance(x, float):
        return ((), "float", True)
    raise UnsupportedError(
        format_message(
            f"a jitted function got an argument of type {type(x).__name__}",
            hint="pass arrays, numbers, or dicts/lists/tuples of them; mark other arguments static "
            "(gc.jit(f, static_argnums=...))",
        )
    )
