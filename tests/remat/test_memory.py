"""Peak memory with gc.remat and with jit(memory_budget=...): lower, same results.

Peaks are the memory plan's (``plan_memory(...).peak_bytes``, what the backend
preallocates for intermediates) and the executables' own memory reports.
"""

from __future__ import annotations

import textwrap
import warnings
from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.ir import interpret, parse
from graphc.passes import PipelineError
from graphc.passes.inline import remove_barriers
from graphc.passes.manager import Pass, run_passes
from graphc.passes.plan_memory import plan_memory
from graphc.passes.remat import MemoryBudgetWarning, rematerialize
from graphc.passes.schedule import peak_bytes
from graphc.pytree import tree_flatten
from tests.passes.helpers import assert_same_meaning

BACKENDS = ["numpy", "llvm"]


# Compiled LLVM objects go to a private directory, shared within this module.
pytestmark = pytest.mark.usefixtures("private_llvm_cache")


def gelu(h: Any) -> Any:
    return 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h**3)))


def mlp_loss(wrap: str | None = None) -> Any:
    """Four gelu layers; ``wrap`` puts gc.remat around each "layer" or each "act"."""
    act = gc.remat(gelu) if wrap == "act" else gelu

    def layer(x: Any, w: Any, b: Any) -> Any:
        return act(x @ w + b)

    block = gc.remat(layer) if wrap == "layer" else layer

    def loss(params: Any, x: Any, y: Any) -> Any:
        for w, b in params:
            x = block(x, w, b)
        return ((x - y) ** 2).mean()

    return loss


def mlp_data(width: int = 64, batch: int = 64) -> tuple[Any, ...]:
    rng = np.random.default_rng(0)
    params = [
        (rng.standard_normal((width, width)) * 0.2, rng.standard_normal(width) * 0.1)
        for _ in range(4)
    ]
    return params, rng.standard_normal((batch, width)), rng.standard_normal((batch, width))


def planned_peak(step: Any, backend: str, *args: Any) -> int:
    g = step.lower(*args).optimized_graph
    return plan_memory(g, inplace=backend == "numpy").peak_bytes


def report_bytes(step: Any, *args: Any) -> int:
    memory = step.lower(*args).memory
    return memory.arena_bytes if hasattr(memory, "arena_bytes") else memory.buffer_bytes


