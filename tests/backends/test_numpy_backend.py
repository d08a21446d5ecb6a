"""The NumPy backend against the reference interpreter, and its generated code.

- every op: the one-op graphs of the registry-driven op tests, compiled and
  compared with ``interpret`` (shape, dtype, values: exact, or float64 to
  rtol 1e-12 where the backend calls a different but accurate routine);
- buffer reuse never corrupts results (chains, fan-out, random graphs, the
  memory plan), and returned arrays are never overwritten by a later call;
- the source is readable; errors map back to the IR node and the user's line;
  tracebacks show generated lines.
"""

from __future__ import annotations

import inspect
import linecache
import math
import re
import textwrap
import traceback
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphc.backends import get_backend
from graphc.backends.numpy import DECOMPOSITIONS, LOWERINGS, NumpyExecutable, compile
from graphc.backends.numpy.lowerings import SMALL_SELECT
from graphc.ir import (
    BackendError,
    DType,
    Graph,
    GraphBuilder,
    GraphcError,
    GraphcIndexError,
    InputError,
    InterpretError,
    Literal,
    Loc,
    OpTypeError,
    TensorType,
    all_ops,
    f32,
    f64,
    i64,
    interpret,
    parse,
)
from graphc.passes import optimize, plan_memory
from tests.ir.test_ops_forward import CASES, build_case
from tests.strategies import graphs_with_inputs

# Ops whose backend routine differs from the reference's (still accurate).
APPROXIMATE = {"sigmoid": {np.float32: 2e-6, np.float64: 1e-12}}


def assert_matches(op: str, got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert isinstance(a, np.ndarray), type(a)
        assert a.shape == b.shape and a.dtype == b.dtype, (a.dtype, a.shape, b.dtype, b.shape)
        rtol = APPROXIMATE.get(op, {}).get(b.dtype.type)
        if rtol is not None:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0, equal_nan=True)
            continue
        np.testing.assert_array_equal(a, b)
        if b.dtype.kind == "f":
            zeros = b == 0
            assert np.array_equal(np.signbit(a[zeros]), np.signbit(b[zeros])), "sign of zero"


def run_both(g: Graph, inputs: list[np.ndarray], op: str, **options: Any) -> None:
    try:
        want: Any = interpret(g, *inputs)
    except GraphcError as exc:
        want = exc
    exe = compile(g, **options)
    if isinstance(want, GraphcError):
        # The interpreter's InterpretError is the backend's BackendError.
        expected = BackendError if isinstance(want, InterpretError) else type(want)
        with pytest.raises(expected):
            exe(*inputs)
        return
    assert_matches(op, exe(*inputs), want)


@pytest.mark.parametrize("op", sorted(all_ops()))
def test_every_op_matches_the_interpreter(op: str) -> None:
    rng = np.random.default_rng(sum(map(ord, op)))
    count = 0
    failures = []
    for case in CASES[op](rng):
        try:
            g, inputs = build_case(op, case)
        except OpTypeError:
            continue
        count += 1
        try:
            # Buffers for every intermediate, however small, so out= paths run too.
            run_both(g, inputs, op, min_buffer_bytes=0)
        except AssertionError as exc:
            failures.append(f"{case.describe()}: {str(exc).strip().splitlines()[0]}")
    assert count, f"no valid cases for {op}"
    assert not failures, f"{len(failures)} of {count} failed:\n" + "\n".join(failures[:10])


def test_registry_is_covered() -> None:
    assert set(all_ops()) <= set(LOWERINGS) | set(DECOMPOSITIONS)
    assert get_backend("numpy").compile is compile


# -- buffers -------------------------------------------------------------------------


