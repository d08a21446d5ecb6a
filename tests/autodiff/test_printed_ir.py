"""The IR of value_and_grad of a 2-layer MLP, printed: its shape must stay readable.

When a pass changes this output on purpose, update the text here in the same
commit and read the diff.
"""

from __future__ import annotations

import textwrap

import numpy as np

import graphc as gc


def loss(params, x, y):
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    out = h @ params["w2"] + params["b2"]
    return np.sum((out - y) ** 2) / 32


EXPECTED = textwrap.dedent(
    """\
    graph loss(%b1: f32[16], %b2: f32[1], %w1: f32[4,16], %w2: f32[16,1], %x: f32[32,4],
               %y: f32[32,1]) -> (f32[], f32[16], f32[1], f32[4,16], f32[16,1]) {
      %0 = matmul %x, %w1              : f32[32,16]
      %1 = add %0, %b1                 : f32[32,16]
      %2 = max %1, 0.0                 : f32[32,16]
      %3 = matmul %2, %w2              : f32[32,1]
      %4 = add %3, %b2                 : f32[32,1]
      %5 = sub %4, %y                  : f32[32,1]
      %6 = mul %5, %5                  : f32[32,1]
      %7 = reduce_sum %6 {axes=(0,1)}  : f32[]
      %8 = mul %7, 0.03125             : f32[]
      %9 = mul %5, 2.0                 : f32[32,1]
      %10 = mul 0.03125, %9            : f32[32,1]
      %11 = reduce_sum %10 {axes=(0,)} : f32[1]
      %12 = transpose %w2 {perm=(1,0)} : f32[1,16]
      %13 = matmul %10, %12            : f32[32,16]
      %14 = transpose %2 {perm=(1,0)}  : f32[16,32]
      %15 = matmul %14, %10            : f32[16,1]
      %16 = gt %2, 0.0                 : bool[32,16]
      %17 = select %16, %13, 0.0:f32   : f32[32,16]
      %18 = reduce_sum %17 {axes=(0,)} : f32[16]
      %19 = transpose %x {perm=(1,0)}  : f32[4,32]
      %20 = matmul %19, %17            : f32[4,16]
      return %8, %18, %11, %20, %15
    }"""
)


def test_value_and_grad_of_an_mlp_prints_as_expected():
    f32 = np.float32
    params = {
        "w1": np.ones((4, 16), f32),
        "b1": np.ones(16, f32),
        "w2": np.ones((16, 1), f32),
        "b2": np.ones(1, f32),
    }
    x, y = np.ones((32, 4), f32), np.ones((32, 1), f32)
    compiled = gc.jit(gc.value_and_grad(loss), backend="numpy").lower(params, x, y)
    assert str(compiled.optimized_graph) == EXPECTED
    # the relu mask (%16) reads only the relu's result, so %1 dies right after the relu
    # forward (9 ops) plus backward: the joint graph stays under 3x the forward
    forward = gc.trace(loss, params, x, y)
    assert len(forward.nodes) == 9
    assert len(compiled.optimized_graph.nodes) <= 3 * len(forward.nodes)
    assert gc.ir.parse(EXPECTED) == compiled.optimized_graph