def assert_same_results(got: Any, want: Any) -> None:
    for a, b in zip(tree_flatten(got)[0], tree_flatten(want)[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_remat_around_each_layer_lowers_the_peak(backend: str) -> None:
    args = mlp_data()
    base = gc.jit(gc.value_and_grad(mlp_loss()), backend=backend)
    want = base(*args)
    peaks, reported = {}, {}
    for wrap in ("act", "layer"):
        step = gc.jit(gc.value_and_grad(mlp_loss(wrap)), backend=backend)
        assert_same_results(step(*args), want)
        peaks[wrap] = planned_peak(step, backend, *args)
        reported[wrap] = report_bytes(step, *args)
        g = step.lower(*args).optimized_graph
        assert peak_bytes(g, g.nodes) < peak_bytes(base.optimized_graph, base.optimized_graph.nodes)
    base_peak = planned_peak(base, backend, *args)
    # Activations only: the layer inputs stay; whole layers: only their inputs stay.
    assert peaks["act"] < 0.7 * base_peak
    assert peaks["layer"] < peaks["act"]
    assert reported["layer"] < reported["act"] < 0.7 * report_bytes(base, *args)


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_budget_is_met_with_equal_results(backend: str) -> None:
    args = mlp_data()
    base = gc.jit(gc.value_and_grad(mlp_loss()), backend=backend)
    want = base(*args)
    base_peak = planned_peak(base, backend, *args)
    budget = int(0.65 * base_peak)
    step = gc.jit(gc.value_and_grad(mlp_loss()), backend=backend, memory_budget=budget)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemoryBudgetWarning)
        got = step(*args)
    assert_same_results(got, want)
    assert planned_peak(step, backend, *args) <= budget
    assert report_bytes(step, *args) < report_bytes(base, *args)
    counts = step.report.record("rematerialize").counts
    assert counts["peak bytes before"] == base_peak
    assert counts["peak bytes after"] <= budget and counts["values recomputed"] > 0
    assert "bytes over budget" not in counts


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unreachable_budget_warns_by_how_much_naming_the_largest_values(backend: str) -> None:
    rng = np.random.default_rng(3)
    w, x = rng.standard_normal((8, 512)), rng.standard_normal((64, 8))

    def loss(w: Any, x: Any) -> Any:
        return (np.tanh(x @ w) ** 2).sum()  # each intermediate is 256 KiB

    want = gc.jit(gc.grad(loss), backend=backend)(w, x)
    budget = w.nbytes + x.nbytes  # the least a budget may be
    step = gc.jit(gc.grad(loss), backend=backend, memory_budget=budget)
    with pytest.warns(MemoryBudgetWarning, match=rf"memory_budget={budget:,} bytes is not met"):
        got = step(w, x)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.warns(MemoryBudgetWarning) as info:
        gc.jit(gc.grad(loss), backend=backend, memory_budget=budget)(w, x)
    message = str(info[0].message)
    counts = step.report.record("rematerialize").counts
    after = planned_peak(step, backend, w, x)
    assert counts["peak bytes after"] == after
    assert counts["bytes over budget"] == after - budget
    assert f"{after - budget:,} bytes over the budget" in message
    assert "262,144 bytes" in message and "np.tanh(x @ w)" in message
    assert message.startswith("loss:") and "hint:" in message and "gc.remat" in message
    assert info[0].filename == __file__  # points at the call that compiled


def test_a_budget_below_the_inputs_is_an_error() -> None:
    args = mlp_data()
    inputs = sum(a.nbytes for a in tree_flatten(args)[0])
    step = gc.jit(gc.value_and_grad(mlp_loss()), backend="numpy", memory_budget=inputs - 1)
    with pytest.raises(PipelineError, match=rf"{inputs:,} bytes, 1 more than the budget"):
        step(*args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MemoryBudgetWarning)  # allowed, if not met
        gc.jit(gc.value_and_grad(mlp_loss()), backend="numpy", memory_budget=inputs)(*args)


def test_donated_state_is_outside_the_budget() -> None:
    # A training step's parameters are updated in place, not planned: a budget for the
    # intermediates may be far below them, and only the batch is compared with it.
    params, x, y = mlp_data()
    batch = x.nbytes + y.nbytes + 8  # and the step's random key, an int64
    assert batch < sum(a.nbytes for a in tree_flatten(params)[0])
    init = gc.train_step(mlp_loss(), gc.optim.SGD(0.1), backend="numpy").init(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MemoryBudgetWarning)
        step = gc.train_step(mlp_loss(), gc.optim.SGD(0.1), backend="numpy", memory_budget=batch)
        step(init, x, y)
    too_small = gc.train_step(
        mlp_loss(), gc.optim.SGD(0.1), backend="numpy", memory_budget=batch - 1
    )
    with pytest.raises(PipelineError, match=rf"{batch:,} bytes, 1 more than the budget"):
        too_small(init, x, y)


def deep_tanh_loss(params: Any, x: Any) -> Any:
    h = x
    for w in params:
        h = np.tanh(h @ w)
    return (h**2).mean()


@pytest.mark.parametrize("drops", [1, 3])
def test_a_budget_just_under_the_peak_recomputes_few_products(drops: int) -> None:
    # Sixteen layers keep sixteen activations; a budget ``drops`` tensors under the
    # peak is met by computing ``drops`` layers again, not every other layer.
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((32, 32)).astype(np.float32) * 0.3 for _ in range(16)]
    x = rng.standard_normal((64, 32)).astype(np.float32)
    tensor = x.nbytes
    base = gc.jit(gc.value_and_grad(deep_tanh_loss), backend="numpy")
    expected = base(params, x)
    peak = base.memory.plan_bytes
    step = gc.jit(
        gc.value_and_grad(deep_tanh_loss), backend="numpy", memory_budget=peak - drops * tensor
    )
    got = step(params, x)
    counts = step.report.record("rematerialize").counts
    assert counts["products recomputed"] == drops
    assert step.memory.plan_bytes <= peak - drops * tensor
    for a, b in zip(tree_flatten(got)[0], tree_flatten(expected)[0]):
        assert a.tobytes() == b.tobytes()


def test_a_met_budget_changes_nothing() -> None:
    args = mlp_data()
    base = gc.jit(gc.value_and_grad(mlp_loss()), backend="numpy")
    base(*args)
    roomy = gc.jit(gc.value_and_grad(mlp_loss()), backend="numpy", memory_budget=10**9)
    roomy(*args)
    assert roomy.optimized_graph == base.optimized_graph
    counts = roomy.report.record("rematerialize").counts
    assert counts["peak bytes before"] == counts["peak bytes after"]
    assert "values recomputed" not in counts


