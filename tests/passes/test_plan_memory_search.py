"""plan_memory's search: when first fit in its three orders stays above the most
bytes alive at once, more orders and moves of the buffers at the arena's top."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphc.ir import DType, Graph, TensorType, Value
from graphc.ir.liveness import live_intervals
from graphc.ir.plan import align
from graphc.passes.plan_memory import plan_memory
from tests.strategies import graphs

# The module, not the function graphc.passes re-exports under the same name.
planner = importlib.import_module("graphc.passes.plan_memory")


def three_orders(span: dict[Value, tuple[int, int]]) -> int:
    """The arena of the planner before the search: first fit in three orders."""
    values = list(span)
    orders = [
        sorted(values, key=lambda v: (-v.type.nbytes, span[v][0])),
        sorted(values, key=lambda v: -(span[v][1] - span[v][0] + 1) * v.type.nbytes),
        sorted(values, key=lambda v: (span[v][1], -v.type.nbytes)),
    ]
    return min(planner._first_fit_all(order, span)[1] for order in orders)


def most_alive(span: dict[Value, tuple[int, int]]) -> int:
    last = max(b for _, b in span.values())
    return max(
        sum(align(v.type.nbytes) for v, (a, b) in span.items() if a <= t <= b)
        for t in range(last + 1)
    )


def test_a_long_lived_small_buffer_no_longer_sits_on_top() -> None:
    # Two 256-byte buffers at positions 0 and 5, and two 64-byte ones alive
    # over 2-6 and 0-4: at most 320 bytes are alive at once. First fit by size
    # puts both big ones at 0 and leaves the small ones stacked above them
    # (384); placing the buffer on top first finds the 320-byte packing.
    big, small = TensorType((64,), DType.f32), TensorType((16,), DType.f32)
    span = {
        Value(big): (0, 0),
        Value(big): (5, 5),
        Value(small): (2, 6),
        Value(small): (0, 4),
    }
    assert most_alive(span) == 320 and three_orders(span) == 384
    offsets, arena = planner._place(list(span), span)
    assert arena == 320
    assert_disjoint(offsets, span, arena)


def test_the_search_also_starts_from_the_buffers_alive_at_the_busiest_position() -> None:
    # Seven buffers whose busiest position holds 1280 bytes. The best first
    # placements (two big buffers side by side at the bottom) never move to
    # it; the one placing the buffers alive at that position first does.
    sizes_spans = [(512, (1, 5)), (128, (2, 3)), (64, (6, 8)), (256, (3, 8))]
    sizes_spans += [(128, (7, 9)), (512, (0, 2)), (512, (5, 9))]
    span = {Value(TensorType((n // 4,), DType.f32)): s for n, s in sizes_spans}
    assert most_alive(span) == 1280 < three_orders(span)
    offsets, arena = planner._place(list(span), span)
    assert arena == 1280
    assert_disjoint(offsets, span, arena)


def assert_disjoint(
    offsets: dict[Value, int], span: dict[Value, tuple[int, int]], arena: int
) -> None:
    items = list(offsets.items())
    for i, (v, o) in enumerate(items):
        assert 0 <= o and o + align(v.type.nbytes) <= arena
        for w, p in items[i + 1 :]:
            (a0, a1), (b0, b1) = span[v], span[w]
            if a0 <= b1 and b0 <= a1:
                assert o + align(v.type.nbytes) <= p or p + align(w.type.nbytes) <= o


# monkeypatch.context() undoes each example's change at once.
@settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    max_examples=60,
)
@given(g=graphs(max_nodes=14, fusion_depth=1))
def test_the_search_never_overlaps_and_never_loses(
    g: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Searching always (not only when clearly above the bound): every placement
    # it tries must be legal, and the one kept no larger than before the search.
    with monkeypatch.context() as m:
        m.setattr(planner, "_SEARCH_ABOVE", 0.0)
        plan = plan_memory(g)
    assert plan.overlaps(g) == []
    live = live_intervals(g)
    span = {v: live[v] for v in plan.offsets}
    assert_disjoint(dict(plan.offsets), span, plan.arena_bytes)
    if span:
        assert most_alive(span) == plan.peak_bytes <= plan.arena_bytes <= three_orders(span)


def placed_one_by_one(
    order: list[Value], span: dict[Value, tuple[int, int]], fit: str
) -> tuple[dict[Value, int], int]:
    """First or best fit written plainly: each buffer goes under the lowest (or
    into the smallest) gap among the buffers alive with it, else on their top."""
    placed: list[tuple[int, int, int, int]] = []  # offset, end, first, last
    offsets: dict[Value, int] = {}
    for v in order:
        size, (first, last) = align(v.type.nbytes), span[v]
        busy = sorted((o, e) for o, e, a, b in placed if a <= last and first <= b)
        reach, gaps = 0, []
        for o, e in busy:
            gaps.append((o - reach, reach))
            reach = max(reach, e)
        fitting = [(gap, at) for gap, at in gaps if gap >= size]
        if not fitting:
            offset = reach
        elif fit == planner.BEST:
            offset = min(fitting, key=lambda t: t[0])[1]
        else:
            offset = fitting[0][1]
        offsets[v] = offset
        placed.append((offset, offset + size, first, last))
    return offsets, max((o + align(v.type.nbytes) for v, o in offsets.items()), default=0)


buffers = st.lists(
    st.tuples(st.sampled_from([0, 1, 3, 16, 40, 64]), st.integers(0, 12), st.integers(0, 8)),
    max_size=24,
)


@settings(max_examples=60, deadline=None)
@given(buffers, st.randoms(use_true_random=False))
def test_placements_side_by_side_are_each_their_own(
    spec: list[tuple[int, int, int]], rnd: Any
) -> None:
    # The search places many orders of the same buffers at once; each must come
    # out as if placed alone, in first and in best fit (equal offsets included).
    span = {Value(TensorType((n,), DType.f32)): (a, a + d) for n, a, d in spec}
    orders, fits = [], []
    for fit in (planner.FIRST, planner.BEST):
        for _ in range(3):
            order = list(span)
            rnd.shuffle(order)
            orders.append(order)
            fits.append(fit)
    together = planner._first_fit_many(orders, span, fits) if span else []
    for order, fit, got in zip(orders, fits, together):
        want = placed_one_by_one(order, span, fit)
        # An empty buffer takes no room: where it sits is arbitrary (the two break
        # ties between equal offsets differently) and moves nothing else.
        assert got[1] == want[1]
        assert {v: o for v, o in got[0].items() if v.type.nbytes} == {
            v: o for v, o in want[0].items() if v.type.nbytes
        }
        assert_disjoint(got[0], span, got[1])
