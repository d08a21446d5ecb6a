"""Small and unsigned integers, float16 and bfloat16: tracing, both backends,
autodiff, and mixed-precision training steps, each against NumPy (and
ml_dtypes' own NumPy loops for bfloat16)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import graphc as gc
from graphc.ir import DType, parse

BF16 = np.dtype(ml_dtypes.bfloat16)
INTS = [np.int8, np.int16, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT16S = [np.dtype(np.float16), BF16]
ALL = [np.bool_, *INTS, np.int32, np.int64, np.float16, BF16, np.float32, np.float64]
BACKENDS = ["interpret", "numpy", "llvm"]


def _data(dtype: Any, shape: tuple[int, ...] = (3, 5), seed: int = 0) -> np.ndarray:
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind == "u":
        return rng.integers(0, np.iinfo(dtype).max, shape, dtype=np.uint64).astype(dtype)
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=np.int64).astype(dtype)
    return (rng.standard_normal(shape) * 3).astype(dtype)


def _same(out: Any, ref: Any) -> None:
    out, ref = np.asarray(out), np.asarray(ref)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    np.testing.assert_array_equal(out.astype(np.float64), ref.astype(np.float64))


def test_promotion_of_every_pair_follows_numpy() -> None:
    for a, b in itertools.product(ALL, ALL):
        x, y = np.zeros(2, a), np.zeros(2, b)
        g = gc.trace(lambda x, y: x + y if x.dtype != bool or y.dtype != bool else x | y, x, y)
        expected = np.result_type(x, y) if not (x.dtype == bool and y.dtype == bool) else bool
        assert g.outputs[0].type.dtype.np == np.dtype(expected), (a, b)


def test_printer_and_parser_know_the_new_names() -> None:
    text = """
    graph f(%x: u8[3], %y: bf16[3], %z: f16[3]) -> (f32[3]) {
      %0 = cast %x {dtype=f16} : f16[3]
      %1 = add %0, %z : f16[3]
      %2 = cast %1 {dtype=bf16} : bf16[3]
      %3 = mul %2, %y : bf16[3]
      %4 = cast %3 {dtype=f32} : f32[3]
      return %4
    }"""
    g = parse(text)
    assert parse(str(g)) == g
    assert [v.type.dtype for v in g.inputs] == [DType.u8, DType.bf16, DType.f16]


INT_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "floordiv": lambda a, b: a // b,
    "mod": lambda a, b: a % b,
    "maximum": np.maximum,
    "less": lambda a, b: a < b,
    "neg_abs_sign": lambda a, b: (-a, np.abs(a), np.sign(b)),
    "sum_prod_cumsum": lambda a, b: (a.sum(axis=0), b.prod(axis=1), np.cumsum(a)),
    "max_argmin": lambda a, b: (a.max(axis=1), np.argmin(b, axis=0)),
    "to_float": lambda a, b: (a.astype(np.float32) / 255, a.astype(np.float64) * b),
    "to_other_ints": lambda a, b: tuple(a.astype(t) for t in INTS),
    "where_matmul": lambda a, b: (np.where(a > b, a, b), a @ b.T),
    "index": lambda a, b: a[:, (b[0] % 3).astype(np.intp)],
}


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(INT_FUNCTIONS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_ops_wrap_like_numpy(dtype: Any, name: str, backend: str) -> None:
    f = INT_FUNCTIONS[name]
    a, b = _data(dtype, seed=1), _data(dtype, seed=2)
    if name in ("floordiv", "mod"):
        b[0, 0] = 0  # division by zero gives 0, as in NumPy (which warns)
    with np.errstate(all="ignore"):
        expected = f(a, b)
        got = gc.jit(f, backend=backend)(a, b)
    for out, ref in zip(*(x if isinstance(x, tuple) else (x,) for x in (got, expected))):
        _same(out, ref)


FLOAT16_EXACT: dict[str, Callable[..., Any]] = {
    "arith": lambda a, b: (a + b, a - b, a * b, a / b),
    "fused_chain": lambda a, b: (a * b + a) * 0.5 - b,
    "compare_select": lambda a, b: (a < b, np.where(a > b, a, b), np.maximum(a, b)),
    "sqrt_abs_neg": lambda a, b: (np.sqrt(np.abs(a)), -b, np.abs(b)),
    "casts": lambda a, b: (a.astype(np.float32), a.astype(np.float64), b.astype(np.int32)),
    "moves": lambda a, b: (a.T, a[1:, ::2], np.concatenate([a, b]), a.reshape(5, 3)),
    "max_reduce": lambda a, b: (a.max(axis=0), b.min(axis=1)),
}


@pytest.mark.parametrize("dtype", FLOAT16S, ids=str)
@pytest.mark.parametrize("name", list(FLOAT16_EXACT))
@pytest.mark.parametrize("backend", BACKENDS)
def test_16bit_floats_match_numpy_bit_for_bit(dtype: Any, name: str, backend: str) -> None:
    """Where NumPy (or ml_dtypes) computes in float32 and rounds, a fused kernel
    that rounds after every op gives the same bits."""
    f = FLOAT16_EXACT[name]
    a, b = _data(dtype, seed=3), _data(dtype, seed=4)
    expected = f(a, b)
    got = gc.jit(f, backend=backend)(a, b)
    for out, ref in zip(*(x if isinstance(x, tuple) else (x,) for x in (got, expected))):
        _same(out, ref)


@pytest.mark.parametrize("dtype", FLOAT16S, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_16bit_transcendentals_within_one_unit(dtype: Any, backend: str) -> None:
    def f(a: Any) -> Any:
        return np.exp(a / 4), np.tanh(a), np.log(np.abs(a) + 1), np.sin(a)

    a = _data(dtype, (64,), seed=5)
    for out, ref in zip(gc.jit(f, backend=backend)(a), f(a)):
        assert out.dtype == ref.dtype
        # one unit in the last place: float32 math libraries differ by an ulp
        spacing = np.abs(ref.astype(np.float32)) * (2.0**-10 if dtype == np.float16 else 2.0**-7)
        assert np.all(np.abs(out.astype(np.float32) - ref.astype(np.float32)) <= spacing + 1e-7)


@pytest.mark.parametrize("dtype", FLOAT16S, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_16bit_matmul_and_sums_accumulate_in_float32(dtype: Any, backend: str) -> None:
    a, b = _data(dtype, (16, 40), seed=6), _data(dtype, (40, 8), seed=7)
    got_mm, got_sum, got_mean = gc.jit(
        lambda a, b: (a @ b, a.sum(axis=1), a.mean()), backend=backend
    )(a, b)
    wide_a, wide_b = a.astype(np.float32), b.astype(np.float32)
    ref_dtype = (a @ b).dtype  # float16 @ float16 is float16; ml_dtypes' bf16 matmul is f32
    assert got_mm.dtype == ref_dtype and got_sum.dtype == dtype and got_mean.dtype == dtype
    np.testing.assert_allclose(got_mm.astype(np.float32), wide_a @ wide_b, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(got_sum.astype(np.float32), wide_a.sum(axis=1), rtol=1e-2, atol=5e-2)
    np.testing.assert_allclose(float(got_mean), float(wide_a.mean()), rtol=1e-2, atol=1e-2)


def test_bool_to_float_functions_use_numpys_float16_loop() -> None:
    x = np.array([True, False, True])
    for backend in BACKENDS:
        out = gc.jit(lambda x: (np.exp(x), np.sqrt(x)), backend=backend)(x)
        for got, ref in zip(out, (np.exp(x), np.sqrt(x))):
            _same(got, ref)


def test_uint8_images_normalize_as_in_numpy() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)

    def normalize(p: Any) -> Any:
        return (p.astype(np.float32) / 255 - 0.5).mean(axis=0)

    for backend in BACKENDS:
        np.testing.assert_allclose(
            gc.jit(normalize, backend=backend)(pixels), normalize(pixels), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("dtype", FLOAT16S, ids=str)
@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_gradients_of_16bit_graphs_match_float64(dtype: Any, backend: str) -> None:
    def loss(w: Any, x: Any) -> Any:
        return np.sum(np.tanh(x @ w) ** 2).astype(np.float32)

    w64, x64 = _data(np.float64, (5, 3), 8) / 4, _data(np.float64, (4, 5), 9) / 4
    w, x = w64.astype(dtype), x64.astype(dtype)
    got = gc.jit(gc.grad(loss), backend=backend)(w, x)
    ref = gc.grad(loss)(w.astype(np.float64), x.astype(np.float64))
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=0.05, atol=0.05)


def _mlp_loss(p: Any, x: Any, y: Any) -> Any:
    h = np.tanh(x @ p["w1"] + p["b1"])
    z = h @ p["w2"]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(np.sum(logp * y, axis=1))


def _mlp_data() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    params = {
        "w1": (rng.standard_normal((8, 16)) * 0.3).astype(np.float32),
        "b1": np.zeros(16, np.float32),
        "w2": (rng.standard_normal((16, 4)) * 0.3).astype(np.float32),
    }
    x = rng.standard_normal((32, 8)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 32)]
    return params, x, y


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_mixed_precision_step_trains_like_float32(precision: str, backend: str) -> None:
    params, x, y = _mlp_data()
    runs = {}
    for mp in (None, precision):
        step = gc.train_step(_mlp_loss, gc.optim.Adam(0.05), backend=backend, mixed_precision=mp)
        state = step.init(params)
        for _ in range(40):
            state, loss = step(state, x, y)
        runs[mp] = (state, float(loss))
    state, loss = runs[precision]
    assert all(p.dtype == np.float32 for p in state.params.values())  # master weights
    assert loss < 0.5 * float(_mlp_loss(params, x, y))
    assert abs(loss - runs[None][1]) < 0.1
    traced = gc.train_step(_mlp_loss, gc.optim.SGD(0.1), mixed_precision=precision)
    graph = str(traced.trace(traced.init(params), x, y))
    low = "bf16" if precision == "bfloat16" else "f16"
    assert "matmul" in graph and f"{low}[32,16]" in graph


def test_loss_scaling_skips_exactly_the_non_finite_steps() -> None:
    def loss(p: Any, x: Any) -> Any:
        return np.sum(p * x)

    step = gc.train_step(
        loss, gc.optim.SGD(0.1), backend="numpy", mixed_precision="float16",
        loss_scale=8.0, growth_interval=2,
    )  # fmt: skip
    state = step.init(np.ones(3, np.float32))
    batches = [np.ones(3), np.array([1.0, np.inf, 1.0]), np.ones(3), np.ones(3), np.ones(3)]
    history = []
    for x in batches:
        before = state.params.copy()
        state, _ = step(state, x.astype(np.float32))
        history.append(
            (float(state.opt_state["loss_scale"]), not np.array_equal(before, state.params))
        )
    # good, skipped (halve), good, good (double after 2 good), good
    assert history == [(8.0, True), (4.0, False), (4.0, True), (8.0, True), (8.0, True)]
    assert state.step == 4
    np.testing.assert_allclose(state.params, 1 - 0.1 * 4, rtol=1e-6)


def test_mixed_precision_checkpoint_resumes_bit_exactly(tmp_path: Any) -> None:
    params, x, y = _mlp_data()
    step = gc.train_step(_mlp_loss, gc.optim.Adam(0.05), backend="llvm", mixed_precision="float16")
    state = step.init(params)
    for _ in range(3):
        state, _ = step(state, x, y)
    gc.checkpoint.save(tmp_path / "ckpt", state)
    restored = gc.checkpoint.restore(tmp_path / "ckpt", like=state)
    for _ in range(3):
        state, loss = step(state, x, y)
        restored, loss2 = step(restored, x, y)
    assert float(loss) == float(loss2)
    for a, b in zip(gc.pytree.tree_flatten(state)[0], gc.pytree.tree_flatten(restored)[0]):
        np.testing.assert_array_equal(a, b)


def test_unknown_precision_is_a_clear_error() -> None:
    with pytest.raises(gc.InputError, match="mixed_precision='float8'"):
        gc.train_step(_mlp_loss, gc.optim.SGD(0.1), mixed_precision="float8")


def _elementwise_ops(arity: int) -> list[str]:
    from graphc.ir import all_ops

    ops = all_ops().values() if isinstance(all_ops(), dict) else all_ops()
    return sorted(
        o.name
        for o in ops
        if "elementwise" in o.traits
        and len(o.operands) == arity
        and o.name not in ("cast", "not", "and", "or", "xor", "select", "stop_gradient")
    )


# computed exactly in float32 and rounded once: the same bits as NumPy
_EXACT = {
    "abs", "neg", "sign", "floor", "ceil", "round", "sqrt", "isnan", "isinf", "isfinite",
    "add", "sub", "mul", "div", "max", "min", "eq", "ne", "lt", "le", "gt", "ge",
    "floordiv", "rem",
}  # fmt: skip


@pytest.mark.parametrize("dtype", [DType.f16, DType.bf16], ids=str)
@pytest.mark.parametrize("op", _elementwise_ops(1) + _elementwise_ops(2))
def test_every_elementwise_op_on_16bit_floats(dtype: DType, op: str) -> None:
    """Each backend against the interpreter, which runs NumPy's (and
    ml_dtypes') own 16-bit loops."""
    from graphc.backends import get_backend
    from graphc.ir import GraphBuilder, TensorType, interpret

    b = GraphBuilder(op)
    ty = TensorType((48,), dtype)
    n_operands = 1 if op in _elementwise_ops(1) else 2
    xs = [b.input(ty, name) for name in "xy"[:n_operands]]
    g = b.build([b.emit(op, *xs)])
    rng = np.random.default_rng(11)
    data = [(rng.standard_normal(48) * 2).astype(dtype.np) for _ in range(n_operands)]
    if op in ("log", "log2", "log10", "sqrt", "rsqrt", "acosh", "log1p"):
        data = [np.abs(d) + dtype.np.type(1.0) for d in data]
    if op in ("asin", "acos", "atanh"):
        data = [(d / dtype.np.type(8.0)).astype(dtype.np) for d in data]
    with np.errstate(all="ignore"):
        want = interpret(g, *data)[0]
        for backend in ("numpy", "llvm"):
            got = get_backend(backend).compile(g)(*data)[0]
            assert got.dtype == want.dtype, (backend, op)
            if op in _EXACT:
                _same(got, want)
            else:
                scale = 2.0**-10 if dtype is DType.f16 else 2.0**-7
                tol = np.abs(want.astype(np.float32)) * scale + 1e-6
                diff = np.abs(got.astype(np.float32) - want.astype(np.float32))
                assert np.all(
                    (diff <= tol)
                    | (np.isnan(got.astype(np.float32)) & np.isnan(want.astype(np.float32)))
                ), (backend, op)