def chain_graph(length: int = 40) -> Graph:
    """A long elementwise chain with fan-out, views and a reduction, f64[64,32]."""
    b = GraphBuilder("chain")
    x = b.input(f64[64, 32], "x")
    y = b.input(f64[32], "y")
    values = [x]
    for k in range(length):
        a = values[-1]
        c = values[max(0, len(values) - 1 - (k % 5))]  # reach back: several readers
        step = k % 6
        if step == 0:
            v = b.add(b.mul(a, 0.5), c)
        elif step == 1:
            v = b.tanh(b.sub(a, y))
        elif step == 2:
            v = b.transpose(b.transpose(b.exp(b.neg(a)), perm=(1, 0)), perm=(1, 0))
        elif step == 3:
            v = b.reshape(b.mul(b.reshape(a, shape=(2048,)), 1.5), shape=(64, 32))
        elif step == 4:
            v = b.max(a, b.reduce_sum(c, axes=(0,), keepdims=True))
        else:
            v = b.select(b.gt(a, 0.0), a, b.mul(c, 2.0))
        values.append(v)
    total = b.reduce_sum(values[-1], axes=(0, 1))
    return b.build(
        [total, values[-1], values[len(values) // 2], b.transpose(values[-3], perm=(1, 0))]
    )


def test_buffer_reuse_on_long_chains_with_fan_out() -> None:
    g = chain_graph()
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(64, 32)), rng.normal(size=32)
    want = interpret(g, x, y)
    exe = compile(g, min_buffer_bytes=0)
    # Buffers are shared: far fewer than the ~100 intermediates.
    intermediates = sum(1 for n in g.nodes) * 64 * 32 * 8
    assert 0 < exe.buffer_bytes < intermediates / 10
    x0, y0 = x.copy(), y.copy()
    first = exe(x, y)
    assert_matches("chain", first, want)
    kept = [a.copy() for a in first]
    second = exe(x * 2, y - 1)
    assert_matches("chain", second, interpret(g, x * 2, y - 1))
    assert_matches("chain", first, tuple(kept))  # the first results were not overwritten
    np.testing.assert_array_equal(x, x0)  # inputs are never written
    np.testing.assert_array_equal(y, y0)


def test_buffer_reuse_with_the_memory_plan() -> None:
    g = chain_graph(25)
    plan = plan_memory(g)
    assert not plan.overlaps(g)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(64, 32)), rng.normal(size=32)
    exe = compile(g, plan, min_buffer_bytes=0)
    assert "arena_" in exe.source
    assert_matches("chain", exe(x, y), interpret(g, x, y))
    assert_matches("chain", exe(y[None, :] + x, y), interpret(g, y[None, :] + x, y))


def test_views_keep_their_buffer_alive() -> None:
    # %1 is a view of %0; %0's buffer must not be reused while %1 is still read.
    g = parse(
        """
        graph f(%x: f32[32,16]) -> (f32[16,32]) {
          %0 = exp %x : f32[32,16]
          %1 = transpose %0 {perm=(1,0)} : f32[16,32]
          %2 = neg %x : f32[32,16]
          %3 = mul %2, 3.0 : f32[32,16]
          %4 = transpose %3 {perm=(1,0)} : f32[16,32]
          %5 = add %1, %4 : f32[16,32]
          return %5
        }"""
    )
    x = np.random.default_rng(3).normal(size=(32, 16)).astype(np.float32)
    exe = compile(g, min_buffer_bytes=0)
    assert_matches("views", exe(x), interpret(g, x))


