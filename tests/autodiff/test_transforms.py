"""grad, value_and_grad, vjp, jvp, hvp and check_grads as a user calls them."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import graphc as gc


def numeric_grad(f, x, eps=1e-6):
    """Central differences of scalar f at array x, one coordinate at a time."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        g[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return g


def mlp_loss(params, x, y):
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    logits = h @ params["w2"] + params["b2"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(y)), y])


def mlp_args(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    params = {
        "w1": rng.normal(size=(4, 16)).astype(dtype),
        "b1": rng.normal(size=16).astype(dtype),
        "w2": rng.normal(size=(16, 3)).astype(dtype),
        "b2": np.zeros(3, dtype),
    }
    return params, rng.normal(size=(8, 4)).astype(dtype), rng.integers(0, 3, 8)


def test_grad_matches_finite_differences_for_every_parameter():
    params, x, y = mlp_args()
    grads = gc.grad(mlp_loss)(params, x, y)
    assert set(grads) == set(params)
    for name in params:

        def f(p, name=name):
            return mlp_loss({**params, name: p}, x, y)

        np.testing.assert_allclose(grads[name], numeric_grad(f, params[name]), rtol=1e-6, atol=1e-9)


def test_value_and_grad_returns_the_value_and_keeps_dtypes():
    params, x, y = mlp_args(np.float32)
    value, grads = gc.value_and_grad(mlp_loss)(params, x, y)
    assert value.dtype == np.float32 and value.shape == ()
    np.testing.assert_allclose(value, mlp_loss(params, x, y), rtol=1e-6)
    assert all(grads[k].dtype == np.float32 and grads[k].shape == params[k].shape for k in params)


def test_argnums_tuple_returns_a_tuple_mirroring_each_argument():
    params, x, y = mlp_args()
    g_params, g_x = gc.grad(mlp_loss, argnums=(0, 1))(params, x, y)
    assert isinstance(g_params, dict) and g_x.shape == x.shape
    np.testing.assert_allclose(
        g_x, numeric_grad(lambda v: mlp_loss(params, v, y), x), rtol=1e-6, atol=1e-9
    )
    g_neg = gc.grad(mlp_loss, argnums=-2)(params, x, y)
    np.testing.assert_allclose(g_neg, g_x)


def test_pytrees_lists_tuples_namedtuples_and_none_leaves():
    Pair = collections.namedtuple("Pair", "a b")

    def f(tree):
        first, (second, nothing), pair = tree
        assert nothing is None
        return np.sum(first * second) + np.sum(pair.a**2) + 3.0 * pair.b

    tree = [np.array([1.0, 2.0]), (np.array([3.0, 4.0]), None), Pair(np.array([5.0]), 2.0)]
    g = gc.grad(f)(tree)
    assert isinstance(g, list) and isinstance(g[1], tuple) and g[1][1] is None
    assert isinstance(g[2], Pair)
    np.testing.assert_allclose(g[0], [3.0, 4.0])
    np.testing.assert_allclose(g[1][0], [1.0, 2.0])
    np.testing.assert_allclose(g[2].a, [10.0])
    # a Python float gets a 0-d float64 gradient
    assert isinstance(g[2].b, np.ndarray) and g[2].b.shape == () and g[2].b.dtype == np.float64
    assert float(g[2].b) == 3.0


def test_has_aux_returns_aux_untouched():
    def f(w):
        loss = np.sum(w**2)
        return loss, {"norm": np.sqrt(loss), "count": 3}

    (value, aux), g = gc.value_and_grad(f, has_aux=True)(np.array([3.0, 4.0]))
    assert float(value) == 25.0 and float(aux["norm"]) == 5.0 and int(aux["count"]) == 3
    np.testing.assert_allclose(g, [6.0, 8.0])
    g2, aux2 = gc.grad(f, has_aux=True)(np.array([3.0, 4.0]))
    np.testing.assert_allclose(g2, [6.0, 8.0])
    assert float(aux2["norm"]) == 5.0


def test_unused_argument_gets_zeros_of_its_shape_and_dtype():
    g = gc.grad(lambda a, b: np.sum(a * 2.0), argnums=(0, 1))(
        np.ones(3, np.float32), np.ones((2, 2), np.float32)
    )
    np.testing.assert_array_equal(g[1], np.zeros((2, 2), np.float32))
    assert g[1].dtype == np.float32


def test_integer_argument_in_argnums_is_an_error_naming_the_line():
    with pytest.raises(gc.DifferentiationError, match="dtype i64") as info:
        gc.grad(lambda x, n: np.sum(x) * n, argnums=1)(np.ones(2), np.array(3))
    assert isinstance(info.value, TypeError)
    assert "test_transforms.py" in str(info.value)


def test_non_scalar_output_and_bad_argnums_are_errors():
    with pytest.raises(gc.DifferentiationError, match="scalar output"):
        gc.grad(lambda x: x * 2.0)(np.ones(3))
    with pytest.raises(gc.DifferentiationError, match="out of range"):
        gc.grad(lambda x: np.sum(x), argnums=1)(np.ones(3))
    with pytest.raises(gc.DifferentiationError, match="float output"):
        gc.grad(lambda x: np.sum(x > 0))(np.ones(3))
    for container in (
        lambda x: (x.sum(), (x * 2).sum()),
        lambda x: {"l": x.sum()},
        lambda x: [x.sum()],
    ):
        with pytest.raises(gc.DifferentiationError, match="single scalar output"):
            gc.grad(container)(np.ones(3))
    with pytest.raises(gc.DifferentiationError, match="single scalar output"):
        gc.grad(lambda x: ((x.sum(), x.sum()), None), has_aux=True)(np.ones(3))


def test_data_dependent_control_flow_under_grad_is_a_tracing_error():
    def f(x):
        if x.sum() > 0:
            return np.sum(x)
        return -np.sum(x)

    with pytest.raises(gc.TracingError, match="np.where") as info:
        gc.grad(f)(np.ones(3))
    assert "test_transforms.py" in str(info.value)


def test_ties_share_the_gradient_like_jax():
    # np.maximum of two traced values at a tie splits equally; against a constant
    # the constant keeps the tie (relu'(0) = 0, as in jax.nn.relu and PyTorch);
    # max reduction shares among tied maxima
    g = gc.grad(lambda x, y: np.sum(np.maximum(x, y)), argnums=(0, 1))
    gx, gy = g(np.array([1.0, 2.0, 0.0]), np.array([1.0, 0.0, 3.0]))
    np.testing.assert_allclose(gx, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(gy, [0.5, 0.0, 1.0])
    g = gc.grad(lambda x: np.sum(np.maximum(x, 1.0)))(np.array([1.0, 2.0, 0.0]))
    np.testing.assert_allclose(g, [0.0, 1.0, 0.0])
    g = gc.grad(lambda x: np.sum(np.minimum(1.0, x)))(np.array([1.0, 2.0, 0.0]))
    np.testing.assert_allclose(g, [0.0, 0.0, 1.0])
    g = gc.grad(lambda x: np.max(x))(np.array([3.0, 1.0, 3.0]))
    np.testing.assert_allclose(g, [0.5, 0.0, 0.5])
    g = gc.grad(lambda x: np.sum(np.abs(x)))(np.array([-2.0, 0.0, 2.0]))
    np.testing.assert_allclose(g, [-1.0, 0.0, 1.0])


def test_stop_gradient_blocks_only_its_branch():
    g = gc.grad(lambda x: np.sum(x * gc.stop_gradient(x)))(np.array([3.0, -1.0]))
    np.testing.assert_allclose(g, [3.0, -1.0])
    assert gc.stop_gradient(np.ones(2)).shape == (2,)


def test_vjp_of_a_vector_function():
    def f(x):
        return {"sq": x**2, "sum": np.sum(np.sin(x))}

    x = np.array([0.5, -1.0, 2.0])
    out, pullback = gc.vjp(f, x)
    np.testing.assert_allclose(out["sq"], x**2)
    (ct_x,) = pullback({"sq": np.array([1.0, 2.0, 3.0]), "sum": np.array(2.0)})
    np.testing.assert_allclose(ct_x, 2 * x * [1.0, 2.0, 3.0] + 2.0 * np.cos(x))
    with pytest.raises(gc.DifferentiationError):
        pullback({"sq": np.ones(2), "sum": np.array(1.0)})


def test_jvp_equals_jacobian_times_tangent():
    def f(x, y):
        return np.tanh(x) * y, np.sum(x * x)

    x, y = np.array([0.1, 0.7]), np.array([2.0, -1.0])
    tx, ty = np.array([1.0, 0.5]), np.array([0.3, 0.2])
    (out1, out2), (t1, t2) = gc.jvp(f, (x, y), (tx, ty))
    np.testing.assert_allclose(out1, np.tanh(x) * y)
    np.testing.assert_allclose(t1, (1 - np.tanh(x) ** 2) * tx * y + np.tanh(x) * ty)
    np.testing.assert_allclose(t2, np.sum(2 * x * tx))


def test_hvp_matches_the_exact_hessian():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])

    def f(x):
        return 0.5 * x @ a @ x + np.sum(x**3)

    x, v = np.array([0.5, -1.0]), np.array([1.0, 2.0])
    hess = a + np.diag(6 * x)
    np.testing.assert_allclose(gc.hvp(f, (x,), (v,)), hess @ v)


