"""conv2d on LLVM: zeros keep the reference's sign (its sums start from +0)."""

from __future__ import annotations

import numpy as np

from graphc.backends import llvm
from graphc.ir import GraphBuilder, f64, interpret


def test_a_product_underflowing_to_negative_zero_sums_to_positive_zero():
    b = GraphBuilder("conv")
    x = b.input(f64[1, 1, 4, 3], "x")
    k = b.input(f64[2, 1, 1, 1], "k")
    attrs = dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)
    g = b.build([b.emit("conv2d", x, k, **attrs)])
    xv = np.full((1, 1, 4, 3), 1e-200)
    xv[0, 0, 0, 0] = 1.5
    # 1e-200 * -1e-200 underflows to -0; the reference adds it to +0, giving +0
    kv = np.array([-1e-200, -1.0]).reshape(2, 1, 1, 1)
    (got,) = llvm.compile(g, cache=False)(xv, kv)
    (want,) = interpret(g, xv, kv)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