def test_outputs_that_alias_inputs_constants_or_broadcasts_are_copied() -> None:
    g = parse(
        """
        graph f(%x: f32[3]) -> (f32[3], f32[1,3], f32[2,3], f32[2]) {
          %0 = reshape %x {shape=(1,3)} : f32[1,3]
          %1 = broadcast_in_dim %x {shape=(2,3), broadcast_dimensions=(1,)} : f32[2,3]
          %2 = constant {value=(1.0, 2.0)} : f32[2]
          return %x, %0, %1, %2
        }"""
    )
    x = np.arange(3, dtype=np.float32)
    outs = compile(g)(x)
    for out in outs:
        assert out.flags.writeable and not np.shares_memory(out, x)
        out[...] = -1  # the caller owns what it gets back
    np.testing.assert_array_equal(x, [0, 1, 2])
    np.testing.assert_array_equal(compile(g)(x)[3], [1, 2])


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=graphs_with_inputs(special_inputs=True))
def test_random_graphs_match_the_interpreter(case: tuple[Graph, tuple[np.ndarray, ...]]) -> None:
    g, arrays = case
    # One approximate op (sigmoid) makes the whole graph approximate.
    label = next((op for op in ops_in(g) if op in APPROXIMATE), "random")
    for options in ({"min_buffer_bytes": 0}, {}):
        run_both(g, list(arrays), label, **options)


def ops_in(g: Graph) -> set[str]:
    found = set()
    for n in g.nodes:
        found.add(n.op)
        for sub in n.subgraphs:
            found |= ops_in(sub)
    return found


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=graphs_with_inputs(special_inputs=True), inplace=st.booleans())
def test_random_graphs_after_optimize_and_plan(
    case: tuple[Graph, tuple[np.ndarray, ...]], inplace: bool
) -> None:
    g, arrays = case
    try:
        want = interpret(g, *arrays)
    except GraphcError:
        return
    opt, _ = optimize(g)
    exe = compile(opt, plan_memory(opt, inplace=inplace), min_buffer_bytes=0)
    got = exe(*arrays)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        tol = 1e-5 if b.dtype == np.float32 else 1e-12
        if b.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=tol, atol=0, equal_nan=True)
        else:
            np.testing.assert_array_equal(a, b)


# -- the generated source -------------------------------------------------------------


def traced_like() -> tuple[Graph, int]:
    """A graph whose nodes point at lines of this file, as traced nodes would."""
    here = inspect.getsourcefile(traced_like)
    assert here is not None
    line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
    loc1 = Loc(here, line, function="traced_like")  # h = relu(x @ w)
    loc2 = Loc(here, line + 1, function="traced_like")  # loss = h.sum()
    b = GraphBuilder("mlp")
    x = b.input(f32[8, 4], "x")
    w = b.input(f32[4, 16], "w")
    with b.at(loc1):
        h = b.max(b.matmul(x, w), 0.0)
    with b.at(loc2):
        loss = b.reduce_sum(h, axes=(0, 1))
    return b.build([loss]), line


def test_source_is_readable() -> None:
    g, line = traced_like()
    exe = compile(g, min_buffer_bytes=0)
    source = exe.source
    body = textwrap.dedent(source[source.index("        with errstate") :])
    assert "def mlp(x, w):" in source
    assert "v0 = np_matmul(x, w, out=buf0)" in body
    assert "v1 = np_maximum(v0, 0.0, out=buf0)" in body  # in place: v0 dies here
    assert "del v0" in body
    assert "v2 = np_add_reduce(v1, axis=(0, 1))" in body
    assert f"test_numpy_backend.py:{line}  loc1 = Loc(" in source
    assert f"test_numpy_backend.py:{line + 1}  loc2 = Loc(" in source
    assert "return (np_array(v2),)" in source
    # One comment per source line, above its group of statements.
    assert source.count(f":{line}  ") == 1


def test_linecache_shows_generated_lines() -> None:
    g, _ = traced_like()
    exe = compile(g)
    assert exe.filename.startswith("<graphc-numpy-")
    lines = exe.source.splitlines()
    for k, text in enumerate(lines, start=1):
        assert linecache.getline(exe.filename, k).rstrip("\n") == text


