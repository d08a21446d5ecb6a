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
