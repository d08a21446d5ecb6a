"""share_transposed_operands: products reading one matrix transposed share one transposed copy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.ir import Graph, GraphBuilder, f32
from graphc.passes.fuse import fuse
from graphc.passes.manager import Pass, run_passes
from graphc.passes.transposed_operands import MIN_READERS, share_transposed_operands
from tests.passes.helpers import assert_same_meaning


def recurrence(steps: int, *, extra_read: bool = False, lhs: bool = False) -> Graph:
    """``steps`` fused products reading ``w`` transposed, as an unrolled backward does."""
    b = GraphBuilder("f")
    w, x = b.input(f32[8, 8], "w"), b.input(f32[8, 8], "x")
    for _ in range(steps):
        wt = b.transpose(w, perm=(1, 0))
        if lhs:  # w.T on the left: BLAS packs that side plainly, nothing to share
            x = b.transpose(b.tanh(b.matmul(wt, b.transpose(x, perm=(1, 0)))), perm=(1, 0))
        else:
            x = b.tanh(b.matmul(x, wt))
        if extra_read:  # the kernel also reads w itself, element by element
            x = b.mul(x, w)
    return fuse(b.build([x]))


def run(g: Graph) -> tuple[Graph, dict[str, int]]:
    out, report = run_passes(g, [Pass("share_transposed_operands", share_transposed_operands)])
    return out, report.passes[0].counts


def body_ops(n: Any) -> list[str]:
    return [bn.op for bn in n.subgraphs[0].nodes]


def test_many_readers_share_one_transposed_copy() -> None:
    g = recurrence(4)
    out, counts = run(g)
    assert [n.op for n in out.nodes] == ["transpose"] + ["fusion"] * 4
    assert all("transpose" not in body_ops(n) for n in out.nodes[1:])
    assert counts == {"transposes shared": 1, "products reading a shared transpose": 4}
    assert_same_meaning(g, out)


@pytest.mark.parametrize(
    "g",
    [
        recurrence(MIN_READERS - 1),
        recurrence(4, extra_read=True),
        recurrence(4, lhs=True),
    ],
    ids=["too_few_readers", "also_read_plainly", "transposed_on_the_left"],
)
def test_other_reads_are_left_alone(g: Graph) -> None:
    out, counts = run(g)
    assert out == g and not counts


def rnn_loss(params: dict[str, Any], xs: Any) -> Any:
    h = np.zeros((xs.shape[1], params["whh"].shape[0]), np.float32)
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ params["wxh"] + h @ params["whh"])
    return (h**2).mean()


def rnn_problem(seed: int) -> tuple[dict[str, Any], Any]:
    rng = np.random.default_rng(seed)
    params = {
        "wxh": rng.standard_normal((6, 16)).astype(np.float32) * 0.5,
        "whh": rng.standard_normal((16, 16)).astype(np.float32) * 0.3,
    }
    return params, rng.standard_normal((8, 4, 6)).astype(np.float32)


def test_an_unrolled_recurrence_backward_reads_the_shared_copy_on_llvm() -> None:
    params, xs = rnn_problem(0)
    step = gc.jit(gc.value_and_grad(rnn_loss), backend="llvm")
    got = step(params, xs)
    counts = step.report.record("share_transposed_operands").counts
    assert counts["transposes shared"] >= 1
    want = gc.jit(gc.value_and_grad(rnn_loss), backend="numpy")(params, xs)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    for k in params:
        np.testing.assert_allclose(got[1][k], want[1][k], rtol=1e-4, atol=1e-6)
    plain = gc.jit(
        gc.value_and_grad(rnn_loss), backend="llvm", disable_passes=("share_transposed_operands",)
    )(params, xs)
    for k in params:  # the same sums, read from a different layout
        np.testing.assert_allclose(got[1][k], plain[1][k], rtol=1e-5, atol=1e-7)


def test_the_numpy_backend_copies_a_shared_transpose_once() -> None:
    params, xs = rnn_problem(1)
    step = gc.jit(gc.value_and_grad(rnn_loss), backend="numpy")
    got = step(params, xs)
    source = step.lower(params, xs).executable.source
    assert source.count("np_ascontiguousarray(whh.transpose((1, 0)))") == 1
    want = gc.jit(gc.value_and_grad(rnn_loss), backend="interpret")(params, xs)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    for k in params:
        np.testing.assert_allclose(got[1][k], want[1][k], rtol=1e-4, atol=1e-6)
