"""Collectives in native code: ``all_reduce`` as a direct call to ``MPI_Allreduce``.

The MPI library is the one the process already loaded (through mpi4py): its
communicator's ``native()`` record gives the address of ``MPI_Allreduce``
and the handle values of communicators, datatypes and reduction ops. The
address is registered with LLVM under its own name and the handles are
copied into one table of 64-bit words, ``graphc_mpi_handles``, that the
generated code reads at run time. Cached object files therefore hold no
address or handle of the process that compiled them (Open MPI's handles are
pointers), only the handle width, which is part of the cache key.

A process alone in its group (no communicator, or size 1) compiles the op
as a copy: an allreduce over one rank is the identity.
"""

from __future__ import annotations

import ctypes
from typing import Any

import llvmlite.binding as llvm
import llvmlite.ir as ir

from graphc.ir import BackendError, DType, Graph, Literal, Node, TensorType
from graphc.ir.ops.collective import group_communicator

from .codegen import ModuleBuilder, lowering, one_node_graph
from .irutil import (
    F32,
    I32,
    I64,
    PTR,
    counted_loop,
    elem_ptr,
    i64,
    load,
    reg_type,
    store,
    word_ptr,
)
from .runtime import ERR_MPI
from .views import View

I16 = ir.IntType(16)

TABLE_SYMBOL = "graphc_mpi_handles"
MAX_GROUPS = 16
# Word positions in the handle table.
_DTYPE_WORD = {DType.i32: 16, DType.i64: 17, DType.f32: 18, DType.f64: 19}
_U16_WORD = 20
_OP_WORD = {"sum": 24, "max": 25, "min": 26}
_IN_PLACE_WORD = 30
_TABLE_WORDS = 32
# One call moves at most this many elements (MPI counts are C ints).
MAX_COUNT = 1 << 30

_TABLE = (ctypes.c_int64 * _TABLE_WORDS)()
_registered: dict[int, str] = {}


def prepare(g: Graph) -> str:
    """Register the MPI symbols and handles the collectives of ``g`` need; returns
    what the generated code depends on ("" when every group is a single process)."""
    keys = set()
    for group in sorted(_groups(g)):
        comm = group_communicator(group)
        if comm is None or comm.size == 1:
            continue
        if group >= MAX_GROUPS:
            raise _error(g, f"the LLVM backend supports groups 0..{MAX_GROUPS - 1}, got {group}")
        native = comm.native()
        if native is None:
            raise _error(g, "the communicator of this group has no native MPI library")
        keys.add(_register(group, native, comm.size))
    if len(keys) > 1:
        raise _error(g, f"groups use different MPI libraries: {sorted(keys)}")
    return keys.pop() if keys else ""


def _groups(g: Graph) -> set[int]:
    found: set[int] = set()
    for n in g.nodes:
        if n.op in ("all_reduce", "all_reduce_start"):
            found.add(n.attrs["group"])
        for sub in n.subgraphs:
            found |= _groups(sub)
    return found


def _register(group: int, native: Any, size: int) -> str:
    key = f"{native.abi}/{native.handle_bits}/{size}"
    if _registered.get(group) == key and _TABLE[group] == native.comm:
        return key
    llvm.add_symbol("MPI_Allreduce", native.allreduce)
    llvm.add_symbol("MPI_Allgather", native.allgather)
    llvm.add_symbol("MPI_Iallreduce", native.iallreduce)
    llvm.add_symbol("MPI_Wait", native.wait)
    _TABLE[_U16_WORD] = native.datatypes["u16"]
    llvm.add_symbol(TABLE_SYMBOL, ctypes.addressof(_TABLE))
    _TABLE[group] = native.comm
    for dtype, word in _DTYPE_WORD.items():
        _TABLE[word] = native.datatypes[str(dtype)]
    for op, word in _OP_WORD.items():
        _TABLE[word] = native.ops[op]
    _TABLE[_IN_PLACE_WORD] = native.in_place
    _registered[group] = key
    return key


def _error(g: Graph, why: str) -> BackendError:
    return BackendError(f"llvm backend: cannot compile all_reduce in {g.name}: {why}")


