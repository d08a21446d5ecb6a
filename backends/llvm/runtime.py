"""LLVMExecutable: the compiled graph as a Python callable.

One call checks the inputs (count, shape, dtype, C-contiguity; the policy is
``graphc.ir.coerce_input``'s) before any native code runs, allocates fresh
output arrays, and calls the entry function once through ctypes (which
releases the GIL). Each call fills its own pointer array, so calls from
several threads never see each other's arguments; the arena of
intermediates is allocated once per executable and reused, so the native
part of calls on one executable runs under a lock, one at a time.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm
import numpy as np

from graphc.ir import Graph, GraphcIndexError, InputError, Loc, Node, coerce_input
from graphc.ir.errors import BackendError, LinAlgError, format_message
from graphc.ir.ops.factor import NOT_PD_HINT, SINGULAR_HINT

from ..donation import overlapping
from . import fastargs, target
from . import pool as pool_mod
from . import profile as profile_mod
from .lapack import ERR_NO_CONVERGENCE, ERR_NOT_PD, ERR_SINGULAR

ERR_INDEX = 1
ERR_NEGATIVE_POWER = 2
ERR_MPI = 6  # distinct from the LAPACK codes (3-5) in lapack.py

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
        self.stage_seconds: dict[str, float] = {}
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
        self._n_in = n_in
        self._args_type = ctypes.c_void_p * (n_in + n_out + len(self._constants))
        template = self._args_type()
        for k, c in enumerate(self._constants):
            template[n_in + n_out + k] = c.ctypes.data
        self._args_template = bytes(template) if self._constants else None
        arena_bytes = int(layout["arena_bytes"])
        self._arena_raw = np.empty(arena_bytes + 64, np.uint8)
        base = self._arena_raw.ctypes.data
        self._arena = base + (-base % 64)
        self._lock = threading.Lock()
        checker = pool_mod.pool().check_args
        self._check = checker.call if checker is not None else None
        self._spec = fastargs.spec_for(self._in_types)
        self._spec_address = self._spec.ctypes.data
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
            target.optimize(mod, unroll=target.pays_to_unroll(self.graph))
            self._asm = target.emit_assembly(mod)
        return self._asm

    @property
    def memory_report(self) -> MemoryReport:
        return self.memory

    def __call__(self, *arrays: Any) -> tuple[np.ndarray, ...]:
        n_in = self._n_in
        if len(arrays) != n_in:
            g = self.graph
            raise InputError(
                f"graph {g.name}: expected {n_in} inputs "
                f"({', '.join(f'%{v.name}: {v.type}' for v in g.inputs)}), got {len(arrays)}"
            )
        # A pointer array per call (~0.1 us): threads calling concurrently
        # must not overwrite each other's input and output pointers.
        template = self._args_template
        args = self._args_type() if template is None else self._args_type.from_buffer_copy(template)
        address = ctypes.addressof(args)
        # The native check takes the common case (exact, C-contiguous arrays of
        # the compiled dtypes and shapes) and stores their pointers in args;
        # from the first input it declines on, Python converts or reports.
        check = self._check
        first = 0 if check is None else check(arrays, self._spec_address, n_in, address)
        if first >= 0:
            arrays = self._convert(arrays, first, args)
        if self._donated:
            arrays = self._take_donations(list(arrays), args)
        outs: list[np.ndarray] = []
        for j, (shape, dtype) in enumerate(self._out_types):
            kind, k = self._sources[j]
            if kind == "donated":
                # Its pointer is in args already; ``.ctypes`` costs ~1 us an array.
                outs.append(arrays[k])
                args[n_in + j] = args[k]
            else:
                out = np.empty(shape, dtype)
                outs.append(out)
                args[n_in + j] = out.ctypes.data
        with self._lock:
            self._status[0] = 0
            self._fn(address, self._arena)
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

    def _convert(self, arrays: tuple[Any, ...], first: int, args: Any) -> tuple[Any, ...]:
        """Inputs from ``first`` on, converted as the shared input policy allows
        (Python scalars, NumPy scalars, byte-swapped arrays), or an InputError.
        The returned tuple keeps any converted array alive through the call."""
        g = self.graph
        converted = list(arrays)
        for i in range(first, len(arrays)):
            v = g.inputs[i]
            label = f"graph {g.name}: input {i} (%{v.name})"
            a = coerce_input(arrays[i], v.type, label)
            if not a.flags.c_contiguous:
                raise InputError(
                    format_message(
                        f"{label} expects a C-contiguous {v.type} array, got one with "
                        f"strides {a.strides}",
                        hint="gc.jit converts such arrays itself; when calling a compiled "
                        "executable, pass np.ascontiguousarray(x)",
                    )
                )
            converted[i] = a
            args[i] = a.ctypes.data
        return tuple(converted)

    def _take_donations(self, arrays: list[Any], args: Any) -> tuple[Any, ...]:
        """Donated inputs are overwritten with their outputs. An array we may not
        write (read-only, a view, or overlapping another argument, e.g. passed
        twice or with a view of it) is replaced by a private copy, which then
        becomes the output: same results, no surprise aliasing, and the kernels'
        promise that no two pointers overlap holds."""
        shared = _overlapping(args[: len(arrays)], arrays)
        for k in self._donated:
            a = arrays[k]
            if k in shared or not (a.flags.writeable and a.flags.owndata):
                a = a.copy()
                arrays[k] = a
                args[k] = a.ctypes.data
        return tuple(arrays)

    def _raise_status(self) -> None:
        code, index, value, size = (int(self._status[k]) for k in range(4))
        paths = self._layout.get("error_paths", [])
        n = _node_at_site(self.graph, index, paths)
        loc = _loc_at_site(self.graph, index, paths)
        if code == ERR_INDEX:
            raise GraphcIndexError(
                format_message(
                    f"{n.op}: index {value} is out of bounds for axis of size {size}",
                    details=[_describe(n)],
                    loc=loc,
                    hint="indices must lie in [-size, size)",
                )
            )
        if code in _LINALG_FAILURES:
            what, hint = _LINALG_FAILURES[code]
            where = f" (matrix {value} of the stack)" if n.inputs[0].type.ndim > 2 else ""  # type: ignore[union-attr]
            raise LinAlgError(
                format_message(f"{n.op}: {what}{where}", details=[_describe(n)], loc=loc, hint=hint)
            )
        if code == ERR_NEGATIVE_POWER:
            raise BackendError(
                format_message(
                    f"{n.op}: integers to negative integer powers are not allowed",
                    details=[_describe(n)],
                    loc=loc,
                    hint="cast the base to a float type first",
                )
            )
        if code == ERR_MPI:
            raise BackendError(
                format_message(
                    f"{n.op}: the MPI library returned error code {value}",
                    details=[_describe(n)],
                    loc=loc,
                    hint="another rank may have failed or run a different graph",
                )
            )
        raise BackendError(f"native code reported error {code} at {n.op}")


_LINALG_FAILURES = {
    ERR_SINGULAR: ("the matrix is singular", SINGULAR_HINT),
    ERR_NOT_PD: ("the matrix is not positive definite", NOT_PD_HINT),
    ERR_NO_CONVERGENCE: ("the LAPACK solver did not converge", "check the input for NaN or inf"),
}


def _node_at(g: Graph, path: list[int]) -> Node:
    node = g.nodes[path[0]]
    for k in range(1, len(path), 2):
        node = node.subgraphs[path[k]].nodes[path[k + 1]]
    return node


def _node_at_site(g: Graph, index: int, error_paths: list[list[int]]) -> Node:
    """The node a failing kernel reported: a top-level index, or (numbered
    after those) a node inside a loop or branch body."""
    if index < len(g.nodes):
        return g.nodes[index]
    return _node_at(g, list(error_paths[index - len(g.nodes)]))


def _loc_at_site(g: Graph, index: int, error_paths: list[list[int]]) -> Loc | None:
    """The user's line for a failing node: its own, else the innermost
    enclosing node's (statements of a fused group may carry none)."""
    if index < len(g.nodes):
        return g.nodes[index].loc
    path = list(error_paths[index - len(g.nodes)])
    node = g.nodes[path[0]]
    loc = node.loc
    for k in range(1, len(path), 2):
        node = node.subgraphs[path[k]].nodes[path[k + 1]]
        loc = node.loc or loc
    return loc


def _constant_at(g: Graph, path: list[int]) -> np.ndarray:
    return np.ascontiguousarray(_node_at(g, path).attrs["value"])


def _describe(n: Node) -> str:
    ins = ", ".join(str(x.type) for x in n.inputs)
    return f"while running {n.op}({ins})"


def _overlapping(pointers: list[int | None], arrays: list[Any]) -> set[int]:
    """Indices of the (C-contiguous) arrays whose bytes overlap another's."""
    return overlapping(
        (p, p + a.nbytes, i) for i, (p, a) in enumerate(zip(pointers, arrays)) if p and a.nbytes
    )
