"""Liveness, MemoryPlan.overlaps and the first-fit arena planner."""

from __future__ import annotations

from hypothesis import given

from graphc.ir import DType, Graph, GraphBuilder, TensorType, Value
from graphc.ir.liveness import live_intervals
from graphc.ir.plan import ALIGNMENT, MemoryPlan, align
from graphc.passes.plan_memory import plan_memory
from tests.strategies import graphs

F16 = TensorType((16,), DType.f32)  # 64 bytes


def chain(length: int) -> Graph:
    b = GraphBuilder("chain")
    v = b.input(F16, "x")
    for _ in range(length):
        v = b.exp(v)
    return b.build([v])


def brute_force_intervals(g: Graph) -> dict[Value, tuple[int, int]]:
    """Liveness from its definition: defined at its node (inputs at -1), live
    through its last reader; graph outputs live to the end."""
    out = {}
    values = list(g.inputs) + [v for n in g.nodes for v in n.outputs]
    for v in values:
        start = next((i for i, n in enumerate(g.nodes) if v in n.outputs), -1)
        readers = [i for i, n in enumerate(g.nodes) if v in n.inputs]
        end = max(readers, default=start)
        if v in g.outputs:
            end = len(g.nodes)
        out[v] = (start, end)
    return out


def live_at(interval: tuple[int, int], other: tuple[int, int]) -> bool:
    return interval[0] <= other[1] and other[0] <= interval[1]


@given(graphs(max_nodes=10, fusion_depth=1))
def test_live_intervals_match_their_definition(g: Graph) -> None:
    assert live_intervals(g) == brute_force_intervals(g)


@given(graphs(max_nodes=10, fusion_depth=1))
def test_plan_never_overlaps_live_buffers(g: Graph) -> None:
    plan = plan_memory(g)
    assert plan.overlaps(g) == []
    live = live_intervals(g)
    planned = [v for n in g.nodes for v in n.outputs if v not in set(g.outputs)]
    assert set(plan.offsets) == set(planned)
    # Independent of MemoryPlan.overlaps: check every pair with aligned sizes.
    items = list(plan.offsets.items())
    for i, (v, o) in enumerate(items):
        assert o % ALIGNMENT == 0 and o >= 0
        assert o + v.type.nbytes <= plan.arena_bytes
        for w, p in items[i + 1 :]:
            if live_at(live[v], live[w]) and v.type.nbytes and w.type.nbytes:
                assert o + align(v.type.nbytes) <= p or p + align(w.type.nbytes) <= o, (v, w)
    assert plan.peak_bytes <= plan.arena_bytes


def test_overlaps_detects_a_bad_plan() -> None:
    g = chain(3)  # %0 and %1 are live together while %1 is computed
    first, second = g.nodes[0].output, g.nodes[1].output
    bad = MemoryPlan({first: 0, second: 32}, 128, 128)
    assert bad.overlaps(g) == [(first, second)]
    assert MemoryPlan({first: 0, second: 64}, 128, 128).overlaps(g) == []


def test_chain_reuses_buffers() -> None:
    # Only two intermediates are ever live together, so a long chain needs two slots.
    plan = plan_memory(chain(8))
    assert plan.arena_bytes == 2 * 64
    assert plan.peak_bytes == 2 * 64
    assert len(set(plan.offsets.values())) == 2


def test_outputs_and_inputs_are_not_planned() -> None:
    b = GraphBuilder("f")
    x = b.input(F16, "x")
    y = b.exp(x)
    z = b.neg(y)
    g = b.build([z, y])
    assert plan_memory(g).offsets == {}
    assert plan_memory(g).arena_bytes == 0


def test_zero_size_values() -> None:
    b = GraphBuilder("f")
    x = b.input(TensorType((0, 3), DType.f64), "x")
    g = b.build([b.reduce_sum(b.exp(b.exp(x)), axes=(0, 1))])
    plan = plan_memory(g)
    assert plan.overlaps(g) == []
    assert set(plan.offsets) == {g.nodes[0].output, g.nodes[1].output}