@lowering("all_reduce")
def lower_all_reduce(mb: ModuleBuilder, n: Node) -> None:
    """``MPI_Allreduce(send, recv, count, datatype, op, comm)``, in chunks of
    :data:`MAX_COUNT` elements; a non-zero return code stops the step with an
    error naming the node."""
    x, out = n.inputs[0], n.output
    ty = out.type
    if ty.size == 0:
        return
    mpi = mb.options.mpi
    if n.attrs["compress"]:
        _lower_compressed(mb, n, mpi)
        return
    if not mpi or isinstance(x, Literal):
        # One rank (or a literal, the same on every rank): the result is the
        # operand itself; a literal then reduces in place below.
        body = one_node_graph("stop_gradient", [TensorType(ty.shape, ty.dtype)])
        operand = x if isinstance(x, Literal) else View.of(mb.buf(x), ty.shape)
        mb.run_body_loop(n, body, [operand], [View.of(mb.buf(out), ty.shape)], [out])
        if not mpi:
            return
    if ty.dtype not in _DTYPE_WORD:
        raise ValueError(f"no MPI datatype for {ty.dtype}")
    handle = ir.IntType(int(mpi.split("/")[1]))
    fn = _allreduce_function(mb.module, handle)
    table = _table(mb.module)
    b = mb.b

    def word(k: int) -> ir.Value:
        w = b.load(word_ptr(b, table, k), typ=I64)
        return b.trunc(w, handle) if handle.width < 64 else w

    # A pointer-sized word: never truncated to the handle width.
    in_place = b.inttoptr(b.load(word_ptr(b, table, _IN_PLACE_WORD), typ=I64), PTR)
    datatype, op = word(_DTYPE_WORD[ty.dtype]), word(_OP_WORD[n.attrs["reduction"]])
    comm = word(n.attrs["group"])
    recv_buf = mb.buf(out)
    send_buf = recv_buf if isinstance(x, Literal) else mb.buf(x)
    mb.mark_node()
    for start in range(0, ty.size, MAX_COUNT):
        count = min(MAX_COUNT, ty.size - start)
        recv = mb.ptr_at(recv_buf, start)
        send = mb.ptr_at(send_buf, start)
        # A donated output can share its operand's buffer; MPI wants that spelled IN_PLACE.
        send = b.select(b.icmp_unsigned("==", send, recv), in_place, send)
        code = b.call(fn, [send, recv, ir.Constant(I32, count), datatype, op, comm])
        with b.if_then(b.icmp_signed("!=", code, ir.Constant(I32, 0))):
            mb.store_status(b, ERR_MPI, b.sext(code, I64))
        mb.check_status()


def _copy_literal(mb: ModuleBuilder, n: Node) -> None:
    ty = n.output.type
    body = one_node_graph("stop_gradient", [TensorType(ty.shape, ty.dtype)])
    out = n.output
    mb.run_body_loop(n, body, [n.inputs[0]], [View.of(mb.buf(out), ty.shape)], [out])


