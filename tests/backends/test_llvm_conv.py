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


def test_loops_are_unrolled_only_for_modules_with_convolution_or_pooling():
    """Unrolling costs compile time everywhere and pays only in the short
    constant-trip loops of windows; both ways compute the same values."""
    from graphc.backends.llvm import target

    b = GraphBuilder("conv")
    x = b.input(f64[1, 1, 4, 3], "x")
    k = b.input(f64[2, 1, 1, 1], "k")
    attrs = dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)
    conv = b.build([b.tanh(b.emit("conv2d", x, k, **attrs))])
    b = GraphBuilder("plain")
    y = b.input(f64[4, 3], "y")
    plain = b.build([b.tanh(b.matmul(y, b.transpose(y, perm=(1, 0))))])
    assert target.pays_to_unroll(conv) and not target.pays_to_unroll(plain)
    rng = np.random.default_rng(0)
    for g, args in ((conv, [rng.normal(size=(1, 1, 4, 3)), rng.normal(size=(2, 1, 1, 1))]),
                    (plain, [rng.normal(size=(4, 3))])):  # fmt: skip
        (got,) = llvm.compile(g, cache=False)(*args)
        np.testing.assert_allclose(got, interpret(g, *args)[0], rtol=1e-12)
