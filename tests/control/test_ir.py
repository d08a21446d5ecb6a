"""scan and cond as IR: the text form, the passes that handle them (IR in,
IR out), and properties on random graphs holding them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphc as gc
from graphc.autodiff import differentiate
from graphc.backends.llvm import compile as compile_llvm
from graphc.backends.numpy import compile as compile_numpy
from graphc.compiler import pipeline_for
from graphc.ir import Graph, GraphcError, interpret, parse, verify
from graphc.passes.control import merge_scans
from graphc.passes.dce import eliminate_dead_code
from graphc.passes.pipeline import optimize
from graphc.passes.unroll import unroll_control
from tests.passes.helpers import (
    assert_same_results,
    check_pass,
    check_same_meaning,
    normalize,
)
from tests.strategies import OP_MAKERS, graphs_with_inputs

from .test_cond import clipped_step
from .test_rnn import loss_scan, problem
from .test_scan import make_params, rnn_scan

RELAXED = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# Every op, with scan and cond drawn often (repeating a name weights it).
CONTROL_OPS = (
    sorted(set(OP_MAKERS) - {"remat", "optimization_barrier"}) + ["scan", "cond", "while"] * 12
)


def round_trips(g: Graph) -> None:
    text = str(g)
    again = parse(text)
    assert again == g, text
    assert str(again) == text
    assert parse(g.format(locations=True)).format(locations=True) == g.format(locations=True)


def test_traced_graphs_and_their_derivatives_round_trip() -> None:
    rng = np.random.default_rng(0)
    params, xs = make_params(rng), rng.standard_normal((4, 2, 3))
    loss = gc.value_and_grad(lambda p, xs: rnn_scan(p, xs, reverse=True)[1]["norm"].sum())
    second = gc.grad(
        lambda w: gc.grad(lambda w: rnn_scan({**params, "wh": w}, xs)[0].sum())(w).sum()
    )
    cond_loss = gc.grad(lambda x, w: clipped_step(x, w)[0]["x"].sum())
    params_rnn, batches = problem()
    for g in (
        gc.trace(loss, params, xs),
        gc.trace(second, params["wh"]),
        gc.trace(cond_loss, np.ones(3), np.ones((2, 2))),
        gc.trace(gc.value_and_grad(loss_scan), params_rnn, *batches[0]),
    ):
        verify(g)
        round_trips(g)


def test_text_form_of_scan_and_cond() -> None:
    def f(xs: np.ndarray) -> object:
        total, ys = gc.scan(lambda c, x: (c + x, c * x), 0.0, xs, reverse=True)
        return gc.cond(total > 0, lambda y: y, lambda y: -y, ys)

    expected = """
    graph f(%xs: f64[3]) -> (f64[3]) {
      %0, %1 = scan 0.0, %xs {length=3, num_carry=1, num_xs=1, num_consts=0, reverse=true}
          : f64[], f64[3] {
        (%carry: f64[], %x: f64[]) {
          %t0 = add %carry, %x : f64[]
          %t1 = mul %carry, %x : f64[]
          return %t0, %t1
        }
      }
      %2 = gt %0, 0.0  : bool[]
      %3 = cond %2, %1 : f64[3] {
        (%y: f64[3]) {
          return %y
        }
        (%y: f64[3]) {
          %t0 = neg %y : f64[3]
          return %t0
        }
      }
      return %3
    }"""
    g = gc.trace(f, np.ones(3))
    assert normalize(str(g)) == normalize(expected)
    round_trips(g)


def test_dead_code_prunes_loop_results_carries_and_operands() -> None:
    check_pass(
        eliminate_dead_code,
        """
        graph f(%h0: f64[2], %xs: f64[3,2], %w: f64[2]) -> (f64[3]) {
          %0, %1, %2, %3 = scan %h0, 0:i64, %xs, %w
              {length=3, num_carry=2, num_xs=1, num_consts=1} : f64[2], i64[], f64[3,2], f64[3] {
            (%h: f64[2], %k: i64[], %x: f64[2], %w: f64[2]) {
              %t0 = mul %h, %w : f64[2]
              %t1 = add %t0, %x : f64[2]
              %t2 = add %k, 1 : i64[]
              %t3 = reduce_sum %t1 {axes=(0,)} : f64[]
              return %t1, %t2, %t1, %t3
            }
          }
          return %3
        }
        """,
        """
        graph f(%h0: f64[2], %xs: f64[3,2], %w: f64[2]) -> (f64[3]) {
          %0, %1 = scan %h0, %xs, %w {length=3, num_carry=1, num_xs=1, num_consts=1}
              : f64[2], f64[3] {
            (%h: f64[2], %x: f64[2], %w: f64[2]) {
              %t0 = mul %h, %w : f64[2]
              %t1 = add %t0, %x : f64[2]
              %t2 = reduce_sum %t1 {axes=(0,)} : f64[]
              return %t1, %t2
            }
          }
          return %1
        }
        """,
        fired={"scan results pruned": 2},
    )


def test_dead_code_prunes_cond_results_and_operands() -> None:
    check_pass(
        eliminate_dead_code,
        """
        graph f(%p: bool[], %x: f64[2], %y: f64[2]) -> (f64[2]) {
          %0, %1 = cond %p, %x, %y : f64[2], f64[2] {
            (%a: f64[2], %b: f64[2]) {
              %t0 = exp %b : f64[2]
              return %a, %t0
            }
            (%a: f64[2], %b: f64[2]) {
              %t0 = neg %a : f64[2]
              return %t0, %b
            }
          }
          return %0
        }
        """,
        """
        graph f(%p: bool[], %x: f64[2], %y: f64[2]) -> (f64[2]) {
          %0 = cond %p, %x : f64[2] {
            (%a: f64[2]) {
              return %a
            }
            (%a: f64[2]) {
              %t0 = neg %a : f64[2]
              return %t0
            }
          }
          return %0
        }
        """,
        fired={"cond results pruned": 1},
    )


def test_merge_scans_runs_the_extended_loop_once_in_place_of_the_first() -> None:
    check_pass(
        merge_scans,
        """
        graph f(%c0: f64[2], %xs: f64[3,2]) -> (f64[2], f64[3,2]) {
          %0 = scan %c0, %xs {length=3, num_carry=1, num_xs=1, num_consts=0} : f64[2] {
            (%c: f64[2], %x: f64[2]) {
              %t0 = mul %c, %x : f64[2]
              return %t0
            }
          }
          %1 = exp %0 : f64[2]
          %2, %3 = scan %c0, %xs {length=3, num_carry=1, num_xs=1, num_consts=0}
              : f64[2], f64[3,2] {
            (%c: f64[2], %x: f64[2]) {
              %t0 = mul %c, %x : f64[2]
              %t1 = sin %c : f64[2]
              return %t0, %t1
            }
          }
          return %1, %3
        }
        """,
        """
        graph f(%c0: f64[2], %xs: f64[3,2]) -> (f64[2], f64[3,2]) {
          %0, %1 = scan %c0, %xs {length=3, num_carry=1, num_xs=1, num_consts=0}
              : f64[2], f64[3,2] {
            (%c: f64[2], %x: f64[2]) {
              %t0 = mul %c, %x : f64[2]
              %t1 = sin %c : f64[2]
              return %t0, %t1
            }
          }
          %2 = exp %0 : f64[2]
          return %2, %1
        }
        """,
        fired={"scans merged": 1},
    )


def test_merge_scans_leaves_different_loops_alone() -> None:
    text = """
    graph f(%c0: f64[2], %xs: f64[3,2]) -> (f64[2], f64[2]) {
      %0 = scan %c0, %xs {length=3, num_carry=1, num_xs=1, num_consts=0} : f64[2] {
        (%c: f64[2], %x: f64[2]) {
          %t0 = mul %c, %x : f64[2]
          return %t0
        }
      }
      %1 = scan %c0, %xs {length=3, num_carry=1, num_xs=1, num_consts=0, reverse=true} : f64[2] {
        (%c: f64[2], %x: f64[2]) {
          %t0 = mul %c, %x : f64[2]
          return %t0
        }
      }
      return %0, %1
    }
    """
    check_pass(merge_scans, text, text, fired={"scans merged": 0})


# -- random graphs -------------------------------------------------------------------------


def with_control(g: Graph) -> bool:
    return any(n.op in ("scan", "cond") for n in g.nodes)


@RELAXED
@given(case=graphs_with_inputs(ops=CONTROL_OPS, special=True, special_inputs=True))
def test_numpy_backend_agrees_with_the_interpreter(case) -> None:  # noqa: ANN001
    g, arrays = case
    try:
        want = interpret(g, *arrays)
    except GraphcError as exc:
        failed = exc
    else:
        assert_same_results(want, compile_numpy(g, min_buffer_bytes=0)(*arrays))
        return
    try:
        compile_numpy(g, min_buffer_bytes=0)(*arrays)
    except GraphcError:
        return
    raise AssertionError(f"the interpreter failed ({failed}) but the backend did not")


@RELAXED
@given(case=graphs_with_inputs(ops=CONTROL_OPS, special=True, special_inputs=True))
def test_llvm_backend_agrees_with_the_interpreter(case) -> None:  # noqa: ANN001
    """Native loops and branches, bodies lowered node by node (no pipeline)."""
    g, arrays = case
    try:
        want = interpret(g, *arrays)
    except GraphcError:
        # Only the taken branch runs natively, so an error the interpreter
        # raises is raised by the backend too.
        with pytest.raises(GraphcError):
            compile_llvm(g, cache=False)(*arrays)
        return
    assert_same_results(want, compile_llvm(g, cache=False)(*arrays), _float32_inside(g))


def _float32_inside(g: Graph) -> bool:
    """Whether any value of ``g`` (bodies included) is a float of 32 bits or fewer."""
    values = [*g.inputs, *(v for n in g.nodes for v in n.outputs)]
    return any(v.type.dtype.is_float and v.type.dtype.itemsize <= 4 for v in values) or any(
        _float32_inside(s) for n in g.nodes for s in n.subgraphs
    )


@RELAXED
@given(case=graphs_with_inputs(ops=CONTROL_OPS, special=True, special_inputs=True))
def test_passes_keep_the_meaning(case) -> None:  # noqa: ANN001
    g, arrays = case
    unrolled = unroll_control(g)
    verify(unrolled)
    assert not any(n.op in ("scan", "cond") for n in unrolled.nodes), (
        "unroll_control left control flow"
    )
    # Both branches run after unrolling, so only graphs whose conds' branches
    # both succeed compare; the interpreter checks that for us.
    check_same_meaning(g, unrolled, list(arrays))
    for backend in ("numpy", "llvm"):
        out, _ = optimize(g, passes=pipeline_for(backend))
        verify(out)
        round_trips(out)
        check_same_meaning(g, out, list(arrays))
    pruned = eliminate_dead_code(g)
    check_same_meaning(g, pruned, list(arrays))


@RELAXED
@given(
    case=graphs_with_inputs(
        # A while loop refuses to be differentiated (tests/control/test_loops.py),
        # and so do the shape-parameter derivatives of the incomplete gamma/beta
        # functions (tests/numerics/test_incomplete.py).
        ops=[
            op
            for op in CONTROL_OPS
            if op not in ("fusion", "while", "gammainc_grad_a", "betainc_grad")
        ],
        dtypes=[gc.ir.f64],
        special=False,
    )
)
def test_differentiated_random_graphs_verify_and_round_trip(case) -> None:  # noqa: ANN001
    g, arrays = case
    floats = [i for i, v in enumerate(g.inputs) if v.type.dtype.is_float]
    seeds = [i for i, v in enumerate(g.outputs) if v.type.dtype.is_float]
    if not floats or not seeds:
        return
    try:
        joint = differentiate(g, floats, seeds, seed="inputs")
    except gc.UnsupportedError as exc:
        # ops without a gradient rule (all_reduce max/min) refuse, naming themselves
        assert "no gradient rule" in str(exc)
        return
    verify(joint)
    round_trips(joint)
    cts = [np.ones(g.outputs[i].type.shape, g.outputs[i].type.dtype.np) for i in seeds]
    try:
        want = interpret(joint, *arrays, *cts)
    except GraphcError:
        return
    got = compile_numpy(joint)(*arrays, *cts)
    assert_same_results(want, got)
