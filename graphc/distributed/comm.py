"""The communicator: one process group over MPI, or a process on its own.

:func:`init` wraps ``MPI.COMM_WORLD`` (through mpi4py) when the process was
started by an MPI launcher, and registers it as group 0, the group the IR's
``all_reduce`` ops name by default. Started any other way, the process is a
world of one: ``size == 1``, no MPI library is loaded, and every collective
is the identity. Everything that crosses a process boundary moves as raw
buffers (mpi4py's uppercase, buffer-based calls): nothing is pickled.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir import InputError, UnsupportedError
from ..ir.ops.collective import (
    COMPRESSIONS,
    REDUCTIONS,
    from_16_bits,
    register_group,
    to_16_bits,
)
from ..pytree import tree_flatten, tree_unflatten

__all__ = ["Communicator", "NativeMPI", "init", "world"]

# Launcher variables holding the world size (MPICH/Hydra and Intel MPI, Open MPI, Slurm).
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")
_DTYPES = ("i32", "i64", "f32", "f64")


@dataclass(frozen=True)
class NativeMPI:
    """What native code needs to call the MPI library the process loaded:
    the address of ``MPI_Allreduce`` and the values of the handles it takes
    (integers in MPICH, pointers in Open MPI), plus ``MPI_IN_PLACE``."""

    abi: str
    handle_bits: int
    allreduce: int
    allgather: int
    iallreduce: int
    wait: int
    comm: int
    datatypes: dict[str, int]
    ops: dict[str, int]
    in_place: int


class Communicator:
    """A process group: ``rank`` (this process, 0-based) and ``size``.

    >>> import numpy as np, graphc as gc
    >>> comm = gc.distributed.init()      # not launched by mpiexec: a world of one
    >>> comm.rank, comm.size
    (0, 1)
    >>> comm.all_reduce(np.arange(3.0), "sum")
    array([0., 1., 2.])
    """

    def __init__(self, mpi_comm: Any = None) -> None:
        self.mpi = mpi_comm
        self.rank = 0 if mpi_comm is None else int(mpi_comm.Get_rank())
        self.size = 1 if mpi_comm is None else int(mpi_comm.Get_size())
        self._native: NativeMPI | None = None

    def __repr__(self) -> str:
        kind = "MPI" if self.mpi is not None else "single process"
        return f"Communicator(rank={self.rank}, size={self.size}, {kind})"

    # -- collectives on arrays -------------------------------------------------------
    def all_reduce(
        self, x: Any, reduction: str = "sum", out: np.ndarray | None = None, compress: str = ""
    ) -> Any:
        """Elementwise ``sum``/``max``/``min`` of ``x`` over the ranks, on every rank
        (``compress``: see ``graphc.ir.ops.collective``)."""
        if reduction not in REDUCTIONS:
            raise InputError(f"all_reduce: unknown reduction {reduction!r}; use {REDUCTIONS}")
        x = np.require(x, requirements="C")
        if out is None:
            out = np.empty_like(x)
        if compress:
            return self._compressed_sum(x, out, compress)
        if self.mpi is None:
            np.copyto(out, x)
            return out
        from mpi4py import MPI

        op = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[reduction]
        send = MPI.IN_PLACE if out is x else x
        self.mpi.Allreduce(send, out, op=op)
        return out

    def start_all_reduce(self, buffer: np.ndarray, reduction: str) -> Any:
        """Start an in-place nonblocking allreduce of ``buffer``; returns the
        request (``.Wait()`` completes it). ``buffer`` must not be touched
        until then."""
        from mpi4py import MPI

        op = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[reduction]
        return self.mpi.Iallreduce(MPI.IN_PLACE, buffer, op=op)

    def _compressed_sum(self, x: np.ndarray, out: np.ndarray, compress: str) -> np.ndarray:
        if compress not in COMPRESSIONS or not compress or x.dtype.kind != "f":
            raise InputError(f"all_reduce: compress={compress!r} needs float data")
        mine = to_16_bits(x.reshape(-1), compress)
        every = np.empty((self.size, mine.size), np.uint16)
        if self.mpi is None:
            every[0] = mine
        else:
            self.mpi.Allgather(mine, every)
        acc = np.zeros(mine.size, x.dtype)
        for row in every:  # rank order, from zero: the same bits on every rank
            acc += from_16_bits(row, compress).astype(x.dtype)
        out.reshape(-1)[...] = acc
        return out

    def broadcast(self, tree: Any, root: int = 0) -> Any:
        """Every array of ``tree`` as ``root`` holds it (new arrays; same structure,
        shapes and dtypes required on every rank)."""
        leaves, structure = tree_flatten(tree)
        out = []
        for leaf in leaves:
            if leaf is None:
                out.append(None)
                continue
            arr = np.array(leaf, copy=True, order="C")
            if self.mpi is not None and arr.size:
                self.mpi.Bcast(arr, root=root)
            out.append(arr if isinstance(leaf, np.ndarray) else arr[()])
        return tree_unflatten(structure, out)

    def gather_bytes(self, data: bytes) -> list[bytes]:
        """Every rank's ``data`` (equal lengths), in rank order."""
        mine = np.frombuffer(data, np.uint8)
        if self.mpi is None:
            return [bytes(mine)]
        every = np.empty((self.size, mine.size), np.uint8)
        self.mpi.Allgather(mine, every)
        return [bytes(row) for row in every]

    def agree(self, what: str, text: str) -> None:
        """Check that every rank holds the same ``text`` (a graph, a configuration);
        raises :class:`DistributedError` on every rank when they differ."""
        digest = hashlib.sha256(text.encode()).digest()
        every = self.gather_bytes(digest)
        differing = [r for r, d in enumerate(every) if d != every[0]]
        if differing:
            from .errors import DistributedError

            raise DistributedError(
                f"{what} differs between ranks: rank(s) {differing} do not match rank 0 "
                f"(this is rank {self.rank}); every rank must run the same code on "
                "the same shapes (equal per-rank batch sizes)"
            )

    def barrier(self) -> None:
        if self.mpi is not None:
            self.mpi.Barrier()

    def abort(self, code: int = 1) -> None:
        """End every process of the group (MPI_Abort), or this one alone."""
        if self.mpi is not None:
            self.mpi.Abort(code)
        os._exit(code)

    # -- native access -----------------------------------------------------------------
    def native(self) -> NativeMPI | None:
        """Handles for native code (see :class:`NativeMPI`); ``None`` without MPI."""
        if self.mpi is None:
            return None
        if self._native is None:
            self._native = _native_handles(self.mpi)
        return self._native


