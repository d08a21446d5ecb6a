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
from .irutil import I32, I64, PTR, word_ptr
from .runtime import ERR_MPI
from .views import View

TABLE_SYMBOL = "graphc_mpi_handles"
MAX_GROUPS = 16
# Word positions in the handle table.
_DTYPE_WORD = {DType.i32: 16, DType.i64: 17, DType.f32: 18, DType.f64: 19}
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
        keys.add(_register(group, native))
    if len(keys) > 1:
        raise _error(g, f"groups use different MPI libraries: {sorted(keys)}")
    return keys.pop() if keys else ""


def _groups(g: Graph) -> set[int]:
    found: set[int] = set()
    for n in g.nodes:
        if n.op == "all_reduce":
            found.add(n.attrs["group"])
        for sub in n.subgraphs:
            found |= _groups(sub)
    return found


def _register(group: int, native: Any) -> str:
    key = f"{native.abi}/{native.handle_bits}"
    if _registered.get(group) == key and _TABLE[group] == native.comm:
        return key
    llvm.add_symbol("MPI_Allreduce", native.allreduce)
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
    mpi = getattr(mb.options, "mpi", "")
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

    in_place = b.inttoptr(word(_IN_PLACE_WORD), PTR)
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
