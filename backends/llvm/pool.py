"""graphc's worker pool: one per process, native, shared by every executable.

(The same small runtime module also holds the native input check of
:mod:`.fastargs` and the GEMM kernels of :mod:`.gemm_kernel`, which built
here are compiled once per process, in the background, and cached on disk.)

A parallel region is ``graphc_parallel(task, ctx, n, threads)``: run
``task(ctx, lo, hi)`` over the chunks ``[0, n)``, on up to ``threads``
threads (the caller and ``threads - 1`` pool workers). The pool is a small
LLVM module built once per process (its object is kept in the disk cache);
generated code calls it by name, so cached executables stay valid.

How a region runs (all of it in native code, no GIL involved):

- The caller publishes the task and wakes the workers, then claims chunks
  itself. Chunks are claimed one at a time from one atomic word (generation,
  chunk count, next chunk), so whoever is running takes the next chunk: on a
  busy machine where a worker does not get a core, the caller simply does
  all the work, and nothing waits for a thread that never started.
- The region ends when every chunk is done; the caller spins (up to ~0.1
  ms), then sleeps on a condition variable until the last chunk finishes.
- Workers poll for the next region while a step runs: generated entry
  functions with parallel regions call ``graphc_pool_enter`` first and
  ``graphc_pool_leave`` last, and workers keep polling ~0.2 ms after the
  last step leaves (the Python code between two training steps). Waking a
  sleeping worker takes ~30 us here, which is what a 0.1 ms product gains
  from a second core, so without this splitting small products did not pay
  (W1 step on two threads: about 700 -> 560 us with it). Polling yields the
  CPU (``sched_yield``) between looks, so on a busy machine a worker that
  shares its caller's core does not take half of it, and workers do not
  poll while regions back off (below). A worker that finds no region for
  ~0.8 ms, or no running step, sleeps on a condition variable; an idle
  process burns no CPU.
- A caller that finds the pool busy (another thread's region, or a region
  started from inside a task) runs its chunks alone; so does every region
  when ``threads`` is 1. A single-thread run calls ``task(ctx, 0, n)`` once,
  which tasks may execute as one range.
- Workers are started lazily by the first region that wants them, so a
  process that never runs threaded code never creates a thread; after
  ``fork`` the child starts with no workers (``os.register_at_fork``);
  ``stop()`` (also run at exit) wakes and joins them.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading

import llvmlite.binding as llvm
import llvmlite.ir as ir

from . import fastargs, fpmode, gemm_kernel, target
from .irutil import I8, I32, I64, PTR, VOID, i64

PARALLEL_SYMBOL = "graphc_parallel"
STEP_SYMBOLS = ("graphc_pool_enter", "graphc_pool_leave")
STEP_TYPE = ir.FunctionType(VOID, [I64])
TASK_TYPE = ir.FunctionType(VOID, [PTR, I64, I64])
REGION_TYPE = ir.FunctionType(VOID, [PTR, PTR, I64, I64])
MAX_WORKERS = 63
MAX_CHUNKS = 0xFFFF  # the chunk count and index share one 64-bit word with the generation
# Cycles the caller polls for the last chunk before it sleeps (~0.1 ms):
# with polling workers the chunks end close together, and sleeping costs a
# ~30 us wake-up.
SPIN_CYCLES = 1 << 18
# After a region that the helpers made slower than running alone, regions
# run alone for BACKOFF_CYCLES << strikes cycles (~0.4 ms, doubling up to ~50 ms).
BACKOFF_CYCLES = 1 << 20
MAX_STRIKES = 7
# While a step runs, a worker that found no region for this many cycles
# (~0.8 ms) stops polling and sleeps until the next region.
HOT_CYCLES = 1 << 21
# After the last step leaves, workers keep polling this long (~0.2 ms): a
# training loop's Python code between two steps takes ~0.05 ms, and a
# worker woken from sleep arrives ~0.03 ms late for the next step's region.
LINGER_CYCLES = 1 << 19
NOT_TIRED = -1  # a step count never reached
# Opaque storage for one pthread mutex or condition variable (glibc needs 40
# and 48 bytes, other C libraries at most 64; initialized with *_init).
SYNC_BYTES = 128


class _Emitter:
    """Builds the pool module: its globals, libc declarations and helpers."""

    def __init__(self) -> None:
        m = self.m = ir.Module(name="graphc_pool")
        self.word = self._global("word", I64, align=64)  # gen << 32 | n << 16 | next
        self.done = self._global("done", I64, align=64)  # chunks finished
        self.task = self._global("task", PTR)
        self.ctx = self._global("ctx", PTR)
        self.limit = self._global("limit", I64)  # workers taking part in this region
        self.busy = self._global("busy", I32, align=64)  # a region is running
        self.active = self._global("active", I64, align=64)  # steps running (workers poll)
        self.linger = self._global("linger", I64)  # cycle count until which workers poll anyway
        self.steps = self._global("steps", I64)  # steps ever entered (wakes tired workers)
        self.stop = self._global("stop", I32)
        self.workers = self._global("workers", I64)
        self.ready = self._global("ready", I32)  # sync objects initialized
        self.backoff = self._global("backoff", I64)  # cycle count until which regions run alone
        self.strikes = self._global("strikes", I64)  # regions in a row that helpers slowed down
        self.handles = self._global("handles", ir.ArrayType(I64, MAX_WORKERS))
        self.sync = self._global("sync", ir.ArrayType(I8, 3 * SYNC_BYTES), align=64)

        def decl(name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
            return ir.Function(m, ir.FunctionType(ret, args), name)

        self.create = decl("pthread_create", I32, [PTR, PTR, PTR, PTR])
        self.join = decl("pthread_join", I32, [I64, PTR])
        self.mutex_init = decl("pthread_mutex_init", I32, [PTR, PTR])
        self.lock_fn = decl("pthread_mutex_lock", I32, [PTR])
        self.unlock_fn = decl("pthread_mutex_unlock", I32, [PTR])
        self.cond_init = decl("pthread_cond_init", I32, [PTR, PTR])
        self.wait_fn = decl("pthread_cond_wait", I32, [PTR, PTR])
        self.broadcast_fn = decl("pthread_cond_broadcast", I32, [PTR])
        self.clock = decl("llvm.readcyclecounter", I64, [])
        self.yield_fn = decl("sched_yield", I32, [])
        self.pause: ir.Function | None = None
        if target.host().triple.startswith(("x86_64", "i686", "i386")):
            self.pause = decl("llvm.x86.sse2.pause", VOID, [])

    def _global(self, name: str, ty: ir.Type, align: int = 8) -> ir.GlobalVariable:
        g = ir.GlobalVariable(self.m, ty, f"graphc_pool.{name}")
        g.linkage = "internal"
        g.initializer = ir.Constant(ty, None)
        g.align = align
        return g

    def sync_ptr(self, b: ir.IRBuilder, k: int) -> ir.Value:
        """0: the mutex; 1: workers' condition (new region); 2: caller's (region done)."""
        return b.gep(self.sync, [i64(k * SYNC_BYTES)], inbounds=True, source_etype=I8)

    def function(self, name: str, ret: ir.Type, args: list[ir.Type], export: bool = False):  # noqa: ANN201
        fn = ir.Function(self.m, ir.FunctionType(ret, args), name)
        if not export:
            fn.linkage = "internal"
        fn.attributes.add("nounwind")
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    def lock(self, b: ir.IRBuilder) -> None:
        b.call(self.lock_fn, [self.sync_ptr(b, 0)])

    def unlock(self, b: ir.IRBuilder) -> None:
        b.call(self.unlock_fn, [self.sync_ptr(b, 0)])

    def now(self, b: ir.IRBuilder) -> ir.Value:
        return b.call(self.clock, [])

    def atomic_load(self, b: ir.IRBuilder, g: ir.GlobalVariable, ty: ir.Type) -> ir.Value:
        return b.load_atomic(g, "acquire", ty.width // 8, typ=ty)


def _build_claim(e: _Emitter) -> ir.Function:
    """claim(gen): take and run chunks of region ``gen`` until none is left;
    returns how many this thread ran."""
    fn, b = e.function("graphc_pool.claim", I64, [I64])
    gen = fn.args[0]
    start = b.block
    loop = fn.append_basic_block("loop")
    check = fn.append_basic_block("check")
    take = fn.append_basic_block("take")
    run = fn.append_basic_block("run")
    last = fn.append_basic_block("last")
    out = fn.append_basic_block("out")
    b.branch(loop)
    b.position_at_end(loop)
    count = b.phi(I64, name="count")
    count.add_incoming(i64(0), start)
    w = e.atomic_load(b, e.word, I64)
    b.cbranch(b.icmp_unsigned("==", b.lshr(w, i64(32)), gen), check, out)
    b.position_at_end(check)
    nxt = b.and_(w, i64(0xFFFF))
    n = b.and_(b.lshr(w, i64(16)), i64(0xFFFF))
    b.cbranch(b.icmp_unsigned("<", nxt, n), take, out)
    b.position_at_end(take)
    pair = b.cmpxchg(e.word, w, b.add(w, i64(1)), "acq_rel", "acquire")
    count.add_incoming(count, take)
    b.cbranch(b.extract_value(pair, 1), run, loop)
    b.position_at_end(run)
    # The claim holds the region open (the caller waits for this chunk), so
    # the task and context read now are this region's.
    task = b.load(e.task, typ=PTR)
    ctx = b.load(e.ctx, typ=PTR)
    b.call(_Callee(task, TASK_TYPE), [ctx, nxt, b.add(nxt, i64(1))])
    more = b.add(count, i64(1))
    finished = b.add(b.atomic_rmw("add", e.done, i64(1), "acq_rel"), i64(1))
    count.add_incoming(more, run)
    b.cbranch(b.icmp_unsigned("==", finished, n), last, loop)
    b.position_at_end(last)
    e.lock(b)
    b.call(e.broadcast_fn, [e.sync_ptr(b, 2)])
    e.unlock(b)
    count.add_incoming(more, last)
    b.branch(loop)
    b.position_at_end(out)
    b.ret(count)
    return fn


def _build_worker(e: _Emitter, claim: ir.Function) -> ir.Function:
    """A worker thread: wait for a new region, take part, repeat.

    While a step is active (``graphc_pool_enter`` .. ``graphc_pool_leave``)
    the worker polls for the next region instead of sleeping, for at most
    HOT_CYCLES without work; otherwise it sleeps on a condition variable."""
    fn, b = e.function("graphc_pool.worker", PTR, [PTR])
    wid = b.ptrtoint(fn.args[0], I64)
    seen = b.alloca(I64)
    # The step count (``steps``) when the worker last polled HOT_CYCLES for
    # nothing: it then sleeps until a region or a step that started later.
    tired_at = b.alloca(I64)
    idle_since = b.alloca(I64)
    b.store(i64(NOT_TIRED), tired_at)
    if fpmode.supported():
        # A thread starts with its creator's MXCSR, which may be flushing
        # denormals (a step run with flush_denormals): start in IEEE mode.
        fpmode.ieee_mode(e.m, b)
    e.lock(b)
    b.store(b.lshr(b.load(e.word, typ=I64), i64(32)), seen)
    e.unlock(b)
    top = fn.append_basic_block("top")
    poll = fn.append_basic_block("poll")
    poll_fresh = fn.append_basic_block("poll_fresh")
    poll_idle = fn.append_basic_block("poll_idle")
    poll_keep = fn.append_basic_block("poll_keep")
    poll_tired = fn.append_basic_block("poll_tired")
    cold = fn.append_basic_block("cold")
    wait = fn.append_basic_block("wait")
    check_gen = fn.append_basic_block("check_gen")
    check_hot = fn.append_basic_block("check_hot")
    rehot = fn.append_basic_block("rehot")
    sleep = fn.append_basic_block("sleep")
    woke = fn.append_basic_block("woke")
    work = fn.append_basic_block("work")
    quit_ = fn.append_basic_block("quit")
    b.branch(top)

    def backing_off(bb: ir.IRBuilder, now: ir.Value) -> ir.Value:
        # Regions run alone for now (the machine is busy): polling would
        # only take CPU time from the caller.
        return bb.icmp_unsigned("<", now, bb.load_atomic(e.backoff, "monotonic", 8, typ=I64))

    def hot(bb: ir.IRBuilder) -> ir.Value:
        active = e.atomic_load(bb, e.active, I64)
        steps = e.atomic_load(bb, e.steps, I64)
        not_tired = bb.icmp_unsigned("!=", bb.load(tired_at, typ=I64), steps)
        wanted = bb.and_(bb.icmp_unsigned("!=", active, i64(0)), not_tired)
        return bb.and_(wanted, bb.not_(backing_off(bb, e.now(bb))))

    b.position_at_end(top)
    b.store(e.now(b), idle_since)
    b.cbranch(hot(b), poll, cold)
    # Hot: poll the region word.
    b.position_at_end(poll)
    gen = b.lshr(e.atomic_load(b, e.word, I64), i64(32))
    b.cbranch(b.icmp_unsigned("!=", gen, b.load(seen, typ=I64)), poll_fresh, poll_idle)
    b.position_at_end(poll_fresh)
    b.store(gen, seen)
    limit = b.load_atomic(e.limit, "monotonic", 8, typ=I64)
    b.cbranch(b.icmp_unsigned("<", wid, limit), work, top)
    b.position_at_end(poll_idle)
    # Yield rather than only pause: when the machine is busy and the caller
    # shares this worker's core, polling would take half its time.
    b.call(e.yield_fn, [])
    stopping = b.icmp_unsigned("!=", b.load_atomic(e.stop, "monotonic", 4, typ=I32),
                               ir.Constant(I32, 0))  # fmt: skip
    now = e.now(b)
    # active first: leave stores linger before it decrements active.
    no_step = b.icmp_unsigned("==", e.atomic_load(b, e.active, I64), i64(0))
    lingering = b.icmp_unsigned("<", now, e.atomic_load(b, e.linger, I64))
    idle_step = b.and_(no_step, b.not_(lingering))
    b.cbranch(b.or_(b.or_(stopping, idle_step), backing_off(b, now)), cold, poll_keep)
    b.position_at_end(poll_keep)
    idle = b.sub(now, b.load(idle_since, typ=I64))
    b.cbranch(b.icmp_unsigned("<", idle, i64(HOT_CYCLES)), poll, poll_tired)
    b.position_at_end(poll_tired)
    b.store(e.atomic_load(b, e.steps, I64), tired_at)
    b.branch(cold)
    # Cold: sleep until a new region, a step starting, or stop.
    b.position_at_end(cold)
    e.lock(b)
    b.branch(wait)
    b.position_at_end(wait)
    stopping = b.icmp_unsigned("!=", b.load(e.stop, typ=I32), ir.Constant(I32, 0))
    b.cbranch(stopping, quit_, check_gen)
    b.position_at_end(check_gen)
    gen = b.lshr(b.load(e.word, typ=I64), i64(32))
    fresh = b.icmp_unsigned("!=", gen, b.load(seen, typ=I64))
    b.cbranch(fresh, woke, check_hot)
    b.position_at_end(check_hot)
    b.cbranch(hot(b), rehot, sleep)
    b.position_at_end(rehot)
    e.unlock(b)
    b.branch(top)
    b.position_at_end(sleep)
    b.call(e.wait_fn, [e.sync_ptr(b, 1), e.sync_ptr(b, 0)])
    b.branch(wait)
    b.position_at_end(woke)
    limit = b.load(e.limit, typ=I64)
    e.unlock(b)
    b.store(gen, seen)
    b.cbranch(b.icmp_unsigned("<", wid, limit), work, top)
    b.position_at_end(work)
    b.store(i64(NOT_TIRED), tired_at)
    b.call(claim, [b.load(seen, typ=I64)])
    b.branch(top)
    b.position_at_end(quit_)
    e.unlock(b)
    b.ret(ir.Constant(PTR, None))
    return fn


def _build_init(e: _Emitter) -> ir.Function:
    """init(): (re)initialize the mutex and conditions and forget all workers."""
    fn, b = e.function("graphc_pool.init", VOID, [])
    null = ir.Constant(PTR, None)
    b.call(e.mutex_init, [e.sync_ptr(b, 0), null])
    b.call(e.cond_init, [e.sync_ptr(b, 1), null])
    b.call(e.cond_init, [e.sync_ptr(b, 2), null])
    b.store(i64(0), e.workers)
    b.store(ir.Constant(I32, 0), e.busy)
    b.store(ir.Constant(I32, 0), e.stop)
    b.store(ir.Constant(I32, 1), e.ready)
    b.ret_void()
    after_fork, b = e.function("graphc_pool_after_fork", VOID, [], export=True)
    b.call(fn, [])
    # Steps that other threads of the parent were running never leave here.
    b.store(i64(0), e.active)
    b.store(i64(0), e.linger)
    b.ret_void()
    return fn


def _build_grow(e: _Emitter, worker: ir.Function, init: ir.Function) -> ir.Function:
    """grow(want): start workers until ``want`` run (called while owning ``busy``)."""
    fn, b = e.function("graphc_pool.grow", VOID, [I64])
    want = fn.args[0]
    want = b.select(b.icmp_signed(">", want, i64(MAX_WORKERS)), i64(MAX_WORKERS), want)
    not_ready = b.icmp_unsigned("==", b.load(e.ready, typ=I32), ir.Constant(I32, 0))
    with b.if_then(not_ready):
        b.call(init, [])
    loop = fn.append_basic_block("loop")
    make = fn.append_basic_block("make")
    made = fn.append_basic_block("made")
    out = fn.append_basic_block("out")
    b.branch(loop)
    b.position_at_end(loop)
    have = b.load(e.workers, typ=I64)
    b.cbranch(b.icmp_signed("<", have, want), make, out)
    b.position_at_end(make)
    handle = b.gep(e.handles, [have], inbounds=True, source_etype=I64)
    rc = b.call(e.create, [handle, ir.Constant(PTR, None), worker, b.inttoptr(have, PTR)])
    b.cbranch(b.icmp_signed("==", rc, ir.Constant(I32, 0)), made, out)
    b.position_at_end(made)
    b.store(b.add(have, i64(1)), e.workers)
    b.branch(loop)
    b.position_at_end(out)
    b.ret_void()
    return fn


def _build_parallel(e: _Emitter, claim: ir.Function, grow: ir.Function) -> ir.Function:
    fn, b = e.function(PARALLEL_SYMBOL, VOID, [PTR, PTR, I64, I64], export=True)
    task, ctx, n, threads = fn.args
    task.name, ctx.name, n.name, threads.name = "task", "ctx", "n", "threads"
    alone = fn.append_basic_block("alone")
    try_pool = fn.append_basic_block("try_pool")
    owned = fn.append_basic_block("owned")
    publish = fn.append_basic_block("publish")
    release = fn.append_basic_block("release")
    b.cbranch(b.and_(b.icmp_signed(">", n, i64(1)), b.icmp_signed(">", threads, i64(1))),
              try_pool, alone)  # fmt: skip
    b.position_at_end(alone)
    with b.if_then(b.icmp_signed(">", n, i64(0))):
        b.call(_Callee(task, TASK_TYPE), [ctx, i64(0), n])
    b.ret_void()
    b.position_at_end(try_pool)
    pair = b.cmpxchg(e.busy, ir.Constant(I32, 0), ir.Constant(I32, 1), "acquire", "monotonic")
    b.cbranch(b.extract_value(pair, 1), owned, alone)
    b.position_at_end(owned)
    b.call(grow, [b.sub(threads, i64(1))])
    helpers = b.load(e.workers, typ=I64)
    started = e.now(b)
    backing_off = b.icmp_unsigned("<", started, b.load_atomic(e.backoff, "monotonic", 8, typ=I64))
    with b.if_then(b.or_(b.icmp_signed("==", helpers, i64(0)), backing_off)):
        b.store_atomic(ir.Constant(I32, 0), e.busy, "release", 4)
        b.call(_Callee(task, TASK_TYPE), [ctx, i64(0), n])
        b.ret_void()
    b.branch(publish)
    b.position_at_end(publish)
    b.store(task, e.task)
    b.store(ctx, e.ctx)
    b.store_atomic(i64(0), e.done, "monotonic", 8)
    e.lock(b)
    gen = b.and_(b.add(b.lshr(b.load(e.word, typ=I64), i64(32)), i64(1)), i64(0xFFFFFFFF))
    limit = b.sub(threads, i64(1))
    limit = b.select(b.icmp_signed("<", limit, helpers), limit, helpers)
    b.store_atomic(limit, e.limit, "monotonic", 8)
    chunks = n  # at most MAX_CHUNKS (code generation keeps to that)
    word = b.or_(b.shl(gen, i64(32)), b.shl(chunks, i64(16)))
    b.store_atomic(word, e.word, "release", 8)
    b.call(e.broadcast_fn, [e.sync_ptr(b, 1)])
    e.unlock(b)
    mine = b.call(claim, [gen])
    claimed = e.now(b)
    # Wait for chunks other threads still run: poll a little, then sleep.
    spin = fn.append_basic_block("spin")
    spin_next = fn.append_basic_block("spin_next")
    sleep = fn.append_basic_block("sleep")
    wait = fn.append_basic_block("wait")
    nap = fn.append_basic_block("nap")
    woke = fn.append_basic_block("woke")
    judge = fn.append_basic_block("judge")
    b.branch(spin)
    b.position_at_end(spin)
    all_done = b.icmp_unsigned("==", e.atomic_load(b, e.done, I64), chunks)
    b.cbranch(all_done, judge, spin_next)
    b.position_at_end(spin_next)
    if e.pause is not None:
        b.call(e.pause, [])
    spinning = b.icmp_unsigned("<", b.sub(e.now(b), claimed), i64(SPIN_CYCLES))
    b.cbranch(spinning, spin, sleep)
    b.position_at_end(sleep)
    e.lock(b)
    b.branch(wait)
    b.position_at_end(wait)
    all_done = b.icmp_unsigned("==", e.atomic_load(b, e.done, I64), chunks)
    b.cbranch(all_done, woke, nap)
    b.position_at_end(nap)
    b.call(e.wait_fn, [e.sync_ptr(b, 2), e.sync_ptr(b, 0)])
    b.branch(wait)
    b.position_at_end(woke)
    e.unlock(b)
    b.branch(judge)
    b.position_at_end(judge)
    _judge_region(e, b, started, claimed, mine, chunks)
    b.branch(release)
    b.position_at_end(release)
    b.store_atomic(ir.Constant(I32, 0), e.busy, "release", 4)
    b.ret_void()
    return fn


def _build_step(e: _Emitter, grow: ir.Function) -> None:
    """enter(threads) / leave(threads): bracket a step that has parallel
    regions. While any step runs, workers poll for regions instead of
    sleeping between them: waking a sleeping worker costs ~30 us per region,
    more than a small product gains from a second core. enter starts the
    workers (first step) and wakes them; with ``threads`` <= 1 both do
    nothing."""
    enter, b = e.function(STEP_SYMBOLS[0], VOID, [I64], export=True)
    threads = enter.args[0]
    with b.if_then(b.icmp_signed(">", threads, i64(1))):
        # Counted whatever happens below, as leave always uncounts it.
        b.atomic_rmw("add", e.active, i64(1), "acq_rel")
        b.atomic_rmw("add", e.steps, i64(1), "acq_rel")
        helpers = b.sub(threads, i64(1))
        helpers = b.select(b.icmp_signed(">", helpers, i64(MAX_WORKERS)), i64(MAX_WORKERS), helpers)
        missing = b.icmp_signed("<", b.load(e.workers, typ=I64), helpers)
        with b.if_then(missing):
            pair = b.cmpxchg(e.busy, ir.Constant(I32, 0), ir.Constant(I32, 1), "acquire",
                             "monotonic")  # fmt: skip
            with b.if_then(b.extract_value(pair, 1)):
                b.call(grow, [b.sub(threads, i64(1))])
                b.store_atomic(ir.Constant(I32, 0), e.busy, "release", 4)
        with b.if_then(b.icmp_unsigned("!=", b.load(e.ready, typ=I32), ir.Constant(I32, 0))):
            e.lock(b)
            b.call(e.broadcast_fn, [e.sync_ptr(b, 1)])
            e.unlock(b)
    b.ret_void()
    leave, b = e.function(STEP_SYMBOLS[1], VOID, [I64], export=True)
    threads = leave.args[0]
    with b.if_then(b.icmp_signed(">", threads, i64(1))):
        b.store_atomic(b.add(e.now(b), i64(LINGER_CYCLES)), e.linger, "release", 8)
        b.atomic_rmw("sub", e.active, i64(1), "acq_rel")
    b.ret_void()


def _judge_region(
    e: _Emitter, b: ir.IRBuilder, started: ir.Value, claimed: ir.Value, mine: ir.Value, n: ir.Value
) -> None:
    """After a region: if waiting for the helpers made it slower than the
    caller alone would have been (its own time per chunk times the chunk
    count), the helpers did not get a core in time (a busy machine): run the
    next regions alone for a while, twice as long after each such region in
    a row. One region that goes well ends the backoff."""
    ended = e.now(b)
    safe_mine = b.select(b.icmp_signed(">", mine, i64(0)), mine, i64(1))
    alone = b.mul(b.udiv(b.sub(claimed, started), safe_mine), n)
    # Only a helper that took a chunk can have made the region slower.
    helped = b.and_(b.icmp_signed(">", mine, i64(0)), b.icmp_signed("<", mine, n))
    slower = b.and_(helped, b.icmp_unsigned(">", b.sub(ended, started), alone))
    with b.if_else(slower) as (then, otherwise):
        with then:
            strikes = b.load(e.strikes, typ=I64)
            strikes = b.select(b.icmp_signed("<", strikes, i64(MAX_STRIKES)),
                               b.add(strikes, i64(1)), strikes)  # fmt: skip
            b.store(strikes, e.strikes)
            b.store_atomic(b.add(ended, b.shl(i64(BACKOFF_CYCLES), strikes)), e.backoff,
                           "monotonic", 8)  # fmt: skip
        with otherwise:
            b.store(i64(0), e.strikes)


def _build_stop(e: _Emitter) -> None:
    """stop(): wake every worker, let it exit, join it; the next region starts
    workers again. stop owns ``busy`` meanwhile (after the region running
    now, if any), so no region or step starts a worker it would not join."""
    fn, b = e.function("graphc_pool_stop", VOID, [], export=True)
    with b.if_then(b.icmp_unsigned("!=", b.load(e.ready, typ=I32), ir.Constant(I32, 0))):
        acquire = fn.append_basic_block("acquire")
        wait_busy = fn.append_basic_block("wait_busy")
        owned = fn.append_basic_block("owned")
        b.branch(acquire)
        b.position_at_end(acquire)
        pair = b.cmpxchg(e.busy, ir.Constant(I32, 0), ir.Constant(I32, 1), "acquire", "monotonic")
        b.cbranch(b.extract_value(pair, 1), owned, wait_busy)
        b.position_at_end(wait_busy)
        b.call(e.yield_fn, [])
        b.branch(acquire)
        b.position_at_end(owned)
        e.lock(b)
        b.store(ir.Constant(I32, 1), e.stop)
        b.call(e.broadcast_fn, [e.sync_ptr(b, 1)])
        e.unlock(b)
        have = b.load(e.workers, typ=I64)
        loop = fn.append_basic_block("join")
        done = fn.append_basic_block("joined")
        before = b.block
        b.cbranch(b.icmp_signed(">", have, i64(0)), loop, done)
        b.position_at_end(loop)
        k = b.phi(I64)
        k.add_incoming(i64(0), before)
        handle = b.load(b.gep(e.handles, [k], inbounds=True, source_etype=I64), typ=I64)
        b.call(e.join, [handle, ir.Constant(PTR, None)])
        nk = b.add(k, i64(1))
        k.add_incoming(nk, loop)
        b.cbranch(b.icmp_signed("<", nk, have), loop, done)
        b.position_at_end(done)
        e.lock(b)
        b.store(i64(0), e.workers)
        b.store(ir.Constant(I32, 0), e.stop)
        e.unlock(b)
        b.store_atomic(ir.Constant(I32, 0), e.busy, "release", 4)
    b.ret_void()
    fn2, b2 = e.function("graphc_pool_workers", I64, [], export=True)
    b2.ret(b2.load(e.workers, typ=I64))
    # The cycle counter that profiled code reads, for calibrating it.
    fn3, b3 = e.function("graphc_pool_cycles", I64, [], export=True)
    b3.ret(e.now(b3))


def module_text() -> str:
    """The pool module's LLVM IR."""
    e = _Emitter()
    claim = _build_claim(e)
    worker = _build_worker(e, claim)
    init = _build_init(e)
    grow = _build_grow(e, worker, init)
    _build_parallel(e, claim, grow)
    _build_step(e, grow)
    _build_stop(e)
    fastargs.define(e.m)
    gemm_kernel.define_kernels(e.m)
    return str(e.m)