PRODUCTS_AND_TANH = """
graph f(%x: f32[64,64], %w: f32[64,64]) -> (f32[64,64]) {
  %0 = matmul %x, %w : f32[64,64]
  %1 = tanh %0 : f32[64,64]
  %2 = matmul %1, %w : f32[64,64]
  %3 = tanh %2 : f32[64,64]
  %4 = matmul %3, %w : f32[64,64]
  %5 = mul %4, %4 : f32[64,64]
  %6 = add %5, %3 : f32[64,64]
  %7 = add %6, %1 : f32[64,64]
  return %7
}"""


def test_products_are_recomputed_only_when_cheap_work_cannot_meet_the_budget() -> None:
    g = parse(PRODUCTS_AND_TANH)
    before = plan_memory(g).peak_bytes
    tensor = 64 * 64 * 4

    def run(budget: int) -> tuple[Any, dict[str, int]]:
        remat = Pass("remat", lambda h: rematerialize(h, budget, lower=remove_barriers))
        out, report = run_passes(g, [remat])
        return remove_barriers(out), report.passes[0].counts

    # One tensor less: tanh(%0) and tanh(%2) can be computed again from the
    # products, which are kept (they are the same size), so nothing is gained
    # that way; the products themselves must be recomputed.
    out, counts = run(before - tensor)
    assert counts["products recomputed"] >= 1
    assert plan_memory(out).peak_bytes <= before - tensor
    arrays = [np.random.default_rng(s).standard_normal((64, 64)).astype(np.float32) for s in (0, 1)]
    assert interpret(out, *arrays)[0].tobytes() == interpret(g, *arrays)[0].tobytes()
    # A budget the graph already meets recomputes nothing.
    out, counts = run(before)
    assert out == g and "products recomputed" not in counts


def test_recomputation_goes_right_before_the_late_reader() -> None:
    g = parse(
        textwrap.dedent(
            """
            graph f(%x: f32[1024]) -> (f32[1024]) {
              %0 = tanh %x : f32[1024]
              %1 = reduce_sum %0 {axes=(0,)} : f32[]
              %2 = sin %x : f32[1024]
              %3 = exp %2 : f32[1024]
              %4 = mul %3, %1 : f32[1024]
              %5 = add %4, %0 : f32[1024]
              return %5
            }"""
        )
    )
    out = rematerialize(g, 0)
    assert str(out) == str(
        parse(
            textwrap.dedent(
                """
                graph f(%x: f32[1024]) -> (f32[1024]) {
                  %0 = tanh %x : f32[1024]
                  %1 = reduce_sum %0 {axes=(0,)} : f32[]
                  %2 = sin %x : f32[1024]
                  %3 = exp %2 : f32[1024]
                  %4 = mul %3, %1 : f32[1024]
                  %5, %6 = optimization_barrier %x, %4 : f32[1024], f32[1024]
                  %7 = tanh %5 : f32[1024]
                  %8 = add %4, %7 : f32[1024]
                  return %8
                }"""
            )
        )
    )
    assert plan_memory(remove_barriers(out)).peak_bytes < plan_memory(g).peak_bytes
    assert_same_meaning(g, out)


def test_a_min_cut_keeps_one_value_instead_of_three() -> None:
    # %1, %2 and %3 are read late. The matmul %0 is not: keeping it costs its
    # bytes, and it cannot be recomputed. Keeping %0 and recomputing the three
    # from it is the cheapest cut; no rule "recompute from what is alive
    # anyway" finds that.
    g = parse(
        textwrap.dedent(
            """
            graph f(%x: f32[16,8], %w: f32[8,32], %y: f32[16,32]) -> (f32[16,32]) {
              %0 = matmul %x, %w : f32[16,32]
              %1 = tanh %0 : f32[16,32]
              %2 = mul %0, %0 : f32[16,32]
              %3 = sin %0 : f32[16,32]
              %4 = reduce_sum %1 {axes=(0,1)} : f32[]
              %5 = mul %y, %4 : f32[16,32]
              %6 = cos %5 : f32[16,32]
              %7 = exp %6 : f32[16,32]
              %8 = add %7, %1 : f32[16,32]
              %9 = add %8, %2 : f32[16,32]
              %10 = add %9, %3 : f32[16,32]
              return %10
            }"""
        )
    )
    out = remove_barriers(rematerialize(g, 0))
    assert_same_meaning(g, out)
    ops = [n.op for n in out.nodes]
    assert ops == ["matmul", "tanh", "reduce_sum", "mul", "cos", "exp"] + [
        "tanh", "add", "mul", "add", "sin", "add"
    ]  # fmt: skip
    one = 16 * 32 * 4
    assert plan_memory(g).peak_bytes == 5 * one  # %1, %2, %3 with %5 and %6
    assert plan_memory(out).peak_bytes == 4 * one  # %0, %7, a copy and a sum