def test_sigmoid_and_erf_of_small_integers_round_once() -> None:
    # int8 takes NumPy's float16 loop and int16 its float32 one; each function
    # is computed in float32 and rounded once. (The interpreter's sigmoid used
    # to round three times in float16, the NumPy backend's erf of an int16
    # came out float64.)
    import scipy.special

    from graphc.backends import get_backend

    x8, x16 = np.arange(-6, 7, dtype=np.int8), np.arange(-6, 7, dtype=np.int16)
    g = parse("""graph f(%a: i8[13], %b: i16[13]) -> (f16[13], f16[13], f32[13], f32[13]) {
  %0 = sigmoid %a : f16[13]
  %1 = erf %a : f16[13]
  %2 = sigmoid %b : f32[13]
  %3 = erf %b : f32[13]
  return %0, %1, %2, %3
}""")
    wide = x8.astype(np.float32)
    want32 = [scipy.special.expit(wide), scipy.special.erf(wide)]
    want16 = [w.astype(np.float16) for w in want32]
    runs = {"interpret": gc.ir.interpret(g, x8, x16)}
    for name in ("numpy", "llvm"):
        runs[name] = get_backend(name).compile(g)(x8, x16)
    for name, out in runs.items():
        for got, want in zip(out[:2], want16):
            _same(got, want)
        for got, want in zip(out[2:], want32):
            assert got.dtype == np.float32, name
            np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=name)


