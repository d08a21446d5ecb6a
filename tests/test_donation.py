"""Donated arguments: outputs written over their inputs' buffers, only when legal."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import graphc as gc
from graphc.ir import GraphBuilder, f32
from graphc.passes.donate import pair_donations, plan_donations
from graphc.passes.fuse import fuse
from graphc.passes.schedule import schedule_for_memory


def sgd_like_graph():
    """Program order of a backward pass: the update of w runs before the
    cotangent product that still reads w."""
    b = GraphBuilder("step")
    w = b.input(f32[8, 8], "w")
    x = b.input(f32[4, 8], "x")
    ct = b.input(f32[4, 8], "ct")
    grad = b.matmul(b.transpose(x, perm=(1, 0)), ct)
    new_w = b.sub(w, b.mul(grad, 0.1))
    dx = b.matmul(ct, b.transpose(w, perm=(1, 0)))
    return b.build([new_w, dx])


def test_pairs_prefer_the_input_that_flows_into_the_output():
    b = GraphBuilder("two")
    p, q = b.input(f32[3], "p"), b.input(f32[3], "q")
    # the first output is an update of q, the second of p: pairing follows the data
    g = b.build([b.mul(q, 0.5), b.add(p, 1.0)])
    pairs = pair_donations(g, donated=[0, 1])
    assert [u.name for u in pairs.values()] == ["q", "p"]
    # an input returned unchanged is never donated, and types must match
    g2 = b.build([p, b.exp(q)])
    assert [u.name for u in pair_donations(g2, donated=[0, 1]).values()] == ["q"]


def test_a_read_after_the_write_makes_donation_illegal_until_scheduled():
    g = sgd_like_graph()
    assert plan_donations(g, donated=[0]) == {}  # dx reads w after new_w is written
    s = schedule_for_memory(g, donated=[0])
    ops = [n.op for n in s.nodes]
    # the transpose of w may be a view: the product reading it comes first
    assert ops.index("sub") > max(i for i, op in enumerate(ops) if op == "matmul")
    assert [u.name for u in plan_donations(s, donated=[0]).values()] == ["w"]


def test_a_fused_update_may_read_its_own_input_at_the_same_index():
    b = GraphBuilder("adam_like")
    p, m, gr = (b.input(f32[16], n) for n in ("p", "m", "gr"))
    new_m = b.add(b.mul(m, 0.9), b.mul(gr, 0.1))
    new_p = b.sub(p, b.mul(new_m, 0.01))
    fused = fuse(b.build([new_p, new_m]))
    (update,) = [n for n in fused.nodes if n.op == "fusion"]
    assert set(update.outputs) == set(fused.outputs)  # one kernel reads p, m and writes both
    assert {u.name for u in plan_donations(fused, donated=[0, 1]).values()} == {"p", "m"}

    b2 = GraphBuilder("transposed")
    w = b2.input(f32[4, 4], "w")
    out = b2.add(w, b2.transpose(w, perm=(1, 0)))  # reads w at another index too
    g2 = fuse(b2.build([out]))
    assert plan_donations(g2, donated=[0]) == {}


def test_jit_writes_donated_outputs_in_place_on_llvm():
    def update(params, grads):
        return {k: params[k] - 0.5 * grads[k] for k in params}

    params = {"a": np.ones((3, 4), np.float32), "b": np.full(5, 2.0, np.float32)}
    grads = {"a": np.ones((3, 4), np.float32), "b": np.ones(5, np.float32)}
    kept = {k: v.copy() for k, v in grads.items()}
    expected = update({k: v.copy() for k, v in params.items()}, kept)
    originals = dict(params)
    new = gc.jit(update, backend="llvm", donate_argnums=0)(params, grads)
    for k in params:
        assert new[k] is originals[k]  # the same array, now holding the result
        np.testing.assert_array_equal(new[k], expected[k])
        np.testing.assert_array_equal(grads[k], kept[k])  # not donated: untouched


def test_arrays_that_cannot_be_overwritten_are_copied_instead():
    f = gc.jit(lambda p, q: (p * 2.0, q * 3.0), backend="llvm", donate_argnums=(0, 1))
    read_only = np.ones(4, np.float32)
    read_only.flags.writeable = False
    strided = np.ones(8, np.float32)
    out_p, _ = f(strided[::2], np.ones(4, np.float32))  # not C-contiguous: a copy is donated
    np.testing.assert_array_equal(out_p, 2.0)
    np.testing.assert_array_equal(strided, 1.0)  # untouched
    base = np.arange(8, dtype=np.float32)
    out_p, out_q = f(read_only, base[:4])  # a view of base: not its own memory
    np.testing.assert_array_equal(out_p, 2.0)
    np.testing.assert_array_equal(base, np.arange(8))  # base untouched
    np.testing.assert_array_equal(out_q, np.arange(4) * 3.0)
    shared = np.ones(4, np.float32)
    out_p, out_q = f(shared, shared)  # one array for two donated arguments
    np.testing.assert_array_equal(out_p, 2.0)
    np.testing.assert_array_equal(out_q, 3.0)


def mlp_loss(p, x, y):
    h = np.tanh(x @ p["w1"] + p["b1"])
    h = np.tanh(h @ p["w2"] + p["b2"])
    return np.mean((h @ p["w3"] - y) ** 2)


def mlp_params(rng, width=256):
    return {
        "w1": (rng.normal(size=(64, width)) * 0.1).astype(np.float32),
        "b1": np.zeros(width, np.float32),
        "w2": (rng.normal(size=(width, width)) * 0.05).astype(np.float32),
        "b2": np.zeros(width, np.float32),
        "w3": (rng.normal(size=(width, 1)) * 0.05).astype(np.float32),
    }


def mlp_batch(seed):
    rng = np.random.default_rng(seed)
    params = mlp_params(rng)
    return (
        params,
        rng.normal(size=(32, 64)).astype(np.float32),
        rng.normal(size=(32, 1)).astype(np.float32),
    )


@pytest.mark.parametrize(
    "optimizer",
    [gc.optim.SGD(0.1), gc.optim.SGD(0.1, momentum=0.9), gc.optim.Adam(1e-3)],
    ids=["sgd", "sgd_momentum", "adam"],
)
def test_train_step_updates_parameters_in_place_and_allocates_no_state(optimizer):
    params, x, y = mlp_batch(seed=0)
    step = gc.train_step(mlp_loss, optimizer, backend="llvm")
    reference = gc.train_step(mlp_loss, optimizer, backend="numpy")
    state, ref_state = step.init(params), reference.init(params)
    state, _ = step(state, x, y)  # compile outside the measurement
    ref_state, _ = reference(ref_state, x, y)
    before = {k: v for k, v in state.params.items()}
    tracemalloc.start()
    growth = []
    for _ in range(3):
        state, loss = step(state, x, y)
        ref_state, ref_loss = reference(ref_state, x, y)
        tracemalloc.reset_peak()
        already, _ = tracemalloc.get_traced_memory()
        state, loss = step(state, x, y)
        growth.append(tracemalloc.get_traced_memory()[1] - already)
        ref_state, ref_loss = reference(ref_state, x, y)
    tracemalloc.stop()
    param_bytes = sum(v.nbytes for v in params.values())
    assert max(growth) < 0.05 * param_bytes  # no parameter- or state-sized array per step
    for k in params:
        assert state.params[k] is before[k]
        # float32 Adam amplifies rounding where gradients are tiny (g / sqrt(v))
        np.testing.assert_allclose(state.params[k], ref_state.params[k], rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)


@pytest.mark.parametrize(
    "optimizer",
    [gc.optim.SGD(0.1, momentum=0.9), gc.optim.Adam(1e-3)],
    ids=["sgd_momentum", "adam"],
)
def test_numpy_train_step_writes_new_parameters_over_the_old(optimizer):
    params, x, y = mlp_batch(seed=1)
    step = gc.train_step(mlp_loss, optimizer, backend="numpy")
    state = step.init(params)
    expected = gc.train_step(mlp_loss, optimizer, backend="interpret").init(params)
    state, _ = step(state, x, y)
    before = dict(state.params)
    tracemalloc.start()
    tracemalloc.reset_peak()
    already, _ = tracemalloc.get_traced_memory()
    state, _ = step(state, x, y)
    growth = tracemalloc.get_traced_memory()[1] - already
    tracemalloc.stop()
    assert all(state.params[k] is before[k] for k in params)
    assert growth < 0.5 * sum(v.nbytes for v in params.values())
    reference = gc.train_step(mlp_loss, optimizer, backend="interpret")
    for _ in range(2):
        expected, _ = reference(expected, x, y)
    for k in params:
        np.testing.assert_allclose(state.params[k], expected.params[k], rtol=1e-5, atol=1e-6)


# -- donation through a fused product's epilogue --------------------------------------------

RNG = np.random.default_rng(7)
X = RNG.normal(size=(6, 5)).astype(np.float32)
G = RNG.normal(size=(6, 4)).astype(np.float32)


def _fusions(compiled):
    return [n.attrs.get("kind") for n in compiled.optimized_graph.nodes if n.op == "fusion"]


@pytest.mark.parametrize(
    "update",
    [
        lambda w, x, g: w - 0.1 * (x.T @ g),  # GEMM accumulating into w
        lambda w, x, g: (x.T @ g) * 0.5 + w,
        lambda w, x, g: 0.5 * (x.T @ g) - w,  # beta = -1
        lambda w, x, g: (w - x.T @ g) * 0.9,  # w scaled: an epilogue loop
        lambda w, x, g: np.tanh(w - x.T @ g),
        lambda w, x, g: (w - x.T @ g, (x.T @ g) * 2.0),  # two results of one loop
    ],
    ids=["sgd", "add_scaled", "negated_w", "decay", "tanh", "two_results"],
)
def test_a_fused_product_writes_its_update_over_the_donated_input(update):
    w0 = RNG.normal(size=(5, 4)).astype(np.float32)
    f = gc.jit(update, backend="llvm", donate_argnums=0)
    reference = gc.jit(update, backend="numpy")
    assert "matmul_epilogue" in _fusions(f.lower(w0.copy(), X, G))
    expected = reference(w0.copy(), X, G)
    plain = update(w0.copy().astype(np.float64), X.astype(np.float64), G.astype(np.float64))
    w = w0.copy()
    got = f(w, X, G)
    first = got[0] if isinstance(got, tuple) else got
    assert first is w  # written over the donated array
    for a, e, p in zip(*(r if isinstance(r, tuple) else (r,) for r in (got, expected, plain))):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a, p, rtol=1e-5, atol=1e-5)
    expected_again = reference(first.copy(), X, G)
    again = f(first, X, G)  # the result donated once more: still correct
    for a, e in zip(*(r if isinstance(r, tuple) else (r,) for r in (again, expected_again))):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_a_product_that_reads_the_donated_input_does_not_overwrite_it():
    w0 = RNG.normal(size=(4, 4)).astype(np.float32)
    a = RNG.normal(size=(4, 4)).astype(np.float32)
    cases = [
        lambda w, a: w + a @ w,  # the GEMM reads w
        lambda w, a: w - 0.1 * (w.T @ a),  # through a transposed view
        lambda w, a: w - (a @ w) * w,
    ]
    for update in cases:
        f = gc.jit(update, backend="llvm", donate_argnums=0)
        expected = gc.jit(update, backend="numpy")(w0.copy(), a)
        got = f(w0.copy(), a)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got, update(w0.astype(np.float64), a), rtol=1e-5, atol=1e-5)


def test_the_raw_product_is_never_paired_with_the_input_its_update_reads():
    b = GraphBuilder("step")
    w = b.input(f32[5, 4], "w")
    x, g = b.input(f32[6, 5], "x"), b.input(f32[6, 4], "g")
    grad = b.matmul(b.transpose(x, perm=(1, 0)), g)
    fused = fuse(b.build([grad, b.sub(w, b.mul(grad, 0.1))]))
    assert [n.attrs["kind"] for n in fused.nodes] == ["matmul_epilogue"]
    # the update (second result) gets w; the product, written first, would clobber it
    assert plan_donations(fused, donated=[0]) == {fused.outputs[1]: w}


def test_a_batched_fused_update_is_donated_and_correct():
    def update(w, a, c):
        return w - 0.25 * (a @ c)

    w0 = RNG.normal(size=(3, 4, 5)).astype(np.float32)
    a = RNG.normal(size=(3, 4, 6)).astype(np.float32)
    c = RNG.normal(size=(3, 6, 5)).astype(np.float32)
    w = w0.copy()
    got = gc.jit(update, backend="llvm", donate_argnums=0)(w, a, c)
    assert got is w
    np.testing.assert_allclose(got, gc.jit(update, backend="interpret")(w0, a, c), rtol=1e-5)


def test_a_fusion_run_node_by_node_does_not_overwrite_its_donated_operand_early():
    from graphc.backends import llvm
    from graphc.ir import interpret
    from graphc.passes.plan_memory import plan_memory

    body = GraphBuilder("body")
    w = body.input(f32[4, 4], "w")
    doubled = body.mul(w, 2.0)
    e = body.exp(w)
    # the normalization reads a reduction of its own loop: not one loop, so
    # the body runs node by node, and the first result is done before exp reads w
    softmax = body.div(e, body.reduce_sum(e, axes=(1,), keepdims=True))
    body_graph = body.build([doubled, softmax])
    b = GraphBuilder("step")
    p = b.input(f32[4, 4], "p")
    outs = b.emit("fusion", p, subgraphs=[body_graph], kind="reduction")
    g = b.build(list(outs))
    plan = plan_memory(g, donated=[0])
    assert plan.donations == {g.outputs[0]: p}
    p0 = RNG.normal(size=(4, 4)).astype(np.float32)
    expected = interpret(g, p0.copy())
    arg = p0.copy()
    got = llvm.compile(g, plan, cache=False)(arg)
    assert got[0] is arg
    for a, want in zip(got, expected):
        np.testing.assert_allclose(a, want, rtol=1e-6)


@pytest.mark.parametrize(
    "update, shapes, dtype",
    [
        (lambda w, a, b: w - 0.1 * (a.T @ b), [(5, 4), (0, 5), (0, 4)], np.float32),  # k = 0
        (lambda w, a, b: w - 0.1 * (a @ b), [(5,), (5, 3), (3,)], np.float32),
        (lambda w, a, b: (a @ b) * 2.0 - w, [(4,), (3,), (3, 4)], np.float32),
        (lambda w, a, b: w + 0.3 * (a @ b), [(6, 6), (6, 7), (7, 6)], np.float64),
    ],
    ids=["empty_sum", "matvec", "vecmat", "float64"],
)
def test_accumulated_updates_match_the_reference_at_the_edges(update, shapes, dtype):
    w0, a, b = (RNG.normal(size=s).astype(dtype) for s in shapes)
    if a.size:
        a.flat[0] = np.inf  # inf and nan propagate as in the graph
        w0.flat[-1] = np.nan
    expected = gc.jit(update, backend="numpy")(w0.copy(), a, b)
    w = w0.copy()
    got = gc.jit(update, backend="llvm", donate_argnums=0)(w, a, b)
    assert got is w
    np.testing.assert_allclose(got, expected, rtol=1e-6)
