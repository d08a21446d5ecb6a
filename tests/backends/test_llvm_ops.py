"""Every op on the LLVM backend against the reference interpreter.

Each test builds one graph holding many one-op cases (shapes including (),
1, 7 and 1023, broadcasting, every dtype the op takes) and compiles it once,
so a whole op family costs one LLVM compile. float64 must agree to 1e-9
relative; float32 within a few ulp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from graphc.backends import llvm as llvm_backend
from graphc.ir import DType, GraphBuilder, Literal, OpTypeError, TensorType, all_ops, interpret

f32, f64, i32, i64, b8 = DType.f32, DType.f64, DType.i32, DType.i64, DType.bool
SPECIALS = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -1.0, 1e-30, 1e30]
RNG = np.random.default_rng(1234)


# Compiled LLVM objects go to a private directory, shared within this module.
pytestmark = pytest.mark.usefixtures("private_llvm_cache")


# Input ranges per op, for float operands (specials are mixed in as well).
DOMAIN: dict[str, tuple[float, float]] = {
    "log": (1e-3, 1e3), "log2": (1e-3, 1e3), "log10": (1e-3, 1e3), "sqrt": (0, 100),
    "rsqrt": (1e-3, 100), "log1p": (-0.999, 100), "asin": (-1, 1), "acos": (-1, 1),
    "atanh": (-0.999, 0.999), "acosh": (1, 100), "exp": (-100, 100), "expm1": (-30, 30),
    "exp2": (-140, 140), "tanh": (-12, 12), "sigmoid": (-100, 100), "sinh": (-20, 20),
    "cosh": (-20, 20), "pow": (0.1, 4),
}  # fmt: skip


def values(ty: TensorType, op: str = "", special: bool = True) -> np.ndarray:
    """Test data for ``ty``: op-appropriate ranges, plus special values when it fits."""
    n = ty.size
    if ty.dtype.is_bool:
        flat = RNG.random(n) < 0.5
    elif ty.dtype.is_int:
        flat = RNG.integers(-9, 10, n)
    else:
        lo, hi = DOMAIN.get(op, (-4.0, 4.0))
        flat = RNG.uniform(lo, hi, n)
        if op in ("exp", "log", "tanh", "sigmoid", "expm1", "log1p"):
            # Dense coverage of the hard parts: near 0, near 1, and far out.
            flat[: n // 4] *= 10.0 ** RNG.uniform(-8, 0, n // 4)
        if special and n >= len(SPECIALS) * 2:
            flat[: len(SPECIALS)] = SPECIALS
    return flat.reshape(ty.shape).astype(ty.dtype.np)


class Cases:
    """Many small one-op graphs merged into one graph (one compile)."""

    def __init__(self, name: str) -> None:
        self.b = GraphBuilder(name)
        self.labels: list[str] = []
        self.inputs: list[np.ndarray] = []

    def input(self, ty: TensorType, op: str = "", data: np.ndarray | None = None) -> Any:
        v = self.b.input(ty, f"in{len(self.inputs)}")
        self.inputs.append(values(ty, op) if data is None else data.astype(ty.dtype.np))
        return v

    def add(self, label: str, outs: Any) -> None:
        for o in outs if isinstance(outs, tuple) else (outs,):
            self.outputs.append(o)
            self.labels.append(label)

    outputs: list[Any]

    def run(self, *, fuse: bool = False, sums: bool = False) -> None:
        """Compile and compare; ``sums`` widens float32 tolerances for ops that
        add many products (matmul, conv), whose summation order differs."""
        g = self.b.build(self.outputs)
        if fuse:
            from graphc.passes.fuse import fuse as fuse_pass

            g = fuse_pass(g)
        exe = llvm_backend.compile(g)
        got = exe(*self.inputs)
        want = interpret(g, *self.inputs)
        for label, a, w in zip(self.labels, got, want):
            assert_close(a, w, label, float32_atol=2e-5 if sums else 1e-6)


def make_cases(name: str) -> Cases:
    c = Cases(name)
    c.outputs = []
    return c


def assert_close(
    got: np.ndarray,
    want: np.ndarray,
    label: str,
    float32_atol: float = 1e-6,
    zero_signs: bool = True,
) -> None:
    assert got.shape == want.shape, f"{label}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{label}: dtype {got.dtype} != {want.dtype}"
    if want.dtype == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300, err_msg=label)
    elif want.dtype == np.float32:
        np.testing.assert_allclose(got, want, rtol=4e-6, atol=float32_atol, err_msg=label)
    else:
        np.testing.assert_array_equal(got, want, err_msg=label)
    if want.dtype.kind == "f" and zero_signs:
        assert_same_specials(got, want, label)


def assert_same_specials(got: np.ndarray, want: np.ndarray, label: str) -> None:
    """NaNs in the same places, and zeros of the same sign where both are zero
    (assert_allclose treats -0.0 and +0.0 as equal)."""
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"{label}: NaN positions")
    both = (got == 0) & (want == 0)
    bad = np.flatnonzero(np.signbit(got[both]) != np.signbit(want[both]))
    assert not bad.size, (
        f"{label}: signs of zeros differ: got {got[both][bad]}, want {want[both][bad]}"
    )


# -- elementwise -------------------------------------------------------------------------

UNARY_FLOAT = [
    "neg", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "cbrt", "rsqrt",
    "sigmoid", "tanh", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
    "acosh", "atanh", "erf", "abs", "sign", "floor", "ceil", "round", "isnan", "isinf",
    "isfinite", "stop_gradient",
]  # fmt: skip
UNARY_INT = ["neg", "abs", "sign", "not", "isnan", "isfinite", "exp", "sqrt", "floor"]
SHAPES = [(), (1,), (7,), (1023,), (3, 5)]


@pytest.mark.parametrize("op", UNARY_FLOAT)
def test_unary_float(op: str) -> None:
    c = make_cases(op)
    for dtype in (f32, f64):
        for shape in SHAPES:
            x = c.input(TensorType(shape, dtype), op)
            c.add(f"{op} {dtype}{list(shape)}", c.b.emit(op, x))
    c.run()


def test_unary_int_and_bool() -> None:
    c = make_cases("unary_int")
    for op in UNARY_INT:
        for dtype in (i32, i64, b8):
            ty = TensorType((7,), dtype)
            try:
                all_ops()[op].infer((ty,), {})
            except OpTypeError:
                continue
            x = c.input(ty)
            c.add(f"{op} {dtype}", c.b.emit(op, x))
    c.run()


BINARY = [
    "add", "sub", "mul", "div", "pow", "max", "min", "atan2", "rem", "floordiv",
    "eq", "ne", "lt", "le", "gt", "ge",
]  # fmt: skip
PAIRS = [((7,), (7,)), ((3, 1), (1, 5)), ((1023,), ()), ((2, 3, 4), (4,)), ((), ())]


@pytest.mark.parametrize("op", BINARY)
def test_binary(op: str) -> None:
    c = make_cases(op)
    for da, db in [
        (f32, f32),
        (f64, f64),
        (i32, i32),
        (i64, i64),
        (i32, f32),
        (f32, f64),
        (b8, b8),
    ]:
        for sa, sb in PAIRS:
            ta, tb = TensorType(sa, da), TensorType(sb, db)
            try:
                all_ops()[op].infer((ta, tb), {})
            except OpTypeError:
                continue
            x = c.input(ta, op)
            if op == "pow" and db.is_int:
                y = c.input(tb, data=RNG.integers(0, 5, tb.shape))
            else:
                y = c.input(tb, op)
            c.add(f"{op} {ta} {tb}", c.b.emit(op, x, y))
            if sb == ():
                c.add(
                    f"{op} {ta} literal",
                    c.b.emit(op, x, Literal(2, da) if not da.is_bool else Literal(True, da)),
                )
    c.run()


def test_integer_division_edges() -> None:
    c = make_cases("idiv")
    for dtype in (i32, i64):
        info = np.iinfo(dtype.np)
        a = np.array([7, -7, 7, -7, 0, 5, info.min, info.min, 3, -3], dtype.np)
        d = np.array([2, 2, -2, -2, 3, 0, -1, 1, 0, 7], dtype.np)
        x = c.input(TensorType(a.shape, dtype), data=a)
        y = c.input(TensorType(d.shape, dtype), data=d)
        for op in ("floordiv", "rem"):
            c.add(f"{op} {dtype}", c.b.emit(op, x, y))
    for dtype in (f32, f64):
        a = np.array([7.5, -7.5, 7.5, -7.5, 0.0, -0.0, 5.0, math.inf, 1.0, math.nan])
        d = np.array([2.0, 2.0, -2.0, -2.0, 3.0, -3.0, 0.0, 2.0, math.inf, 1.0])
        x = c.input(TensorType(a.shape, dtype), data=a)
        y = c.input(TensorType(d.shape, dtype), data=d)
        for op in ("floordiv", "rem"):
            c.add(f"{op} {dtype}", c.b.emit(op, x, y))
    c.run()


def test_logic_select_cast() -> None:
    c = make_cases("logic")
    for op in ("and", "or", "xor"):
        for dtype in (b8, i32, i64):
            x, y = c.input(TensorType((7,), dtype)), c.input(TensorType((3, 7), dtype))
            c.add(f"{op} {dtype}", c.b.emit(op, x, y))
    cond = c.input(TensorType((3, 1), b8))
    for da, db in [(f32, f32), (f64, i32), (i64, i64), (b8, b8)]:
        x, y = c.input(TensorType((5,), da)), c.input(TensorType((3, 5), db))
        c.add(f"select {da} {db}", c.b.select(cond, x, y))
    edge = np.array([0.0, -0.0, 1.5, -1.5, 2.5, 1e10, -1e10, math.nan, math.inf, 255.9])
    for src in (f32, f64, i32, i64, b8):
        data = edge if src.is_float else None
        x = c.input(TensorType((10,), src), data=data)
        for dst in (f32, f64, i32, i64, b8):
            c.add(f"cast {src}->{dst}", c.b.cast(x, dtype=dst))
    c.run()


# -- reductions -----------------------------------------------------------------------------


def test_reductions() -> None:
    c = make_cases("reduce")
    shapes_axes = [
        ((1023,), (0,)), ((7, 5), (0,)), ((7, 5), (1,)), ((7, 5), (0, 1)), ((2, 3, 4), (0, 2)),
        ((2, 3, 4), (1,)), ((3, 0, 2), (1,)), ((), ()), ((5, 1, 3), (1,)), ((4, 6), ()),
    ]  # fmt: skip
    for op in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min"):
        for dtype in (f32, f64, i32, i64, b8):
            for shape, axes in shapes_axes:
                ty = TensorType(shape, dtype)
                if 0 in shape and op in ("reduce_max", "reduce_min"):
                    continue
                data = values(ty, special=False)
                if op == "reduce_prod" and dtype.is_float:
                    data = (RNG.uniform(0.5, 1.5, shape) if shape else np.array(1.2)).astype(
                        dtype.np
                    )
                x = c.input(ty, data=data)
                for keep in (False, True):
                    c.add(f"{op} {ty} {axes} {keep}", c.b.emit(op, x, axes=axes, keepdims=keep))
    nan = np.array([[1.0, math.nan, 3.0], [2.0, 5.0, -1.0]])
    x = c.input(TensorType((2, 3), f64), data=nan)
    for op in ("reduce_max", "reduce_min", "reduce_sum"):
        c.add(f"{op} nan", c.b.emit(op, x, axes=(1,)))
    c.run()


def test_long_float32_sum_is_accurate() -> None:
    c = make_cases("long_sum")
    n = 1 << 20
    data = RNG.standard_normal(n).astype(np.float32) + 1
    x = c.input(TensorType((n,), f32), data=data)
    c.add("sum", c.b.reduce_sum(x, axes=(0,)))
    g = c.b.build(c.outputs)
    (got,) = llvm_backend.compile(g)(data)
    exact = data.astype(np.float64).sum()
    assert abs(float(got) - exact) <= 1e-6 * abs(exact)


def test_arg_reductions_and_cumsum() -> None:
    c = make_cases("arg")
    data = np.array([[3.0, 7.0, 7.0, -1.0], [math.nan, 2.0, math.nan, 9.0], [0.0, -0.0, 5.0, 5.0]])
    for dtype in (f32, f64, i32, i64, b8):
        x = c.input(
            TensorType((3, 4), dtype), data=np.nan_to_num(data) if not dtype.is_float else data
        )
        for op in ("argmax", "argmin"):
            for axis in (0, 1, -1):
                for keep in (False, True):
                    c.add(f"{op} {dtype} {axis}", c.b.emit(op, x, axis=axis, keepdims=keep))
        for axis in (0, 1):
            for rev in (False, True):
                c.add(f"cumsum {dtype} {axis} {rev}", c.b.cumsum(x, axis=axis, reverse=rev))
    y = c.input(TensorType((1023,), f32))
    c.add("cumsum long", c.b.cumsum(y, axis=0))
    c.add("argmax long", c.b.argmax(y, axis=0))
    c.run()


@pytest.mark.parametrize("dtype", [f32, f64, i32, b8])
def test_arg_reductions_on_every_axis_with_ties_and_nans(dtype) -> None:  # noqa: ANN001
    rng = np.random.default_rng(7)
    data = rng.integers(-3, 4, size=(5, 37, 3)).astype(dtype.np)  # many ties
    if dtype.is_float:
        data[rng.random(data.shape) < 0.03] = np.nan
        data[0, :, 1] = -0.0
        data[0, 5, 1] = 0.0
    b = GraphBuilder("arg")
    x = b.input(TensorType(data.shape, dtype), "x")
    outs = [b.emit(op, x, axis=a) for op in ("argmax", "argmin") for a in (0, 1, 2)]
    exe = llvm_backend.compile(b.build(outs))
    wants = [fn(data, axis=a) for fn in (np.argmax, np.argmin) for a in (0, 1, 2)]
    for got, want in zip(exe(data), wants):
        np.testing.assert_array_equal(got, want)


# -- shapes and indexing ----------------------------------------------------------------


def test_shape_ops() -> None:
    c = make_cases("shape")
    for dtype in (f32, i64, b8):
        x = c.input(TensorType((2, 3, 4), dtype))
        c.add("reshape", c.b.reshape(x, shape=(4, 6)))
        c.add("reshape flat", c.b.reshape(x, shape=(24,)))
        c.add("transpose", c.b.transpose(x, perm=(2, 0, 1)))
        c.add("slice", c.b.slice(x, start=(0, 1, 0), limit=(2, 3, 4), stride=(1, 1, 3)))
        c.add("reverse", c.b.reverse(x, axes=(0, 2)))
        c.add(
            "broadcast", c.b.broadcast_in_dim(x, shape=(5, 2, 3, 4), broadcast_dimensions=(1, 2, 3))
        )
        pad_value = Literal(7, dtype) if not dtype.is_bool else Literal(True, dtype)
        c.add("pad", c.b.pad(x, pad_value, low=(1, 0, 2), high=(0, 2, 1), interior=(1, 0, 2)))
        c.add(
            "pad crop", c.b.pad(x, pad_value, low=(-1, 0, -2), high=(0, -1, 1), interior=(0, 1, 0))
        )
        y = c.input(TensorType((2, 5, 4), dtype))
        c.add("concat", c.b.concatenate(x, y, x, axis=1))
        s = c.input(TensorType((), dtype))
        c.add("pad value", c.b.pad(x, s, low=(0, 1, 0), high=(1, 0, 0), interior=(0, 0, 0)))
    z = c.input(TensorType((1, 7), f64))
    c.add(
        "broadcast stretch", c.b.broadcast_in_dim(z, shape=(3, 7, 2), broadcast_dimensions=(0, 1))
    )
    c.add("iota", c.b.iota(shape=(3, 4), dimension=1, dtype=f32))
    c.add("iota i32", c.b.iota(shape=(5,), dimension=0, dtype=i32))
    c.add("constant", c.b.emit("constant", value=np.arange(6.0).reshape(2, 3)))
    c.add("constant out", c.b.add(c.b.emit("constant", value=np.ones(3, np.float32)), 1.0))
    c.run()


def test_gather_scatter() -> None:
    c = make_cases("index")
    for dtype in (f32, f64, i64):
        x = c.input(TensorType((4, 5, 3), dtype))
        for itype in (i32, i64):
            idx = c.input(TensorType((2, 3), itype), data=np.array([[0, -1, 3], [2, 2, -4]]))
            for axis in (0, 1, 2, -1):
                size = x.type.shape[axis]
                if size < 4:
                    continue
                c.add(f"gather {axis}", c.b.gather(x, idx, axis=axis))
                ushape = x.type.shape[: axis % 3] + (2, 3) + x.type.shape[axis % 3 + 1 :]
                u = c.input(TensorType(ushape, dtype))
                c.add(f"scatter {axis}", c.b.scatter_add(x, idx, u, axis=axis))
    c.run()


def test_random_bits() -> None:
    c = make_cases("random")
    key = c.input(TensorType((), i64), data=np.array(123456789012))
    ctr = c.input(TensorType((), i32), data=np.array(-5))
    for shape in [(7,), (2, 3), (1024,), ()]:
        c.add(f"bits {shape}", c.b.random_bits(key, ctr, shape=shape))
    c.add("literal key", c.b.random_bits(Literal(0, i64), Literal(0, i64), shape=(4,)))
    c.run()


def test_all_reduce_alone() -> None:
    """A process alone in its world: all_reduce is a copy (MPI runs in tests/distributed)."""
    c = make_cases("collective")
    for dtype in (f32, f64, i32, i64):
        x = c.input(TensorType((2, 3), dtype))
        for reduction in ("sum", "max", "min"):
            c.add(f"{dtype} {reduction}", c.b.all_reduce(x, reduction=reduction))
    c.add("literal", c.b.all_reduce(Literal(2.5, f32)))
    edges = np.array([1 + 2**-8, 1 + 3 * 2**-8, np.nan, -np.inf, 3.4e38, -1e-40, -0.0, 7e4], "f4")
    for dtype in (f32, f64):
        x = c.input(TensorType((8,), dtype), data=edges.astype(dtype.np))
        for compress in ("bf16", "f16"):
            c.add(f"{dtype} {compress}", c.b.all_reduce(x, compress=compress))
    c.add("literal bf16", c.b.all_reduce(Literal(1.7, f32), compress="bf16"))
    y = c.input(TensorType((5,), f64))
    started = c.b.all_reduce_start(y, reduction="max")
    c.add("start/done", c.b.all_reduce_done(started, y))
    c.run()


# -- linear algebra ---------------------------------------------------------------------


def test_matmul() -> None:
    c = make_cases("matmul")
    shapes = [
        ((5, 4), (4, 6)), ((4,), (4, 6)), ((3, 4), (4,)), ((4,), (4,)), ((3, 5, 4), (4, 6)),
        ((2, 1, 3, 4), (5, 4, 2)), ((1, 1), (1, 1)), ((7, 0), (0, 3)), ((33, 65), (65, 17)),
    ]  # fmt: skip
    for da, db in [(f32, f32), (f64, f64), (f32, f64), (i32, i64), (b8, b8)]:
        for sa, sb in shapes:
            x, y = c.input(TensorType(sa, da)), c.input(TensorType(sb, db))
            c.add(f"matmul {da}{list(sa)} {db}{list(sb)}", c.b.matmul(x, y))
    c.run(sums=True)


def test_matmul_of_views() -> None:
    c = make_cases("matmul_views")
    x = c.input(TensorType((4, 3), f32))
    y = c.input(TensorType((5, 4), f32))
    c.add("tt", c.b.matmul(c.b.transpose(x, perm=(1, 0)), c.b.transpose(y, perm=(1, 0))))
    z = c.input(TensorType((6, 8), f64))
    w = c.input(TensorType((4, 3), f64))
    part = c.b.slice(z, start=(0, 0), limit=(6, 8), stride=(2, 2))
    c.add("strided", c.b.matmul(part, w))
    c.add("reversed", c.b.matmul(c.b.reverse(part, axes=(1,)), w))
    c.run(fuse=True, sums=True)


def test_conv_and_pooling() -> None:
    c = make_cases("conv")
    configs = [
        dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1),
        dict(stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2), groups=1),
        dict(stride=(1, 2), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=2),
    ]
    for dtype in (f32, f64):
        x = c.input(TensorType((2, 4, 7, 6), dtype))
        for k, cfg in enumerate(configs):
            w = c.input(TensorType((6, 4 // cfg["groups"], 3, 2), dtype))
            c.add(f"conv {dtype} {k}", c.b.conv2d(x, w, **cfg))
        for window, stride, pad in [
            ((2, 2), (2, 2), ((0, 0), (0, 0))),
            ((3, 2), (1, 2), ((1, 1), (1, 0))),
        ]:
            c.add(
                f"max_pool {window}", c.b.max_pool2d(x, window=window, stride=stride, padding=pad)
            )
            for inc in (True, False):
                c.add(
                    f"avg_pool {window} {inc}",
                    c.b.avg_pool2d(
                        x, window=window, stride=stride, padding=pad, count_include_pad=inc
                    ),
                )
    xm = c.input(TensorType((1, 2, 5, 5), f32))
    wm = c.input(TensorType((3, 2, 3, 3), f64))
    c.add("conv mixed", c.b.conv2d(xm, wm))
    c.run(sums=True)


def test_explicit_fusion_nodes() -> None:
    """Hand-written fusion bodies, including ones that need more than one loop."""
    c = make_cases("fusion")
    body = GraphBuilder("body")
    a, bb = body.input(TensorType((3, 4), f32), "a"), body.input(TensorType((4,), f32), "b")
    s = body.reduce_sum(body.exp(body.add(a, bb)), axes=(1,), keepdims=True)
    out = body.div(body.exp(body.add(a, bb)), s)  # softmax: two loops
    g_body = body.build([out, s])
    x, y = c.input(TensorType((3, 4), f32)), c.input(TensorType((4,), f32))
    c.add("fusion softmax", c.b.emit("fusion", x, y, subgraphs=[g_body], kind="custom"))
    c.run()


# -- the registry ---------------------------------------------------------------------------

COVERED_BY_TESTS: dict[str, Callable[..., None]] = {}


def test_every_registered_op_has_a_lowering_or_decomposition() -> None:
    missing = [
        name
        for name in all_ops()
        if name not in llvm_backend.LOWERINGS and name not in llvm_backend.DECOMPOSITIONS
    ]
    assert not missing, f"ops without an LLVM lowering: {missing}"


def test_every_registered_op_is_exercised_here() -> None:
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    unexercised = [
        name for name in all_ops() if f'"{name}"' not in source and f".{name}(" not in source
    ]
    assert not unexercised, f"ops with no LLVM test case: {unexercised}"


def test_remat_and_barriers_reach_llvm_only_through_the_pipeline() -> None:
    """ "remat" and "optimization_barrier" are removed by the compile pipeline
    (inline_remat, remove_barriers), so the LLVM backend never lowers them."""
    import graphc as gc
    from graphc.compiler import compile_graph

    def ops(g: Any) -> set[str]:
        return {n.op for n in g.nodes}.union(*(ops(s) for n in g.nodes for s in n.subgraphs))

    body = GraphBuilder("body")
    a = body.input(TensorType((7,), f64), "a")
    b = GraphBuilder("f")
    x = b.input(TensorType((7,), f64), "x")
    y = b.optimization_barrier(b.remat(x, subgraphs=[body.build([body.tanh(a)])]))
    g = b.build([b.mul(y, x)])
    result = compile_graph(g, backend="llvm")
    assert not ops(result.graph) & {"remat", "optimization_barrier"}
    data = values(TensorType((7,), f64), "tanh")
    np.testing.assert_allclose(result.executable(data)[0], interpret(g, data)[0], rtol=1e-12)

    step = gc.jit(gc.value_and_grad(lambda x: (gc.remat(np.tanh)(x) * x).sum()), backend="llvm")
    value, grad = step(data)
    assert not ops(step.optimized_graph) & {"remat", "optimization_barrier"}
    np.testing.assert_allclose(value, (np.tanh(data) * data).sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, np.tanh(data) + data / np.cosh(data) ** 2, rtol=1e-12)


def test_scan_and_cond_stay_loops_and_branches_on_llvm() -> None:
    """The LLVM backend compiles "scan" and "while" as native loops and "cond"
    as a native branch: they survive the pipeline as nodes."""
    from graphc.compiler import compile_graph

    def ops(g: Any) -> set[str]:
        return {n.op for n in g.nodes}.union(*(ops(s) for n in g.nodes for s in n.subgraphs))

    cell = GraphBuilder("cell")
    h, x = cell.input(TensorType((3,), f64), "h"), cell.input(TensorType((3,), f64), "x")
    h_next = cell.tanh(cell.add(cell.mul(h, 0.5), x))
    on = GraphBuilder("on")
    a = on.input(TensorType((3,), f64), "a")
    off = GraphBuilder("off")
    c = off.input(TensorType((3,), f64), "c")
    b = GraphBuilder("f")
    h0, xs = b.input(TensorType((3,), f64), "h0"), b.input(TensorType((4, 3), f64), "xs")
    final, hs = b.scan(
        h0, xs, subgraphs=[cell.build([h_next, h_next])], length=4, num_carry=1, num_xs=1,
        num_consts=0, reverse=True,
    )  # fmt: skip
    pred = b.gt(b.reduce_sum(final, axes=(0,)), 0.0)
    chosen = b.cond(pred, final, subgraphs=[on.build([on.exp(a)]), off.build([off.neg(c)])])
    test = GraphBuilder("small")
    v = test.input(TensorType((3,), f64), "v")
    grow = GraphBuilder("grow")
    u = grow.input(TensorType((3,), f64), "u")
    grown = b.emit(
        "while",
        chosen,
        subgraphs=[
            test.build([test.lt(test.reduce_sum(test.abs(v), axes=(0,)), 20.0)]),
            grow.build([grow.add(grow.mul(u, 2.0), 0.5)]),
        ],
        num_carry=1,
    )
    g = b.build([grown, hs])
    result = compile_graph(g, backend="llvm")
    assert {"scan", "cond", "while"} <= ops(result.graph)
    rng = np.random.default_rng(0)
    for sign in (1.0, -1.0):
        data = (sign * np.abs(rng.standard_normal(3)), sign * np.abs(rng.standard_normal((4, 3))))
        for got, want in zip(result.executable(*data), interpret(g, *data)):
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_sorting_special_and_factorization_ops_match_the_interpreter() -> None:
    """argsort (merge sort), the special functions (SciPy's C code), polygamma (a
    series of ops), the LAPACK-backed factorizations and expm, f32 and f64."""
    from graphc.backends import llvm as llvm_backend

    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(size=9) * 4, [0.0, -0.0, math.inf, -math.inf, math.nan]])
    x = np.concatenate([x, [0.3, 0.7, 1e-300, 25.0, 0.5, -0.5]]).reshape(4, 5)
    m = rng.normal(size=(2, 3, 3))
    spd = m @ np.swapaxes(m, -1, -2) + 3 * np.eye(3)
    gen = rng.normal(size=(2, 3, 3)) + 3 * np.eye(3)
    rhs = rng.normal(size=(2, 3, 2))
    unary = ["gammaln", "digamma", "erfc", "erfinv", "ndtri", "log_ndtr", "i0e", "i1e"]
    for dtype in (f32, f64):
        b = GraphBuilder("g")
        xv = b.input(TensorType(x.shape, dtype), "x")
        sv, gv, rv = (b.input(TensorType(a.shape, dtype)) for a in (spd, gen, rhs))
        outs = [b.argsort(xv), *(b.emit(op, xv) for op in unary)]
        outs += [b.polygamma(b.abs(xv), n=k) for k in range(3)]
        # the incomplete gamma and beta functions (SciPy's C code), their
        # shape-parameter derivatives (loops of ops)
        pos, unit = b.add(b.abs(xv), 0.5), b.sigmoid(xv)
        outs += [b.gammainc(pos, 2.0), b.gammaincc(2.0, pos), b.stdtr(pos, xv)]
        outs += [b.betainc(pos, 1.5, unit), b.gammainc_grad_a(pos, 2.0)]
        outs += list(b.betainc_grad(pos, 1.5, unit))
        outs += [b.gammaincinv(pos, unit), b.gammainccinv(pos, unit)]
        outs += [b.betaincinv(pos, 2.0, unit), b.betainccinv(pos, 2.0, unit)]
        outs += [b.cholesky(sv), b.solve(gv, rv), *b.slogdet(gv)]
        outs += [b.triangular_solve(gv, rv, lower=False, transpose_a=True, unit_diagonal=False)]
        w, v = b.eigh(sv)
        # eigenvectors are defined up to sign: compare V diag(w) V^T
        wide = b.reshape(w, shape=(2, 1, 3))
        outs += [w, b.matmul(b.mul(v, wide), b.transpose(v, perm=(0, 2, 1)))]
        # svd and qr of a wide stack: singular values, products of the factors
        u, s, vt = b.svd(rv, full_matrices=False)
        outs += [s, b.matmul(b.mul(u, b.reshape(s, shape=(2, 1, 2))), vt)]
        q, r = b.qr(b.transpose(rv, perm=(0, 2, 1)), complete=True)
        outs += [b.matmul(q, r), b.abs(r)]
        outs += list(b.lu(gv))
        outs += [b.expm(b.mul(gv, 0.3))]  # a stack of two, Padé only (squarings: test_matfun)
        g = b.build(outs)
        args = [a.astype(dtype.np) for a in (x, spd, gen, rhs)]
        want = interpret(g, *args)
        got = llvm_backend.compile(g)(*args)
        for k, (p, q) in enumerate(zip(got, want)):
            assert p.dtype == q.dtype, k
            tol = 1e-12 if dtype is f64 else 1e-5
            np.testing.assert_allclose(p, q, rtol=tol, atol=tol, equal_nan=True, err_msg=str(k))
