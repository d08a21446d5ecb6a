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
from pathlib import Path
from typing import Any

from graphc.ir import Graph, Node
from graphc.ir.decompose import Decomposition, decompose, inline_body, pass_through, restrict_plan
from graphc.ir.ops.incomplete_grad import decompose_betainc_grad, decompose_gammainc_grad_a
from graphc.ir.plan import MemoryPlan
from graphc.ir.widen import widen_16bit

from . import cache as cache_mod
from . import (  # noqa: F401
    collective,
    control,
    conv,
    index_kernels,
    lapack,
    linalg,
    lower_loops,
    shape_kernels,
    sort,
    target,
)
from . import pool as pool_mod
from .blas import register_blas
from .codegen import LOWERINGS, ModuleBuilder, Options, default_threads, unoptimized_entry
from .gemm_kernel import native_gemm_enabled
from .lapack import register_lapack
from .matfun import expm_decomposition
from .parallel import MAX_CHUNKS
from .runtime import LLVMExecutable, MemoryReport
from .special import polygamma_decomposition, register_special

NAME = "llvm"
# Every other registered op has a direct lowering (LOWERINGS); scan and cond
# are native loops and branches (control.py). The pipeline normally removes
# these before the backend sees them (inline_remat, remove_barriers);
# compile() applies the same rewrites, so a graph that skipped a pass
# (disable_passes, bisecting) still compiles.
DECOMPOSITIONS: dict[str, Decomposition] = {
    "remat": inline_body,
    "optimization_barrier": pass_through,
    # No C entry point for orders >= 1: a recurrence and a series in ordinary ops.
    "polygamma": polygamma_decomposition,
    # Scaling and squaring: products, a solve and a run-time number of squarings.
    "expm": expm_decomposition,
    # Parameter derivatives of the incomplete gamma and beta functions: a
    # loop of ordinary ops that sums a series or continued fraction.
    "gammainc_grad_a": decompose_gammainc_grad_a,
    "betainc_grad": decompose_betainc_grad,
}

__all__ = [
    "DECOMPOSITIONS",
    "LOWERINGS",
    "NAME",
    "LLVMExecutable",
    "MemoryReport",
    "Generated",
    "compile",
    "start_compile",
    "prepare",
]


def prepare() -> None:
    """Get ready for a first compile (called when tracing starts): the
    process's worker pool is built in the background if it is not yet."""
    pool_mod.prepare()


def compile(
    g: Graph,
    plan: MemoryPlan | None = None,
    *,
    threads: int | None = None,
    num_threads: int | None = None,
    parallel_work: int | None = None,
    chunk_work: int | None = None,
    profile: bool = False,
    flush_denormals: bool = False,
    cache: bool = True,
) -> LLVMExecutable:
    """Compile ``g`` to native code for this machine.

    Args:
        plan: arena offsets for intermediates (values it does not cover get
            their own).
        threads: threads for large kernels and products (``num_threads`` is
            the same); default ``GRAPHC_NUM_THREADS``, else the number of
            usable cores. Large products are split into this many parts;
            ``exe.threads`` can change it later.
        parallel_work: split a kernel into chunks from this much work
            (elements times per-element cost) on.
        chunk_work: about this much work per chunk.
        profile: count time per node (``exe.profile()``, see :mod:`.profile`).
        flush_denormals: run with subnormal floats flushed to zero, as JAX
            does (x86-64; see :mod:`.fpmode`). Off by default: results then
            match NumPy's gradual underflow.
        cache: use the on-disk object cache (see :mod:`.cache`).
    """
    return start_compile(
        g,
        plan,
        threads=threads,
        num_threads=num_threads,
        parallel_work=parallel_work,
        chunk_work=chunk_work,
        profile=profile,
        flush_denormals=flush_denormals,
        cache=cache,
    ).finish()


class Generated:
    """A graph's LLVM IR, ready for LLVM to compile (:meth:`finish`), or the
    executable the object cache already held."""

    def __init__(
        self,
        g: Graph,
        start: float,
        threads: int,
        executable: LLVMExecutable | None = None,
        layout: dict[str, Any] | None = None,
        text: str = "",
        directory: Path | None = None,
        key: str = "",
    ) -> None:
        self.g = g
        self.start = start
        self.threads = threads
        self.executable = executable
        # The layout alone, not the builder: the IR objects it holds are garbage
        # once printed, collectable while LLVM compiles.
        self.layout = layout
        self.text = text
        self.directory = directory
        self.key = key
        self.generated = time.perf_counter()

    def finish(self) -> LLVMExecutable:
        """Optimize, generate code and load it (LLVM releases the GIL meanwhile)."""
        if self.executable is not None:
            return self.executable
        assert self.layout is not None
        g, text = self.g, self.text
        # Every executable checks its inputs with the pool's code; building it
        # first also waits for a background build (see prepare) to leave LLVM.
        pool_mod.pool()
        mod = target.parse_and_verify(text)
        target.optimize(mod, unroll=target.pays_to_unroll(g))
        if unoptimized_entry(g):
            obj, entry_obj = target.emit_split(mod)
        else:
            obj, entry_obj = target.emit_object(mod), b""
        layout = self.layout
        engine = target.load_objects([obj, entry_obj])
        if self.directory is not None:
            entry = cache_mod.Entry(obj, layout, text, entry_obj)
            cache_mod.store(self.directory, self.key, entry)
        exe = LLVMExecutable(
            g,
            layout,
            engine,
            text,
            threads=self.threads,
            compile_seconds=time.perf_counter() - self.start,
        )
        # For compile reports: building the LLVM IR vs LLVM optimizing and emitting code.
        exe.stage_seconds = {
            "llvm_ir": self.generated - self.start,
            "llvm": time.perf_counter() - self.generated,
        }
        self.executable = exe
        return exe


