"""A native check of an executable's input arrays (the fast path of a call).

Checking each input in Python (type, dtype, shape, contiguity, then
``a.ctypes.data``) costs about a microsecond per array, which is a visible
share of a small training step with dozens of inputs. ``graphc_check_args``
does the same checks natively on the tuple of arguments, reading the
``PyArrayObject`` fields NumPy documents as its C ABI, and writes the data
pointers into the executable's argument array. It is called through
``ctypes.PYFUNCTYPE``, so it runs holding the GIL.

It only accepts what needs no conversion: exact ``ndarray`` objects whose
dtype is the canonical one, with the compiled shape, C-contiguous. For
anything else it returns the index of the first argument it did not accept
and the caller checks (and converts, or reports) in Python. The field
offsets are measured when the runtime loads and verified on sample arrays;
if the layout is not what is expected the fast path is simply not used.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import llvmlite.ir as ir
import numpy as np

from .irutil import I32, I64, PTR, i64

SYMBOL = "graphc_check_args"
C_CONTIGUOUS = 0x1  # NPY_ARRAY_C_CONTIGUOUS
# Header words of a spec: the ndarray type, then the byte offsets of the
# tuple's items and of an array's type, data, nd, dimensions, descr, flags.
HEADER = 8
CHECK_TYPE = ctypes.PYFUNCTYPE(
    ctypes.c_int64, ctypes.py_object, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p
)


def define(m: ir.Module) -> None:
    """Add ``graphc_check_args(args_tuple, spec, n, dst) -> first bad index
    or -1`` to runtime module ``m``."""
    fn = ir.Function(m, ir.FunctionType(I64, [PTR, PTR, I64, PTR]), SYMBOL)
    fn.attributes.add("nounwind")
    tup, spec, n, dst = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def word(base: ir.Value, index: ir.Value | int, ty: ir.Type = I64) -> ir.Value:
        idx = i64(index) if isinstance(index, int) else index
        return b.load(b.gep(base, [idx], source_etype=ty), typ=ty)

    def field(obj: ir.Value, offset: ir.Value, ty: ir.Type) -> ir.Value:
        return b.load(b.gep(obj, [offset], source_etype=ir.IntType(8)), typ=ty)

    ndarray, item_off, type_off, data_off, nd_off, dims_off, descr_off, flags_off = (
        word(spec, k) for k in range(HEADER)
    )
    bad = fn.append_basic_block("bad")
    done = fn.append_basic_block("done")
    head = fn.append_basic_block("head")
    entry = b.block
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name="i")
    pos = b.phi(I64, name="pos")
    i.add_incoming(i64(0), entry)
    pos.add_incoming(i64(HEADER), entry)
    body = fn.append_basic_block("body")
    b.cbranch(b.icmp_signed("<", i, n), body, done)
    b.position_at_end(body)

    def require(cond: ir.Value) -> None:
        ok = fn.append_basic_block("ok")
        b.cbranch(cond, ok, bad)
        b.position_at_end(ok)

    obj = field(tup, b.add(item_off, b.mul(i, i64(8))), PTR)
    require(b.icmp_unsigned("==", field(obj, type_off, I64), ndarray))
    require(b.icmp_unsigned("==", field(obj, descr_off, I64), word(spec, pos)))
    nd = b.sext(field(obj, nd_off, I32), I64)
    require(b.icmp_signed("==", nd, word(spec, b.add(pos, i64(1)))))
    flags = field(obj, flags_off, I32)
    contiguous = b.and_(flags, ir.Constant(I32, C_CONTIGUOUS))
    require(b.icmp_unsigned("!=", contiguous, ir.Constant(I32, 0)))
    dims = field(obj, dims_off, PTR)
    dims_head = fn.append_basic_block("dims")
    dims_body = fn.append_basic_block("dim")
    dims_done = fn.append_basic_block("dims_done")
    before = b.block
    b.branch(dims_head)
    b.position_at_end(dims_head)
    d = b.phi(I64, name="d")
    d.add_incoming(i64(0), before)
    b.cbranch(b.icmp_signed("<", d, nd), dims_body, dims_done)
    b.position_at_end(dims_body)
    want = word(spec, b.add(b.add(pos, i64(2)), d))
    require(b.icmp_signed("==", word(dims, d), want))
    d.add_incoming(b.add(d, i64(1)), b.block)
    b.branch(dims_head)
    b.position_at_end(dims_done)
    b.store(field(obj, data_off, PTR), b.gep(dst, [i], source_etype=PTR))
    i.add_incoming(b.add(i, i64(1)), dims_done)
    pos.add_incoming(b.add(pos, b.add(nd, i64(2))), dims_done)
    b.branch(head)
    b.position_at_end(bad)
    b.ret(i)
    b.position_at_end(done)
    b.ret(i64(-1))


def _header() -> list[int]:
    head = object.__basicsize__  # ob_refcnt and ob_type
    ptr = ctypes.sizeof(ctypes.c_void_p)
    # PyArrayObject_fields: data, nd, dimensions, strides, base, descr, flags.
    data = head
    nd = data + ptr
    dims = nd + ptr  # int nd, padded to a pointer
    descr = dims + 3 * ptr
    flags = descr + ptr
    return [id(np.ndarray), tuple.__basicsize__, head - ptr, data, nd, dims, descr, flags]


def spec_for(types: Sequence[tuple[tuple[int, ...], np.dtype]]) -> np.ndarray:
    """The spec words for inputs of these (shape, dtype)s."""
    words = _header()
    for shape, dtype in types:
        words += [id(np.dtype(dtype)), len(shape), *shape]
    return np.array(words, dtype=np.int64)


class Checker:
    """``check(arrays, spec_address, n, args_address) -> first index not
    accepted, or -1`` (a ctypes function: arguments are not converted)."""

    def __init__(self, address: int) -> None:
        self.call = CHECK_TYPE(address)

    def __call__(self, arrays: tuple[Any, ...], spec: np.ndarray, dst: int) -> int:
        return int(self.call(arrays, spec.ctypes.data, len(arrays), dst))


def verified(address: int) -> Checker | None:
    """A checker, if it reads these arrays the way NumPy itself does."""
    check = Checker(address)
    samples = (
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.zeros((), np.int64),
        np.ones(5, np.float64),
        np.zeros((4, 1, 2), bool),
    )
    types = [(a.shape, a.dtype) for a in samples]
    spec = spec_for(types)
    dst = (ctypes.c_void_p * len(samples))()
    address_of = ctypes.addressof(dst)
    if check(samples, spec, address_of) != -1:
        return None
    if [dst[k] or 0 for k in range(len(samples))] != [a.ctypes.data for a in samples]:
        return None
    rejects = [
        np.asfortranarray(samples[0]),
        np.zeros((2, 6), np.float32)[:, ::2],  # strided
        samples[0][:, :2],  # another shape
        samples[0].astype(np.float64),  # another dtype
        samples[0].view(type("sub", (np.ndarray,), {})),  # a subclass
    ]
    for bad in rejects:
        trial = (bad, *samples[1:])
        if check(trial, spec, address_of) != 0:
            return None
    if check((samples[0], 3.0, *samples[2:]), spec, address_of) != 1:
        return None
    return check
