"""recompute_cheap_results: fused kernels stop keeping derivatives beside their values."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphc as gc
from graphc.ir import DType, Graph, GraphcError, interpret, parse, verify
from graphc.passes.fuse import fuse
from graphc.passes.manager import Pass, run_passes
from graphc.passes.recompute_results import recompute_cheap_results
from graphc.passes.schedule import peak_bytes, schedule_for_memory
from graphc.pytree import tree_flatten
from tests.passes.helpers import random_inputs
from tests.strategies import graphs, ops_with_trait

pytestmark = pytest.mark.usefixtures("private_llvm_cache")


def scheduled_peak(g: Graph) -> int:
    h = schedule_for_memory(g)
    return peak_bytes(h, h.nodes)


def mlp(act: Any) -> Any:
    def loss(params: Any, x: Any, y: Any) -> Any:
        for w, b in params:
            x = act(x @ w + b)
        return ((x - y) ** 2).mean()

    return loss


def mlp_data(depth: int, width: int = 32, batch: int = 48) -> tuple[Any, ...]:
    rng = np.random.default_rng(7)
    params = [
        (
            (rng.standard_normal((width, width)) * 0.3).astype(np.float32),
            (rng.standard_normal(width) * 0.1).astype(np.float32),
        )
        for _ in range(depth)
    ]
    x = rng.standard_normal((batch, width)).astype(np.float32)
    return params, x, rng.standard_normal((batch, width)).astype(np.float32)


@pytest.mark.parametrize(
    "act",
    [np.tanh, gc.nn.sigmoid, gc.nn.relu, lambda z: np.maximum(0.0, z)],
    ids=["tanh", "sigmoid", "relu", "maximum(0, z)"],
)
def test_a_deep_mlp_keeps_one_tensor_per_layer(act: Any) -> None:
    depth = 6
    params, x, y = mlp_data(depth)
    step = gc.jit(gc.value_and_grad(mlp(act)), backend="llvm")
    got = step(params, x, y)
    # The forward kernels write only the activation, never its derivative too
    # (relu's mask is out > 0: a bool a quarter of the activation's size stays
    # only where keeping it lowers the peak, near the turn to the backward).
    forward = [n for n in step.optimized_graph.nodes if n.op == "fusion"][: depth - 1]
    assert all(sum(v.type.dtype.is_float for v in n.outputs) == 1 for n in forward)
    recomputed = step.report.counts["results recomputed by readers"]
    if act in (np.tanh, gc.nn.sigmoid):
        assert all(len(n.outputs) == 1 for n in forward)
        assert recomputed == depth - 1
    else:
        assert recomputed >= depth - 3
    # Saved: the activations of all layers but the last (its kernel computes the
    # loss's gradient at once), and the gradient flowing back, in and out.
    assert step.memory.plan_bytes <= (depth - 1 + 2) * x.nbytes
    want = gc.jit(gc.value_and_grad(mlp(act)), backend="numpy")(params, x, y)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    for a, b in zip(tree_flatten(got[1])[0], tree_flatten(want[1])[0]):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)


def test_a_result_that_lowers_the_peak_when_kept_stays() -> None:
    # d = 1 - t*t is read right after t's kernel while t itself is read much
    # later: recomputing d there would keep nothing shorter.
    g = parse(
        """
        graph f(%x: f32[256], %w: f32[256]) -> (f32[256]) {
          %t = tanh %x : f32[256]
          %s = mul %t, %t : f32[256]
          %d = sub 1.0, %s : f32[256]
          %u = exp %w : f32[256]
          %e = mul %u, %d : f32[256]
          %r = reduce_sum %e {axes=(0,)} : f32[]
          %o = mul %t, %r : f32[256]
          return %o
        }
        """
    )
    fused = fuse(g)
    out, report = run_passes(fused, [Pass("recompute", recompute_cheap_results)])
    assert scheduled_peak(out) <= scheduled_peak(fused)
    arrays = random_inputs(g, 0)
    assert [a.tobytes() for a in interpret(out, *arrays)] == [
        a.tobytes() for a in interpret(g, *arrays)
    ]


OPS = sorted(
    set(ops_with_trait("elementwise")) - set(ops_with_trait("comparison"))
    | {"matmul", "reduce_sum", "broadcast_in_dim", "transpose"}
)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(g=graphs(ops=OPS, min_nodes=4, max_nodes=14, dtypes=[DType.f32, DType.f64], fusion_depth=0))
def test_the_values_are_the_same_bits_and_the_peak_never_rises(g: Graph) -> None:
    fused = fuse(g)
    out = recompute_cheap_results(fused)
    verify(out)
    assert parse(str(out)) == out
    assert scheduled_peak(out) <= scheduled_peak(fused)
    for seed in range(2):
        arrays = random_inputs(g, seed)
        try:
            want = interpret(fused, *arrays)
        except GraphcError:
            continue
        got = interpret(out, *arrays)
        assert [a.tobytes() for a in got] == [a.tobytes() for a in want]
