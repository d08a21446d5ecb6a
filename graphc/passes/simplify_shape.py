"""Helpers of the shape, cast, select and reduction rows of ``SIMPLIFY_RULES``.

Each is a predicate ``(m) -> bool`` or a builder ``(b, m) -> Operand`` over a
:class:`~graphc.passes.simplify.Match`; the table in
:mod:`graphc.passes.simplify_rules` says which op each belongs to.
"""

from __future__ import annotations

import math

import numpy as np

from graphc.ir import DType, GraphBuilder, Literal, Operand, TensorType, Value

from .fold import canonical_nan, splat_value
from .simplify import Match, fit


def as_dtype(b: GraphBuilder, x: Operand, dtype: DType) -> Operand:
    """``x`` cast to ``dtype`` (itself when it already has it)."""
    return fit(b, x, TensorType(x.type.shape, dtype))


def filled(b: GraphBuilder, m: Match, value: Literal | float) -> Operand:
    """A value of the node's output type whose every element is ``value``."""
    lit = value if isinstance(value, Literal) else Literal(value, m.out.dtype)
    lit = Literal(lit.as_array().astype(m.out.dtype.np).item(), m.out.dtype)
    return splat_value(b, lit, m.out.shape)


# -- shape ops ---------------------------------------------------------------------


def inner_input(m: Match, op: str) -> Operand:
    n = m.arg_node(0, op)
    assert n is not None
    return n.inputs[0]


def compose_transpose(b: GraphBuilder, m: Match) -> Operand:
    inner = m.arg_node(0, "transpose")
    assert inner is not None
    p1, p2 = inner.attrs["perm"], m.attrs["perm"]
    perm = tuple(p1[i] for i in p2)
    w = inner.inputs[0]
    return w if perm == tuple(range(len(perm))) else b.transpose(w, perm=perm)


def compose_broadcast(b: GraphBuilder, m: Match) -> Operand:
    inner = m.arg_node(0, "broadcast_in_dim")
    assert inner is not None
    d1, d2 = inner.attrs["broadcast_dimensions"], m.attrs["broadcast_dimensions"]
    dims = tuple(d2[i] for i in d1)
    return b.broadcast_in_dim(inner.inputs[0], shape=m.out.shape, broadcast_dimensions=dims)


def broadcast_is_reshape(m: Match) -> bool:
    if not isinstance(m.x, Value):
        return False
    dims, shape = m.attrs["broadcast_dimensions"], m.out.shape
    stretched = any(m.x.type.shape[i] != shape[d] for i, d in enumerate(dims))
    new_dims_are_one = all(shape[d] == 1 for d in range(len(shape)) if d not in dims)
    return not stretched and new_dims_are_one and m.out.shape != m.x.type.shape


def shape_of_splat_ok(m: Match) -> bool:
    # A broadcast of a literal is already the canonical splat.
    return not isinstance(m.x, Literal) and m.splat(0) is not None


def splat_shaped(b: GraphBuilder, m: Match) -> Operand:
    lit = m.splat(0)
    assert lit is not None
    return splat_value(b, lit, m.out.shape)


def slice_is_identity(m: Match) -> bool:
    return m.out.shape == m.x.type.shape and not any(m.attrs["start"])


def compose_slice(b: GraphBuilder, m: Match) -> Operand:
    inner = m.arg_node(0, "slice")
    assert inner is not None
    w = inner.inputs[0]
    start, limit, stride = [], [], []
    for d, n in enumerate(m.out.shape):
        s1, st1 = inner.attrs["start"][d], inner.attrs["stride"][d]
        s2, st2 = m.attrs["start"][d], m.attrs["stride"][d]
        s, st = s1 + s2 * st1, st1 * st2
        if n == 0:
            s = 0
        start.append(s)
        stride.append(st)
        limit.append(s + (n - 1) * st + 1 if n else 0)
    return b.slice(w, start=tuple(start), limit=tuple(limit), stride=tuple(stride))


def reverse_axes(axes: tuple[int, ...], ndim: int) -> set[int]:
    return {a % ndim for a in axes} if ndim else set()


def reverse_is_identity(m: Match) -> bool:
    shape = m.x.type.shape
    return all(shape[a] <= 1 for a in reverse_axes(m.attrs["axes"], len(shape)))


def compose_reverse(b: GraphBuilder, m: Match) -> Operand:
    inner = m.arg_node(0, "reverse")
    assert inner is not None
    ndim = m.out.ndim
    axes = reverse_axes(inner.attrs["axes"], ndim) ^ reverse_axes(m.attrs["axes"], ndim)
    w = inner.inputs[0]
    return b.reverse(w, axes=tuple(sorted(axes))) if axes else w


# -- casts ---------------------------------------------------------------------------


