"""schedule_for_memory: same meaning, valid order, never a higher peak."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from graphc.ir import GraphBuilder, GraphcError, f32, interpret, verify
from graphc.passes.schedule import peak_bytes, schedule_for_memory
from tests.strategies import graphs_with_inputs


@given(graphs_with_inputs(max_nodes=12, locations=True))
def test_schedule_preserves_meaning_and_never_raises_the_peak(case):
    g, arrays = case
    s = schedule_for_memory(g)
    verify(s)
    assert sorted(map(id, s.nodes)) == sorted(map(id, g.nodes))
    assert peak_bytes(s, s.nodes) <= peak_bytes(g, g.nodes)
    try:
        expected = interpret(g, *arrays)
    except GraphcError as exc:  # e.g. an integer raised to a negative power
        with pytest.raises(type(exc)):
            interpret(s, *arrays)
        return
    for got, want in zip(interpret(s, *arrays), expected):
        np.testing.assert_array_equal(got, want)


def test_updates_run_as_soon_as_their_gradient_exists():
    # A fake training step: three "gradients" computed from a shared input,
    # each consumed by an "update". Program order computes all gradients first.
    b = GraphBuilder("step")
    x = b.input(f32[1024, 256], "x")
    params = [b.input(f32[1024, 256], f"p{i}") for i in range(3)]
    grads = [b.mul(x, float(i + 1)) for i in range(3)]
    updates = [b.sub(p, b.mul(gr, 0.1)) for p, gr in zip(params, grads)]
    g = b.build(updates)
    assert [n.op for n in g.nodes] == ["mul"] * 4 + ["sub", "mul", "sub", "mul", "sub"]
    donated = [1, 2, 3]  # the parameters: updates may overwrite them
    s = schedule_for_memory(g, donated)
    # each gradient (mul) is followed by its update before the next gradient
    assert [n.op for n in s.nodes] == ["mul", "mul", "sub"] * 3
    one = 1024 * 256 * 4
    assert peak_bytes(g, g.nodes, donated) == 4 * one
    assert peak_bytes(s, s.nodes, donated) == 2 * one
