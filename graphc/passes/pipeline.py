"""The optimization pipeline, readable in one place: :data:`PIPELINE`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from graphc.ir import Graph, verify

from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .fold import fold_constants
from .manager import CompileReport, Pass, run_passes
from .simplify import simplify

PIPELINE: tuple[Pass, ...] = (
    # Reject malformed input before any pass relies on its invariants.
    Pass("verify", verify),
    # Fold first, so the simplifier's rules see literals instead of constant subgraphs.
    Pass("fold_constants", fold_constants),
    # Algebra to a fixed point; it also removes what its rewrites leave dead.
    Pass("simplify", simplify),
    # After simplify, equal expressions are spelled alike and merge.
    Pass("eliminate_common_subexpressions", eliminate_common_subexpressions),
    # CSE makes operands identical (x - x, select(c, x, x)); those rules need a second look.
    Pass("simplify_after_cse", simplify),
    # Last: sweep up whatever the passes above left unread.
    Pass("eliminate_dead_code", eliminate_dead_code),
)


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
        passes: the pipeline to run (default :data:`PIPELINE`); a backend
            that wants more, such as fusion, passes ``PIPELINE + (Pass(...),)``.

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