class _Callee:
    """Lets IRBuilder.call call an opaque function pointer of a known type."""

    def __init__(self, ptr: ir.Value, fnty: ir.FunctionType) -> None:
        self.ptr = ptr
        self.function_type = fnty
        self.type = PTR

    def get_reference(self) -> str:
        return self.ptr.get_reference()


class Pool:
    """The process's pool: native entry points, as ctypes functions."""

    def __init__(self, engine: llvm.ExecutionEngine) -> None:
        address = engine.get_function_address
        self.parallel_address = address(PARALLEL_SYMBOL)
        self.step_addresses = {name: address(name) for name in STEP_SYMBOLS}
        self.gemm_addresses = {name: address(name) for name in gemm_kernel.SYMBOLS.values()}
        self._stop = ctypes.CFUNCTYPE(None)(address("graphc_pool_stop"))
        self._reset = ctypes.CFUNCTYPE(None)(address("graphc_pool_after_fork"))
        self._workers = ctypes.CFUNCTYPE(ctypes.c_int64)(address("graphc_pool_workers"))
        self.cycles = ctypes.CFUNCTYPE(ctypes.c_int64)(address("graphc_pool_cycles"))
        region = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                  ctypes.c_int64)  # fmt: skip
        self.run = region(self.parallel_address)
        self.check_args = fastargs.verified(address(fastargs.SYMBOL))

    def workers(self) -> int:
        """Worker threads running now (the pool starts them on demand)."""
        return int(self._workers())

    def stop(self) -> None:
        """Join every worker; later regions start them again."""
        self._stop()

    def after_fork(self) -> None:
        # The child has none of the parent's threads; forget them (and any
        # region the parent was running) and re-initialize the locks.
        self._reset()