def test_grad_of_grad_and_grad_inside_a_traced_function():
    d2 = gc.grad(gc.grad(lambda x: np.sin(x) * x))
    for x in (0.3, 1.7):
        np.testing.assert_allclose(d2(x), 2 * np.cos(x) - x * np.sin(x), rtol=1e-12)
    d3 = gc.grad(gc.grad(gc.grad(lambda x: x**4)))
    assert float(d3(2.0)) == pytest.approx(48.0)

    def outer(w, x):
        # the inner grad closes over w, an outer traced value
        return np.sum(gc.grad(lambda v: np.sum(np.tanh(w * v)))(x) * w)

    w, x = np.array([0.5, -0.3]), np.array([1.0, 2.0])
    g = gc.grad(outer)(w, x)
    np.testing.assert_allclose(g, numeric_grad(lambda v: outer(v, x), w), rtol=1e-6)
    graph = gc.trace(outer, w, x)
    assert gc.ir.parse(str(graph)) == graph


def test_jit_composes_with_grad_both_ways():
    f = lambda x: np.sum(np.exp(x) * x)  # noqa: E731
    x = np.array([0.1, 0.2, -0.5])
    expected = np.exp(x) * (x + 1)
    np.testing.assert_allclose(gc.grad(gc.jit(f, backend="interpret"))(x), expected)
    np.testing.assert_allclose(gc.jit(gc.grad(f), backend="interpret")(x), expected)


