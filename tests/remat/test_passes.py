"""inline_remat and remove_barriers, IR in and IR out, and where the pipeline runs them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.compiler import pipeline_for
from graphc.ir import Graph, parse
from graphc.passes.inline import inline_remat, remove_barriers
from graphc.passes.pipeline import optimize
from tests.passes.helpers import check_pass

# Compiled LLVM objects go to a private directory, shared within this module.
pytestmark = pytest.mark.usefixtures("private_llvm_cache")


def test_a_region_is_inlined_and_a_recomputation_goes_behind_a_barrier() -> None:
    check_pass(
        inline_remat,
        """
        graph f(%x: f32[4], %ct: f32[4]) -> (f32[4], f32[4]) {
          %0 = remat %x : f32[4] {
            (%a: f32[4]) {
              %t0 = exp %a : f32[4]
              return %t0
            }
          }
          %1 = remat %x, %ct {recompute=true} : f32[4] {
            (%a: f32[4], %c: f32[4]) {
              %t0 = exp %a : f32[4]
              %t1 = mul %c, %t0 : f32[4]
              return %t1
            }
          }
          return %0, %1
        }""",
        """
        graph f(%x: f32[4], %ct: f32[4]) -> (f32[4], f32[4]) {
          %0 = exp %x : f32[4]
          %1, %2 = optimization_barrier %x, %ct : f32[4], f32[4]
          %3 = exp %1 : f32[4]
          %4 = mul %2, %3 : f32[4]
          return %0, %4
        }""",
        fired={"regions inlined": 1, "recomputations inlined": 1},
    )


def test_nested_regions_literals_and_repeated_operands() -> None:
    check_pass(
        inline_remat,
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = remat %x, %x, 2.0 {recompute=true} : f64[3] {
            (%a: f64[3], %b: f64[3], %s: f64[]) {
              %t0 = remat %a, %s : f64[3] {
                (%p: f64[3], %q: f64[]) {
                  %u0 = mul %p, %q : f64[3]
                  return %u0
                }
              }
              %t1 = add %t0, %b : f64[3]
              return %t1
            }
          }
          return %0
        }""",
        """
        graph f(%x: f64[3]) -> (f64[3]) {
          %0 = optimization_barrier %x : f64[3]
          %1 = mul %0, 2.0 : f64[3]
          %2 = add %1, %0 : f64[3]
          return %2
        }""",
        fired={"regions inlined": 1, "recomputations inlined": 1},
    )


def test_a_body_returning_its_argument() -> None:
    check_pass(
        inline_remat,
        """
        graph f(%x: f32[2]) -> (f32[2]) {
          %0 = remat %x : f32[2] {
            (%a: f32[2]) {
              return %a
            }
          }
          %1 = neg %0 : f32[2]
          return %1
        }""",
        """
        graph f(%x: f32[2]) -> (f32[2]) {
          %0 = neg %x : f32[2]
          return %0
        }""",
    )


def test_barriers_are_removed() -> None:
    check_pass(
        remove_barriers,
        """
        graph f(%x: f32[4], %y: f32[4]) -> (f32[4], f32[4]) {
          %0 = exp %x : f32[4]
          %1, %2 = optimization_barrier %0, %y : f32[4], f32[4]
          %3 = mul %1, %2 : f32[4]
          return %3, %2
        }""",
        """
        graph f(%x: f32[4], %y: f32[4]) -> (f32[4], f32[4]) {
          %0 = exp %x : f32[4]
          %1 = mul %0, %y : f32[4]
          return %1, %y
        }""",
    )


def test_graphs_without_regions_are_returned_as_they_are() -> None:
    g = parse("graph f(%x: f32[2]) -> (f32[2]) {\n  %0 = exp %x : f32[2]\n  return %0\n}")
    assert inline_remat(g) is g
    assert remove_barriers(g) is g


# -- in the pipeline ----------------------------------------------------------------


def recompute_example() -> Any:
    block = gc.remat(lambda v: np.exp(v) * 2.0)
    return gc.value_and_grad(lambda v, w: (block(v) * w).sum())


def compile_for(backend: str, g: Graph) -> Graph:
    return optimize(g, passes=pipeline_for(backend))[0]


def ops(g: Graph) -> list[str]:
    return [n.op for n in g.nodes]


def test_cse_runs_before_the_regions_open() -> None:
    v, w = np.linspace(-1.0, 1.0, 64), np.linspace(2.0, 3.0, 64)
    g = gc.trace(recompute_example(), v, w)
    names = [p.name for p in pipeline_for("numpy")]
    assert names.index("eliminate_common_subexpressions") < names.index("inline_remat")
    out = compile_for("numpy", g)
    # exp once in the forward and once, recomputed, in the backward
    assert ops(out).count("exp") == 2
    plain = gc.trace(gc.value_and_grad(lambda v, w: (np.exp(v) * 2.0 * w).sum()), v, w)
    assert ops(compile_for("numpy", plain)).count("exp") == 1


def test_the_recomputation_runs_after_the_forward_pass() -> None:
    v, w = np.linspace(-1.0, 1.0, 64), np.linspace(2.0, 3.0, 64)
    out = compile_for("numpy", gc.trace(recompute_example(), v, w))
    loss = out.producers()[out.outputs[0]]
    exps = [i for i, n in enumerate(out.nodes) if n.op == "exp"]
    assert exps[0] < out.nodes.index(loss) < exps[1]


def test_fusion_keeps_the_recomputation_out_of_the_forward_kernel() -> None:
    v, w = np.linspace(-1.0, 1.0, 64), np.linspace(2.0, 3.0, 64)
    out = compile_for("llvm", gc.trace(recompute_example(), v, w))

    def computes_exp(n: Any) -> int:
        inner = n.subgraphs[0].nodes if n.op == "fusion" else [n]
        return sum(m.op == "exp" for m in inner)

    with_exp = [n for n in out.nodes if computes_exp(n)]
    assert [computes_exp(n) for n in with_exp] == [1, 1]
    forward, again = with_exp
    assert out.outputs[0] in forward.outputs  # the kernel that computes the loss
    assert out.nodes.index(forward) < out.nodes.index(again)