def _lower_compressed(mb: ModuleBuilder, n: Node, mpi: str) -> None:
    """Round to 16 bits, gather every rank's 16 bits (MPI_Allgather), add them in
    float in rank order: the reference's exact arithmetic (no fast-math)."""
    x, out = n.inputs[0], n.output
    count, dtype = out.type.size, out.type.dtype
    compress = n.attrs["compress"]
    if isinstance(x, Literal):
        _copy_literal(mb, n)
        source = mb.buf(out)
    else:
        source = mb.buf(x)
    size = int(mpi.split("/")[2]) if mpi else 1
    if count * max(size, 1) > MAX_COUNT:
        raise ValueError(f"compressed all_reduce moves at most {MAX_COUNT} elements")
    packed = mb.scratch(2 * count, DType.i32)
    gathered = mb.scratch(2 * count * size, DType.i32) if mpi else packed
    pack, b, ptrs = mb.custom_kernel(n, ".pack", [source, packed])
    with counted_loop(b, i64(0), i64(count), "i") as i:
        v = load(b, elem_ptr(b, ptrs[source], dtype, i), dtype)
        bits16 = _to_16_bits(b, v if dtype == DType.f32 else b.fptrunc(v, F32), compress)
        b.store(bits16, b.gep(ptrs[packed], [i], source_etype=I16))
    b.ret_void()
    mb.call_custom(pack, [source, packed])
    if mpi:
        handle = ir.IntType(int(mpi.split("/")[1]))
        fnty = ir.FunctionType(I32, [PTR, I32, handle, PTR, I32, handle, handle])
        found = mb.module.globals.get("MPI_Allgather")
        gather = (
            found
            if isinstance(found, ir.Function)
            else ir.Function(mb.module, fnty, "MPI_Allgather")
        )
        table, bb = _table(mb.module), mb.b

        def word(k: int) -> ir.Value:
            w = bb.load(word_ptr(bb, table, k), typ=I64)
            return bb.trunc(w, handle) if handle.width < 64 else w

        u16, comm = word(_U16_WORD), word(n.attrs["group"])
        mb.mark_node()
        c = ir.Constant(I32, count)
        code = bb.call(gather, [mb.ptr(packed), c, u16, mb.ptr(gathered), c, u16, comm])
        with bb.if_then(bb.icmp_signed("!=", code, ir.Constant(I32, 0))):
            mb.store_status(bb, ERR_MPI, bb.sext(code, I64))
        mb.check_status()
    dst = mb.buf(out)
    unpack, b, ptrs = mb.custom_kernel(n, ".sum", [gathered, dst])
    with counted_loop(b, i64(0), i64(count), "i") as i:
        acc: ir.Value = ir.Constant(reg_type(dtype), 0.0)
        for r in range(size):
            at = b.add(i, i64(r * count))
            w = b.load(b.gep(ptrs[gathered], [at], source_etype=I16), typ=I16)
            f = _from_16_bits(b, w, compress)
            acc = b.fadd(acc, f if dtype == DType.f32 else b.fpext(f, reg_type(dtype)))
        store(b, acc, elem_ptr(b, ptrs[dst], dtype, i), dtype)
    b.ret_void()
    mb.call_custom(unpack, [gathered, dst])


def _to_16_bits(b: ir.IRBuilder, v: ir.Value, compress: str) -> ir.Value:
    if compress == "f16":
        return b.bitcast(b.fptrunc(v, ir.HalfType()), I16)
    bits = b.bitcast(v, I32)
    c16 = ir.Constant(I32, 16)
    odd = b.and_(b.lshr(bits, c16), ir.Constant(I32, 1))
    rounded = b.lshr(b.add(b.add(bits, ir.Constant(I32, 0x7FFF)), odd), c16)
    quiet = b.or_(b.lshr(bits, c16), ir.Constant(I32, 0x40))
    is_nan = b.fcmp_unordered("uno", v, v)
    return b.trunc(b.select(is_nan, quiet, rounded), I16)


def _from_16_bits(b: ir.IRBuilder, w: ir.Value, compress: str) -> ir.Value:
    if compress == "f16":
        return b.fpext(b.bitcast(w, ir.HalfType()), F32)
    return b.bitcast(b.shl(b.zext(w, I32), ir.Constant(I32, 16)), F32)


_REQUEST_WORDS = 1  # per started reduction: an MPI_Request is an int or a pointer
_STATUS_WORDS = 16  # room for any MPI_Status (MPICH: 20 bytes, Open MPI: 24)


@lowering("all_reduce_start")
def lower_all_reduce_start(mb: ModuleBuilder, n: Node) -> None:
    """Copy the operand into the result's buffer and start
    ``MPI_Iallreduce(IN_PLACE, result, ...)``; the request waits in a slot of
    this module until the matching ``all_reduce_done``."""
    x, out = n.inputs[0], n.output
    ty = out.type
    if ty.size == 0:
        return
    ty_body = one_node_graph("stop_gradient", [TensorType(ty.shape, ty.dtype)])
    operand = x if isinstance(x, Literal) else View.of(mb.buf(x), ty.shape)
    mb.run_body_loop(n, ty_body, [operand], [View.of(mb.buf(out), ty.shape)], [out])
    mpi = mb.options.mpi
    if not mpi:
        return
    if ty.size > MAX_COUNT:
        raise ValueError(f"a started all_reduce moves at most {MAX_COUNT} elements")
    if ty.dtype not in _DTYPE_WORD:
        raise ValueError(f"no MPI datatype for {ty.dtype}")
    handle = ir.IntType(int(mpi.split("/")[1]))
    found = mb.module.globals.get("MPI_Iallreduce")
    fn = (
        found
        if isinstance(found, ir.Function)
        else ir.Function(
            mb.module,
            ir.FunctionType(I32, [PTR, PTR, I32, handle, handle, handle, PTR]),
            "MPI_Iallreduce",
        )
    )
    b, table = mb.b, _table(mb.module)

    def word(k: int) -> ir.Value:
        w = b.load(word_ptr(b, table, k), typ=I64)
        return b.trunc(w, handle) if handle.width < 64 else w

    request = _request_slot(mb, n)
    # A pointer-sized word: never truncated to the handle width.
    in_place = b.inttoptr(b.load(word_ptr(b, table, _IN_PLACE_WORD), typ=I64), PTR)
    args = [in_place, mb.ptr(mb.buf(out)), ir.Constant(I32, ty.size)]
    args += [word(_DTYPE_WORD[ty.dtype]), word(_OP_WORD[n.attrs["reduction"]])]
    mb.mark_node()
    code = b.call(fn, [*args, word(n.attrs["group"]), request])
    with b.if_then(b.icmp_signed("!=", code, ir.Constant(I32, 0))):
        mb.store_status(b, ERR_MPI, b.sext(code, I64))
    mb.check_status()