SECOND_ORDER_FUNCTIONS = {
    "tanh": lambda x: np.sum(np.tanh(x)),
    "sigmoid_via_exp": lambda x: np.sum(1.0 / (1.0 + np.exp(-x))),
    "logsumexp": lambda x: np.log(np.sum(np.exp(x - np.max(x)))) + np.max(x),
    "softplus": lambda x: np.sum(np.log1p(np.exp(x))),
    "sin_cos": lambda x: np.sum(np.sin(x) * np.cos(2 * x)),
    "rational": lambda x: np.sum(x / (1.0 + x * x)),
    "power": lambda x: np.sum((x * x + 1.0) ** 1.5),
    "sqrt_norm": lambda x: np.sqrt(np.sum(x * x) + 1.0),
    "quadratic_form": lambda x: (
        x @ np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 3.0]]) @ x
    ),
    "log_softmax_entry": lambda x: (x - np.log(np.sum(np.exp(x))))[1],
    "gelu_erf": lambda x: np.sum(0.5 * x * (1 + __import__("scipy").special.erf(x / np.sqrt(2)))),
    "atan_exp": lambda x: np.sum(np.arctan(x) * np.exp(-x * x)),
    "mean_var": lambda x: np.var(x) + np.mean(x) ** 2,
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER_FUNCTIONS))
def test_second_order_derivatives(name):
    x = np.array([0.3, -0.8, 1.1])
    rows = gc.check_grads(SECOND_ORDER_FUNCTIONS[name], (x,), order=2, rtol=1e-6)
    assert {r.order for r in rows} == {1, 2}


def test_check_grads_reports_a_wrong_rule(monkeypatch):
    from graphc.ir.ops import registry

    op = registry.get_op("sin")
    wrong = registry.OpDef(
        op.name,
        op.operands,
        op.attrs,
        op.type_rule,
        op.reference,
        lambda b, ct, out, x: (b.mul(ct, 2.0),),
        op.traits,
    )
    monkeypatch.setitem(registry._REGISTRY, "sin", wrong)
    with pytest.raises(gc.GradientCheckError, match="worst relative error") as info:
        gc.check_grads(lambda x: np.sum(np.sin(x)), (np.array([0.2, 0.4]),))
    assert isinstance(info.value, AssertionError)
    assert " x " in str(info.value)


def test_check_grads_catches_a_small_relative_error():
    # the analytic gradient misses 1e-4 * a: a relative error near 5e-5
    def f(a):
        return np.sum(a**2) + 1e-4 * np.sum(gc.stop_gradient(a) * a)

    with pytest.raises(gc.GradientCheckError):
        gc.check_grads(f, (np.array([0.7, -1.3, 2.1]),))
    gc.check_grads(lambda a: np.sum(a**2) + 1e-4 * np.sum(a * a), (np.array([0.7, -1.3, 2.1]),))


def test_jvp_tangent_of_the_wrong_shape_names_the_argument():
    with pytest.raises(gc.InputError, match=r"tangent of argument 1\['w'\] has shape \(4,\)"):
        gc.jvp(
            lambda a, p: a * p["w"],
            (np.ones(3), {"w": np.ones(3)}),
            (np.ones(3), {"w": np.ones(4)}),
        )


def test_check_grads_rejects_bad_order_and_integer_only_arguments():
    with pytest.raises(gc.InputError, match="order must be 1 or 2, got 3"):
        gc.check_grads(lambda x: np.sum(x * x), (np.ones(3),), order=3)
    with pytest.raises(gc.InputError, match="float arrays"):
        gc.check_grads(lambda n: np.sum(n), (np.arange(3),))
