"""The LLVM backend: fused native kernels through llvmlite, one entry call per step.

>>> import numpy as np
>>> from graphc.ir import GraphBuilder, f32
>>> from graphc.backends import llvm as llvm_backend
>>> b = GraphBuilder("f"); x = b.input(f32[4], "x")
>>> exe = llvm_backend.compile(b.build([b.mul(b.exp(x), 2.0)]))
>>> exe(np.zeros(4, np.float32))[0]
array([2., 2., 2., 2.], dtype=float32)
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from graphc.ir import Graph
from graphc.ir.plan import MemoryPlan

from . import conv, index_kernels, linalg, lower_loops, shape_kernels, target  # noqa: F401
from .codegen import LOWERINGS, ModuleBuilder, Options, default_threads
from .runtime import LLVMExecutable, MemoryReport

DECOMPOSITIONS: dict[str, Any] = {}

__all__ = ["DECOMPOSITIONS", "LOWERINGS", "LLVMExecutable", "MemoryReport", "compile"]


def compile(
    g: Graph,
    plan: MemoryPlan | None = None,
    *,
    threads: int | None = None,
    parallel_work: int | None = None,
    **_ignored: Any,
) -> LLVMExecutable:
    """Compile ``g`` to native code for this machine.

    ``plan`` gives arena offsets for intermediates (values it does not cover
    get their own). ``threads`` defaults to ``GRAPHC_NUM_THREADS`` or the
    number of usable cores.
    """
    start = time.perf_counter()
    options = Options(threads=threads or default_threads())
    if parallel_work is not None:
        options.parallel_work = parallel_work
    mb = ModuleBuilder(g, plan, options)
    module = mb.build()
    text = str(module)
    mod = target.parse_and_verify(text)
    target.optimize(mod)
    obj = target.emit_object(mod)
    engine = target.load_object(obj)
    layout = asdict(mb.layout)
    layout.pop("constants")
    return LLVMExecutable(g, layout, engine, text, compile_seconds=time.perf_counter() - start)