def lossless_inner_cast(m: Match) -> bool:
    inner = m.arg_node(0, "cast")
    if inner is None:
        return False
    src, mid = inner.inputs[0].type.dtype, inner.attrs["dtype"]
    # When the first cast keeps every value exactly, the second sees the
    # original values, so one cast gives the same result.
    return bool(np.can_cast(src.np, mid.np, "safe"))


def compose_cast(b: GraphBuilder, m: Match) -> Operand:
    w = inner_input(m, "cast")
    return w if w.type.dtype == m.out.dtype else b.cast(w, dtype=m.out.dtype)


# -- select ----------------------------------------------------------------------------


def select_by_constant(b: GraphBuilder, m: Match) -> Operand:
    cond = m.splat(0)
    assert cond is not None
    return m.fit(b, m.y if cond.value else m.z)


def select_negated(b: GraphBuilder, m: Match) -> Operand:
    w = inner_input(m, "not")
    return b.select(w, m.z, m.y)


# -- reductions --------------------------------------------------------------------------

REDUCTIONS = ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min")


def reduced_axes(m: Match) -> tuple[int, ...]:
    ndim = m.x.type.ndim
    return tuple(sorted(a % ndim for a in m.attrs["axes"])) if ndim else ()


def reduces_unit_axes(m: Match) -> bool:
    shape = m.x.type.shape
    return all(shape[a] == 1 for a in reduced_axes(m))


def sum_start(b: GraphBuilder, m: Match, x: Operand) -> Operand:
    """``x`` as a float sum of it alone gives it: NumPy's sums start from +0.0,
    so a -0.0 element sums to +0.0; ``x + 0.0`` does exactly that."""
    if m.node.op != "reduce_sum" or not x.type.dtype.is_float or not m.facts(x).neg_zero:
        return x
    return b.add(x, Literal(0.0, x.type.dtype))


def drop_axes(b: GraphBuilder, m: Match) -> Operand:
    x = m.x
    target = m.out.shape
    if x.type.shape != target:
        x = b.reshape(x, shape=target)
    return sum_start(b, m, as_dtype(b, x, m.out.dtype))


def broadcast_axes(m: Match) -> tuple[list[int], list[int]] | None:
    """Reduced axes that the operand's broadcast created, and the others."""
    inner = m.arg_node(0, "broadcast_in_dim")
    if inner is None:
        return None
    w, dims = inner.inputs[0], inner.attrs["broadcast_dimensions"]
    made, real = [], []
    for d in reduced_axes(m):
        if d not in dims or w.type.shape[dims.index(d)] == 1:
            made.append(d)
        else:
            real.append(d)
    return (made, real) if made else None


def reduce_broadcast(b: GraphBuilder, m: Match) -> Operand:
    """Reduce a broadcast: axes the broadcast created need no work (the max
    of copies is the value; the sum of n copies is n times it, rounded once
    rather than n times), the other axes are reduced on the small operand."""
    split = broadcast_axes(m)
    inner = m.arg_node(0, "broadcast_in_dim")
    assert split is not None and inner is not None
    made, real = split
    w, dims = inner.inputs[0], inner.attrs["broadcast_dimensions"]
    shape = m.x.type.shape
    axes, keepdims = reduced_axes(m), m.attrs["keepdims"]
    if real:
        w = b.emit(
            m.node.op, w, axes=tuple(dims.index(d) for d in real), keepdims=True, loc=m.node.loc
        )
    w = sum_start(b, m, as_dtype(b, w, m.out.dtype))
    if m.node.op == "reduce_sum":
        copies = math.prod(shape[d] for d in made)
        if copies == 0:
            return filled(b, m, 0)
        if copies != 1:
            w = scaled(b, w, copies)
    # Drop the operand dims that were reduced (all of size 1 by now) and
    # broadcast what is left to the result.
    kept = [i for i, d in enumerate(dims) if d not in axes]
    squeezed = tuple(w.type.shape[i] for i in kept)
    if w.type.shape != squeezed:
        w = b.reshape(w, shape=squeezed)
    if keepdims:
        new_dims = tuple(dims[i] for i in kept)
    else:
        new_dims = tuple(dims[i] - sum(1 for a in axes if a < dims[i]) for i in kept)
    if w.type.shape == m.out.shape and new_dims == tuple(range(m.out.ndim)):
        return w
    return b.broadcast_in_dim(w, shape=m.out.shape, broadcast_dimensions=new_dims)


def scaled(b: GraphBuilder, w: Operand, k: int) -> Operand:
    dtype = w.type.dtype
    if isinstance(w, Literal):
        with np.errstate(all="ignore"):
            product = w.as_array() * np.asarray(k, dtype.np)
            return Literal(canonical_nan(product).item(), dtype)
    return b.mul(w, Literal(k, dtype))
