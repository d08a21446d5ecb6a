"""plan_memory(inplace=True): elementwise results may take over a dying operand's
buffer; no two values whose buffers overlap are ever alive together."""

from __future__ import annotations

from hypothesis import given

from graphc.ir import Graph, GraphBuilder, Value, f32, get_op
from graphc.ir.liveness import live_intervals
from graphc.ir.plan import ALIGNMENT
from graphc.passes import plan_memory
from tests.strategies import graphs


def check_plan(g: Graph) -> None:
    plan = plan_memory(g, inplace=True)
    live = live_intervals(g)
    index = {v: i for i, n in enumerate(g.nodes) for v in n.outputs}
    producer = g.producers()
    outputs = set(g.outputs)
    # Each alias is a legal in-place write.
    for v, a in plan.aliases.items():
        n = producer[v]
        assert get_op(n.op).has("elementwise") and len(n.outputs) == 1
        assert a in list(n.value_inputs()) and a.type == v.type
        assert live[a][1] == index[v], "the operand must die where the result is made"
        assert a not in outputs and v not in outputs and a not in g.inputs

    def root(v: Value) -> Value:
        while v in plan.aliases:
            v = plan.aliases[v]
        return v

    # Every planned value lives in exactly one root buffer.
    planned = [v for n in g.nodes for v in n.outputs if v not in outputs]
    assert {root(v) for v in planned} == set(plan.offsets)
    occupied: dict[Value, tuple[int, int]] = {}
    for v in planned:
        r = root(v)
        lo, hi = occupied.get(r, live[r])
        occupied[r] = (min(lo, live[v][0]), max(hi, live[v][1]))
    items = [(v, o, v.type.nbytes) for v, o in plan.offsets.items()]
    for i, (v, o, size) in enumerate(items):
        assert o % ALIGNMENT == 0 and o + size <= plan.arena_bytes
        for w, p, other in items[i + 1 :]:
            if size and other and o < p + other and p < o + size:
                (a0, a1), (b0, b1) = occupied[v], occupied[w]
                assert a1 < b0 or b1 < a0, f"buffers of {v} and {w} overlap while both are live"


@given(graphs(max_nodes=12, fusion_depth=1))
def test_inplace_plans_never_overlap_live_buffers(g: Graph) -> None:
    check_plan(g)


def test_a_chain_runs_in_one_buffer() -> None:
    b = GraphBuilder("chain")
    x = b.input(f32[16], "x")
    v = x
    for _ in range(6):
        v = b.tanh(b.mul(v, 2.0))
    g = b.build([b.reduce_sum(v, axes=(0,))])
    plan = plan_memory(g, inplace=True)
    check_plan(g)
    assert len(plan.offsets) == 1 and plan.arena_bytes == 64
    assert len(plan.aliases) == 11
    assert plan_memory(g).aliases == {}  # only on request


def test_a_reshape_view_keeps_its_operands_bytes_until_its_last_reader() -> None:
    """With ``views``, a reshape shares its operand's buffer, and nothing else is
    placed there while the reshape is read (LLVM then reads it without a copy)."""
    import numpy as np

    from graphc.backends import llvm
    from graphc.ir import interpret

    b = GraphBuilder("f")
    x = b.input(f32[6, 4], "x")
    e = b.exp(x)
    r = b.reshape(e, shape=(24,))  # e dies here; r is read at the very end
    t = b.tanh(b.sin(x))  # would reuse e's bytes without the view
    g = b.build([b.add(b.reshape(t, shape=(24,)), b.mul(r, 2.0))])
    plan = plan_memory(g, views=True)
    assert plan.aliases == {r: e, g.producers()[g.outputs[0]].inputs[0]: t}
    live = live_intervals(g)
    start, size = plan.offsets[e], ALIGNMENT * -(-e.type.nbytes // ALIGNMENT)
    for v, o in plan.offsets.items():
        if v is not e and o < start + size and start < o + v.type.nbytes:
            assert live[v][0] > live[r][1] or live[v][1] < live[e][0], v
    exe = llvm.compile(g, plan, cache=False)
    assert "reshape" not in exe.llvm_ir  # no copy kernel
    xv = np.linspace(-1, 1, 24, dtype=np.float32).reshape(6, 4)
    np.testing.assert_allclose(exe(xv)[0], interpret(g, xv)[0], rtol=1e-5, atol=1e-6)
