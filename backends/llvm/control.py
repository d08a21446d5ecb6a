"""Native loops and branches: ``scan`` and ``while`` as loops around bodies compiled
once, ``cond`` as a branch that runs only the taken side.

A body (a scan's step function, a while loop's predicate and body, each
branch of a cond) becomes an LLVM function of its own,
``graphc_body<N>.<name>(args, arena, top)``: ``args`` holds
pointers to its arguments and results, ``arena`` is its own block of
temporaries (planned once, first fit, inside the calling node's scratch
memory) and ``top`` is the entry function's pointer array, where the
pointers to constants are. Because the body is one function, the size of the
module and the compile time do not depend on the trip count.

A scan keeps each carry in two buffers, the scan's result and a scratch
copy, and alternates between them: step k reads the buffer step k-1 wrote
and writes the other, so a new carry never overwrites the old one it is
computed from. The parity is arranged so the last step writes the result.
The first step reads the initial carry where it is, with no copy. ``xs``
slices and ``ys`` rows are the stacked buffers advanced by ``t`` rows. A
while loop alternates the same way, counting its steps at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from graphc.ir import DType, Graph, Literal, Node, TensorType, Value
from graphc.ir.plan import align

from .buffers import Layout, _alias_reshapes, _first_fit, value_names
from .codegen import ModuleBuilder, lowering, one_node_graph
from .irutil import I64, PTR, VOID, alloca, counted_loop, elem_ptr, i64, load, word_ptr
from .loopspec import Buf, build_loop_spec
from .views import View


@dataclass
class BodyPlacement:
    """Where a body's values live: argument and result slots in ``args``,
    offsets in its arena, aliases; ``copies`` are results that are not
    computed into their slot (an argument passed through, a constant, a
    value returned twice) and are copied there after the body's nodes."""

    slots: dict[Value, int]
    offsets: dict[Value, int]
    aliases: dict[Value, Value]
    copies: list[tuple[int, Value]]
    arena_bytes: int


def place_body(body: Graph, constants: dict[Value, int]) -> BodyPlacement:
    """Slots for ``body``'s arguments and results, arena offsets for its
    temporaries (``constants`` are the top-level constant slots)."""
    n_in = len(body.inputs)
    slots = {v: i for i, v in enumerate(body.inputs)}
    copies: list[tuple[int, Value]] = []
    for j, v in enumerate(body.outputs):
        if v in slots or v in constants:
            copies.append((j, v))
        else:
            slots[v] = n_in + j
    missing = [v for n in body.nodes for v in n.outputs if v not in slots and v not in constants]
    offsets = _first_fit(body, missing, 0)
    end = max((o + _aligned(v) for v, o in offsets.items()), default=0)
    aliases: dict[Value, Value] = {}
    _alias_reshapes(body, {**slots, **constants}, offsets, aliases)
    return BodyPlacement(slots, offsets, aliases, copies, end)


def _aligned(v: Value) -> int:
    return align(v.type.nbytes)


