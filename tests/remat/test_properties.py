"""Properties on random graphs: inlining, barrier removal and rematerialization
keep the meaning (rematerialization bit for bit, and within its budget when it
says so), and a remat region differentiates like the plain code."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphc.autodiff import differentiate
from graphc.compiler import pipeline_for
from graphc.ir import DType, Graph, GraphBuilder, GraphcError, interpret, parse, verify
from graphc.passes.inline import inline_remat, remove_barriers
from graphc.passes.manager import Pass, run_passes
from graphc.passes.pipeline import optimize
from graphc.passes.plan_memory import plan_memory
from graphc.passes.remat import rematerialize
from tests.passes.helpers import check_same_meaning, random_inputs
from tests.strategies import OP_MAKERS, graphs, graphs_with_inputs, ops_with_trait

RELAXED = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# Every op, remat and optimization_barrier included and drawn often (the
# strategy samples from the list, so repeating a name weights it).
EVERY_OP = sorted(OP_MAKERS) + ["remat"] * 20 + ["optimization_barrier"] * 5


def ops_anywhere(g: Graph) -> set[str]:
    return {n.op for n in g.nodes}.union(*(ops_anywhere(s) for n in g.nodes for s in n.subgraphs))


@RELAXED
@given(case=graphs_with_inputs(ops=EVERY_OP, special=True, special_inputs=True))
def test_inlining_and_removing_barriers_keep_the_meaning(case) -> None:  # noqa: ANN001
    g, arrays = case
    inlined = inline_remat(g)
    verify(inlined)
    assert "remat" not in ops_anywhere(inlined)
    assert parse(str(inlined)) == inlined
    check_same_meaning(g, inlined, list(arrays))
    plain = remove_barriers(inlined)
    verify(plain)
    assert not ops_anywhere(plain) & {"remat", "optimization_barrier"}
    check_same_meaning(g, plain, list(arrays))


@RELAXED
@given(case=graphs_with_inputs(ops=EVERY_OP, special=True, special_inputs=True))
def test_the_numpy_pipeline_removes_both_ops(case) -> None:  # noqa: ANN001
    g, arrays = case
    out, _ = optimize(g, passes=pipeline_for("numpy", memory_budget=0))
    verify(out)
    assert not ops_anywhere(out) & {"remat", "optimization_barrier"}
    check_same_meaning(g, out, list(arrays))


@RELAXED
@given(
    case=graphs_with_inputs(ops=EVERY_OP, min_nodes=4, max_nodes=12, special_inputs=True),
    fraction=st.floats(0.0, 1.0),
)
def test_rematerialize_is_exact_and_honest_about_its_budget(case, fraction: float) -> None:  # noqa: ANN001
    g, arrays = case
    before = plan_memory(remove_barriers(g)).peak_bytes
    budget = int(fraction * before)
    remat = Pass("rematerialize", lambda h: rematerialize(h, budget, lower=remove_barriers))
    out, report = run_passes(g, [remat])
    verify(out)
    after = plan_memory(remove_barriers(out)).peak_bytes
    counts = report.passes[0].counts
    assert after == counts["peak bytes after"] <= before == counts["peak bytes before"]
    assert (after > budget) == ("bytes over budget" in counts)
    try:
        want = interpret(g, *arrays)
    except GraphcError as exc:
        try:
            interpret(out, *arrays)
        except GraphcError as again:
            assert isinstance(again, type(exc))
        return
    got = interpret(out, *arrays)
    # The same ops on the same values: identical bits, NaN payloads and zero signs included.
    assert [a.tobytes() for a in got] == [a.tobytes() for a in want]


DIFFERENTIABLE = sorted(
    set(ops_with_trait("elementwise")) - set(ops_with_trait("comparison"))
    | {"reduce_sum", "reduce_max", "broadcast_in_dim", "transpose", "reshape", "matmul"}
)


@RELAXED
@given(
    body=graphs(ops=DIFFERENTIABLE, dtypes=[DType.f64], special=False, max_nodes=6),
    seed=st.integers(0, 2**16),
)
def test_a_remat_region_differentiates_like_the_plain_code(body: Graph, seed: int) -> None:
    floats = [i for i, v in enumerate(body.inputs) if v.type.dtype.is_float]
    outs = [i for i, v in enumerate(body.outputs) if v.type.dtype.is_float]
    if not floats or not outs:
        return
    graphs_ = {}
    for wrapped in (False, True):
        b = GraphBuilder("f")
        xs = [b.input(v.type, v.name) for v in body.inputs]
        results = b.remat(*xs, subgraphs=[body]) if wrapped else b.call(body, *xs)
        results = results if isinstance(results, tuple) else (results,)
        total = b.constant(value=np.zeros((), np.float64))
        for i in outs:
            part = b.cast(results[i], dtype=DType.f64)
            total = b.add(total, b.reduce_sum(part, axes=tuple(range(part.type.ndim))))
        graphs_[wrapped] = differentiate(b.build([total]), floats, [0])
    arrays = random_inputs(body, seed, special=False)
    for g in graphs_.values():
        verify(g)
    try:
        want = interpret(graphs_[False], *arrays)
    except GraphcError:
        return
    got = interpret(graphs_[True], *arrays)
    for a, w in zip(got, want):
        np.testing.assert_allclose(a, w, rtol=1e-12, atol=1e-300, equal_nan=True)
    compiled, _ = optimize(graphs_[True], passes=pipeline_for("numpy"))
    assert "remat" not in ops_anywhere(compiled)
    for a, w in zip(interpret(compiled, *arrays), want):
        np.testing.assert_allclose(a, w, rtol=1e-9, atol=1e-12, equal_nan=True)


@settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    max_examples=25,
    deadline=None,
)
@given(
    case=graphs_with_inputs(
        ops=sorted(OP_MAKERS) + ["remat"] * 10, min_nodes=4, max_nodes=12, special_inputs=True
    ),
    fraction=st.floats(0.0, 1.0),
    backend=st.sampled_from(["numpy", "numpy", "llvm"]),
)
def test_compiled_under_any_budget_the_results_do_not_change(case, fraction, backend) -> None:  # noqa: ANN001
    import warnings

    from graphc.compiler import compile_graph
    from graphc.passes.remat import MemoryBudgetWarning

    g, arrays = case
    plain = compile_graph(g, backend=backend, options={"cache": False} if backend == "llvm" else {})
    peak = plain.memory.lower_bound_bytes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MemoryBudgetWarning)
        budgeted = compile_graph(
            g,
            backend=backend,
            memory_budget=int(fraction * peak),
            options={"cache": False} if backend == "llvm" else {},
        )
    assert budgeted.memory.lower_bound_bytes <= budgeted.memory.plan_bytes
    assert budgeted.memory.plan.overlaps(budgeted.graph) == []
    try:
        want = plain.executable(*arrays)
    except GraphcError:
        return
    got = budgeted.executable(*arrays)
    if backend == "numpy":
        assert [a.tobytes() for a in got] == [a.tobytes() for a in want]
    else:
        for a, w in zip(got, want):
            np.testing.assert_allclose(a, w, rtol=1e-5, atol=1e-6, equal_nan=True)
