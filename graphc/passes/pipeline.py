"""The compilation pipeline, readable in one place: :func:`pipeline`.

:data:`PIPELINE` is its backend-independent part, the optimizations alone,
which :func:`optimize` runs by default.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from graphc.ir import Graph, verify

from .control import in_bodies
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .fold import fold_constants
from .fuse import fuse
from .hoist import hoist_loop_sums
from .inline import inline_remat, remove_barriers
from .manager import CompileReport, Pass, run_passes
from .recompute_results import recompute_cheap_results
from .remat import rematerialize
from .schedule import schedule_for_memory
from .schedule_collectives import schedule_collectives
from .simplify import simplify
from .sum_chains import merge_sum_chains
from .transposed_operands import share_transposed_operands
from .widen import widen_16bit


def pipeline(
    backend: str | None = None,
    donate: Sequence[int] = (),
    memory_budget: int | None = None,
    disabled: Sequence[str] = (),
) -> tuple[Pass, ...]:
    """Every step from a traced graph to what ``backend`` compiles, in order.

    Args:
        backend: ``"numpy"``, ``"llvm"`` or ``"interpret"``; ``None`` gives the
            optimizations alone (:data:`PIPELINE`), without any lowering.
        donate: positions of donated inputs; the schedule frees them early.
        memory_budget: bytes of intermediates; adds ``rematerialize``.
        disabled: names of passes the caller will skip (``disable_passes``):
            ``rematerialize`` measures its plans without them too.

    The names are stable: ``disable_passes`` and the dump files use them.

    >>> [p.name for p in pipeline()][:3]
    ['verify', 'fold_constants', 'simplify']
    >>> [p.name for p in pipeline("llvm")][-4:]
    ['recompute_cheap_results', 'schedule_for_memory', 'schedule_collectives', 'remove_barriers']
    """
    lowering = backend is not None
    steps = [
        # Reject malformed input before any pass relies on its invariants.
        Pass("verify", verify),
    ]
    steps += [
        # Fold first, so the simplifier's rules see literals instead of constant subgraphs.
        Pass("fold_constants", fold_constants),
        # Algebra to a fixed point; it also removes what its rewrites leave dead.
        Pass("simplify", simplify),
        # After simplify, equal expressions are spelled alike and merge.
        Pass("eliminate_common_subexpressions", eliminate_common_subexpressions),
        # A gradient summed over an unrolled loop's steps becomes one product (or
        # reduction, scatter, concatenation) over the steps' operands...
        Pass("merge_sum_chains", merge_sum_chains),
        # ... and so does one summed inside a scan's reverse loop.
        Pass("hoist_loop_sums", hoist_loop_sums),
    ]
    if lowering:
        # Remat regions stay whole through CSE, which would merge a recomputation with
        # the forward values it replaces; after it they are ordinary code.
        steps.append(Pass("inline_remat", inline_remat))
    steps += [
        # CSE makes operands identical (x - x, select(c, x, x)); those rules need a second look.
        Pass("simplify_after_cse", simplify),
        # Sweep up whatever the passes above left unread.
        Pass("eliminate_dead_code", eliminate_dead_code),
    ]
    if not lowering:
        return tuple(steps)
    tail: list[Pass] = []
    if backend == "llvm":
        # Its kernels for matmul, reductions and convolutions are float32/64 ones;
        # widening comes after simplification, which would fold the round trips.
        tail.append(Pass("widen_16bit", widen_16bit))
        # Fusion needs the simplified graph, and nothing after it may split a group.
        # Loop and branch bodies are compiled as functions of their own: fused alike.
        tail.append(Pass("fuse", in_bodies(fuse)))
        # BLAS packs a transposed right operand more slowly on every call: products that
        # read one matrix transposed (an unrolled recurrence's backward) share one copy.
        tail.append(Pass("share_transposed_operands", share_transposed_operands))
        # A forward kernel that also writes a derivative of its result (tanh' = 1 - t*t)
        # keeps two tensors alive for the backward where one suffices.
        tail.append(Pass("recompute_cheap_results", recompute_cheap_results))
    # Ordering comes last, on the final set of nodes, right before memory planning.
    tail.append(
        Pass(
            "schedule_for_memory",
            in_bodies(schedule_for_memory, lambda g: schedule_for_memory(g, donate)),
        )
    )
    # Nonblocking reductions overlap only the work between their start and wait.
    tail.append(Pass("schedule_collectives", schedule_collectives))
    # Barriers kept recomputations out of forward kernels through fusion and
    # scheduling; the order is final now.
    tail.append(Pass("remove_barriers", remove_barriers))
    if memory_budget is not None:
        budget = memory_budget

        skipped = set(disabled)

        def lower(g: Graph) -> Graph:
            for p in tail:
                if p.name not in skipped:
                    g = p.run(g)
            return g

        # Before fusion, so copies can join backward kernels; it measures the plan of
        # the lowered graph (the steps after it), which is what the backend gets.
        steps.append(
            Pass(
                "rematerialize",
                lambda g: rematerialize(
                    g,
                    budget,
                    lower=lower,
                    inplace=backend == "numpy",
                    views=backend == "llvm",
                    donated=donate,
                ),
            )
        )
    return tuple(steps + tail)


PIPELINE: tuple[Pass, ...] = pipeline()


def optimize(
    g: Graph,
    *,
    disabled: Iterable[str] = (),
    dump_dir: str | os.PathLike[str] | None = None,
    verify_each: bool = False,
    passes: Sequence[Pass] = PIPELINE,
) -> tuple[Graph, CompileReport]:
    """Run the optimization pipeline; returns the optimized graph and a report.

    Args:
        disabled: pass names to skip, e.g. ``("simplify",)`` to bisect a
            miscompile; unknown names raise ``PipelineError`` listing the
            valid ones.
        dump_dir: write ``NN-<pass>.gir`` after every pass (also enabled by
            the ``GRAPHC_DUMP=DIR`` environment variable).
        verify_each: verify the IR after every pass (also ``GRAPHC_VERIFY=1``).
        passes: the steps to run (default :data:`PIPELINE`); a backend's whole
            pipeline is ``pipeline(backend, ...)``.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[3], "x")
    >>> g, report = optimize(b.build([b.add(b.mul(x, 1.0), b.mul(x, 1.0))]))
    >>> print(g)
    graph f(%x: f32[3]) -> (f32[3]) {
      %0 = add %x, %x : f32[3]
      return %0
    }
    >>> report.counts["mul_one"]
    2
    """
    return run_passes(g, passes, disabled=disabled, dump_dir=dump_dir, verify_each=verify_each)