def test_failures_name_the_node_and_the_user_line() -> None:
    here = inspect.getsourcefile(test_failures_name_the_node_and_the_user_line)
    assert here is not None
    line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
    loc = Loc(here, line, function="test")  # y = x ** -1 on integers
    b = GraphBuilder("f")
    x = b.input(i64[4], "x")
    with b.at(loc):
        y = b.pow(x, -1)
    exe = compile(b.build([b.add(y, 1)]))
    with pytest.raises(BackendError) as info:
        exe(np.arange(4))
    message = str(info.value)
    assert message.startswith("pow failed: ValueError: Integers to negative integer powers")
    assert "node: %0 = pow %x, -1 : i64[4]" in message
    assert "generated <graphc-numpy-" in message and "power(x, -1)" in message
    assert f"test_numpy_backend.py:{line} in test:  loc = Loc(here, line" in message
    # The traceback of the original error shows the generated line.
    cause = info.value.__cause__
    assert cause is not None
    shown = "".join(traceback.format_exception(cause))
    assert exe.filename in shown and re.search(r"v0 = (np|ir)_power\(x, -1\)", shown)


def test_index_errors_become_graphc_index_errors() -> None:
    g = parse(
        """
        graph f(%x: f32[3], %i: i64[2]) -> (f32[2]) {
          %0 = gather %x, %i {axis=0} : f32[2] loc("model.py":12)
          return %0
        }"""
    )
    exe = compile(g)
    np.testing.assert_array_equal(exe(np.arange(3.0, dtype="f4"), np.array([2, -3]))[0], [2, 0])
    with pytest.raises(GraphcIndexError, match="gather") as info:
        exe(np.arange(3.0, dtype="f4"), np.array([0, 3]))
    assert "model.py:12" in str(info.value)


def test_errors_inside_a_fusion_name_the_fusion_node() -> None:
    g = parse(
        """
        graph f(%x: i32[3]) -> (i32[3]) {
          %0 = fusion %x : i32[3] {
            (%a: i32[3]) {
              %t0 = pow %a, -2 : i32[3]
              return %t0
            }
          } loc("model.py":20)
          return %0
        }"""
    )
    with pytest.raises(BackendError, match="node: %0 = fusion %x : i32\\[3\\]") as info:
        compile(g)(np.arange(3, dtype=np.int32))
    assert "model.py:20" in str(info.value)
    assert "pow" in str(info.value)


def test_fusion_bodies_run_inline() -> None:
    g = parse(
        """
        graph f(%x: f32[4], %y: f32[4]) -> (f32[4], f32[]) {
          %0, %1 = fusion %x, %y : f32[4], f32[] {
            (%a: f32[4], %b: f32[4]) {
              %t0 = mul %a, %b : f32[4]
              %t1 = rsqrt %t0 : f32[4]
              %t2 = reduce_sum %t1 {axes=(0,)} : f32[]
              return %t1, %t2
            }
          }
          return %0, %1
        }"""
    )
    x = np.array([1, 4, 9, 16], np.float32)
    exe = compile(g)
    assert_matches("fusion", exe(x, x), interpret(g, x, x))
    assert "v0 =" in exe.source and "v1 = np_add_reduce" in exe.source


# -- inputs -------------------------------------------------------------------------------


def test_input_checks() -> None:
    b = GraphBuilder("f")
    x = b.input(f32[2, 3], "x")
    s = b.input(f64[()], "s")
    exe = compile(b.build([b.mul(x, s)]))
    x_ok = np.ones((2, 3), np.float32)
    assert exe(x_ok, 2.0)[0].tolist() == [[2.0] * 3] * 2  # Python scalars fit 0-d inputs
    assert exe(x_ok, np.float64(3.0))[0][0, 0] == 3.0
    with pytest.raises(InputError, match="takes 2 inputs"):
        exe(x_ok)
    with pytest.raises(InputError, match=r"expects shape \[2, 3\], got \[3, 2\]"):
        exe(np.ones((3, 2), np.float32), 1.0)
    with pytest.raises(InputError, match="expects dtype f32"):
        exe(np.ones((2, 3)), 1.0)
    with pytest.raises(InputError, match="expects an array"):
        exe([[1.0] * 3] * 2, 1.0)
    with pytest.raises(InputError, match="Python bool"):
        exe(x_ok, True)
    # A non-contiguous or byte-swapped array of the right type is fine.
    swapped = np.ones((2, 3), np.dtype(">f4"))
    assert exe(swapped, 1.0)[0].dtype == np.float64  # f32 * f64
    assert exe(np.ones((3, 2), np.float32).T, 1.0)[0].shape == (2, 3)


