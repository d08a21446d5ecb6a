"""The whole pipeline, as `pipeline(backend, donate, memory_budget)` builds it."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.compiler import pipeline_for
from graphc.passes import PIPELINE
from graphc.passes.pipeline import optimize, pipeline

OPTIMIZATIONS = [
    "verify",
    "fold_constants",
    "simplify",
    "eliminate_common_subexpressions",
    "merge_sum_chains",
    "hoist_loop_sums",
    "simplify_after_cse",
    "eliminate_dead_code",
]


def names(passes) -> list[str]:  # noqa: ANN001
    return [p.name for p in passes]


def test_without_a_backend_only_the_optimizations_run() -> None:
    assert names(pipeline()) == OPTIMIZATIONS
    assert names(PIPELINE) == OPTIMIZATIONS


@pytest.mark.parametrize("backend", ["numpy", "interpret"])
def test_numpy_pipeline(backend: str) -> None:
    assert names(pipeline(backend)) == [
        "verify",
        "fold_constants",
        "simplify",
        "eliminate_common_subexpressions",
        "merge_sum_chains",
        "hoist_loop_sums",
        "inline_remat",
        "simplify_after_cse",
        "eliminate_dead_code",
        "schedule_for_memory",
        "schedule_collectives",
        "remove_barriers",
    ]


def test_llvm_pipeline_fuses_before_scheduling() -> None:
    assert names(pipeline("llvm", (0,), 1 << 20)) == [
        "verify",
        "fold_constants",
        "simplify",
        "eliminate_common_subexpressions",
        "merge_sum_chains",
        "hoist_loop_sums",
        "inline_remat",
        "simplify_after_cse",
        "eliminate_dead_code",
        "rematerialize",
        "widen_16bit",
        "fuse",
        "share_transposed_operands",
        "recompute_cheap_results",
        "schedule_for_memory",
        "schedule_collectives",
        "remove_barriers",
    ]


def test_compiler_uses_the_same_pipeline() -> None:
    for backend in ("numpy", "llvm"):
        assert names(pipeline_for(backend, (), 0)) == names(pipeline(backend, (), 0))


def test_every_pipeline_keeps_the_functions_meaning() -> None:
    def f(x, y):  # noqa: ANN001, ANN202
        return (np.tanh(x) * y + np.tanh(x) * 1.0).sum(axis=0).max()

    x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    y = np.linspace(0.5, 2.0, 12).reshape(3, 4)
    g = gc.trace(gc.value_and_grad(f), x, y)
    expected = gc.ir.interpret(g, x, y)
    for backend in (None, "numpy", "llvm"):
        for budget in (None, 0):
            out, _ = optimize(g, passes=pipeline(backend, (), budget))
            for a, b in zip(gc.ir.interpret(out, x, y), expected):
                np.testing.assert_allclose(a, b, rtol=1e-12)
