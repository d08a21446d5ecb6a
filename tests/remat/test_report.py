"""jitted.memory: the plan against its lower bound, the largest values, the plot."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.memory_report import live_profile, lower_bound_bytes
from graphc.passes.plan_memory import plan_memory
from graphc.passes.schedule import schedule_for_memory
from tests.strategies import OP_MAKERS, graphs

BACKENDS = ["numpy", "llvm"]
pytestmark = pytest.mark.usefixtures("private_llvm_cache")


def layer(x: Any, w: Any, b: Any) -> Any:
    return np.tanh(x @ w + b)


def loss(params: Any, x: Any, y: Any, block: Any = layer) -> Any:
    for w, b in params:
        x = block(x, w, b)
    return ((x - y) ** 2).mean()


def data(width: int = 32, batch: int = 64, depth: int = 3) -> tuple[Any, ...]:
    rng = np.random.default_rng(1)
    params = [
        (rng.standard_normal((width, width)).astype(np.float32) * 0.2, np.zeros(width, np.float32))
        for _ in range(depth)
    ]
    x = rng.standard_normal((batch, width)).astype(np.float32)
    return params, x, np.tanh(x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_report_judges_the_plan_against_its_lower_bound(backend: str) -> None:
    step = gc.jit(gc.value_and_grad(loss), backend=backend)
    step(*data())
    memory = step.memory
    plan = plan_memory(step.optimized_graph, inplace=backend == "numpy")
    assert memory.plan_bytes == plan.arena_bytes
    assert 0 < memory.lower_bound_bytes <= memory.plan_bytes
    assert memory.plan_to_bound == memory.plan_bytes / memory.lower_bound_bytes
    # The bound is the most bytes alive at one position, by a direct count.
    assert memory.lower_bound_bytes == max(live_profile(step.optimized_graph, plan))
    # The backend's own fields are still there.
    own = "arena_bytes" if backend == "llvm" else "buffer_bytes"
    assert getattr(memory, own) == getattr(memory.backend_report, own)
    text = str(memory)
    assert "lower bound" in text and "plan / bound" in text


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_table_names_sizes_ops_lines_and_live_ranges(backend: str) -> None:
    step = gc.jit(gc.value_and_grad(loss), backend=backend)
    params, x, y = data()
    step(params, x, y)
    rows = step.memory.values
    activation = x.nbytes
    assert rows and rows[0].nbytes == activation
    assert [r.nbytes for r in rows] == sorted((r.nbytes for r in rows), reverse=True)
    tanh = [r for r in rows if "tanh" in r.op]
    assert tanh, [r.op for r in rows]
    assert all(__file__ in r.line for r in tanh)
    assert any("np.tanh(x @ w + b)" in r.line for r in tanh)
    for r in rows:
        assert 0 <= r.first <= r.last <= len(step.optimized_graph.nodes)
        assert set(r.hows) <= {"saved", "recomputed", "temporary"} and r.hows
    assert step.memory.table(3).count("\n") == 3


def test_recomputed_values_are_marked() -> None:
    params, x, y = data()
    plain = gc.jit(gc.value_and_grad(loss), backend="numpy")
    plain(params, x, y)
    assert plain.memory.recomputed == 0
    again = gc.jit(
        gc.value_and_grad(lambda p, x, y: loss(p, x, y, gc.remat(layer))), backend="numpy"
    )
    again(params, x, y)
    recomputed = [r for r in again.memory.values if "recomputed" in r.hows]
    assert recomputed
    assert again.memory.recomputed == sum(r.hows.count("recomputed") for r in recomputed)
    # A recomputation runs after the forward value it repeats has been used.
    first_tanh = min(r.first for r in again.memory.values if "tanh" in r.op and "saved" in r.hows)
    assert all(r.first > first_tanh for r in recomputed)


def test_labels_are_per_value_and_saved_is_what_the_backward_reads() -> None:
    # On the NumPy backend a layer's matmul, bias add and tanh share one buffer
    # in place, and the backward writes its own temporaries over the tanh once
    # read: only the tanh is kept for the backward.
    params, x, y = data()
    step = gc.jit(gc.value_and_grad(loss), backend="numpy")
    step(params, x, y)
    g, memory = step.optimized_graph, step.memory
    layer = next(r for r in memory.values if r.op.startswith("matmul > add > tanh > "))
    assert layer.hows[:3] == ("temporary", "temporary", "saved")
    assert set(layer.hows[3:]) == {"temporary"}
    assert layer.how.startswith("2 temporary > saved > ")
    # The saved column, by a direct count over the graph: the buffers holding a
    # value made by the forward (no derived location) that a backward node reads.
    backward = [n for n in g.nodes if n.loc is not None and n.loc.derived == "vjp"]
    read_back = {x for n in backward for x in n.inputs}
    kept = {v for n in g.nodes if n.loc is None or n.loc.derived is None for v in n.outputs}
    kept &= read_back
    buffer_of = {}
    for n in g.nodes:  # in order: an alias's operand has its buffer already
        for v in n.outputs:
            a = memory.plan.aliases.get(v)
            buffer_of[v] = buffer_of.get(a, a) if a is not None else v
    buffers = {buffer_of[v] for v in kept if buffer_of[v] in memory.plan.offsets}
    assert memory.saved_bytes == sum(v.type.nbytes for v in buffers) == 4 * x.nbytes
    assert memory.recomputed == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_plot_draws_bytes_live_with_the_budget(backend: str, tmp_path: Any) -> None:
    params, x, y = data()
    step = gc.jit(gc.value_and_grad(loss), backend=backend, memory_budget=10**9)
    step(params, x, y)
    assert step.memory.budget_bytes == 10**9
    path = tmp_path / "mem.png"
    step.memory.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


RELAXED = settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], max_examples=60
)


@RELAXED
@given(g=graphs(ops=sorted(OP_MAKERS), min_nodes=4, max_nodes=14), inplace=st.booleans())
def test_the_lower_bound_never_exceeds_the_plan(g: Any, inplace: bool) -> None:
    for order in (g, schedule_for_memory(g)):
        plan = plan_memory(order, inplace=inplace)
        assert lower_bound_bytes(order, plan) <= plan.arena_bytes
        assert lower_bound_bytes(order, plan) == plan.peak_bytes
        assert not plan.overlaps(order)


def test_a_train_step_says_where_its_bytes_go() -> None:
    depth = 4
    params, x, y = data(depth=depth)

    def loss_fn(p: Any, x: Any, y: Any) -> Any:
        return loss([(q["w"], q["b"]) for q in p], x, y)

    tree = [{"w": w, "b": b} for w, b in params]
    step = gc.train_step(loss_fn, gc.optim.Adam(1e-3), backend="llvm")
    state = step.init(tree)
    state, _ = step(state, x, y)
    parts = step.memory(state, x, y)
    weights = sum(w.nbytes + b.nbytes for w, b in params)
    assert parts["parameters"] == weights
    assert parts["optimizer_state"] == 2 * weights + 8  # Adam's two moments and the step
    # Kept for the backward: each layer's activation but the last's.
    assert parts["activations"] == (depth - 1) * x.nbytes
    memory = step.lower(state, x, y).memory
    assert parts["activations"] <= memory.plan_bytes <= parts["workspace"] == memory.arena_bytes