def _rnn_loss(p: Any, xs: Any, y: Any) -> Any:
    def cell(h: Any, x_t: Any) -> Any:
        h = np.tanh(x_t @ p["wx"] + h @ p["wh"])
        return h, h

    h, _ = gc.scan(cell, np.zeros((xs.shape[1], 16), np.float32), xs)
    return np.mean((h @ p["wo"] - y) ** 2)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_mixed_precision_reaches_loop_bodies(backend: str) -> None:
    rng = np.random.default_rng(3)
    params = {
        "wx": (rng.standard_normal((4, 16)) * 0.3).astype(np.float32),
        "wh": (rng.standard_normal((16, 16)) * 0.3).astype(np.float32),
        "wo": (rng.standard_normal((16, 1)) * 0.3).astype(np.float32),
    }
    xs = rng.standard_normal((6, 8, 4)).astype(np.float32)
    y = rng.standard_normal((8, 1)).astype(np.float32)
    losses = {}
    for mp in (None, "bfloat16"):
        step = gc.train_step(_rnn_loss, gc.optim.Adam(0.02), backend=backend, mixed_precision=mp)
        state = step.init(params)
        scan_nodes = [n for n in step.trace(state, xs, y).nodes if n.op == "scan"]
        body_dtypes = {str(v.type.dtype) for n in scan_nodes for m in n.subgraphs[0].nodes
                       for v in m.outputs}  # fmt: skip
        assert ("bf16" in body_dtypes) == (mp is not None)
        for _ in range(30):
            state, loss = step(state, xs, y)
        losses[mp] = float(loss)
    assert abs(losses["bfloat16"] - losses[None]) < 0.05 * losses[None] + 0.02


def test_float16_diagnostics_report_unscaled_gradients() -> None:
    params, x, y = _mlp_data()
    norms = {}
    for mp in (None, "float16"):
        step = gc.train_step(
            _mlp_loss, gc.optim.SGD(0.01), backend="numpy", mixed_precision=mp, diagnostics=True
        )
        _, _, diag = step(step.init(params), x, y)
        norms[mp] = float(diag["grad_norm"]["w1"])
    # the loss scale (2**15) must not show: float16 rounding only
    np.testing.assert_allclose(norms["float16"], norms[None], rtol=0.02)


def test_bool_squared_is_int8_as_in_numpy() -> None:
    # ndarray ** 2 is np.square, whose bool loop is int8
    x = np.array([True, False])
    for backend in BACKENDS:
        _same(gc.jit(lambda x: x**2, backend=backend)(x), x**2)
