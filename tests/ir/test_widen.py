"""widen_16bit: 16-bit float arithmetic in float32, index operands left alone."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm import compile as compile_llvm
from graphc.ir import DType, GraphBuilder, TensorType, interpret, verify
from graphc.ir.widen import widen_16bit


def test_scatter_add_on_float16_keeps_its_integer_indices() -> None:
    b = GraphBuilder("s")
    x = b.input(TensorType((4, 2), DType.f16), "x")
    idx = b.input(TensorType((3,), DType.i32), "idx")
    upd = b.input(TensorType((3, 2), DType.f16), "upd")
    g = b.build([b.scatter_add(x, idx, upd, axis=0)])
    wide = widen_16bit(g)
    verify(wide)
    scatter = next(n for n in wide.nodes if n.op == "scatter_add")
    assert scatter.inputs[1].type.dtype == DType.i32
    assert scatter.inputs[0].type.dtype == DType.f32
    data = (
        np.arange(8, dtype=np.float16).reshape(4, 2),
        np.array([3, 0, 3], np.int32),
        np.full((3, 2), 0.5, np.float16),
    )
    want = interpret(g, *data)[0]
    np.testing.assert_array_equal(interpret(wide, *data)[0], want)
    np.testing.assert_array_equal(compile_llvm(g)(*data)[0], want)
