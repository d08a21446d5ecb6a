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
from dataclasses import dataclass

import llvmlite.binding as llvm
import llvmlite.ir as ir

from .irutil import I32, VOID

GEMM_SYMBOLS = {"f32": "graphc_sgemm", "f64": "graphc_dgemm"}
THREAD_SYMBOLS = ("graphc_blas_get_threads", "graphc_blas_set_threads")


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


def _address(fn: object) -> int:
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
                return Blas(f"scipy {os.path.basename(path)}", 32, True)
    return Blas("scipy", 32, False)


@functools.cache
def register_blas() -> Blas:
    """Choose the BLAS and register its symbols with LLVM (once per process)."""
    if os.environ.get("GRAPHC_BLAS", "").lower() != "scipy":
        found = _numpy_openblas()
        if found is not None:
            return found
    return _scipy_blas()


def blas_thread_control() -> bool:
    """Whether generated code can set the BLAS thread count."""
    return register_blas().threads


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
