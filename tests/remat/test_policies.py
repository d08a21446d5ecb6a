"""gc.remat(f, policy=...): which intermediates a region keeps for the backward."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.autodiff import differentiate
from graphc.ir import DType, Graph, GraphBuilder, GraphcError, interpret, verify
from graphc.passes.plan_memory import plan_memory
from graphc.pytree import tree_flatten
from tests.passes.helpers import random_inputs
from tests.strategies import graphs, ops_with_trait

BACKENDS = ["numpy", "llvm"]
POLICIES = [None, "nothing", "matmuls", gc.save_only_these_names("z"), gc.save_only_these_names()]
IDS = ["default", "nothing", "matmuls", "names-z", "names-none"]
pytestmark = pytest.mark.usefixtures("private_llvm_cache")


def layer(x: Any, w: Any, b: Any) -> Any:
    z = gc.checkpoint_name(x @ w, "z")
    return np.tanh(z + b) * 1.5


def loss(block: Any) -> Any:
    def f(params: Any, x: Any, y: Any) -> Any:
        for w, b in params:
            x = block(x, w, b)
        return ((x - y) ** 2).mean()

    return f


def data(depth: int = 3) -> tuple[Any, ...]:
    rng = np.random.default_rng(5)
    params = [(rng.standard_normal((16, 16)) * 0.3, rng.standard_normal(16)) for _ in range(depth)]
    x = rng.standard_normal((24, 16))
    return params, x, np.sin(x)


def matmuls(g: Graph) -> int:
    return sum(1 for n in g.nodes if n.op == "matmul")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_every_policy_gives_the_same_values_and_gradients(backend: str, policy: Any) -> None:
    args = data()
    want = gc.jit(gc.value_and_grad(loss(layer)), backend=backend)(*args)
    step = gc.jit(gc.value_and_grad(loss(gc.remat(layer, policy=policy))), backend=backend)
    got = step(*args)
    for a, b in zip(tree_flatten(got)[0], tree_flatten(want)[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    g = step.optimized_graph
    assert plan_memory(g, inplace=backend == "numpy").overlaps(g) == []


@pytest.mark.parametrize(
    "policy, extra", [("nothing", 3), ("matmuls", 0), (gc.save_only_these_names("z"), 0)]
)
def test_saved_products_are_not_computed_again(policy: Any, extra: int) -> None:
    # Three layers: three forward products and five backward ones (the input
    # needs no gradient), plus one more per layer when the region recomputes
    # its product.
    args = data()
    plain = gc.jit(gc.value_and_grad(loss(layer)), backend="numpy")
    plain(*args)
    step = gc.jit(gc.value_and_grad(loss(gc.remat(layer, policy=policy))), backend="numpy")
    step(*args)
    assert matmuls(plain.optimized_graph) == 8
    assert matmuls(step.optimized_graph) == 8 + extra


def test_unnamed_values_are_recomputed_and_elementwise_work_is_redone() -> None:
    args = data()
    keep_z = gc.jit(
        gc.value_and_grad(loss(gc.remat(layer, policy=gc.save_only_these_names("z")))),
        backend="numpy",
    )
    keep_z(*args)
    keep_other = gc.jit(
        gc.value_and_grad(loss(gc.remat(layer, policy=gc.save_only_these_names("other")))),
        backend="numpy",
    )
    keep_other(*args)
    assert matmuls(keep_other.optimized_graph) == matmuls(keep_z.optimized_graph) + 3
    tanhs = sum(1 for n in keep_z.optimized_graph.nodes if n.op == "tanh")
    assert tanhs == 6  # each layer's tanh runs again in the backward


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_dropout_masks_are_recomputed_identically(backend: str, policy: Any) -> None:
    key = gc.random.key(9)

    def block(x: Any, w: Any, k: Any) -> Any:
        z = gc.checkpoint_name(x @ w, "z")
        keep = gc.random.bernoulli(k, 0.5, z.shape, counter=3)
        return np.where(keep, np.tanh(z) * 2.0, 0.0)

    def f(wrapped: Any) -> Any:
        return lambda x, w, k: (wrapped(wrapped(x, w, k), w, k) ** 2).sum()

    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((8, 16)), rng.standard_normal((16, 16)) * 0.3
    want = gc.jit(gc.value_and_grad(f(block), argnums=(0, 1)), backend=backend)(x, w, key)
    remat = gc.remat(block, policy=policy)
    got = gc.jit(gc.value_and_grad(f(remat), argnums=(0, 1)), backend=backend)(x, w, key)
    # A mask drawn differently would change values by O(1); the sums of a
    # region's gradient may run in another order, so the last bits may differ.
    assert np.asarray(got[0]).tobytes() == np.asarray(want[0]).tobytes()
    for a, b in zip(tree_flatten(got[1])[0], tree_flatten(want[1])[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # The mask really is random: about half the units are dropped.
    mask = np.asarray(gc.random.bernoulli(key, 0.5, (8, 16), counter=3))
    assert 0.2 < mask.mean() < 0.8


def test_checkpoint_name_outside_a_region_is_the_identity() -> None:
    f = gc.jit(lambda x: gc.checkpoint_name(np.exp(x), "e") * 2.0, backend="numpy")
    x = np.linspace(-1.0, 1.0, 5)
    np.testing.assert_allclose(f(x), np.exp(x) * 2.0, rtol=1e-15)
    np.testing.assert_allclose(
        gc.grad(lambda x: gc.checkpoint_name(np.exp(x), "e").sum())(x), np.exp(x), rtol=1e-15
    )


def test_an_unknown_policy_is_refused_at_the_user_line() -> None:
    with pytest.raises(gc.InputError, match="(?s)unknown policy 'dots'.*test_policies.py"):
        gc.remat(layer, policy="dots")


DIFFERENTIABLE = sorted(
    set(ops_with_trait("elementwise")) - set(ops_with_trait("comparison"))
    | {"reduce_sum", "transpose", "matmul"}
)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(
    body=graphs(ops=DIFFERENTIABLE, dtypes=[DType.f64], special=False, max_nodes=8),
    seed=st.integers(0, 2**16),
    keep=st.sampled_from(["matmul", "all", "none"]),
)
def test_a_region_keeping_any_values_differentiates_like_the_plain_code(
    body: Graph, seed: int, keep: str
) -> None:
    floats = [i for i, v in enumerate(body.inputs) if v.type.dtype.is_float]
    outs = [i for i, v in enumerate(body.outputs) if v.type.dtype.is_float]
    if not floats or not outs:
        return
    made = [n.output for n in body.nodes if len(n.outputs) == 1 and n.output not in body.outputs]
    saved = {"none": [], "all": made, "matmul": [v for v in made if v.type.ndim == 2]}[keep]
    graphs_ = {}
    for wrapped in (False, True):
        b = GraphBuilder("f")
        xs = [b.input(v.type, v.name) for v in body.inputs]
        if wrapped:
            region = body.replace(outputs=body.outputs + tuple(saved))
            results = b.remat(*xs, subgraphs=[region], saved=len(saved))
        else:
            results = b.call(body, *xs)
        results = results if isinstance(results, tuple) else (results,)
        total = b.constant(value=np.zeros((), np.float64))
        for i in outs:
            part = b.cast(results[i], dtype=DType.f64)
            total = b.add(total, b.reduce_sum(part, axes=tuple(range(part.type.ndim))))
        graphs_[wrapped] = differentiate(b.build([total]), floats, [0])
    for g in graphs_.values():
        verify(g)
    arrays = random_inputs(body, seed, special=False)
    try:
        want = interpret(graphs_[False], *arrays)
    except GraphcError:
        return
    got = interpret(graphs_[True], *arrays)
    for a, w in zip(got, want):
        np.testing.assert_allclose(a, w, rtol=1e-12, atol=1e-300, equal_nan=True)
