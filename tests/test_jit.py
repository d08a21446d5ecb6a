"""gc.jit as a user meets it: caching, retracing, options, errors, composition."""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

import graphc as gc
from graphc.compiler import default_backend
from graphc.pytree import tree_flatten
from tests.corpus import CORPUS

BACKENDS = ["numpy", "llvm"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def test_default_backend_is_llvm():
    assert default_backend() == "llvm"
    f = gc.jit(lambda x: x * 2.0)
    f(np.ones(2))
    assert f.lower(np.ones(2)).backend == "llvm"


def test_one_compilation_per_signature(backend):
    calls = []

    def f(x, y):
        calls.append(1)  # runs only while tracing
        return np.tanh(x) * y

    jf = gc.jit(f, backend=backend)
    a, b = np.linspace(-1, 1, 5), np.arange(5.0)
    np.testing.assert_allclose(jf(a, b), f(a, b), rtol=1e-12)
    jf(a + 1.0, b)
    assert len(calls) == 2 and len(jf.cache) == 1  # one trace for f(a, b) above, one in jit
    jf(a[:3], b[:3])  # new shape: compiles again
    jf(a.astype(np.float32), b.astype(np.float32))  # new dtype: again
    assert len(jf.cache) == 3
    np.testing.assert_allclose(jf(a, b), f(a, b), rtol=1e-12)  # old signatures still work
    assert len(jf.cache) == 3


def test_retrace_reasons_name_the_argument_and_what_changed():
    jf = gc.jit(lambda weights, x: weights @ x, backend="numpy", explain=True)
    jf(np.ones((2, 3)), np.ones(3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jf(np.ones((2, 4)), np.ones(4))
    assert jf.retrace_reasons == ["weights: shape [2, 3] -> [2, 4]; x: shape [3] -> [4]"]
    assert any("new signature" in str(w.message) for w in caught)
    with pytest.warns(UserWarning, match="dtype float64 -> float32"):
        jf(np.ones((2, 4), np.float32), np.ones(4, np.float32))
    assert "dtype float64 -> float32" in jf.retrace_reasons[-1]
    scaled = gc.jit(lambda x: x * 2, backend="numpy")
    scaled(np.array(2.0))
    scaled(2.0)
    assert scaled.retrace_reasons == ["x: float64 array of shape [] -> Python float"]


def test_pytree_structure_and_python_scalars_key_the_cache(backend):
    Point = collections.namedtuple("Point", "x y")
    jf = gc.jit(lambda p, scale: (p.x * scale, {"y": p.y - scale}), backend=backend)
    out = jf(Point(np.ones(2, np.float32), np.zeros(2, np.float32)), 3.0)
    assert isinstance(out, tuple) and isinstance(out[1], dict)
    # a Python float is weakly typed: float32 stays float32, like NumPy
    assert out[0].dtype == np.float32 and out[1]["y"].dtype == np.float32
    np.testing.assert_array_equal(out[0], [3.0, 3.0])
    jf(Point(np.ones(2, np.float32), np.zeros(2, np.float32)), 5.0)
    assert len(jf.cache) == 1  # a new float value does not recompile
    jf(Point(np.ones(2, np.float32), np.zeros(2, np.float32)), np.float64(5.0))
    assert len(jf.cache) == 2  # a NumPy scalar is strongly typed


def test_static_argnums(backend):
    jf = gc.jit(
        lambda x, n, mode: x**n if mode == "pow" else x * n, static_argnums=(1, 2), backend=backend
    )
    x = np.array([2.0, 3.0])
    np.testing.assert_allclose(jf(x, 3, "pow"), [8.0, 27.0])
    np.testing.assert_allclose(jf(x, 3, "mul"), [6.0, 9.0])
    assert len(jf.cache) == 2
    with pytest.raises(gc.InputError, match="not hashable"):
        jf(x, [3], "pow")


def test_results_keep_numpy_dtypes_and_containers(backend):
    def f(x, n):
        return {"mask": x > 0, "count": np.sum(x > 0), "ints": n * 2, "mean": np.mean(x)}

    x = np.array([-1.0, 2.0, 3.0], np.float32)
    out = gc.jit(f, backend=backend)(x, np.arange(3, dtype=np.int32))
    ref = f(x, np.arange(3, dtype=np.int32))
    for key in ref:
        assert np.asarray(out[key]).dtype == np.asarray(ref[key]).dtype, key
        np.testing.assert_allclose(out[key], ref[key])


def test_inputs_are_not_modified_and_outputs_are_fresh(backend):
    jf = gc.jit(lambda x: (x * 2.0, np.exp(x)), backend=backend)
    x = np.linspace(0, 1, 7)
    keep = x.copy()
    first = jf(x)
    second = jf(x + 1.0)
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_allclose(first[0], keep * 2.0)  # not overwritten by the second call
    assert not np.shares_memory(first[0], second[0])


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_corpus_value_and_gradient_equal_the_interpreter_on_numpy(case):
    args = case.args(np.float64, 0)
    vg = gc.value_and_grad(case.fn, argnums=case.argnums)
    expected = tree_flatten(vg(*args))[0]  # un-jitted: the reference interpreter
    got = tree_flatten(gc.jit(vg, backend="numpy")(*args))[0]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-12)


def test_composition_with_transforms(backend):
    def f(w, x):
        return np.sum(np.tanh(x @ w))

    w, x = np.full((3, 2), 0.1), np.linspace(-1, 1, 12).reshape(4, 3)
    expected = gc.grad(f)(w, x)
    np.testing.assert_allclose(gc.jit(gc.grad(f), backend=backend)(w, x), expected, rtol=1e-12)
    np.testing.assert_allclose(gc.grad(gc.jit(f, backend=backend))(w, x), expected, rtol=1e-12)
    value, grads = gc.jit(gc.value_and_grad(f, argnums=(0, 1)), backend=backend)(w, x)
    np.testing.assert_allclose(grads[0], expected, rtol=1e-12)

    def uses_vjp(w, x):
        out, pullback = gc.vjp(lambda v: np.tanh(x @ v), w)
        return pullback(np.ones_like(out))[0]

    np.testing.assert_allclose(gc.jit(uses_vjp, backend=backend)(w, x), expected, rtol=1e-12)
    # a jitted function called inside a trace is inlined into it
    graph = gc.trace(lambda w, x: gc.jit(f)(w, x) * 2.0, w, x)
    assert "tanh" in str(graph)


def test_dump_writes_parseable_ir_after_every_pass(tmp_path, backend):
    jf = gc.jit(lambda x: np.sum(np.exp(x) * 1.0), backend=backend, dump=tmp_path)
    jf(np.ones(3))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[0].startswith("00-") and any("simplify" in name for name in files)
    for path in tmp_path.iterdir():
        gc.ir.verify(gc.ir.parse(path.read_text()))


def test_graphc_dump_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    gc.jit(lambda x: x + 1.0, backend="numpy")(np.ones(2))
    assert list(tmp_path.iterdir())


def test_disable_passes_and_report():
    f = lambda x: x * 1.0 + np.exp(x)  # noqa: E731
    plain = gc.jit(f, backend="numpy")
    plain(np.ones(2))
    assert "mul" not in str(plain.optimized_graph)
    kept = gc.jit(f, backend="numpy", disable_passes=("simplify", "simplify_after_cse"))
    np.testing.assert_allclose(kept(np.ones(2)), f(np.ones(2)))
    assert "mul" in str(kept.optimized_graph)
    disabled = [line for line in str(kept.report).splitlines() if "disabled" in line]
    assert [line.split()[0] for line in disabled] == ["simplify", "simplify_after_cse"]
    with pytest.raises(gc.GraphcError, match="simplify"):
        gc.jit(f, backend="numpy", disable_passes=("no_such_pass",))(np.ones(2))


def test_artifacts_per_backend():
    x = np.ones(3)
    np_fn = gc.jit(lambda x: np.tanh(x), backend="numpy")
    np_fn(x)
    assert "np.tanh" in np_fn.source
    ll_fn = gc.jit(lambda x: np.tanh(x), backend="llvm")
    ll_fn(x)
    assert "define" in ll_fn.llvm_ir and ll_fn.asm
    with pytest.raises(AttributeError):
        _ = np_fn.llvm_ir
    with pytest.raises(AttributeError, match="call the jitted function"):
        _ = gc.jit(lambda x: x).graph


def test_errors_are_clear(backend):
    jf = gc.jit(lambda x, y: x @ y, backend=backend)
    with pytest.raises(gc.InputError, match="missing a required argument"):
        jf(np.ones((2, 2)))
    with pytest.raises(gc.OpTypeError, match="matmul") as info:
        jf(np.ones((2, 3)), np.ones((2, 3)))
    assert "test_jit.py" in str(info.value)
    with pytest.raises(gc.UnsupportedError, match="complex64"):
        jf(np.ones((2, 2), np.complex64), np.ones((2, 2), np.complex64))
    with pytest.raises(gc.UnsupportedError, match="str"):
        jf("a", np.ones(2))
    with pytest.raises(gc.UnsupportedError, match="unknown backend"):
        gc.jit(lambda x: x, backend="gpu")


def test_data_dependent_control_flow_under_jit(backend):
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(gc.TracingError, match="np.where") as info:
        gc.jit(f, backend=backend)(np.ones(3))
    assert "test_jit.py" in str(info.value)


def test_keyword_arguments_and_defaults(backend):
    def f(x, scale=2.0, *, unused=None):
        return x * scale

    jf = gc.jit(f, backend=backend)
    np.testing.assert_allclose(jf(np.ones(2)), [2.0, 2.0])
    np.testing.assert_allclose(jf(np.ones(2), scale=3.0), [3.0, 3.0])
    with pytest.raises(gc.InputError, match="unused"):
        jf(np.ones(2), unused=1)


def test_negative_and_out_of_range_argnums(backend):
    jf = gc.jit(lambda x, n: x * n if n > 1 else x, static_argnums=-1, backend=backend)
    np.testing.assert_allclose(jf(np.ones(2), 3), [3.0, 3.0])
    with pytest.raises(gc.InputError, match="static_argnums names argument 2"):
        gc.jit(lambda x: x, static_argnums=2, backend=backend)(np.ones(2))
    with pytest.raises(gc.InputError, match="donate_argnums names argument 3"):
        gc.jit(lambda x: x * 2, donate_argnums=3, backend=backend)(np.ones(2))
    with pytest.raises(gc.InputError, match="both static and donated"):
        gc.jit(lambda x, n: x * n, static_argnums=1, donate_argnums=1, backend=backend)(
            np.ones(2), 2
        )


def test_argmax_over_a_non_empty_axis_of_an_empty_array(backend):
    x = np.zeros((0, 3))
    got = gc.jit(lambda x: np.argmax(x, axis=1), backend=backend)(x)
    assert got.shape == (0,) and got.dtype == np.int64
    with pytest.raises(gc.OpTypeError, match="empty"):
        gc.jit(lambda x: np.argmax(x, axis=0), backend=backend)(x)


def test_the_garbage_collector_is_paused_only_while_compiling():
    import gc as collector

    seen = []

    def f(x):
        seen.append(collector.isenabled())
        return x * 2

    def broken(x):
        raise RuntimeError("boom")

    assert collector.isenabled()
    gc.jit(f, backend="numpy")(np.ones(2))
    assert seen == [False] and collector.isenabled()
    with pytest.raises(RuntimeError, match="boom"):
        gc.jit(broken, backend="numpy")(np.ones(2))
    assert collector.isenabled()
    collector.disable()
    try:
        gc.jit(f, backend="numpy")(np.ones(3))
        assert not collector.isenabled()  # the user's choice is kept
    finally:
        collector.enable()


@pytest.mark.parametrize(
    ("backend", "option", "lists"),
    [
        ("numpy", "flush_denormals", "its options: min_buffer_bytes"),
        ("llvm", "flush_denormal", "flush_denormals"),  # a typo is not silently ignored
        ("interpret", "threads", "it takes no options"),
    ],
)
def test_an_option_the_backend_does_not_take_is_an_input_error(backend, option, lists):
    def double(x):
        return x * 2.0

    f = gc.jit(double, backend=backend, **{option: True})
    with pytest.raises(gc.InputError, match=f"double: the {backend} backend has no option") as e:
        f(np.ones(2))
    assert repr(option) in str(e.value) and lists in str(e.value)