_lock = threading.Lock()
_pool: list[Pool] = []
_builder: list[threading.Thread] = []


def prepare() -> None:
    """Start building the pool on a background thread, unless it exists.

    A first compile in a process with an empty disk cache spends ~0.06 s
    building the pool; started when tracing starts, that work overlaps
    tracing and the passes, which hold the GIL, while LLVM does not. The
    compile itself calls :func:`pool` before it uses LLVM, which waits for
    this build (one LLVM context must not be used by two threads at once).
    """
    if _pool or _builder:
        return
    target.host()  # LLVM's one-time initialization, on the calling thread
    with _lock:
        if _pool or _builder:
            return
        thread = threading.Thread(target=_build_quietly, name="graphc-pool-build", daemon=True)
        _builder.append(thread)
    thread.start()
    # LLVM must not be torn down under a build still running at exit, and a
    # forked child must not inherit the locks the build holds.
    atexit.register(thread.join)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=thread.join)


def _build_quietly() -> None:
    try:
        pool()
    except Exception:  # noqa: BLE001 - the compile's own pool() call raises it
        pass


def pool() -> Pool:
    """Build (or load from the disk cache) the pool and register its entry
    point for generated code; done once per process."""
    if _pool:
        return _pool[0]
    from . import cache as cache_mod

    with _lock:
        if _pool:
            return _pool[0]
        # The key covers this module's source (cache_key hashes the backend's
        # files), so the IR text is only built when the object is not cached.
        directory = cache_mod.cache_dir()
        key = cache_mod.cache_key("pool", target.host().key())
        entry = cache_mod.load(directory, key) if directory is not None else None
        if entry is not None:
            obj = entry.obj
        else:
            text = module_text()
            mod = target.parse_and_verify(text)
            target.optimize(mod)
            obj = target.emit_object(mod)
            if directory is not None:
                cache_mod.store(directory, key, cache_mod.Entry(obj, {}, text))
        engine = target.load_object(obj)
        p = Pool(engine)
        # Worker threads run this code for the rest of the process, so the
        # engine must never be freed (not even while Python shuts down):
        # detached, its memory is never released.
        engine.detach()
        llvm.add_symbol(PARALLEL_SYMBOL, p.parallel_address)
        for name, addr in p.gemm_addresses.items():
            llvm.add_symbol(name, addr)
        for name, addr in p.step_addresses.items():
            llvm.add_symbol(name, addr)
        atexit.register(p.stop)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=p.after_fork)
        _pool.append(p)
        return p