class BodyBuilder(ModuleBuilder):
    """Builds one body as a function in the root builder's module."""

    def __init__(self, parent: ModuleBuilder, body: Graph, path: tuple[int, ...]) -> None:
        root = parent.root
        self.root = root
        self.g = body
        self.options = root.options
        self.module = root.module
        self.math = root.math
        self.names = value_names(body)
        self.status = root.status
        first_constant = len(root.g.inputs) + len(root.g.outputs)
        placed = place_body(body, {v: s for v, s in root.slots.items() if s >= first_constant})
        self.layout = Layout(len(body.inputs), [], [])
        self.slots = placed.slots
        self.offsets = placed.offsets
        self.aliases = placed.aliases
        self.scratch_base = placed.arena_bytes
        self.copies = placed.copies
        root.bodies += 1
        fnty = ir.FunctionType(VOID, [PTR, PTR, PTR])
        self.entry = ir.Function(self.module, fnty, f"graphc_body{root.bodies}.{body.name}")
        self.entry.linkage = "internal"
        self.entry.attributes.add("nounwind")
        self.entry.attributes.add("noinline")  # a loop calls it; inlined, nothing is gained
        for arg, name in zip(self.entry.args, ("args", "arena", "top")):
            arg.name = name
        self.alloca_block = self.entry.append_basic_block("entry")
        start = self.entry.append_basic_block("start")
        self.b = ir.IRBuilder(start)
        self.exit_block = self.entry.append_basic_block("exit")
        ir.IRBuilder(self.exit_block).ret_void()
        self._ptrs = {}
        self._scratch_cursor = 0
        self.node_index = -1
        self.bufs = {}
        self._loop_kernels = root._loop_kernels
        self._tasks = root._tasks
        self._custom = root._custom
        self.top_args = self.entry.args[2]
        self.path = path
        self.error_paths = root.error_paths
        self.may_fail = False
        self.bodies = 0

    def ptr(self, buf: Buf) -> ir.Value:
        key = buf.key
        found = self._ptrs.get(key)
        if found is not None:
            return found
        b = ir.IRBuilder(self.alloca_block)
        if isinstance(key, tuple) and key[0] == "out":
            p = self._load_slot(b, self.entry.args[0], len(self.g.inputs) + key[1])
        elif isinstance(key, Value) and key not in self.slots and key not in self.offsets:
            # A constant (of this body or of a fusion group in it): its
            # pointer is in the entry function's arguments.
            p = self._load_slot(b, self.top_args, self.root.slots[key])
        else:
            return super().ptr(buf)
        self._ptrs[key] = p
        return p

    @staticmethod
    def _load_slot(b: ir.IRBuilder, array: ir.Value, slot: int) -> ir.Value:
        return b.load(b.gep(array, [i64(slot)], source_etype=PTR), typ=PTR)

    def build_function(self) -> tuple[ir.Function, int]:
        """Emit the body; returns the function and the arena bytes it needs."""
        for i, n in enumerate(self.g.nodes):
            self.node_index = i
            self._scratch_cursor = 0
            self.lower_node(n)
        self._scratch_cursor = 0
        for j, v in self.copies:
            copy_into(self, self.view(v), Buf(("out", j), v.type.dtype), v.type)
        self.b.branch(self.exit_block)
        ir.IRBuilder(self.alloca_block).branch(self.entry.blocks[1])
        root = self.root
        root.layout.uses_blas |= self.layout.uses_blas
        root.layout.parallel_regions += self.layout.parallel_regions
        return self.entry, self.scratch_base + self.layout.scratch_bytes


def copy_into(mb: ModuleBuilder, src: View | Literal, dst: Buf, ty: TensorType) -> None:
    """``dst[...] = src`` (a literal fills it) as a loop kernel."""
    g = one_node_graph("stop_gradient", [ty])
    spec = build_loop_spec(g, [src], [View.of(dst, ty.shape)], {})
    mb.run_loop_spec(spec, g.nodes[0], ".copy")


def _materialize(mb: ModuleBuilder, x: Value | Literal) -> ir.Value:
    """A pointer to ``x``'s elements (a literal is written to scratch)."""
    if isinstance(x, Literal):
        buf = mb.scratch(x.type.nbytes, x.dtype)
        copy_into(mb, x, buf, x.type)
        return mb.ptr(buf)
    return mb.ptr(mb.buf(x))


def _call_body(
    mb: ModuleBuilder, fn: ir.Function, arena: ir.Value, args: ir.Value, may_fail: bool
) -> None:
    mb.b.call(fn, [args, arena, mb.top_args])
    if may_fail:
        mb.may_fail = True
        mb.check_status()


def _body(mb: ModuleBuilder, n: Node, k: int) -> tuple[ir.Function, ir.Value, bool]:
    child = BodyBuilder(mb, n.subgraphs[k], (*mb.path, mb.node_index, *mb.inner_path, k))
    fn, nbytes = child.build_function()
    arena = mb.ptr(mb.scratch(nbytes, DType.i64))
    return fn, arena, child.may_fail


def _result_bufs(mb: ModuleBuilder, n: Node, outs: list[Value]) -> tuple[list[Buf], list[Buf]]:
    """Where the code writes each result: its own buffer, or scratch when that
    buffer is also an operand's (a donated result), copied back afterwards."""
    read = {mb.buf(x) for x in n.inputs if isinstance(x, Value)}
    final = [mb.buf(v) for v in outs]
    work = [
        mb.scratch(v.type.nbytes, v.type.dtype) if f in read else f for v, f in zip(outs, final)
    ]
    return work, final


