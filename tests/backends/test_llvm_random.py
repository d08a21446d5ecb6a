"""Differential tests: random graphs on the LLVM backend against the interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import currently_in_test_context, given, note, settings
from hypothesis import strategies as st

from graphc.backends import llvm as llvm_backend
from graphc.backends.llvm import target
from graphc.ir import (
    DType,
    GraphBuilder,
    GraphcError,
    GraphcIndexError,
    TensorType,
    get_op,
    interpret,
    parse,
    verify,
)
from graphc.passes.fuse import fuse
from graphc.passes.widen import widen_16bit
from tests.backends.rounding import RoundingSpread, evaluate, inexact_nodes
from tests.backends.test_llvm_ops import assert_close
from tests.strategies import graphs_with_inputs

# Compiled LLVM objects go to a private directory, shared within this module.
pytestmark = pytest.mark.usefixtures("private_llvm_cache")


def check_against_interpreter(g, arrays) -> None:  # noqa: ANN001
    if currently_in_test_context():  # the regression tests below call it directly
        note(str(g))
        note(repr(arrays))
    try:
        want = interpret(g, *arrays)
    except GraphcError as exc:
        # The backend must fail too: an out-of-range index the same way, a
        # value error (negative integer power) with some GraphcError.
        with pytest.raises(GraphcIndexError if isinstance(exc, GraphcIndexError) else GraphcError):
            llvm_backend.compile(widen_16bit(g))(*arrays)
        return
    # The backend's products, reductions and convolutions are float32/64
    # kernels: the pipeline widens 16-bit ones first (an i8 @ f16 matmul is f16).
    exe = llvm_backend.compile(widen_16bit(g))
    target.parse_and_verify(exe.llvm_ir)
    got = exe(*arrays)
    # A float64 result computed from float32 values is only float32-accurate.
    loose = _has_float32(g)
    # A sum's zero takes its sign from the order of the terms (+0 + -0 is +0,
    # -0 + -0 is -0), and BLAS, conv and vectorized reductions add in their own
    # order: signs of zeros are only compared for graphs without sums.
    zero_signs = not _sums(g)
    spread = RoundingSpread(g, arrays)
    for k, (a, w) in enumerate(zip(got, want)):
        try:
            if loose and a.dtype == np.float64:
                np.testing.assert_allclose(a, w, rtol=4e-6, atol=1e-6, err_msg=f"output {k}")
            else:
                assert_close(a, w, f"output {k} of\n{g}", zero_signs=zero_signs)
        except AssertionError:
            if a.dtype != w.dtype or a.shape != w.shape or a.dtype.kind != "f":
                raise
            # exp, log, pow... differ by ulps between NumPy and the backend,
            # and later ops may magnify that: accept what such ulps explain.
            rtol, atol = _tolerance(a.dtype, loose)
            ok = spread.explains(k, a, w, rtol=rtol, atol=atol, zero_signs=zero_signs)
            if not ok.all():
                raise


def _tolerance(dtype: np.dtype, loose: bool) -> tuple[float, float]:
    """(rtol, atol) of the comparisons above, for a float output."""
    if dtype == np.float64:
        return (4e-6, 1e-6) if loose else (1e-9, 1e-300)
    if dtype == np.float32:
        return 4e-6, 1e-6
    return 0.0, 0.0  # 16-bit results are compared exactly


# max_pool2d is a max over each window: like reduce_max, the sign of a zero it
# picks from +0.0 and -0.0 is unspecified (see the README).
_SUMMING_OPS = {"matmul", "conv2d", "avg_pool2d", "max_pool2d", "cumsum", "scatter_add"}


def _sums(g) -> bool:  # noqa: ANN001
    return any(
        n.op in _SUMMING_OPS or get_op(n.op).has("reduction") or any(map(_sums, n.subgraphs))
        for n in g.nodes
    )


def _has_float32(g) -> bool:  # noqa: ANN001
    for v in g.inputs:
        if v.type.dtype == DType.f32:
            return True
    for n in g.nodes:
        if any(v.type.dtype == DType.f32 for v in n.outputs):
            return True
        if any(_has_float32(sub) for sub in n.subgraphs):
            return True
    return False


@given(graphs_with_inputs(special_inputs=True))
def test_random_graphs_match_interpreter(case) -> None:  # noqa: ANN001
    g, arrays = case
    check_against_interpreter(g, arrays)


@given(graphs_with_inputs(special_inputs=False, min_nodes=4, max_nodes=10))
def test_random_graphs_after_fusion(case) -> None:  # noqa: ANN001
    g, arrays = case
    fused = fuse(widen_16bit(g))  # in the pipeline's order
    verify(fused)
    check_against_interpreter(fused, arrays)


ODD_SHAPES = [(1023,), (7, 1), (1, 1023), (7, 1023), (1,), (), (7, 1, 1)]
UNARY = ["exp", "tanh", "sigmoid", "log1p", "neg", "abs", "sqrt", "expm1"]
BINARY = ["add", "sub", "mul", "div", "max", "min"]


@st.composite
def broadcasting_graphs(draw):  # noqa: ANN001, ANN201
    """Elementwise chains over odd sizes that broadcast against each other,
    optionally ending in a reduction, in f32 or f64."""
    dtype = draw(st.sampled_from([DType.f32, DType.f64]))
    b = GraphBuilder("odd")
    pool = []
    for k in range(draw(st.integers(1, 3))):
        pool.append(b.input(TensorType(draw(st.sampled_from(ODD_SHAPES)), dtype), f"x{k}"))
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            x = draw(st.sampled_from(pool))
            pool.append(b.emit(draw(st.sampled_from(UNARY)), b.mul(x, 0.5)))
        else:
            x, y = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
            try:
                pool.append(b.emit(draw(st.sampled_from(BINARY)), x, y))
            except GraphcError:
                continue
    last = pool[-1]
    outs = [last]
    if last.type.ndim and draw(st.booleans()):
        axes = tuple(sorted(draw(st.sets(st.integers(0, last.type.ndim - 1), min_size=1))))
        outs.append(b.reduce_sum(last, axes=axes))
    g = b.build(outs)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    arrays = tuple(rng.uniform(0.1, 2.0, v.type.shape).astype(dtype.np) for v in g.inputs)
    return g, arrays


@settings(max_examples=15)
@given(broadcasting_graphs())
def test_odd_sizes_and_broadcasting(case) -> None:  # noqa: ANN001
    g, arrays = case
    check_against_interpreter(g, arrays)
    check_against_interpreter(fuse(g), arrays)


# A case found by the test above: x = 1e-5 in float32. NumPy's float32 power
# (its AVX-512 loop; elsewhere it calls powf) gives 0.99988484 there, one ulp
# below the correctly rounded 0.9998849 that the C library's powf (which the
# backend calls) returns. rem then subtracts 99988 * x, leaving about 5e-6: the
# one ulp (6e-8) becomes a 1.2% change, and log turns that into 0.012 absolute.
POW_REM_LOG = """graph x(%x: f32[]) -> (f32[]) {
  %0 = pow %x, %x : f32[]
  %1 = rem %0, %x : f32[]
  %2 = log %1 : f32[]
  return %2
}"""


def test_ulps_of_pow_magnified_by_rem_are_accepted() -> None:
    g, x = parse(POW_REM_LOG), np.array(1e-5, np.float32)
    check_against_interpreter(g, (x,))
    # Whatever NumPy gives on this machine: a pow one ulp away fails a plain
    # tolerance on the result, and the spread of pow's ulps explains it.
    want = interpret(g, x)[0]
    pow_node = next(n for n in inexact_nodes(g) if n.op == "pow")
    spread = RoundingSpread(g, (x,))
    for sign in (1.0, -1.0):
        got = evaluate(g, (x,), pow_node, lambda shape, s=sign: np.full(shape, s), steps=1)[0]
        assert not np.isclose(got, want, rtol=4e-6, atol=1e-6)
        assert spread.explains(0, got, want, rtol=4e-6, atol=1e-6, zero_signs=True).all()


def test_rounding_spread_still_catches_wrong_results() -> None:
    g, x = parse(POW_REM_LOG), np.array(1e-5, np.float32)
    want = interpret(g, x)[0]
    spread = RoundingSpread(g, (x,))
    remainder = np.exp(np.float64(want))
    wrong_branch = np.float32(np.log(remainder + 1e-5))  # rem off by one multiple of x
    for got in (wrong_branch, np.float32(np.nan), np.float32(-np.inf), -want):
        ok = spread.explains(0, np.asarray(got), want, rtol=4e-6, atol=1e-6, zero_signs=True)
        assert not ok.any(), got
    # rem is exact: with nothing inexact before it, one ulp of its dividend
    # is not excused (log's own ulps are far too small to explain it).
    exact = parse(
        POW_REM_LOG.replace("%x: f32[]", "%p: f32[], %x: f32[]").replace("pow %x, %x", "abs %p")
    )
    p = np.array(0.99988484, np.float32)
    want = interpret(exact, p, x)[0]
    got = interpret(exact, np.nextafter(p, np.float32(2)), x)[0]
    ok = RoundingSpread(exact, (p, x)).explains(0, got, want, rtol=4e-6, atol=1e-6, zero_signs=True)
    assert not ok.any()


def test_a_matmul_of_int8_and_float16_is_float16() -> None:
    # Found by the test above once int8 and float16 existed: NumPy's i8 @ f16
    # is f16, which the backend gets widened to float32, as from the pipeline.
    g = parse("""graph x(%x: i8[3], %y: f16[3]) -> (f16[]) {
  %0 = matmul %x, %y : f16[]
  return %0
}""")
    x, y = np.array([1, -2, 3], np.int8), np.array([0.5, 0.25, 7.0], np.float16)
    check_against_interpreter(g, (x, y))
    assert interpret(g, x, y)[0] == np.float16(21.0)
