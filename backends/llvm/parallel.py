"""Threads for large kernels: a fork-join helper written in LLVM IR over pthreads.

``graphc.parallel(task, bufs, n, threads)`` splits ``range(n)`` into
``threads`` chunks, starts ``threads - 1`` POSIX threads that each run
``task(bufs, lo, hi, tid)`` on a chunk, runs chunk 0 itself, and joins. If a
thread cannot be created its chunk runs on the calling thread, so the result
never depends on thread creation. Kernels are only split when their work is
large (see ``codegen.PARALLEL_WORK``), where the cost of starting a thread
(tens of microseconds) is small next to the kernel. BLAS calls run between
kernels, never during one, so graphc's threads and BLAS's own pool are never
busy at the same time.
"""

from __future__ import annotations

import llvmlite.ir as ir

from .irutil import I32, I64, PTR, VOID, alloca, counted_loop, i64

TASK_TYPE = ir.FunctionType(VOID, [PTR, I64, I64, I64])
# A thread's context is five 8-byte words: task, bufs, lo, hi, tid.
_CTX_WORDS = 5
_CTX_TYPES = (PTR, PTR, I64, I64, I64)


def _word(b: ir.IRBuilder, base: ir.Value, index: ir.Value | int, ty: ir.Type) -> ir.Value:
    idx = i64(index) if isinstance(index, int) else index
    return b.gep(base, [idx], source_etype=ty)


def define_parallel(module: ir.Module) -> ir.Function:
    """Define (once) and return ``graphc.parallel`` in ``module``."""
    existing = module.globals.get("graphc.parallel")
    if existing is not None:
        return existing
    create = ir.Function(module, ir.FunctionType(I32, [PTR, PTR, PTR, PTR]), "pthread_create")
    join = ir.Function(module, ir.FunctionType(I32, [I64, PTR]), "pthread_join")

    main = ir.Function(module, ir.FunctionType(PTR, [PTR]), "graphc.thread_main")
    main.linkage = "internal"
    b = ir.IRBuilder(main.append_basic_block("entry"))
    ctx = main.args[0]
    fields = [b.load(_word(b, ctx, k, t), typ=t) for k, t in enumerate(_CTX_TYPES)]
    b.call(_as_task(b, fields[0]), fields[1:])
    b.ret(ir.Constant(PTR, None))

    fn = ir.Function(module, ir.FunctionType(VOID, [PTR, PTR, I64, I64]), "graphc.parallel")
    fn.linkage = "internal"
    task, bufs, n, threads = fn.args
    task.name, bufs.name, n.name, threads.name = "task", "bufs", "n", "threads"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    chunk = b.sdiv(b.add(n, b.sub(threads, i64(1))), threads, name="chunk")
    ctxs = alloca(b, I64, b.mul(threads, i64(_CTX_WORDS)), name="ctxs")
    handles = alloca(b, I64, threads, name="handles")
    with counted_loop(b, i64(1), threads, "t") as t:
        c = b.gep(ctxs, [b.mul(t, i64(_CTX_WORDS))], source_etype=I64)
        lo = b.mul(t, chunk)
        hi = b.add(lo, chunk)
        hi = b.select(b.icmp_signed("<", hi, n), hi, n)
        for k, (v, ty) in enumerate(zip([task, bufs, lo, hi, t], _CTX_TYPES)):
            b.store(v, _word(b, c, k, ty))
        h = b.gep(handles, [t], source_etype=I64)
        rc = b.call(create, [h, ir.Constant(PTR, None), main, c])
        failed = b.icmp_signed("!=", rc, ir.Constant(I32, 0))
        with b.if_then(failed):
            b.store(i64(0), h)
            b.call(_as_task(b, task), [bufs, lo, hi, t])
    first_hi = b.select(b.icmp_signed("<", chunk, n), chunk, n)
    b.call(_as_task(b, task), [bufs, i64(0), first_hi, i64(0)])
    with counted_loop(b, i64(1), threads, "j") as t:
        h = b.load(b.gep(handles, [t], source_etype=I64), typ=I64)
        with b.if_then(b.icmp_signed("!=", h, i64(0))):
            b.call(join, [h, ir.Constant(PTR, None)])
    b.ret_void()
    return fn


def _as_task(b: ir.IRBuilder, ptr: ir.Value) -> ir.Value:
    # Calls through an opaque pointer need the callee's function type.
    return _TypedCallee(ptr)


class _TypedCallee:
    """Adapter so IRBuilder.call can call an opaque function pointer."""

    def __init__(self, ptr: ir.Value) -> None:
        self.ptr = ptr
        self.function_type = TASK_TYPE
        self.type = PTR

    def get_reference(self) -> str:
        return self.ptr.get_reference()
