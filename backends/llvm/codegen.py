"""Whole-graph code generation: kernels and the entry function.

One LLVM module per graph. Where each tensor lives (argument slots, arena
offsets, aliases) is decided first, in :mod:`.buffers`. The entry function
``graphc_main(args, arena)`` runs the nodes in order, each as a call to its
kernel; ``args`` holds the input, output and constant pointers.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import llvmlite.ir as ir

from graphc.ir import (
    BackendError,
    DType,
    Graph,
    GraphBuilder,
    GraphcError,
    Literal,
    Node,
    TensorType,
    Value,
)
from graphc.ir.errors import format_message
from graphc.ir.plan import MemoryPlan, align

from . import fpmode
from .blas import single_thread_blas
from .buffers import place_buffers, value_names
from .irutil import (
    I64,
    PTR,
    VOID,
    counted_loop,
    elem_ptr,
    i64,
    load,
    mem_type,
    store,
    word_ptr,
)
from .loops import LoopKernel, combine, emit_loop_kernel
from .loopspec import (
    Buf,
    LoopSpec,
    NotALoop,
    build_loop_spec,
    can_fail,
    normalize_offsets,
    spec_buffers,
    spec_key,
)
from .mathlib import MathLib
from .parallel import MAX_CHUNKS, call_region, loop_task, step_with_pool
from .profile import Counters
from .scalar import ScalarEmitter
from .views import View

# A kernel becomes a parallel region from this much work (elements x
# per-element cost; one unit measured 20-35 ps of single-thread time here,
# so about 15 us), split into chunks of about CHUNK_WORK. The pool's workers
# poll while a step runs, so a region costs ~1 us (W1's Adam update of a
# 256x256 weight: 32 -> 19 us on two threads); the chunks let whichever
# thread is running take the next one.
PARALLEL_WORK = 1 << 19
CHUNK_WORK = 1 << 17

Lowering = Callable[["ModuleBuilder", Node], None]
LOWERINGS: dict[str, Lowering] = {}

ERR_INDEX = 1
STATUS_WORDS = 4  # code, node index, offending value, axis size


def lowering(*ops: str) -> Callable[[Lowering], Lowering]:
    """Register a lowering for ``ops`` (used by the kernel modules)."""

    def register(fn: Lowering) -> Lowering:
        for op in ops:
            LOWERINGS[op] = fn
        return fn

    return register


# From this many nodes the entry function is compiled without optimization: it
# is calls to kernels (each optimized), and in a graph this large the few
# instructions per call that -O0 adds are nothing next to the kernels, while
# optimizing it cost 0.25 s of a 1,300-node step's compile.
UNOPTIMIZED_ENTRY_NODES = 256


def unoptimized_entry(g: Graph) -> bool:
    """Whether ``g``'s entry function is compiled without optimization."""
    return len(g.nodes) >= UNOPTIMIZED_ENTRY_NODES


@dataclass
class Options:
    """What the generated code depends on (part of the cache key). The
    thread count itself is set on the executable at run time; results do
    not depend on it."""

    parallel_work: int = PARALLEL_WORK
    chunk_work: int = CHUNK_WORK
    gemm_parts: int = 1  # large products are split into this many (the compile's threads)
    profile: bool = False  # count cycles per node (see profile.py)
    flush_denormals: bool = False  # FTZ/DAZ while the step runs (see fpmode.py)
    mpi: str = ""  # the MPI ABI collectives call ("" when each group is one process)
    native_gemm: bool = True  # float32 products use gemm_kernel.py where it applies