def _store_args(mb: ModuleBuilder, array: ir.Value, ptrs: list[ir.Value]) -> None:
    for k, p in enumerate(ptrs):
        mb.b.store(p, word_ptr(mb.b, array, k, PTR))


@lowering("scan")
def lower_scan(mb: ModuleBuilder, n: Node) -> None:
    length, nc, nx = n.attrs["length"], n.attrs["num_carry"], n.attrs["num_xs"]
    reverse = n.attrs["reverse"]
    carries, xs, consts = n.inputs[:nc], n.inputs[nc : nc + nx], n.inputs[nc + nx :]
    work, final = _result_bufs(mb, n, list(n.outputs[:nc]))
    if length == 0:
        for x, dst, v in zip(carries, final, n.outputs):
            copy_into(mb, mb.view(x), dst, v.type)
        return
    fn, arena, may_fail = _body(mb, n, 0)
    b = mb.b
    init = [_materialize(mb, x) for x in carries]
    spare = [mb.ptr(mb.scratch(v.type.nbytes, v.type.dtype)) for v in n.outputs[:nc]]
    last = [mb.ptr(w) for w in work]
    fixed = [_materialize(mb, x) for x in consts]
    x_bases = [_materialize(mb, x) for x in xs]
    y_values = list(n.outputs[nc:])
    y_bases = [mb.ptr(mb.buf(v)) for v in y_values]
    n_args = len(n.inputs) + len(n.outputs)
    array = alloca(ir.IRBuilder(mb.alloca_block), PTR, max(n_args, 1), name="scan.args")
    for k, p in enumerate(fixed):
        b.store(p, word_ptr(b, array, nc + nx + k, PTR))
    with counted_loop(b, i64(0), i64(length), "step") as k:
        t = b.sub(i64(length - 1), k) if reverse else k
        # Step k writes the result buffer when an even number of steps follow it.
        to_last = b.icmp_signed("==", b.and_(b.sub(i64(length - 1), k), i64(1)), i64(0))
        first = b.icmp_signed("==", k, i64(0))
        ptrs: list[ir.Value] = []
        writes: list[ir.Value] = []
        for c0, a, s in zip(init, last, spare):
            previous = b.select(to_last, s, a)
            ptrs.append(b.select(first, c0, previous))
            writes.append(b.select(to_last, a, s))
        for base, x in zip(x_bases, xs):
            ptrs.append(_row(b, base, x.type, t))
        _store_args(mb, array, ptrs)
        rows = [_row(b, base, v.type, t) for base, v in zip(y_bases, y_values)]
        for j, p in enumerate(writes + rows):
            b.store(p, word_ptr(b, array, len(n.inputs) + j, PTR))
        _call_body(mb, fn, arena, array, may_fail)
    for w, f, v in zip(work, final, n.outputs):
        if w != f:
            copy_into(mb, View.of(w, v.type.shape), f, v.type)


def _row(b: ir.IRBuilder, base: ir.Value, stacked: TensorType, t: ir.Value) -> ir.Value:
    per_row = 1
    for d in stacked.shape[1:]:
        per_row *= d
    return elem_ptr(b, base, stacked.dtype, b.mul(t, i64(per_row)))


@lowering("cond")
def lower_cond(mb: ModuleBuilder, n: Node) -> None:
    pred, *operands = n.inputs
    outs = list(n.outputs)
    work, final = _result_bufs(mb, n, outs)
    ins = [_materialize(mb, x) for x in operands]
    results = [mb.ptr(w) for w in work]
    n_args = len(operands) + len(outs)
    array = alloca(ir.IRBuilder(mb.alloca_block), PTR, max(n_args, 1), name="cond.args")
    if isinstance(pred, Literal):
        taken = [0 if pred.value else 1]
    else:
        taken = [0, 1]
    bodies = {k: _body(mb, n, k) for k in taken}
    b = mb.b
    _store_args(mb, array, ins + results)
    if len(taken) == 1:
        fn, arena, may_fail = bodies[taken[0]]
        _call_body(mb, fn, arena, array, may_fail)
    else:
        flag = load(b, mb.ptr(mb.buf(pred)), DType.bool)
        with b.if_else(flag) as (then, otherwise):
            with then:
                b.call(bodies[0][0], [array, bodies[0][1], mb.top_args])
            with otherwise:
                b.call(bodies[1][0], [array, bodies[1][1], mb.top_args])
        if bodies[0][2] or bodies[1][2]:
            mb.may_fail = True
            mb.check_status()
    for w, f, v in zip(work, final, outs):
        if w != f:
            copy_into(mb, View.of(w, v.type.shape), f, v.type)