@lowering("all_reduce_done")
def lower_all_reduce_done(mb: ModuleBuilder, n: Node) -> None:
    """``MPI_Wait`` on the start's request, then the reduced buffer is the result."""
    r, out = n.inputs[0], n.output
    ty = out.type
    if ty.size == 0:
        return
    if mb.options.mpi and not isinstance(r, Literal):
        start = mb.g.producers().get(r)
        if start is None or start.op != "all_reduce_start":
            raise ValueError("all_reduce_done must read an all_reduce_start's result")
        found = mb.module.globals.get("MPI_Wait")
        fn = (
            found
            if isinstance(found, ir.Function)
            else ir.Function(mb.module, ir.FunctionType(I32, [PTR, PTR]), "MPI_Wait")
        )
        status = mb.module.globals.get("graphc_mpi_status")
        if not isinstance(status, ir.GlobalVariable):
            status = ir.GlobalVariable(
                mb.module, ir.ArrayType(I64, _STATUS_WORDS), "graphc_mpi_status"
            )
            status.linkage = "internal"
            status.initializer = ir.Constant(ir.ArrayType(I64, _STATUS_WORDS), None)
        b = mb.b
        mb.mark_node()
        code = b.call(fn, [_request_slot(mb, start), word_ptr(b, status, 0)])
        with b.if_then(b.icmp_signed("!=", code, ir.Constant(I32, 0))):
            mb.store_status(b, ERR_MPI, b.sext(code, I64))
        mb.check_status()
    body = one_node_graph("stop_gradient", [TensorType(ty.shape, ty.dtype)])
    operand = r if isinstance(r, Literal) else View.of(mb.buf(r), ty.shape)
    mb.run_body_loop(n, body, [operand], [View.of(mb.buf(out), ty.shape)], [out])


def _request_slot(mb: ModuleBuilder, start: Node) -> ir.Value:
    starts = [m for m in mb.g.nodes if m.op == "all_reduce_start"]
    slots = mb.module.globals.get("graphc_mpi_requests")
    if not isinstance(slots, ir.GlobalVariable):
        count = max(len(starts), 1) * _REQUEST_WORDS
        slots = ir.GlobalVariable(mb.module, ir.ArrayType(I64, count), "graphc_mpi_requests")
        slots.linkage = "internal"
        slots.initializer = ir.Constant(ir.ArrayType(I64, count), None)
    index = next(k for k, m in enumerate(starts) if m is start)
    return word_ptr(mb.b, slots, index * _REQUEST_WORDS)


def _allreduce_function(module: ir.Module, handle: ir.IntType) -> ir.Function:
    found = module.globals.get("MPI_Allreduce")
    if isinstance(found, ir.Function):
        return found
    fnty = ir.FunctionType(I32, [PTR, PTR, I32, handle, handle, handle])
    return ir.Function(module, fnty, "MPI_Allreduce")


def _table(module: ir.Module) -> ir.GlobalVariable:
    found = module.globals.get(TABLE_SYMBOL)
    if isinstance(found, ir.GlobalVariable):
        return found
    table = ir.GlobalVariable(module, ir.ArrayType(I64, _TABLE_WORDS), TABLE_SYMBOL)
    table.linkage = "external"
    return table


__all__ = ["ERR_MPI", "lower_all_reduce", "prepare"]
