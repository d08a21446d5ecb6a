"""Parallel regions in generated code.

A kernel worth splitting becomes a *task* ``task(ctx, lo, hi)`` over a fixed
number of chunks, and the entry function calls the process's worker pool
(:mod:`.pool`) as ``graphc_parallel(task, ctx, chunks, threads)``. The
chunking is decided here, at compile time, from the amount of work alone;
the number of threads is only known at run time (the module global
``graphc_threads``, set by the executable). So the generated code, and the
results, are the same for any thread count: a reduction split into chunks
combines the chunks' partial results in chunk order whether one thread or
several computed them.
"""

from __future__ import annotations

import llvmlite.ir as ir

from .irutil import I64, PTR, alloca, counted_loop, i64
from .pool import PARALLEL_SYMBOL, REGION_TYPE, STEP_SYMBOLS, STEP_TYPE, TASK_TYPE

THREADS_SYMBOL = "graphc_threads"
# Chunks per region at most: enough to balance the work when a thread is
# slow to start or loses its core, few enough that claiming one is cheap.
MAX_CHUNKS = 64


def threads_global(module: ir.Module) -> ir.GlobalVariable:
    """The module's thread budget, written by the runtime (default 1)."""
    existing = module.globals.get(THREADS_SYMBOL)
    if existing is not None:
        return existing
    g = ir.GlobalVariable(module, I64, THREADS_SYMBOL)
    g.initializer = i64(1)
    g.align = 8
    return g


def step_with_pool(module: ir.Module, entry: ir.IRBuilder, exit_block: ir.Block) -> None:
    """Bracket the entry function with the pool's step enter/leave (at
    ``entry``, and before ``exit_block`` returns), so the workers stay awake
    between this step's regions. The thread count is read once: the runtime
    may change it for the next call while this one runs."""
    threads = entry.load(threads_global(module), typ=I64, name="step_threads")
    enter, leave = (
        module.globals.get(name) or ir.Function(module, STEP_TYPE, name) for name in STEP_SYMBOLS
    )
    entry.call(enter, [threads])
    b = ir.IRBuilder()
    b.position_before(exit_block.terminator)
    b.call(leave, [threads])


def call_region(
    module: ir.Module,
    b: ir.IRBuilder,
    alloca_builder: ir.IRBuilder,
    task: ir.Function,
    ctx_ptrs: list[ir.Value],
    chunks: int,
) -> None:
    """Run ``task`` over ``chunks`` chunks on the pool; ``ctx_ptrs`` are stored
    in a pointer array that the task receives as ``ctx``."""
    assert 1 <= chunks <= MAX_CHUNKS
    region = module.globals.get(PARALLEL_SYMBOL) or ir.Function(
        module, REGION_TYPE, PARALLEL_SYMBOL
    )
    ctx = alloca(alloca_builder, PTR, max(len(ctx_ptrs), 1))
    for k, p in enumerate(ctx_ptrs):
        b.store(p, b.gep(ctx, [i64(k)], source_etype=PTR))
    threads = b.load(threads_global(module), typ=I64, name="threads")
    b.call(region, [task, ctx, i64(chunks), threads])


def loop_task(
    module: ir.Module, kernel_fn: ir.Function, nbufs: int, outer: int, chunks: int, each: bool
) -> ir.Function:
    """A task running loop kernel ``kernel_fn(bufs..., lo, hi, slot)`` on the
    outer-loop range of chunks ``[c0, c1)``. ``each``: call the kernel once per
    chunk with the chunk as its slot (kernels with per-chunk partial sums);
    otherwise once for the whole range."""
    fn = ir.Function(module, TASK_TYPE, kernel_fn.name + ".task")
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    ctx, c0, c1 = fn.args
    ctx.name, c0.name, c1.name = "ctx", "c0", "c1"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ptrs = [b.load(b.gep(ctx, [i64(k)], source_etype=PTR), typ=PTR) for k in range(nbufs)]
    per = -(-outer // chunks)

    def bound(c: ir.Value) -> ir.Value:
        x = b.mul(c, i64(per))
        return b.select(b.icmp_signed("<", x, i64(outer)), x, i64(outer))

    if each:
        with counted_loop(b, c0, c1, "chunk") as c:
            b.call(kernel_fn, [*ptrs, bound(c), bound(b.add(c, i64(1))), c])
    else:
        b.call(kernel_fn, [*ptrs, bound(c0), bound(c1), i64(0)])
    b.ret_void()
    return fn


def chunk_count(outer: int, work: int, parallel_work: int, chunk_work: int) -> int:
    """How many chunks to split ``work`` (over an outer loop of ``outer``
    iterations) into: 1 below ``parallel_work``, else about ``chunk_work`` each."""
    if work < parallel_work or outer < 2:
        return 1
    chunks = max(2, min(MAX_CHUNKS, work // max(chunk_work, 1), outer))
    per = -(-outer // chunks)
    return -(-outer // per)  # no empty chunks
