"""LLVMExecutable: the compiled graph as a Python callable.

One call checks the inputs (count, shape, dtype, C-contiguity) before any
native code runs, allocates fresh output arrays, and calls the entry function
once through ctypes (which releases the GIL). The arena is allocated once per
executable and reused, so calls on one executable are serialized by a lock.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm
import numpy as np

from graphc.ir import Graph, GraphcIndexError, InputError, Node
from graphc.ir.errors import BackendError, format_message

from . import fastargs, target
from . import pool as pool_mod
from . import profile as profile_mod

ERR_INDEX = 1
ERR_NEGATIVE_POWER = 2

_ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


@dataclass(frozen=True)
class MemoryReport:
    """Bytes used by an executable (outputs are allocated per call)."""

    arena_bytes: int  # allocated once: planned intermediates + kernel scratch
    plan_bytes: int  # the memory plan's part of the arena
    extra_bytes: int  # intermediates the plan did not place
    scratch_bytes: int  # kernel scratch (im2col, per-thread partial sums...)
    constant_bytes: int
    output_bytes: int
    input_bytes: int

    def __str__(self) -> str:
        rows = [(k, getattr(self, k)) for k in self.__dataclass_fields__]
        return "\n".join(f"{k:15s} {v:>14,d}" for k, v in rows)


class LLVMExecutable:
    """A graph compiled to native code. Call it with the graph's inputs as
    NumPy arrays; it returns a tuple of fresh arrays.

    ``.llvm_ir`` is the generated LLVM IR (named after the graph's values),
    ``.asm`` the host assembly after optimization, ``.memory`` a
    :class:`MemoryReport`.
    """

    def __init__(
        self,
        g: Graph,
        layout: dict[str, Any],
        engine: llvm.ExecutionEngine,
        llvm_ir: str,
        *,
        threads: int = 1,
        from_cache: bool = False,
        compile_seconds: float = 0.0,
    ) -> None:
        self.graph = g
        self.llvm_ir = llvm_ir
        self.from_cache = from_cache
        self.compile_seconds = compile_seconds
        self._engine = engine
        self._layout = layout
        self._asm: str | None = None
        self._fn = _ENTRY(engine.get_function_address("graphc_main"))
        status_addr = engine.get_global_value_address("graphc_status")
        self._status = (ctypes.c_int64 * 4).from_address(status_addr)
        self._threads: ctypes.c_int64 | None = None
        if layout.get("parallel_regions"):
            addr = engine.get_global_value_address("graphc_threads")
            self._threads = ctypes.c_int64.from_address(addr)
        self.threads = threads
        self._in_types = [(v.type.shape, v.type.dtype.np) for v in g.inputs]
        self._out_types = [(v.type.shape, v.type.dtype.np) for v in g.outputs]
        self._sources = [tuple(s) for s in layout["output_sources"]]
        self._donated = [k for kind, k in self._sources if kind == "donated"]
        self._constants = [_constant_at(g, path) for path in layout["constant_nodes"]]
        n_in, n_out = len(g.inputs), len(g.outputs)
        self._args = (ctypes.c_void_p * (n_in + n_out + len(self._constants)))()
        for k, c in enumerate(self._constants):
            self._args[n_in + n_out + k] = c.ctypes.data
        arena_bytes = int(layout["arena_bytes"])
        self._arena_raw = np.empty(arena_bytes + 64, np.uint8)
        base = self._arena_raw.ctypes.data
        self._arena = base + (-base % 64)
        self._lock = threading.Lock()
        checker = pool_mod.pool().check_args
        self._check = checker.call if checker is not None else None
        self._spec = fastargs.spec_for(self._in_types)
        self._spec_address = self._spec.ctypes.data
        self._args_address = ctypes.addressof(self._args)
        self.memory = MemoryReport(
            arena_bytes,
            int(layout["plan_bytes"]),
            int(layout["extra_bytes"]),
            int(layout["scratch_bytes"]),
            sum(c.nbytes for c in self._constants),
            sum(v.type.nbytes for v in g.outputs),
            sum(v.type.nbytes for v in g.inputs),
        )

    @property
    def threads(self) -> int:
        """Threads the parallel parts may use (the caller's plus pool workers)."""
        return self._thread_count

    @threads.setter
    def threads(self, n: int) -> None:
        self._thread_count = max(1, int(n))
        if self._threads is not None:
            self._threads.value = self._thread_count

    def profile(self) -> list[profile_mod.Row]:
        """Time per node and call since the last reset, most expensive first
        (compile with ``profile=True``); ``str`` of it via :meth:`profile_report`."""
        if not self._layout.get("profiled"):
            raise BackendError(f"{self.graph.name}: compiled without profile=True")
        return profile_mod.read(self._engine.get_global_value_address("graphc_profile"), self.graph)

    def profile_report(self, limit: int = 30) -> str:
        return profile_mod.format_rows(self.profile(), limit)

    def reset_profile(self) -> None:
        if self._layout.get("profiled"):
            addr = self._engine.get_global_value_address("graphc_profile")
            profile_mod.reset(addr, self.graph)

    @property
    def asm(self) -> str:
        """Host assembly of the optimized module (computed on first use)."""
        if self._asm is None:
            mod = target.parse_and_verify(self.llvm_ir)
            target.optimize(mod)
            self._asm = target.emit_assembly(mod)
        return self._asm

    @property
    def memory_report(self) -> MemoryReport:
        return self.memory

    def __call__(self, *arrays: Any) -> tuple[np.ndarray, ...]:
        g = self.graph
        if len(arrays) != len(self._in_types):
            raise InputError(
                f"{g.name}: expected {len(self._in_types)} input arrays, got {len(arrays)}"
            )
        args = self._args
        keep = []
        # The native check takes the common case (exact, C-contiguous arrays of
        # the compiled dtypes and shapes) and stores their pointers in args;
        # anything else is checked, converted or reported below.
        check = self._check
        checked = (
            check is not None
            and check(arrays, self._spec_address, len(arrays), self._args_address) < 0
        )
        if self._donated:
            arrays = list(arrays)
        for i, (a, (shape, dtype)) in enumerate(zip(arrays, self._in_types)):
            if checked:
                break
            if type(a) is not np.ndarray:
                a = _from_scalar(g, i, a, dtype)
                keep.append(a)
                if self._donated:
                    arrays[i] = a
            if a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous:
                _bad_input(g, i, a)
            args[i] = a.ctypes.data
        n_in = len(arrays)
        if self._donated:
            arrays = self._take_donations(arrays, keep)
        outs = []
        for j, (shape, dtype) in enumerate(self._out_types):
            kind, k = self._sources[j]
            out = arrays[k] if kind == "donated" else np.empty(shape, dtype)
            outs.append(out)
            args[n_in + j] = out.ctypes.data
        with self._lock:
            self._status[0] = 0
            self._fn(args, self._arena)
            if self._status[0]:
                self._raise_status()
        for j, (kind, k) in enumerate(self._sources):
            if kind == "input":
                outs[j][...] = arrays[k]
            elif kind == "const":
                outs[j][...] = self._constants[k]
            elif kind == "copy":
                outs[j][...] = outs[k]
        return tuple(outs)

    def _take_donations(self, arrays: list[Any], keep: list[Any]) -> list[Any]:
        """Donated inputs are overwritten with their outputs. An array we may not
        write (read-only, a view, or passed twice) is replaced by a private copy,
        which then becomes the output: same results, no surprise aliasing."""
        args = self._args
        pointers = [a.ctypes.data for a in arrays]
        for k in self._donated:
            a = arrays[k]
            if not (a.flags.writeable and a.flags.owndata) or pointers.count(pointers[k]) > 1:
                a = a.copy()
                arrays[k] = a
                keep.append(a)
                args[k] = a.ctypes.data
        return arrays

    def _raise_status(self) -> None:
        code, index, value, size = (int(self._status[k]) for k in range(4))
        n: Node = self.graph.nodes[index]
        if code == ERR_INDEX:
            raise GraphcIndexError(
                format_message(
                    f"{n.op}: index {value} is out of bounds for axis of size {size}",
                    details=[_describe(n)],
                    loc=n.loc,
                    hint="indices must lie in [-size, size)",
                )
            )
        if code == ERR_NEGATIVE_POWER:
            raise BackendError(
                format_message(
                    f"{n.op}: integers to negative integer powers are not allowed",
                    details=[_describe(n)],
                    loc=n.loc,
                    hint="cast the base to a float type first",
                )
            )
        raise BackendError(f"native code reported error {code} at {n.op}")


def _constant_at(g: Graph, path: list[int]) -> np.ndarray:
    node = g.nodes[path[0]]
    for k in range(1, len(path), 2):
        node = node.subgraphs[path[k]].nodes[path[k + 1]]
    return np.ascontiguousarray(node.attrs["value"])


def _describe(n: Node) -> str:
    ins = ", ".join(str(x.type) for x in n.inputs)
    return f"while running {n.op}({ins})"


def _from_scalar(g: Graph, i: int, a: Any, dtype: np.dtype) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype != dtype and np.can_cast(arr, dtype, casting="same_kind") and arr.ndim == 0:
        arr = arr.astype(dtype)
    return arr


def _bad_input(g: Graph, i: int, a: np.ndarray) -> None:
    v = g.inputs[i]
    want = v.type
    if a.dtype != want.dtype.np:
        why = f"expects dtype {want.dtype.np}, got {a.dtype}"
        hint = f"convert with x.astype(np.{want.dtype.np})"
    elif a.shape != want.shape:
        why = f"expects shape {list(want.shape)}, got {list(a.shape)}"
        hint = "the executable was compiled for fixed shapes; recompile for new ones"
    else:
        why = "is not C-contiguous"
        hint = "pass np.ascontiguousarray(x)"
    raise InputError(format_message(f"{g.name}: input {i} (%{v.name}) {why}", hint=hint))
