"""Collectives: ops whose result depends on every process of a group.

``all_reduce %x {reduction="sum", group=0}`` combines ``x`` elementwise over
the processes of communicator group ``group`` and gives every process the
same result. The IR only names the group; which processes belong to it is
decided at run time by the communicator registered under that number
(``graphc.distributed.init()`` registers the MPI world as group 0). A
process with no communicator registered for group 0 is alone in its world,
so the op is the identity there, as an allreduce over one rank is.

The op is not ``pure``: every process must execute the same collectives in
the same order, so passes neither merge two of them (CSE) nor drop one
whose result is unused (DCE) nor fold one over constants.

Compression (``compress="bf16"`` or ``"f16"``, sums of floats only): each
rank's contribution is rounded to the 16-bit format (round to nearest even)
and only those 16 bits travel; every rank then adds the contributions in
float32 (float64 for f64 operands) in rank order, starting from zero, so the
result is identical on every rank and on both backends. With one rank the
result is the operand rounded to 16 bits and back. See :func:`round_to_16`.

Reduction order: for ``sum`` on floats without compression the result may depend on the order in
which the MPI library adds the contributions, but it is the same on every
rank (an MPI implementation hands all ranks the bits one reduction made).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np

from ..core import TensorType
from ..errors import UnsupportedError
from .registry import Attr, OpDef, register
from .rules import type_error

REDUCTIONS = ("sum", "max", "min")
COMPRESSIONS = ("", "bf16", "f16")
# World sizes that MPI launchers (MPICH/Hydra, Open MPI, Intel MPI) put in the environment.
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


class Communicator(Protocol):
    """What a collective needs from a process group at run time.

    ``all_reduce(x, reduction, out=None, compress="")`` returns the
    reduction of ``x`` over the group, an array of the same shape and dtype
    (``out`` when given, which may be ``x`` itself); ``compress`` as in the
    module docstring. ``native()`` returns
    the handles native code calls the MPI library with (see
    ``graphc.distributed``), or ``None`` when the group has no MPI library
    behind it.
    """

    rank: int
    size: int

    def all_reduce(
        self, x: np.ndarray, reduction: str, out: np.ndarray | None = None, compress: str = ""
    ) -> np.ndarray: ...

    def native(self) -> Any: ...


_GROUPS: dict[int, Communicator] = {}


def register_group(group: int, comm: Communicator | None) -> None:
    """Make ``comm`` the communicator of group ``group`` (``None`` removes it)."""
    if comm is None:
        _GROUPS.pop(group, None)
    else:
        _GROUPS[group] = comm


def group_communicator(group: int) -> Communicator | None:
    """The communicator registered for ``group``; ``None`` means this process is
    alone in it. Group 0 of a process started by an MPI launcher must be
    registered: running a collective without it would silently treat each
    process as the whole world."""
    found = _GROUPS.get(group)
    if found is None and group == 0 and _launched_by_mpi():
        raise UnsupportedError(
            "all_reduce: this process was started by an MPI launcher but group 0 has no "
            "communicator; call gc.distributed.init() before running a graph with collectives"
        )
    return found


def _launched_by_mpi() -> bool:
    sizes = (os.environ.get(name, "") for name in _LAUNCHER_VARIABLES)
    return any(s.isdigit() and int(s) > 1 for s in sizes)


def to_16_bits(x: np.ndarray, compress: str) -> np.ndarray:
    """The 16-bit patterns of ``x`` rounded to ``compress`` (``"bf16"`` or ``"f16"``),
    round to nearest even; NaN stays NaN, overflow becomes infinity.

    >>> to_16_bits(np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8], np.float32), "bf16").tolist()
    [16256, 16256, 16258]
    """
    x = np.asarray(x, np.float32)
    if compress == "f16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).view(np.uint16)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(x)
    return np.where(nan, (bits >> 16) | 0x40, rounded).astype(np.uint16)


def from_16_bits(bits: np.ndarray, compress: str) -> np.ndarray:
    """float32 values of 16-bit patterns (exact)."""
    if compress == "f16":
        return bits.view(np.float16).astype(np.float32)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def round_to_16(x: np.ndarray, compress: str) -> np.ndarray:
    """A one-rank compressed sum: zero plus ``x`` rounded to a 16-bit float
    format and back, in ``x``'s dtype (the zero turns -0.0 into 0.0, as the
    sum over ranks starting from zero does)."""
    x = np.asarray(x)
    return np.zeros((), x.dtype) + from_16_bits(to_16_bits(x, compress), compress).astype(x.dtype)


def _all_reduce_rule(
    x: TensorType, *, reduction: str, group: int, compress: str = ""
) -> TensorType:
    if compress not in COMPRESSIONS:
        raise type_error(f"unknown compression {compress!r}", hint="use bf16 or f16")
    if compress and (reduction != "sum" or not x.dtype.is_float):
        raise type_error(
            f"compress={compress!r} applies to sums of floats, not a {reduction} of {x.dtype}"
        )
    if reduction not in REDUCTIONS:
        raise type_error(
            f"unknown reduction {reduction!r}",
            hint=f"use one of {', '.join(REDUCTIONS)} (a mean is a sum divided by the size)",
        )
    if group < 0:
        raise type_error(f"group must be a non-negative number, got {group}")
    if reduction == "sum" and x.dtype.is_bool:
        raise type_error("a sum of bools is not a bool", hint="cast to i32 or i64 first")
    return x


def _all_reduce_ref(x: np.ndarray, *, reduction: str, group: int, compress: str = "") -> np.ndarray:
    comm = group_communicator(group)
    if comm is None or comm.size == 1:
        return round_to_16(x, compress) if compress else np.array(x, copy=True)
    return comm.all_reduce(np.require(x, requirements="C"), reduction, compress=compress)


def _all_reduce_vjp(
    b: Any, ct: Any, out: Any, x: Any, *, reduction: str, group: int, compress: str = ""
) -> Any:
    if reduction != "sum":
        raise UnsupportedError(
            f"all_reduce: the {reduction} reduction has no gradient rule; "
            "differentiate through a sum (a mean is a sum divided by the size)"
        )
    # Every rank's output is the sum of every rank's input, so each input's
    # cotangent is the sum over ranks of the output cotangents (through the
    # rounding as if it were the identity, the usual straight-through rule).
    return (b.emit("all_reduce", ct, reduction="sum", group=group, compress=compress),)


register(
    OpDef(
        "all_reduce",
        ("x",),
        (Attr("reduction", "str", "sum"), Attr("group", "int", 0), Attr("compress", "str", "")),
        _all_reduce_rule,
        _all_reduce_ref,
        _all_reduce_vjp,
        # Deliberately not pure: see the module docstring.
        frozenset({"collective"}),
        doc="elementwise sum/max/min of x over the processes of a communicator group",
    )
)


# ---------------------------------------------------------------------------
# all_reduce_start / all_reduce_done: the same sum, split so that it overlaps
# ---------------------------------------------------------------------------
#
# ``%r = all_reduce_start %x`` starts a nonblocking allreduce (MPI_Iallreduce)
# and ``%y = all_reduce_done %r, %after...`` waits for it; ``%y`` is the
# reduction of ``%x``. Nodes scheduled between them run while the reduction
# travels. ``%r`` may be read only by its ``all_reduce_done``; the optional
# ``%after`` operands are ignored except as ordering (the wait runs after
# they exist). The reference runs the whole reduction in the start.


def _start_rule(x: TensorType, *, reduction: str, group: int) -> TensorType:
    return _all_reduce_rule(x, reduction=reduction, group=group)


def _start_ref(x: np.ndarray, *, reduction: str, group: int) -> np.ndarray:
    return _all_reduce_ref(x, reduction=reduction, group=group)


def _start_vjp(b: Any, ct: Any, out: Any, x: Any, *, reduction: str, group: int) -> Any:
    return _all_reduce_vjp(b, ct, out, x, reduction=reduction, group=group)


register(
    OpDef(
        "all_reduce_start",
        ("x",),
        (Attr("reduction", "str", "sum"), Attr("group", "int", 0)),
        _start_rule,
        _start_ref,
        _start_vjp,
        frozenset({"collective"}),
        doc="start a nonblocking all_reduce; its result is read by all_reduce_done only",
    )
)


def _done_rule(r: TensorType, *after: TensorType) -> TensorType:
    return r


def _done_ref(r: np.ndarray, *after: np.ndarray) -> np.ndarray:
    return np.array(r, copy=True)


def _done_vjp(b: Any, ct: Any, out: Any, r: Any, *after: Any) -> Any:
    return (ct, *([None] * len(after)))


register(
    OpDef(
        "all_reduce_done",
        ("r", "*after"),
        (),
        _done_rule,
        _done_ref,
        _done_vjp,
        frozenset({"collective"}),
        doc="wait for an all_reduce_start (after the `after` operands exist); its result",
    )
)