def test_executable_attributes() -> None:
    g, _ = traced_like()
    exe = compile(g)
    assert isinstance(exe, NumpyExecutable)
    assert exe.graph is g
    assert exe.input_types == g.input_types and exe.output_types == g.output_types
    assert repr(exe).startswith("<NumpyExecutable mlp")
    assert exe.buffer_bytes == 0  # all intermediates are below the default threshold
    report = compile(g, min_buffer_bytes=0).memory
    assert report.buffer_bytes == 8 * 16 * 4  # the matmul result, then max in place
    assert (report.buffered_values, report.allocated_values, report.view_values) == (2, 0, 0)
    assert report.input_bytes == (8 * 4 + 4 * 16) * 4 and report.output_bytes == 4
    assert str(report).splitlines()[0].split() == ["buffer_bytes", "512"]


def test_unknown_op_is_a_backend_error(monkeypatch: pytest.MonkeyPatch) -> None:
    b = GraphBuilder("f")
    x = b.input(f32[2], "x")
    g = b.build([b.exp(x)])
    monkeypatch.delitem(LOWERINGS, "exp")
    with pytest.raises(BackendError, match="no lowering for op 'exp'"):
        compile(g)


# the select lowering's bit tricks are written for these; small integers and
# 16-bit floats are checked against NumPy in tests/test_dtypes.py
CLASSIC_DTYPES = [DType.bool, DType.i32, DType.i64, DType.f32, DType.f64]
SELECT_BRANCHES = ["value", "zero", "negative zero", "literal", "nan"]


@pytest.mark.parametrize("dtype", CLASSIC_DTYPES, ids=str)
@pytest.mark.parametrize("x_kind", SELECT_BRANCHES)
@pytest.mark.parametrize("y_kind", SELECT_BRANCHES)
def test_select_copies_bits_exactly(dtype: DType, x_kind: str, y_kind: str) -> None:
    """Every path of the select lowering (bitwise blend, one side zero, two
    constants) against np.where, bit for bit, with broadcasting."""
    rng = np.random.default_rng(7)

    def branch(kind: str, b: GraphBuilder, shape: tuple[int, ...]) -> Any:
        if kind == "value":
            return b.input(TensorType(shape, dtype), f"v{len(b.inputs)}_in")
        value = {"zero": 0, "negative zero": -0.0, "literal": 3, "nan": math.nan}[kind]
        if dtype.is_bool:
            value = bool(value == value and value)
        elif dtype.is_int:
            value = 3 if kind in ("literal", "nan") else 0
        return Literal(value, dtype)

    b = GraphBuilder("sel")
    rows, cols = 64, 40  # above SMALL_SELECT, so the bitwise paths run
    assert rows * cols > SMALL_SELECT
    c = b.input(TensorType((rows, 1), DType.bool), "c")
    x = branch(x_kind, b, (rows, cols))
    y = branch(y_kind, b, (cols,))
    g = b.build([b.select(c, x, y)])
    arrays: list[np.ndarray] = [rng.random((rows, 1)) < 0.5]
    for v in g.inputs[1:]:
        a = rng.normal(size=v.type.shape) * 4
        if dtype.is_float:
            a.flat[:3] = [np.nan, -0.0, -np.inf]
        arrays.append(a.astype(dtype.np) if not dtype.is_bool else a > 0)
    (got,) = compile(g, min_buffer_bytes=0)(*arrays)
    (want,) = interpret(g, *arrays)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def test_literals_keep_their_dtype() -> None:
    # 2.0:f64 next to an f32 array must promote to f64 (a Python float would not).
    g = parse(
        """
        graph f(%x: f32[2], %c: bool[2]) -> (f64[2], f32[2], i64[2]) {
          %0 = mul %x, 2.0:f64 : f64[2]
          %1 = select %c, 1.5:f32, -inf:f32 : f32[2]
          %2 = add %c, 3:i64 : i64[2]
          return %0, %1, %2
        }"""
    )
    x = np.array([1.5, -2.0], np.float32)
    c = np.array([True, False])
    exe = compile(g)
    assert_matches("literals", exe(x, c), interpret(g, x, c))
    assert "k_f64_2_0" in exe.source


