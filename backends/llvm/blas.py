"""BLAS for the JIT: sgemm/dgemm function pointers, and its thread count.

Two sources, in order of preference:

- the OpenBLAS that NumPy's wheels bundle (64-bit integers, symbols
  ``scipy_sgemm_64_``...): measured 5-11% faster than SciPy's bundled one on
  the workloads' products (OpenBLAS 0.3.31 against 0.3.30 here);
- SciPy's Cython BLAS (``scipy.linalg.cython_blas``, 32-bit integers),
  whatever BLAS SciPy was built with.

``GRAPHC_BLAS=scipy`` forces the second. The pointers are registered with
LLVM under fixed names (``graphc_sgemm``, ``graphc_dgemm``), so generated
code and cached object files refer to them by name and are linked to this
process's addresses at load time; :attr:`Blas.name` is part of the cache key,
since the integer width is baked into the code.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm
import llvmlite.ir as ir

from .irutil import I32, I64, VOID, i64

GEMM_SYMBOLS = {"f32": "graphc_sgemm", "f64": "graphc_dgemm"}
THREAD_SYMBOLS = ("graphc_blas_get_threads", "graphc_blas_set_threads")
STATE_SYMBOL = "graphc_blas_state"
# Shared by every executable in the process: a spin lock word, the number of
# calls inside BLAS-using entry functions, and the thread count to restore
# when the last of them leaves.
_STATE = (ctypes.c_int64 * 3)()
LOCK, INSIDE, SAVED = 0, 1, 2
# The thread-count functions as ctypes callables, for Python callers.
_THREAD_FUNCTIONS: list[tuple[object, object]] = []


@dataclass(frozen=True)
class Blas:
    """The BLAS generated code calls."""

    name: str
    int_bits: int  # width of the Fortran INTEGER arguments
    threads: bool  # its thread count can be read and set

    @property
    def int_type(self) -> ir.IntType:
        return ir.IntType(self.int_bits)


def _capsule_pointer(capsule: object) -> int:
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return int(get_pointer(capsule, get_name(capsule)))


def _address(fn: Any) -> int:
    return int(ctypes.cast(fn, ctypes.c_void_p).value or 0)


def _register(addresses: dict[str, int]) -> None:
    for name, addr in addresses.items():
        llvm.add_symbol(name, addr)


def _numpy_openblas() -> Blas | None:
    import numpy as np

    base = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(base, "numpy.libs", "*openblas64*.so*"))):
        try:
            lib = ctypes.CDLL(path)
            fns = [
                getattr(lib, name)
                for name in (
                    "scipy_sgemm_64_",
                    "scipy_dgemm_64_",
                    "scipy_openblas_get_num_threads64_",
                    "scipy_openblas_set_num_threads64_",
                )
            ]
        except (OSError, AttributeError):
            continue
        names = [GEMM_SYMBOLS["f32"], GEMM_SYMBOLS["f64"], *THREAD_SYMBOLS]
        _register({name: _address(fn) for name, fn in zip(names, fns)})
        _THREAD_FUNCTIONS.append((fns[2], fns[3]))
        return Blas(f"numpy-openblas64 {os.path.basename(path)}", 64, True)
    return None


def _scipy_blas() -> Blas:
    import scipy
    from scipy.linalg import cython_blas

    capi = cython_blas.__pyx_capi__
    _register(
        {
            GEMM_SYMBOLS["f32"]: _capsule_pointer(capi["sgemm"]),
            GEMM_SYMBOLS["f64"]: _capsule_pointer(capi["dgemm"]),
        }
    )
    base = os.path.dirname(os.path.dirname(scipy.__file__))
    for path in sorted(glob.glob(os.path.join(base, "scipy.libs", "*openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            get = getattr(lib, f"{prefix}_get_num_threads", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads", None)
            if get is not None and set_ is not None:
                _register({n: _address(f) for n, f in zip(THREAD_SYMBOLS, (get, set_))})
                _THREAD_FUNCTIONS.append((get, set_))
                return Blas(f"scipy {os.path.basename(path)}", 32, True)
    return Blas("scipy", 32, False)


@functools.cache
def register_blas() -> Blas:
    """Choose the BLAS and register its symbols with LLVM (once per process)."""
    llvm.add_symbol(STATE_SYMBOL, ctypes.addressof(_STATE))
    if os.environ.get("GRAPHC_BLAS", "").lower() != "scipy":
        found = _numpy_openblas()
        if found is not None:
            return found
    return _scipy_blas()


def blas_threads(n: int | None = None) -> int | None:
    """The BLAS thread count (None if it cannot be read); set it first if ``n`` is given.

    >>> blas_threads() is None or blas_threads() >= 1
    True
    """
    register_blas()
    if not _THREAD_FUNCTIONS:
        return None
    get, set_ = _THREAD_FUNCTIONS[-1]
    if n is not None:
        set_(int(n))  # type: ignore[operator]
    return int(get())  # type: ignore[operator]


def calls_inside() -> int:
    """How many calls are running entry functions that hold BLAS at one thread."""
    return int(_STATE[INSIDE])


def blas_thread_control() -> bool:
    """Whether generated code can set the BLAS thread count."""
    return register_blas().threads


def single_thread_blas(module: ir.Module, entry: ir.IRBuilder, exit_block: ir.Block) -> None:
    """Run every BLAS call of this entry function on one BLAS thread: enter
    at the start (``entry``), leave before ``exit_block`` returns.

    graphc splits large products across its own worker pool instead. Two
    pools on one machine oversubscribe it: OpenBLAS's workers spin for a
    while after each call, taking the cores graphc's next kernel needs (a
    W4 step measured 3x slower with both pools than with either alone).

    The thread count is process-wide, and calls overlap (threads, several
    executables), so it is reference counted: the first call to enter saves
    the count and sets 1, the last to leave restores it. Saving and restoring
    per call would interleave (get N, set 1, get 1, ..., restore N, restore 1)
    and leave BLAS at one thread for good. While any such call runs, NumPy's
    own products in other threads use one BLAS thread too.
    """
    if not blas_thread_control():
        return
    enter, leave = _enter_and_leave(module)
    entry.call(enter, [])
    restore = ir.IRBuilder()
    restore.position_before(exit_block.terminator)
    restore.call(leave, [])


def _enter_and_leave(module: ir.Module) -> tuple[ir.Function, ir.Function]:
    names = ("graphc_blas_enter", "graphc_blas_leave")
    if names[0] in module.globals:
        return module.globals[names[0]], module.globals[names[1]]
    fnty = {"get": ir.FunctionType(I32, []), "set": ir.FunctionType(VOID, [I32])}
    get_name, set_name = THREAD_SYMBOLS
    get = module.globals.get(get_name) or ir.Function(module, fnty["get"], get_name)
    set_ = module.globals.get(set_name) or ir.Function(module, fnty["set"], set_name)
    state = module.globals.get(STATE_SYMBOL)
    if state is None:
        state = ir.GlobalVariable(module, ir.ArrayType(I64, len(_STATE)), STATE_SYMBOL)
    yield_ = module.globals.get("sched_yield") or ir.Function(
        module, ir.FunctionType(I32, []), "sched_yield"
    )

    def word(b: ir.IRBuilder, k: int) -> ir.Value:
        return b.gep(state, [i64(0), i64(k)], inbounds=True)

    def locked(
        name: str,
        count: Callable[[ir.IRBuilder, ir.Value], ir.Value],
        act: Callable[[ir.IRBuilder], None],
    ) -> ir.Function:
        """``name()``: take the lock, update the count, ``act`` if ``count``
        says so, unlock."""
        fn = ir.Function(module, ir.FunctionType(VOID, []), name)
        fn.linkage = "internal"
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        spin, wait, held = (fn.append_basic_block(n) for n in ("spin", "wait", "held"))
        acting, done = fn.append_basic_block("act"), fn.append_basic_block("done")
        b.branch(spin)
        b.position_at_end(spin)
        pair = b.cmpxchg(word(b, LOCK), i64(0), i64(1), "acquire", "monotonic")
        b.cbranch(b.extract_value(pair, 1), held, wait)
        b.position_at_end(wait)
        b.call(yield_, [])  # only on contention; the holder runs a few instructions
        b.branch(spin)
        b.position_at_end(held)
        b.cbranch(count(b, word(b, INSIDE)), acting, done)
        b.position_at_end(acting)
        act(b)
        b.branch(done)
        b.position_at_end(done)
        b.store_atomic(i64(0), word(b, LOCK), "release", 8)
        b.ret_void()
        return fn

    def count_in(b: ir.IRBuilder, inside: ir.Value) -> ir.Value:
        n = b.load(inside, typ=I64)
        b.store(b.add(n, i64(1)), inside)
        return b.icmp_signed("==", n, i64(0))  # the first one in saves and sets

    def count_out(b: ir.IRBuilder, inside: ir.Value) -> ir.Value:
        n = b.sub(b.load(inside, typ=I64), i64(1))
        b.store(n, inside)
        return b.icmp_signed("==", n, i64(0))  # the last one out restores

    def save_and_set_one(b: ir.IRBuilder) -> None:
        saved = b.call(get, [], name="blas_threads")
        b.store(b.sext(saved, I64), word(b, SAVED))
        b.call(set_, [ir.Constant(I32, 1)])

    def restore(b: ir.IRBuilder) -> None:
        b.call(set_, [b.trunc(b.load(word(b, SAVED), typ=I64), I32)])

    return locked(names[0], count_in, save_and_set_one), locked(names[1], count_out, restore)