@lowering("remat")
def lower_remat(mb: ModuleBuilder, n: Node) -> None:
    """A remat the pipeline did not inline (inside a body): a plain call."""
    mb.lower_body(n, n.subgraphs[0])


@lowering("optimization_barrier")
def lower_barrier(mb: ModuleBuilder, n: Node) -> None:
    for x, v in zip(n.inputs, n.outputs):
        if not isinstance(x, Value) or mb.buf(x) != mb.buf(v):
            copy_into(mb, mb.view(x), mb.buf(v), v.type)


@lowering("while")
def lower_while(mb: ModuleBuilder, n: Node) -> None:
    """A loop that tests the predicate before every step. Carries alternate
    between the result buffers (odd steps) and scratch (even steps); the
    trip count is only known at run time, so the carries are copied to the
    results at the end unless the last step wrote them there."""
    nc = n.attrs["num_carry"]
    carries, consts = n.inputs[:nc], n.inputs[nc:]
    outs = list(n.outputs)
    work, final = _result_bufs(mb, n, outs)
    init = [_materialize(mb, x) for x in carries]
    fixed = [_materialize(mb, x) for x in consts]
    spare_bufs = [mb.scratch(v.type.nbytes, v.type.dtype) for v in outs]
    spare = [mb.ptr(s) for s in spare_bufs]
    last = [mb.ptr(w) for w in work]
    flag_buf = mb.scratch(1, DType.bool)
    flag_ptr = mb.ptr(flag_buf)
    (pred_fn, pred_arena, pred_fails), (body_fn, body_arena, body_fails) = (
        _body(mb, n, 0),
        _body(mb, n, 1),
    )
    slots = ir.IRBuilder(mb.alloca_block)
    pred_args = alloca(slots, PTR, len(n.inputs) + 1, name="while.pred")
    body_args = alloca(slots, PTR, len(n.inputs) + nc, name="while.body")
    b = mb.b
    _store_args(mb, pred_args, [*init, *fixed, flag_ptr])
    for k, p in enumerate(fixed):
        b.store(p, word_ptr(b, body_args, nc + k, PTR))
    fn = b.function
    before = b.block
    head = fn.append_basic_block("while.head")
    step = fn.append_basic_block("while.step")
    done = fn.append_basic_block("while.done")
    b.branch(head)
    b.position_at_end(head)
    count = b.phi(I64, name="steps")
    count.add_incoming(i64(0), before)
    first = b.icmp_signed("==", count, i64(0))
    odd = b.icmp_signed("!=", b.and_(count, i64(1)), i64(0))
    # After an odd number of steps the carries are in the results.
    current = [b.select(first, c0, b.select(odd, a, s)) for c0, a, s in zip(init, last, spare)]
    for k, p in enumerate(current):
        b.store(p, word_ptr(b, pred_args, k, PTR))
    _call_body(mb, pred_fn, pred_arena, pred_args, pred_fails)
    b.cbranch(load(b, flag_ptr, DType.bool), step, done)
    b.position_at_end(step)
    writes = [b.select(odd, s, a) for a, s in zip(last, spare)]
    _store_args(mb, body_args, current)
    for k, p in enumerate(writes):
        b.store(p, word_ptr(b, body_args, len(n.inputs) + k, PTR))
    _call_body(mb, body_fn, body_arena, body_args, body_fails)
    count.add_incoming(b.add(count, i64(1)), b.block)
    b.branch(head)
    b.position_at_end(done)
    with b.if_then(first):
        for x, w, v in zip(carries, work, outs):
            copy_into(mb, mb.view(x), w, v.type)
    with b.if_then(b.and_(b.not_(first), b.not_(odd))):
        for s, w, v in zip(spare_bufs, work, outs):
            copy_into(mb, View.of(s, v.type.shape), w, v.type)
    for w, f, v in zip(work, final, outs):
        if w != f:
            copy_into(mb, View.of(w, v.type.shape), f, v.type)
