"""BLAS for the JIT: sgemm/dgemm function pointers from SciPy's Cython BLAS.

The pointers are registered with LLVM under fixed names
(``graphc_sgemm``, ``graphc_dgemm``), so generated code and cached object
files refer to them by name and are linked to this process's addresses at
load time.
"""

from __future__ import annotations

import ctypes
import functools

import llvmlite.binding as llvm
import llvmlite.ir as ir

from .irutil import I32, VOID

GEMM_SYMBOLS = {"f32": "graphc_sgemm", "f64": "graphc_dgemm"}


def _capsule_pointer(capsule: object) -> int:
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return int(get_pointer(capsule, get_name(capsule)))


@functools.cache
def register_blas() -> dict[str, int]:
    """Register the GEMM symbols with LLVM (once); returns their addresses."""
    from scipy.linalg import cython_blas

    capi = cython_blas.__pyx_capi__
    addresses = {
        GEMM_SYMBOLS["f32"]: _capsule_pointer(capi["sgemm"]),
        GEMM_SYMBOLS["f64"]: _capsule_pointer(capi["dgemm"]),
    }
    for name, addr in addresses.items():
        llvm.add_symbol(name, addr)
    return addresses


THREAD_SYMBOLS = ("graphc_blas_get_threads", "graphc_blas_set_threads")


@functools.cache
def blas_thread_control() -> bool:
    """Find the thread-count functions of the OpenBLAS behind SciPy's BLAS and
    register them as ``graphc_blas_get_threads``/``graphc_blas_set_threads``.
    False when this BLAS has none (then generated code leaves threads alone)."""
    import glob
    import os

    import scipy

    base = os.path.dirname(os.path.dirname(scipy.__file__))
    candidates = sorted(glob.glob(os.path.join(base, "scipy.libs", "*openblas*.so*")))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            get = getattr(lib, f"{prefix}_get_num_threads", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads", None)
            if get is None or set_ is None:
                continue
            for name, fn in zip(THREAD_SYMBOLS, (get, set_)):
                llvm.add_symbol(name, ctypes.cast(fn, ctypes.c_void_p).value)
            return True
    return False


def single_thread_blas(module: ir.Module, entry: ir.IRBuilder, exit_block: ir.Block) -> None:
    """Run every BLAS call of this entry function on one BLAS thread: set the
    count at the start (``entry``) and restore it before ``exit_block`` returns.

    graphc splits large products across its own worker pool instead. Two
    pools on one machine oversubscribe it: OpenBLAS's workers spin for a
    while after each call, taking the cores graphc's next kernel needs (a
    W4 step measured 3x slower with both pools than with either alone).
    """
    if not blas_thread_control():
        return
    fnty = {"get": ir.FunctionType(I32, []), "set": ir.FunctionType(VOID, [I32])}
    get_name, set_name = THREAD_SYMBOLS
    get = module.globals.get(get_name) or ir.Function(module, fnty["get"], get_name)
    set_ = module.globals.get(set_name) or ir.Function(module, fnty["set"], set_name)
    previous = entry.call(get, [], name="blas_threads")
    entry.call(set_, [ir.Constant(I32, 1)])
    restore = ir.IRBuilder()
    restore.position_before(exit_block.terminator)
    restore.call(set_, [previous])
