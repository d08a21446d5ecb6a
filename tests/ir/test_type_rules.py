"""Type rules agree with NumPy: np.broadcast_shapes, np.result_type and the
dtype each ufunc's loop resolves to, over random shapes and dtypes."""

from __future__ import annotations

import itertools
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphc.ir import DType, GraphBuilder, OpTypeError, TensorType, all_ops, promote
from graphc.ir.ops.rules import broadcast_shapes

from .oracles import ORACLES, SUPPORTED, Rejected

DTYPES = tuple(DType)
ELEMENTWISE_BINARY = sorted(
    name
    for name, op in all_ops().items()
    if op.has("elementwise") and len(op.operands) == 2 and not op.attrs
)
ARITHMETIC = ["add", "sub", "mul", "max", "min"]

shape = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
shape_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4).map(
    lambda s: s.input_shapes
) | st.tuples(shape, shape)


def numpy_result(fn: Any, *arrays: np.ndarray) -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype NumPy gives, or None when NumPy (or graphc's dtype set) refuses."""
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*arrays))
    except (TypeError, ValueError, Rejected):
        return None
    if out.dtype not in SUPPORTED:
        return None
    return out.shape, out.dtype


def graphc_result(op: str, types: list[TensorType], **attrs: Any) -> tuple[Any, np.dtype] | None:
    b = GraphBuilder("f")
    try:
        out = b.emit(op, *(b.input(t) for t in types), **attrs)
    except OpTypeError:
        return None
    return out.type.shape, out.type.dtype.np


def test_elementwise_binary_ops_are_all_checked() -> None:
    assert set(ARITHMETIC) <= set(ELEMENTWISE_BINARY)
    assert len(ELEMENTWISE_BINARY) >= 19


@given(st.sampled_from(ELEMENTWISE_BINARY), shape_pairs, st.sampled_from(DTYPES),
       st.sampled_from(DTYPES))  # fmt: skip
def test_binary_rules_follow_numpy(op: str, shapes: Any, dx: DType, dy: DType) -> None:
    sx, sy = shapes
    # Ones, not zeros: integer 0 ** negative and 0 // 0 are value errors, not type errors.
    want = numpy_result(ORACLES[op], np.ones(sx, dx.np), np.ones(sy, dy.np))
    got = graphc_result(op, [TensorType(sx, dx), TensorType(sy, dy)])
    assert got == want
    if got is not None:
        assert got[0] == np.broadcast_shapes(sx, sy)
        if op in ARITHMETIC:
            assert got[1] == np.result_type(dx.np, dy.np)


@given(st.tuples(shape, shape, shape), st.sampled_from(DTYPES), st.sampled_from(DTYPES))
def test_select_rule_follows_where(shapes: Any, dx: DType, dy: DType) -> None:
    sc, sx, sy = shapes
    want = numpy_result(np.where, np.ones(sc, bool), np.ones(sx, dx.np), np.ones(sy, dy.np))
    got = graphc_result("select", [TensorType(sc, DType.bool), TensorType(sx, dx),
                                   TensorType(sy, dy)])  # fmt: skip
    assert got == want
    if got is not None:
        assert got[1] == np.result_type(dx.np, dy.np)


@given(st.lists(shape, min_size=1, max_size=4))
def test_broadcast_shapes_matches_numpy(shapes: list[tuple[int, ...]]) -> None:
    try:
        want: Any = np.broadcast_shapes(*shapes)
    except ValueError:
        want = None
    try:
        got: Any = broadcast_shapes(*shapes)
    except OpTypeError:
        got = None
    assert got == want


def test_promote_matches_result_type() -> None:
    for a, b in itertools.product(DTYPES, DTYPES):
        assert promote(a, b).np == np.result_type(a.np, b.np)
    for a, b, c in itertools.product(DTYPES, DTYPES, DTYPES):
        assert promote(a, b, c).np == np.result_type(a.np, b.np, c.np)


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_prod", "reduce_max", "reduce_min"])
@given(data=st.data())
def test_reduction_rules_follow_numpy(op: str, data: st.DataObject) -> None:
    shp = data.draw(shape)
    dtype = data.draw(st.sampled_from(DTYPES))
    axes = data.draw(st.lists(st.integers(-len(shp) - 1, len(shp)), max_size=len(shp) + 1))
    keepdims = data.draw(st.booleans())
    try:
        want: Any = ORACLES[op](np.ones(shp, dtype.np), axes=tuple(axes), keepdims=keepdims)
        want = (want.shape, want.dtype)
    except Rejected:
        want = None
    got = graphc_result(op, [TensorType(shp, dtype)], axes=tuple(axes), keepdims=keepdims)
    assert got == want


@given(st.tuples(shape, shape), st.sampled_from(DTYPES), st.sampled_from(DTYPES))
def test_matmul_rule_follows_numpy(shapes: Any, da: DType, db: DType) -> None:
    sa, sb = shapes
    want = numpy_result(np.matmul, np.ones(sa, da.np), np.ones(sb, db.np))
    got = graphc_result("matmul", [TensorType(sa, da), TensorType(sb, db)])
    assert got == want


@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       st.sampled_from(DTYPES))  # fmt: skip
def test_matmul_with_compatible_shapes(shapes: Any, dtype: DType) -> None:
    # Most random pairs fail to contract; build ones that do.
    a, b = shapes.input_shapes
    sa, sb = a + (2, 3), b + (3, 4)
    want = numpy_result(np.matmul, np.ones(sa, dtype.np), np.ones(sb, dtype.np))
    assert want is not None
    assert graphc_result("matmul", [TensorType(sa, dtype), TensorType(sb, dtype)]) == want


@given(st.sampled_from(sorted(n for n, o in all_ops().items() if o.has("elementwise")
                              and len(o.operands) == 1 and not o.attrs)),
       shape, st.sampled_from(DTYPES))  # fmt: skip
def test_unary_rules_follow_numpy(op: str, shp: tuple[int, ...], dtype: DType) -> None:
    try:
        out = ORACLES[op](np.ones(shp, dtype.np))
        want: Any = (out.shape, out.dtype)
    except Rejected:
        want = None
    assert graphc_result(op, [TensorType(shp, dtype)]) == want


@given(st.sampled_from(DTYPES), st.sampled_from(DTYPES), shape)
def test_cast_rule(src: DType, dst: DType, shp: tuple[int, ...]) -> None:
    assert graphc_result("cast", [TensorType(shp, src)], dtype=dst) == (shp, dst.np)