def start_compile(
    g: Graph,
    plan: MemoryPlan | None = None,
    *,
    threads: int | None = None,
    num_threads: int | None = None,
    parallel_work: int | None = None,
    chunk_work: int | None = None,
    profile: bool = False,
    flush_denormals: bool = False,
    cache: bool = True,
) -> Generated:
    """The Python half of :func:`compile` (same arguments): ``g``'s LLVM IR, or
    the cached executable. ``.finish()`` is the native half, during which other
    Python threads run (the pipeline cache's entry is encoded then).

    >>> import numpy as np
    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> pending = start_compile(b.build([b.neg(x)]), cache=False)
    >>> pending.finish()(np.ones(2, np.float32))[0]
    array([-1., -1.], dtype=float32)
    """
    start = time.perf_counter()
    widened = widen_16bit(g)
    if widened is not g:  # skipped the pipeline's widening: its plan is for other values
        g, plan = widened, None
    d = decompose(g, DECOMPOSITIONS)
    g, plan = d.graph, restrict_plan(plan, d)
    blas = register_blas()
    # Cached objects name these symbols too: register them before any load.
    register_special()
    register_lapack()
    threads = threads or num_threads or default_threads()
    options = Options(
        profile=profile,
        gemm_parts=min(threads, MAX_CHUNKS),
        flush_denormals=flush_denormals,
        mpi=collective.prepare(g),
        native_gemm=native_gemm_enabled(),
    )
    if parallel_work is not None:
        options.parallel_work = parallel_work
    if chunk_work is not None:
        options.chunk_work = chunk_work
    directory = cache_mod.cache_dir() if cache else None
    key = ""
    if directory is not None:
        key = cache_mod.cache_key(
            str(g), _plan_text(g, plan), repr(options), target.host().key(), blas.name
        )
        found = _load_cached(directory, key, g)
        if found is not None:
            engine, entry = found
            exe = LLVMExecutable(
                g,
                entry.layout,
                engine,
                entry.llvm_ir,
                threads=threads,
                from_cache=True,
                compile_seconds=time.perf_counter() - start,
            )
            return Generated(g, start, threads, executable=exe)
    mb = ModuleBuilder(g, plan, options)
    text = str(mb.build())
    layout = asdict(mb.layout)
    layout.pop("constants")
    return Generated(g, start, threads, layout=layout, text=text, directory=directory, key=key)


_SOURCE_KINDS = ("slot", "copy", "input", "const", "donated")


def _load_cached(directory: Path, key: str, g: Graph) -> tuple[Any, cache_mod.Entry] | None:
    """The engine and entry cached under ``key``, if it is there and fits ``g``;
    one that does not is reported as damaged (and compiled again by the caller)."""
    entry = cache_mod.load(directory, key)
    if entry is None:
        return None
    problem = _layout_mismatch(g, entry.layout)
    if not problem:
        pool_mod.pool()  # as in compile: waits for a background build to leave LLVM
        engine = target.load_objects([entry.obj, entry.entry_obj])
        if engine.get_function_address("graphc_main") and engine.get_global_value_address(
            "graphc_status"
        ):
            return engine, entry
        problem = "its object code has no graphc_main"
    cache_mod.report_unusable(directory / f"{key}.gco", ValueError(problem))
    return None


def _layout_mismatch(g: Graph, layout: dict[str, Any]) -> str:
    """Why a cached layout cannot belong to ``g`` ('' when it can)."""
    if not layout:
        return "the entry has no layout"
    if layout["n_inputs"] != len(g.inputs) or len(layout["output_sources"]) != len(g.outputs):
        return "its layout is for another signature"
    if any(kind not in _SOURCE_KINDS for kind, _ in layout["output_sources"]):
        return "its layout names an unknown output source"
    for path in layout["constant_nodes"]:
        node = _node_on_path(g, path)
        if node is None or "value" not in node.attrs:
            return "its layout points at a constant the graph does not have"
    # A failing kernel inside a loop body is reported through these paths.
    if any(_node_on_path(g, path) is None for path in layout["error_paths"]):
        return "its layout points at a body node the graph does not have"
    return ""


def _node_on_path(g: Graph, path: list[int]) -> Node | None:
    """The node at ``path`` (node index, subgraph index, node index...), if any."""
    nodes, node = g.nodes, None
    for k, index in enumerate(path):
        if k % 2 == 0:
            node = nodes[index] if index < len(nodes) else None
        elif node is not None and index < len(node.subgraphs):
            nodes = node.subgraphs[index].nodes
        else:
            node = None
        if node is None:
            return None
    return node if len(path) % 2 == 1 else None


def _plan_text(g: Graph, plan: MemoryPlan | None) -> str:
    """The plan in terms of value positions (Values themselves are per-object)."""
    if plan is None:
        return "no plan"
    number = {v: k for k, v in enumerate(v for n in g.nodes for v in n.outputs)}
    offsets = sorted((number[v], o) for v, o in plan.offsets.items() if v in number)
    aliases = sorted((number[v], number.get(a, -1)) for v, a in plan.aliases.items() if v in number)
    inputs = {v: k for k, v in enumerate(g.inputs)}
    outputs = {v: k for k, v in enumerate(g.outputs)}
    donations = sorted((outputs[v], inputs[u]) for v, u in plan.donations.items())
    parts = sorted((number[v], number[c], k) for v, (c, k) in plan.parts.items())
    return f"{plan.arena_bytes} {offsets} {aliases} {donations} {parts}"
