"""plan_memory(views=True) builds a concatenation into contiguous blocks in place:
each eligible operand is computed straight into its block (``plan.parts``)."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc import pipeline_cache
from graphc.backends import llvm
from graphc.ir import Graph, GraphBuilder, Value, f32, interpret
from graphc.ir.liveness import live_intervals
from graphc.memory_report import lower_bound_bytes
from graphc.passes import plan_memory
from graphc.passes.manager import CompileReport

ROWS, COLS = 4, 16  # 256 bytes a block: every block starts on an aligned byte


@st.composite
def concat_graphs(draw: st.DrawFn) -> Graph:
    """Chains of elementwise steps, some states stacked or concatenated (the
    same one twice, interleaved along a later axis, read after the
    concatenation or returned) and everything summed."""
    b = GraphBuilder("concat")
    x = b.input(f32[ROWS, COLS], "x")
    states: list[Value] = [x]
    results: list[Value] = []
    for _ in range(draw(st.integers(2, 8))):
        kind = draw(st.sampled_from(["step", "step", "stack", "concat", "wide", "output"]))
        pick = st.sampled_from(states)
        if kind == "step":
            a = draw(pick)
            step = draw(st.sampled_from(["tanh", "exp", "add", "mul"]))
            if step in ("tanh", "exp"):
                states.append(getattr(b, step)(b.mul(a, 0.25) if step == "exp" else a))
            else:
                states.append(getattr(b, step)(a, draw(pick)))
        elif kind == "output":
            results.append(draw(pick))
        else:
            chosen = draw(st.lists(pick, min_size=1, max_size=4))
            if kind == "stack":
                c = b.concatenate(*[b.reshape(v, shape=(1, ROWS, COLS)) for v in chosen], axis=0)
            else:
                c = b.concatenate(*chosen, axis=0 if kind == "concat" else 1)
            results.append(b.reduce_sum(b.mul(c, c), axes=tuple(range(c.type.ndim))))
            if draw(st.booleans()):
                states.append(b.tanh(chosen[0]))  # read after the concatenation
    results += [b.reduce_sum(v, axes=(0, 1)) for v in states[-2:]]
    return b.build(results)


def check_parts(g: Graph) -> None:
    plan = plan_memory(g, views=True)
    assert plan.overlaps(g) == []
    assert lower_bound_bytes(g, plan) <= plan.arena_bytes
    live = live_intervals(g)
    producer = g.producers()
    outputs = set(g.outputs)
    spans = plan.spans(g)
    for v, (c, k) in plan.parts.items():
        n = producer[c]
        assert n.op == "concatenate" and c in plan.offsets
        assert v not in outputs and v not in plan.offsets and v not in plan.aliases
        # (a reshape is a part only as a copy of an input: otherwise it is a view)
        assert producer[v].op != "constant"
        # v, or a reshape of it, is the operand that starts k bytes in.
        starts, byte = [], 0
        for x in n.inputs:
            starts.append((x, byte))
            byte += x.type.nbytes
        assert any(byte == k and (x is v or plan.aliases.get(x) is v) for x, byte in starts), (
            "a part sits in its own block"
        )
        assert k + v.type.nbytes <= c.type.nbytes
        assert spans[v][1] <= live[c][1], "a part is never read after its concatenation"
    # No buffer is the part of two concatenations, and no part is one with parts.
    assert not {c for c, _ in plan.parts.values()} & set(plan.parts)


def random_inputs(g: Graph) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(v.type.shape).astype(np.float32) for v in g.inputs]


@given(concat_graphs())
def test_concatenations_in_place_never_overlap_live_buffers(g: Graph) -> None:
    check_parts(g)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(concat_graphs())
def test_llvm_runs_concatenations_in_place_like_the_interpreter(g: Graph) -> None:
    plan = plan_memory(g, views=True)
    args = random_inputs(g)
    got = llvm.compile(g, plan, cache=False)(*args)
    for a, want in zip(got, interpret(g, *args), strict=True):
        np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-5)


def stacked_states() -> Graph:
    b = GraphBuilder("stack")
    x = b.input(f32[ROWS, COLS], "x")
    h, hs = x, []
    for _ in range(4):
        h = b.tanh(b.add(h, x))
        hs.append(h)
    stack = b.concatenate(*[b.reshape(v, shape=(1, ROWS, COLS)) for v in hs], axis=0)
    return b.build([b.reduce_sum(stack, axes=(0, 1, 2))])


def test_a_stack_of_states_is_built_in_place() -> None:
    g = stacked_states()
    plan = plan_memory(g, views=True)
    # Each state lands in its block of the stack, which then holds no copy of them.
    assert sorted(k for _, k in plan.parts.values()) == [0, 256, 512, 768]
    copied = plan_memory(g)
    assert lower_bound_bytes(g, plan) == plan.arena_bytes == 4 * 256 + 256  # + add's temporary
    assert lower_bound_bytes(g, copied) == copied.arena_bytes == 2 * 4 * 256
    check_parts(g)
    args = random_inputs(g)
    (got,) = llvm.compile(g, plan, cache=False)(*args)
    np.testing.assert_allclose(got, interpret(g, *args)[0], rtol=1e-5)


def test_a_state_read_after_the_stack_keeps_its_own_buffer() -> None:
    b = GraphBuilder("late")
    x = b.input(f32[ROWS, COLS], "x")
    h1 = b.tanh(x)
    h2 = b.exp(h1)
    c = b.concatenate(h1, h2, axis=0)
    total = b.add(b.reduce_sum(c, axes=(0, 1)), b.reduce_sum(b.tanh(h2), axes=(0, 1)))
    g = b.build([total])
    plan = plan_memory(g, views=True)
    assert h1 in plan.parts and h2 not in plan.parts
    check_parts(g)


def test_an_rnn_step_stacks_its_states_in_place_and_computes_the_same() -> None:
    def loss(w: np.ndarray, x: np.ndarray) -> np.ndarray:
        h, hs = x, []
        for _ in range(6):
            h = np.tanh(h @ w + x)
            hs.append(h)
        return (np.stack(hs) ** 2).sum()

    rng = np.random.default_rng(1)
    w = (rng.standard_normal((COLS, COLS)) * 0.3).astype(np.float32)
    x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    f = gc.jit(gc.value_and_grad(loss), backend="llvm")
    value, grad = f(w, x)
    want_value, want_grad = gc.jit(gc.value_and_grad(loss), backend="interpret")(w, x)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-5)
    memory = f.memory
    assert memory.plan.parts, "the stacked states are computed into the stack"
    assert memory.plan.overlaps(memory.graph) == []
    assert memory.lower_bound_bytes <= memory.plan_bytes
    # The report shows the stack as one buffer holding its parts, then itself.
    g, plan = memory.graph, memory.plan
    planned = [v for n in g.nodes for v in n.outputs if v not in set(g.outputs)]
    assert sum(len(r.hows) for r in memory.values) == len(planned)
    stacks = [r for r in memory.values if r.op.endswith("> concatenate")]
    assert {r.nbytes for r in stacks} == {c.type.nbytes for c, _ in plan.parts.values()}


def test_parts_load_back_from_the_pipeline_cache_and_damage_is_caught() -> None:
    g = stacked_states()
    plan = plan_memory(g, views=True)
    data = pipeline_cache.encode(g, plan, CompileReport(g.name))
    assert data is not None
    loaded, got, _ = pipeline_cache.decode(data, g)
    assert got is not None
    number = {v: k for k, v in enumerate(v for n in loaded.nodes for v in n.outputs)}
    original = {v: k for k, v in enumerate(v for n in g.nodes for v in n.outputs)}
    assert sorted((number[v], number[c], k) for v, (c, k) in got.parts.items()) == sorted(
        (original[v], original[c], k) for v, (c, k) in plan.parts.items()
    )
    assert len(got.aliases) == len(plan.aliases) == 4  # the reshapes read the states in place
    document = json.loads(zlib.decompress(data))
    document["plan"]["parts"][0][2] = 1024  # past the end of the stack's bytes
    with pytest.raises(pipeline_cache.DamagedEntry, match="outside the bytes"):
        pipeline_cache.decode(zlib.compress(json.dumps(document).encode()), g)