def test_names_that_clash_with_generated_ones_are_renamed() -> None:
    b = GraphBuilder("def")
    a = b.input(f32[2], "np_add")
    c = b.input(f32[2], "f32")
    d = b.input(f32[2], "v0")
    exe = compile(b.build([b.add(b.add(a, c), d)]))
    ones = np.ones(2, np.float32)
    assert exe(ones, ones, ones)[0].tolist() == [3.0, 3.0]
    assert "np_add_in" in exe.source and "f32_in" in exe.source


def test_dtype_table_is_consistent() -> None:
    names = {"bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f16", "bf16", "f32"}
    assert {str(d) for d in DType} == names | {"f64"}


def test_failures_restore_generated_lines_after_linecache_is_cleared() -> None:
    g = parse(
        """
        graph f(%x: i64[2]) -> (i64[2]) {
          %0 = pow %x, -1 : i64[2]
          return %0
        }"""
    )
    exe = compile(g)
    linecache.clearcache()
    with pytest.raises(BackendError, match="_power") as info:
        exe(np.arange(2))
    assert info.value.__cause__ is not None
    shown = "".join(traceback.format_exception(info.value.__cause__))
    assert re.search(r"v0 = (np|ir)_power\(x, -1\)", shown)


@pytest.mark.parametrize("name", ["i16", "u16", "f16", "bf16"])
def test_select_of_16bit_values_into_buffers(name: str) -> None:
    # Found by the random graphs once 16-bit dtypes existed: the bitwise
    # blend had no 16-bit integer to view the elements as.
    dtype = DType.parse(name)
    b = GraphBuilder("s")
    c = b.input(TensorType((5,), DType.bool), "c")
    x, y = b.input(TensorType((5,), dtype), "x"), b.input(TensorType((5,), dtype), "y")
    zero = Literal(0, dtype)
    picks = [b.emit("select", c, x, y), b.emit("select", c, x, zero), b.emit("select", c, zero, y)]
    # Intermediates (not outputs) are the ones written into buffers.
    g = b.build([b.add(p, p) for p in picks])
    mask = np.array([True, False, True, False, True])
    xs, ys = np.arange(1, 6).astype(dtype.np), np.arange(7, 12).astype(dtype.np)
    run_both(g, [mask, xs, ys], "select", min_buffer_bytes=0)
    run_both(g, [mask, xs, ys], "select")


def test_reference_lowering_types_literals_like_the_interpreter() -> None:
    # A literal operand of an op run by its reference went in as a Python int,
    # which the reference read as int64: betainc(bool, i8, 0:i8) came out float64.
    b = GraphBuilder("lit")
    x = b.input(TensorType((3,), DType.i8), "x")
    z = b.emit("betainc", x, x, Literal(0, DType.i8))
    g = b.build([z])
    data = np.array([1, 2, 3], np.int8)
    got = compile(g)(data)[0]
    want = interpret(g, data)[0]
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_a_collected_executables_source_leaves_linecache_at_the_next_compile() -> None:
    import gc as garbage

    g, _ = traced_like()
    exe = compile(g)
    name = exe.filename
    del exe
    garbage.collect()
    # Never removed from inside the collector: linecache.checkcache may be
    # looping over the cache's keys at that moment.
    assert name in linecache.cache
    linecache.checkcache()
    compile(g)
    assert name not in linecache.cache