def _native_handles(comm: Any) -> NativeMPI:
    from mpi4py import MPI

    lib = _libmpi(MPI)
    try:
        allreduce = ctypes.cast(lib.MPI_Allreduce, ctypes.c_void_p).value
        allgather = ctypes.cast(lib.MPI_Allgather, ctypes.c_void_p).value
        iallreduce = ctypes.cast(lib.MPI_Iallreduce, ctypes.c_void_p).value
        wait = ctypes.cast(lib.MPI_Wait, ctypes.c_void_p).value
    except AttributeError:
        allreduce = allgather = iallreduce = wait = None
    if not (allreduce and allgather and iallreduce and wait):
        raise UnsupportedError(
            "the MPI library mpi4py loaded exports no MPI_Allreduce; use backend='numpy'"
        )
    bits = 8 * MPI._sizeof(MPI.Comm)
    types = {
        "i32": MPI.INT32_T,
        "i64": MPI.INT64_T,
        "f32": MPI.FLOAT,
        "f64": MPI.DOUBLE,
        "u16": MPI.UINT16_T,
    }
    vendor = MPI.get_vendor()[0]
    return NativeMPI(
        abi=f"{vendor} {MPI.Get_version()}".replace("/", " "),
        handle_bits=bits,
        allreduce=int(allreduce),
        allgather=int(allgather),
        iallreduce=int(iallreduce),
        wait=int(wait),
        comm=_word(MPI._handleof(comm), bits),
        datatypes={k: _word(MPI._handleof(v), bits) for k, v in types.items()},
        ops={
            k: _word(MPI._handleof(v), bits)
            for k, v in {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}.items()
        },
        # mpi4py's IN_PLACE converts to the library's MPI_IN_PLACE address.
        in_place=_word(int(MPI.IN_PLACE), 64),
    )


def _word(handle: int, bits: int) -> int:
    # The table holds signed 64-bit words; MPICH handles are 32-bit patterns
    # such as 0x44000000 that the generated code truncates back.
    value = int(handle) & ((1 << bits) - 1)
    return value - (1 << 64) if value >= 1 << 63 else value


def _libmpi(mpi: Any) -> ctypes.CDLL:
    """The MPI library mpi4py's extension links, opened through the extension
    itself: dlsym on its handle searches its dependencies too, so this finds
    the very library (and state) mpi4py initialized, not another copy."""
    return ctypes.CDLL(mpi.__file__, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL)


_WORLD: Communicator | None = None


def launched_by_mpi() -> bool:
    """True when an MPI launcher (mpiexec, mpirun, srun) started this process."""
    return any(os.environ.get(name, "").isdigit() for name in _SIZE_VARIABLES)


def init(*, use_mpi: bool | None = None) -> Communicator:
    """The world communicator, created on first call and registered as group 0.

    Under ``mpiexec -n N`` it wraps ``MPI.COMM_WORLD`` (mpi4py, imported only
    then); a process started without a launcher is a world of one and needs
    no MPI at all. ``use_mpi=True`` forces MPI (a singleton MPI world when not
    launched), ``False`` forbids it.

    >>> import graphc as gc
    >>> comm = gc.distributed.init()
    >>> comm.size, comm is gc.distributed.init()
    (1, True)
    """
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    want = launched_by_mpi() if use_mpi is None else use_mpi
    mpi_comm = None
    if want:
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise UnsupportedError(
                "this process was started by an MPI launcher, but mpi4py is not installed; "
                "install graphc[mpi] (pip install mpi4py mpich)"
            ) from exc
        mpi_comm = MPI.COMM_WORLD
        # Errors come back as exceptions (Python) and return codes (native
        # code) instead of aborting inside the library with no context.
        mpi_comm.Set_errhandler(MPI.ERRORS_RETURN)
    _WORLD = Communicator(mpi_comm)
    register_group(0, _WORLD)
    if _WORLD.size > 1:
        from .failure import install_failure_handling

        install_failure_handling(_WORLD)
    return _WORLD


def world() -> Communicator:
    """The communicator :func:`init` made (calling it if needed)."""
    return _WORLD if _WORLD is not None else init()