class ModuleBuilder:
    """Builds the LLVM module for one graph."""

    # Where the node being lowered sits inside the current node's subgraphs
    # (subgraph, node, ...) while a group is lowered node by node.
    inner_path: tuple[int, ...] = ()

    def __init__(self, g: Graph, plan: MemoryPlan | None, options: Options) -> None:
        self.g = g
        self.options = options
        self.module = ir.Module(name=g.name)
        self.math = MathLib(self.module)
        self.names = value_names(g)
        self.status = ir.GlobalVariable(
            self.module, ir.ArrayType(I64, STATUS_WORDS), "graphc_status"
        )
        self.status.initializer = ir.Constant(ir.ArrayType(I64, STATUS_WORDS), None)
        placed = place_buffers(g, plan)
        self.layout = placed.layout
        self.slots = placed.slots
        self.offsets = placed.offsets
        self.aliases = placed.aliases
        self.scratch_base = placed.scratch_base
        fnty = ir.FunctionType(VOID, [PTR, PTR])
        self.entry = ir.Function(self.module, fnty, "graphc_main")
        if unoptimized_entry(g):
            # Straight-line calls to kernels gain nothing from LLVM's O3 pipeline,
            # which took 60% of the optimizing time of W5's unrolled step.
            self.entry.attributes.add("optnone")
            self.entry.attributes.add("noinline")
        self.entry.args[0].name = "args"
        self.entry.args[1].name = "arena"
        self.alloca_block = self.entry.append_basic_block("entry")
        body = self.entry.append_basic_block("start")
        self.b = ir.IRBuilder(body)
        self.exit_block = self.entry.append_basic_block("exit")
        ir.IRBuilder(self.exit_block).ret_void()
        self._ptrs: dict[Any, ir.Value] = {}
        self._scratch_cursor = 0
        self._kernel_count = 0
        self.node_index = -1
        self.bufs: dict[Value, Buf] = {}
        self._loop_kernels: dict[Any, LoopKernel] = {}
        self._tasks: dict[str, ir.Function] = {}
        self._custom: dict[Any, ir.Function] = {}
        # Loop and branch bodies are functions of their own (see control.py);
        # they share the module-level state above with this, the root builder.
        self.root: ModuleBuilder = self
        self.top_args: ir.Value = self.entry.args[0]  # where constants' pointers are
        self.path: tuple[int, ...] = ()  # node/subgraph indices down to this body
        self.error_paths: list[tuple[int, ...]] = []  # body nodes that can fail
        self.may_fail = False  # some kernel here can report an error
        self.bodies = 0

    # -- buffers -------------------------------------------------------------------------
    def buf(self, x: Value | Literal) -> Buf:
        """The buffer holding top-level (or currently mapped body) value ``x``.

        A literal operand (``gather %x, 2:i64``, a 0-d index folded into the
        node) has no slot in the plan: it reads from a one-element constant
        global, so every kernel that takes operands by pointer accepts one."""
        if isinstance(x, Literal):
            return Buf(("literal", x), x.dtype)
        found = self.bufs.get(x)
        if found is not None:
            return found
        while x in self.aliases:
            x = self.aliases[x]
        return Buf(x, x.type.dtype)

    def ptr(self, buf: Buf) -> ir.Value:
        """The entry-function pointer to ``buf``'s first element."""
        key = buf.key
        found = self._ptrs.get(key)
        if found is not None:
            return found
        b = ir.IRBuilder(self.alloca_block)
        name = self.names.get(key, "") if isinstance(key, Value) else ""
        if isinstance(key, Value) and key in self.slots:
            slot = b.gep(self.entry.args[0], [i64(self.slots[key])], source_etype=PTR)
            p = b.load(slot, typ=PTR, name=name)
        elif isinstance(key, Value) and key in self.offsets:
            p = b.gep(
                self.entry.args[1], [i64(self.offsets[key])], source_etype=ir.IntType(8), name=name
            )
        elif isinstance(key, tuple) and key[0] == "literal":
            p = self._literal_global(key)
        else:
            assert isinstance(key, tuple) and key[0] == "scratch", key
            p = b.gep(
                self.entry.args[1], [i64(self.scratch_base + key[1])], source_etype=ir.IntType(8)
            )
        self._ptrs[key] = p
        return p

    def _literal_global(self, key: tuple[Any, ...]) -> ir.Value:
        lit: Literal = key[1]
        ty = mem_type(lit.dtype)
        value = int(lit.value) if not lit.dtype.is_float else float(lit.value)
        g = ir.GlobalVariable(self.module, ty, f"literal.{len(self._ptrs)}")
        g.global_constant = True
        g.linkage = "private"
        g.align = lit.dtype.itemsize
        g.initializer = ir.Constant(ty, value)
        return g

    def ptr_at(self, buf: Buf, elements: int) -> ir.Value:
        """Pointer to element ``elements`` of ``buf``, computed in the entry function."""
        base = self.ptr(buf)
        if not elements:
            return base
        return elem_ptr(self.b, base, buf.dtype, i64(elements))

    def scratch(self, nbytes: int, dtype: DType) -> Buf:
        """Transient memory, valid until the current node finishes."""
        offset = self._scratch_cursor
        self._scratch_cursor += align(max(nbytes, 1))
        self.layout.scratch_bytes = max(self.layout.scratch_bytes, self._scratch_cursor)
        return Buf(("scratch", offset), dtype)

    # -- kernels -------------------------------------------------------------------------
    def kernel_name(self, n: Node, what: str = "") -> str:
        self.root._kernel_count += 1
        out = self.names.get(n.outputs[0], "") if n.outputs else ""
        return f"k{self.root._kernel_count}.{n.op}.{out}{what}"

    def error_hook(self) -> Callable[[ir.IRBuilder, ir.Value, int], None]:
        """A hook kernels call to record an error (see :meth:`store_status`)."""

        def hook(
            b: ir.IRBuilder, cond: ir.Value, code: int, detail: ir.Value | None = None
        ) -> None:
            with b.if_then(cond):
                self.store_status(b, code, detail)

        return hook

    def store_status(
        self,
        b: ir.IRBuilder,
        code: int,
        detail: ir.Value | None = None,
        extra: ir.Value | None = None,
    ) -> None:
        """Record an error from inside a kernel. The node is not baked into the
        kernel (kernels are shared between nodes): the entry function stores
        the running node's index (word 1) before calling a kernel that can fail."""
        words = {0: i64(code), 2: detail, 3: extra}
        for k, w in words.items():
            if w is not None:
                b.store(w, word_ptr(b, self.status, k))

    def mark_node(self) -> None:
        """Store the current node's index in the status words (see store_status).
        A node inside a loop or branch body, or inside a group lowered node by
        node (:meth:`lower_body`), is numbered after the top-level nodes, by
        its place in ``error_paths``."""
        self.may_fail = True
        site = self.node_index
        if self.path or self.inner_path:
            paths = self.root.error_paths
            here = (*self.path, self.node_index, *self.inner_path)
            if here not in paths:
                paths.append(here)
            site = len(self.root.g.nodes) + paths.index(here)
        self.b.store(i64(site), word_ptr(self.b, self.status, 1))

    def check_status(self) -> None:
        """Return early from the entry function if a kernel reported an error."""
        b = self.b
        failed = b.icmp_signed("!=", b.load(word_ptr(b, self.status, 0), typ=I64), i64(0))
        cont = self.entry.append_basic_block("ok")
        b.cbranch(failed, self.exit_block, cont)
        b.position_at_end(cont)

    def call_loop(
        self, kernel: LoopKernel, buffers: list[Buf], shifts: dict[Buf, int] | None = None
    ) -> None:
        """Call ``kernel`` on ``buffers`` (its parameters, partial sums
        excluded), each pointer advanced by its shift in elements; a kernel
        split into chunks runs as a parallel region."""
        shifts = shifts or {}
        ptrs = [self.ptr_at(buf, shifts.get(buf, 0)) for buf in buffers]
        b = self.b
        if kernel.chunks == 1:
            b.call(kernel.fn, [*ptrs, i64(0), i64(kernel.outer), i64(0)])
            return
        partial_bufs = []
        for p in kernel.partials:
            nbytes = (kernel.chunks - 1) * p.count * p.buf.dtype.itemsize
            partial_bufs.append(self.scratch(nbytes, p.buf.dtype))
        all_ptrs = ptrs + [self.ptr(buf) for buf in partial_bufs]
        task = self._tasks.get(kernel.fn.name)
        if task is None:
            task = loop_task(
                self.module,
                kernel.fn,
                len(all_ptrs),
                kernel.outer,
                kernel.chunks,
                each=bool(kernel.partials),
            )
            self._tasks[kernel.fn.name] = task
        self.region(task, all_ptrs, kernel.chunks)
        # Chunk 0 reduced into the output; the others' partials follow in
        # chunk order, so the result does not depend on the thread count.
        emitter = ScalarEmitter(b, self.math)
        for p, real in zip(kernel.partials, partial_bufs):
            out_ptr = self.ptr(buffers[kernel.buffers.index(p.out)])
            part_ptr = self.ptr(real)
            with counted_loop(b, i64(0), i64((kernel.chunks - 1) * p.count), "comb") as j:
                k = b.srem(j, i64(p.count))
                dst = elem_ptr(b, out_ptr, p.buf.dtype, k)
                x = load(b, elem_ptr(b, part_ptr, p.buf.dtype, j), p.buf.dtype)
                store(
                    b,
                    combine(emitter, p.kind, p.buf.dtype, load(b, dst, p.buf.dtype), x),
                    dst,
                    p.buf.dtype,
                )

    def region(self, task: ir.Function, ptrs: list[ir.Value], chunks: int) -> None:
        """Run ``task(ctx, lo, hi)`` over ``chunks`` chunks on the worker pool."""
        self.layout.parallel_regions += 1
        if self.options.flush_denormals and fpmode.supported():
            task = fpmode.flushing_task(self.module, task)
        call_region(self.module, self.b, ir.IRBuilder(self.alloca_block), task, ptrs, chunks)

    def custom_kernel(
        self, n: Node, what: str, bufs: list[Buf]
    ) -> tuple[ir.Function, ir.IRBuilder, dict[Buf, ir.Value]]:
        """A new kernel function taking one pointer per buffer; call it with
        :meth:`call_custom` once its body is built (ending in ``ret void``)."""
        fn = ir.Function(
            self.module, ir.FunctionType(VOID, [PTR] * len(bufs)), self.kernel_name(n, what)
        )
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("noinline")  # kernels are shared; inlining only bloats the entry
        ptrs: dict[Buf, ir.Value] = {}
        for arg, buf in zip(fn.args, bufs):
            name = self.names.get(buf.key, "") if isinstance(buf.key, Value) else ""
            arg.name = name or "p"
            ptrs[buf] = arg
        return fn, ir.IRBuilder(fn.append_basic_block("entry")), ptrs

    def call_custom(self, fn: ir.Function, bufs: list[Buf]) -> None:
        self.b.call(fn, [self.ptr(buf) for buf in bufs])

    def shared_kernel(
        self,
        key: Any,
        n: Node,
        bufs: list[Buf],
        build: Callable[[ir.IRBuilder, dict[Buf, ir.Value]], None],
        what: str = "",
    ) -> None:
        """Call a custom kernel on ``bufs``, building it (``build`` emits the
        body before ``ret void``) only the first time ``key`` is seen."""
        fn = self._custom.get(key)
        if fn is None:
            fn, b, ptrs = self.custom_kernel(n, what, bufs)
            build(b, ptrs)
            b.ret_void()
            self._custom[key] = fn
        self.call_custom(fn, bufs)

    def run_loop_spec(self, spec: LoopSpec, n: Node, what: str = "") -> None:
        """Emit ``spec`` as a kernel and call it, threaded when it pays."""
        chunks = self.chunks_for(math.prod(spec.shape) * spec.cost())
        # Equal loops (an unrolled RNN has dozens) share one function.
        spec, shifts = normalize_offsets(spec)
        key = spec_key(spec, chunks)
        if can_fail(spec):
            self.mark_node()
        kernel = self._loop_kernels.get(key)
        if kernel is None:
            name = self.kernel_name(n, what)
            kernel = emit_loop_kernel(self.module, self.math, spec, name, chunks, self.error_hook())
            _mark_noalias(kernel)
            self._loop_kernels[key] = kernel
        self.call_loop(kernel, spec_buffers(spec), shifts)

    def chunks_for(self, work: int) -> int:
        """Chunks to split ``work`` into (1: run it as a plain call)."""
        if work < self.options.parallel_work:
            return 1
        return max(2, min(MAX_CHUNKS, work // max(self.options.chunk_work, 1)))

    def lower_as_loop(self, n: Node, body: Graph) -> bool:
        """Lower ``body`` applied to ``n``'s operands as one loop kernel; False
        when it does not fit one loop."""
        operands = [self.view(x) for x in n.inputs]
        outputs = [View.of(self.buf(v), v.type.shape) for v in n.outputs]
        return self.run_body_loop(n, body, operands, outputs, list(n.outputs))

    def view(self, x: Value | Literal) -> View | Literal:
        return x if isinstance(x, Literal) else View.of(self.buf(x), x.type.shape)

    def run_body_loop(
        self,
        n: Node,
        body: Graph,
        operands: list[View | Literal],
        outputs: list[View],
        named: list[Value],
    ) -> bool:
        names = {bv: self.names.get(v, "") for bv, v in zip(body.outputs, named)}
        for k, bn in enumerate(body.nodes):
            for v in bn.outputs:
                names.setdefault(v, f"t{k}")
        try:
            spec = build_loop_spec(body, operands, outputs, names)
        except NotALoop:
            return False
        self.run_loop_spec(spec, n)
        return True

    def lower_body(self, n: Node, body: Graph) -> None:
        """Run ``body`` node by node, its intermediates in scratch memory."""
        saved = dict(self.bufs)
        read: set[Buf] = set()
        for formal, actual in zip(body.inputs, n.inputs):
            if isinstance(actual, Value):
                self.bufs[formal] = self.buf(actual)
                read.add(self.bufs[formal])
            else:  # a literal operand: its value in scratch, for the nodes that read it
                held = self.scratch(actual.type.nbytes, actual.dtype)
                g = one_node_graph("stop_gradient", [actual.type])
                self.run_loop_spec(build_loop_spec(g, [actual], [View.of(held, ())], {}), n)
                self.bufs[formal] = held
        for formal, actual in zip(body.outputs, n.outputs):
            if formal not in self.bufs:
                out = self.buf(actual)
                # A donated result shares an operand's buffer; node by node it
                # would overwrite the operand before later nodes read it.
                if out in read:
                    out = self.scratch(actual.type.nbytes, actual.type.dtype)
                self.bufs[formal] = out
        for bn in body.nodes:
            for v in bn.outputs:
                # A constant has a slot of the root's (a loop or branch body
                # does not list it): a scratch buffer would never be written.
                if v not in self.bufs and v not in self.slots and v not in self.root.slots:
                    self.bufs[v] = self.scratch(v.type.nbytes, v.type.dtype)
        copies = [(f, a) for f, a in zip(body.outputs, n.outputs) if self.bufs[f] != self.buf(a)]
        # A kernel that fails reports the body's node (and its line), not the group.
        outer = self.inner_path
        k = next(i for i, s in enumerate(n.subgraphs) if s is body)
        for j, bn in enumerate(body.nodes):
            self.inner_path = (*outer, k, j)
            self.lower_node(bn, inner=True)
        self.inner_path = outer
        for f, a in copies:
            self.copy(self.bufs[f], self.buf(a), a.type.shape, a.type.dtype, n)
        self.bufs = saved

    def copy(self, src: Buf, dst: Buf, shape: tuple[int, ...], dtype: DType, n: Node) -> None:
        g = one_node_graph("stop_gradient", [TensorType(shape, dtype)])
        spec = build_loop_spec(g, [View.of(src, shape)], [View.of(dst, shape)], {})
        self.run_loop_spec(spec, n, ".copy")

    # -- driver --------------------------------------------------------------------------
    def lower_node(self, n: Node, inner: bool = False) -> None:
        self.current = n
        fn = LOWERINGS.get(n.op)
        if fn is None:
            raise unsupported(n, "the LLVM backend has no lowering for this op")
        try:
            fn(self, n)
        except GraphcError:
            raise
        except Exception as exc:  # a lowering bug: report it at the user's node
            raise unsupported(n, f"code generation failed: {type(exc).__name__}: {exc}") from exc

    def build(self) -> ir.Module:
        counters = None
        if self.options.profile:
            counters = Counters(self.module, len(self.g.nodes))
            counters.count_call(self.b)
            self.layout.profiled = True
        for i, n in enumerate(self.g.nodes):
            self.node_index = i
            self._scratch_cursor = 0
            started = counters.start(self.b) if counters else None
            self.lower_node(n)
            if counters:
                counters.stop(self.b, i, started)
        self.b.branch(self.exit_block)
        entry = ir.IRBuilder(self.alloca_block)
        if self.layout.uses_blas:
            single_thread_blas(self.module, entry, self.exit_block)
        if self.layout.parallel_regions:
            step_with_pool(self.module, entry, self.exit_block)
        if self.options.flush_denormals and fpmode.supported():
            fpmode.flush_in_entry(self.module, entry, self.exit_block, entry)
        entry.branch(self.entry.blocks[1])
        self.layout.arena_bytes = self.scratch_base + self.layout.scratch_bytes
        self.layout.error_paths = [list(p) for p in self.error_paths]
        return self.module


def one_node_graph(op: str, types: list[TensorType], **attrs: Any) -> Graph:
    b = GraphBuilder(op)
    args = [b.input(t, f"a{k}") for k, t in enumerate(types)]
    out = b.emit(op, *args, **attrs)
    return b.build(out if isinstance(out, tuple) else [out])


def node_graph(n: Node) -> Graph:
    """A graph holding only ``n``, one argument per operand (literals too), so
    its arguments line up with ``n.inputs`` as a fusion body's do."""
    b = GraphBuilder(n.op)
    ins = [b.input(x.type, f"a{k}") for k, x in enumerate(n.inputs)]
    node = b.copy_node(n, ins)
    return b.build(node.outputs)


def unsupported(n: Node, why: str) -> BackendError:
    ins = ", ".join(str(x.type) for x in n.inputs)
    outs = ", ".join(str(v.type) for v in n.outputs)
    return BackendError(
        format_message(
            f"llvm backend: cannot compile {n.op}({ins}) -> {outs}",
            details=[why],
            loc=n.loc,
            hint="run this function with backend='numpy', or report the missing lowering",
        )
    )


def _mark_noalias(kernel: LoopKernel) -> None:
    # Distinct buffers never overlap (the plan guarantees it for live values),
    # so every pointer parameter may be noalias; LLVM then vectorizes freely.
    for k in range(len(kernel.buffers)):
        kernel.fn.args[k].add_attribute("noalias")


_warned_threads: set[str] = set()


def default_threads() -> int:
    """``GRAPHC_NUM_THREADS`` if set to a number, else the usable cores."""
    env = os.environ.get("GRAPHC_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            if env not in _warned_threads:  # once per value, not per compile
                _warned_threads.add(env)
                warnings.warn(
                    f"GRAPHC_NUM_THREADS={env!r} is not a number; using all usable cores",
                    RuntimeWarning,
                    stacklevel=2,
                )
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