def test_train_step_with_remat_and_budget() -> None:
    params, x, y = mlp_data(width=48, batch=32)
    results, peaks = {}, {}
    least = sum(a.nbytes for a in tree_flatten([params, x, y])[0]) + 1024  # step, key...
    for name, wrap, budget in [
        ("plain", None, None),
        ("remat", "layer", None),
        ("budget", None, least),
    ]:
        options = {} if budget is None else {"memory_budget": budget}
        step = gc.train_step(mlp_loss(wrap), gc.optim.SGD(0.1), backend="numpy", **options)
        state = step.init([(w.copy(), b.copy()) for w, b in params])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MemoryBudgetWarning)
            for _ in range(2):
                state, loss = step(state, x, y)
            compiled = step.lower(state, x, y)
        results[name] = (state.params, loss)
        peaks[name] = plan_memory(compiled.optimized_graph, inplace=True).peak_bytes
    for name in ("remat", "budget"):
        assert_same_results(results[name], results["plain"])
        assert peaks[name] < 0.7 * peaks["plain"]


@pytest.mark.parametrize("bad", ["1GB", 1.5e6, True, -1, None.__class__])
def test_a_bad_budget_is_refused(bad: Any) -> None:
    with pytest.raises(PipelineError, match="memory_budget"):
        gc.jit(lambda x: x, memory_budget=bad)


def test_budget_warning_is_exported() -> None:
    assert gc.MemoryBudgetWarning is MemoryBudgetWarning
    assert issubclass(MemoryBudgetWarning, UserWarning)


def test_values_built_only_from_constants_do_not_break_the_budget_search():
    # sin(a) is cheap and its only operand is an input; the slice keeps part of a
    # concatenation: the min-cut graph once lacked its source node here.
    f = gc.grad(lambda a: np.concatenate([np.sin(a), a], axis=0)[:25].sum())
    x = np.ones((24, 24))
    expected = f(x)
    for backend in ("numpy", "llvm"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", gc.MemoryBudgetWarning)
            got = gc.jit(f, backend=backend, memory_budget=x.nbytes)(x)
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def tanh_mlp_loss(params: Any, x: Any, y: Any) -> Any:
    h = x
    for w, b in params:
        h = np.tanh(h @ w + b)
    return ((h - y) ** 2).mean()


def tied_loss(params: Any, x: Any) -> Any:
    h = x
    for i in range(12):
        h = np.tanh(h @ params[i % 2])
    return (h**2).mean()


def compiled_without_warning(make: Any, *args: Any) -> Any:
    """The compiled function, or None when compiling warned that the budget was missed."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemoryBudgetWarning)
        try:
            return make().lower(*args)
        except MemoryBudgetWarning:
            return None


@pytest.mark.parametrize("fraction", [0.95, 0.9, 0.85])
def test_a_met_budget_bounds_the_arena_of_a_numpy_train_step(fraction: float) -> None:
    # The budget is compared with the arena the backend allocates: a placement that
    # leaves gaps above the most bytes alive at once must not pass for a met budget.
    rng = np.random.default_rng(0)
    params = [
        (rng.standard_normal((48, 48)).astype(np.float32) * 0.3, np.zeros(48, np.float32))
        for _ in range(12)
    ]
    x, y = (rng.standard_normal((64, 48)).astype(np.float32) for _ in range(2))
    opt = gc.optim.SGD(0.1, momentum=0.9)
    state = gc.train_step(tanh_mlp_loss, opt, backend="numpy").init(params)
    full = gc.train_step(tanh_mlp_loss, opt, backend="numpy").lower(state, x, y).memory
    budget = int(full.plan_bytes * fraction)
    step = gc.train_step(tanh_mlp_loss, opt, backend="numpy", memory_budget=budget)
    compiled = compiled_without_warning(lambda: step, state, x, y)
    assert compiled is not None  # met: a few layers are computed again
    assert compiled.memory.plan_bytes <= budget


def test_a_budget_is_judged_without_the_disabled_passes() -> None:
    # Sharing the transposed copy of a tied weight lowers the peak; with that pass
    # disabled, the plan compiled must still meet a budget that is reported met.
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((32, 32)).astype(np.float32) * 0.2 for _ in range(2)]
    x = rng.standard_normal((64, 32)).astype(np.float32)
    off = ("share_transposed_operands",)
    met = 0
    for budget in (200_000, 208_000, 216_000):
        compiled = compiled_without_warning(
            lambda b=budget: gc.jit(
                gc.value_and_grad(tied_loss), backend="llvm", memory_budget=b, disable_passes=off
            ),
            params,
            x,
        )
        if compiled is not None:
            assert compiled.memory.plan_bytes <= budget
            met += 1
    assert met  # the test must see a budget reported met
