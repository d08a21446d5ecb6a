"""Random graphs rich in the patterns the simplifier rewrites.

The shared strategy (``tests.strategies.graphs``) draws any op with any
operands, so it seldom builds ``neg(neg x)``, ``x * 1`` or a sum of a
broadcast. This one draws from a menu of exactly such patterns, applied to
values built so far, with special literals (0, -0.0, 1, -1, 2, powers of two).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

from graphc.ir import DType, Graph, GraphBuilder, Literal, OpTypeError, TensorType, Value
from tests.strategies import DTYPES

SPECIAL_LITERALS = (0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 4.0, 3.0, 0.0078125)


def _lit(draw: Callable[..., Any], dtype: DType) -> Any:
    if dtype.is_bool:
        return draw(st.booleans())
    value = draw(st.sampled_from(SPECIAL_LITERALS))
    return int(value) if dtype.is_int else value


def _pattern(draw: Callable[..., Any], b: GraphBuilder, x: Value, pool: list[Value]) -> Any:
    ty = x.type
    kind = draw(
        st.sampled_from(
            [
                "arith_literal",
                "arith_literal",
                "neg_chain",
                "exp_log",
                "transpose_chain",
                "reshape_chain",
                "broadcast_reduce",
                "broadcast_literal",
                "cast_chain",
                "select",
                "stop_gradient",
                "pow",
                "self_op",
                "slice_chain",
                "reverse_chain",
                "other_binary",
                "neg_product",
            ]
        )
    )
    if kind == "arith_literal":
        op = draw(st.sampled_from(["add", "sub", "mul", "div"]))
        lit = _lit(draw, ty.dtype)
        return b.emit(op, *((lit, x) if draw(st.booleans()) else (x, lit)))
    if kind == "neg_chain":
        for _ in range(draw(st.integers(1, 3))):
            x = b.neg(x)
        return x
    if kind == "exp_log":
        first, second = draw(st.sampled_from([("exp", "log"), ("log", "exp")]))
        inner = b.emit(draw(st.sampled_from(["sigmoid", "exp", "tanh", "abs"])), x)
        return b.emit(second, b.emit(first, inner if draw(st.booleans()) else x))
    if kind == "transpose_chain":
        for _ in range(draw(st.integers(1, 3))):
            x = b.transpose(x, perm=tuple(draw(st.permutations(range(x.type.ndim)))))
        return x
    if kind == "reshape_chain":
        size = ty.size
        for _ in range(draw(st.integers(1, 3))):
            x = b.reshape(x, shape=draw(st.sampled_from([(size,), (1, size), (size, 1), ty.shape])))
        return x
    if kind == "broadcast_reduce":
        lead = draw(st.integers(1, 3))
        shape = (lead, *ty.shape)
        y = b.broadcast_in_dim(x, shape=shape, broadcast_dimensions=tuple(range(1, len(shape))))
        axes = tuple(sorted(draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
        op = draw(st.sampled_from(["reduce_sum", "reduce_max", "reduce_min"]))
        return b.emit(op, y, axes=axes, keepdims=draw(st.booleans()))
    if kind == "broadcast_literal":
        splat = b.broadcast_in_dim(
            Literal(_lit(draw, ty.dtype), ty.dtype), shape=ty.shape, broadcast_dimensions=()
        )
        op = draw(st.sampled_from(["add", "mul", "sub", "max"]))
        return b.emit(op, x, splat) if draw(st.booleans()) else b.emit(op, splat, x)
    if kind == "cast_chain":
        for _ in range(draw(st.integers(1, 2))):
            x = b.cast(x, dtype=draw(st.sampled_from(DTYPES)))
        return x
    if kind == "select":
        cond = draw(st.sampled_from(["true", "false", "not", "same"]))
        other = draw(st.sampled_from(pool))
        if cond == "same":
            c = b.gt(x, 0)
            return b.select(c, other, other)
        if cond == "not":
            return b.select(b.emit("not", b.gt(x, 0)), x, other)
        return b.select(Literal(cond == "true", DType.bool), x, other)
    if kind == "stop_gradient":
        return b.stop_gradient(x)
    if kind == "pow":
        return b.pow(x, draw(st.sampled_from([0.0, 1.0, 2.0, -1.0, 0.5])))
    if kind == "self_op":
        op = draw(st.sampled_from(["max", "min", "sub", "add", "and", "or"]))
        return b.emit(op, x, x)
    if kind == "slice_chain":
        for _ in range(draw(st.integers(1, 2))):
            start, limit, stride = [], [], []
            for n in x.type.shape:
                s = draw(st.integers(0, n))
                start.append(s)
                limit.append(draw(st.integers(s, n)))
                stride.append(draw(st.integers(1, 2)))
            x = b.slice(x, start=tuple(start), limit=tuple(limit), stride=tuple(stride))
        return x
    if kind == "reverse_chain":
        for _ in range(draw(st.integers(1, 2))):
            axes = draw(st.sets(st.integers(0, max(x.type.ndim - 1, 0)), max_size=x.type.ndim))
            x = b.reverse(x, axes=tuple(sorted(axes)) if x.type.ndim else ())
        return x
    if kind == "neg_product":
        other = draw(st.sampled_from(pool))
        lhs = b.neg(x) if draw(st.booleans()) else x
        rhs = b.neg(other) if draw(st.booleans()) else _lit(draw, ty.dtype)
        out = b.emit(draw(st.sampled_from(["mul", "div"])), lhs, rhs)
        return b.neg(out) if draw(st.booleans()) else out
    other = draw(st.sampled_from(pool))
    return b.emit(draw(st.sampled_from(["add", "mul", "sub", "max"])), x, other)


@st.composite
def rule_graphs(draw: Callable[..., Any], max_steps: int = 6) -> Graph:
    """A graph of 1-2 inputs (f32, f64 or i32; shapes up to 3x4) and a few patterns."""
    b = GraphBuilder("g")
    dtype = draw(st.sampled_from([DType.f32, DType.f64, DType.i32]))
    shape = draw(st.sampled_from([(), (3,), (2, 3), (1, 4), (3, 1)]))
    pool = [b.input(TensorType(shape, dtype), "x")]
    if draw(st.booleans()):
        pool.append(b.input(TensorType(shape, dtype), "y"))
    for _ in range(draw(st.integers(1, max_steps))):
        x = draw(st.sampled_from(pool))
        before = len(b.nodes)
        try:
            out = _pattern(draw, b, x, pool)
        except OpTypeError:
            del b.nodes[before:]
            continue
        if isinstance(out, Value) and out.type.size <= 64:
            pool.append(out)
        else:
            del b.nodes[before:]
    outs = [pool[-1]] + draw(st.lists(st.sampled_from(pool), max_size=1))
    return b.build(outs)


def inputs_for(g: Graph, seed: int) -> list[np.ndarray]:
    """Inputs with special values (0, -0.0, inf, NaN) mixed in."""
    from tests.passes.helpers import random_inputs

    return random_inputs(g, seed)
