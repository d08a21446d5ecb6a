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

Reduction order: for ``sum`` on floats the result may depend on the order in
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
# World sizes that MPI launchers (MPICH/Hydra, Open MPI, Intel MPI) put in the environment.
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


class Communicator(Protocol):
    """What a collective needs from a process group at run time.

    ``all_reduce(x, reduction, out=None)`` returns the reduction of ``x``
    over the group, an array of the same shape and dtype (``out`` when
    given, which may be ``x`` itself). ``native()`` returns
    the handles native code calls the MPI library with (see
    ``graphc.distributed``), or ``None`` when the group has no MPI library
    behind it.
    """

    rank: int
    size: int

    def all_reduce(
        self, x: np.ndarray, reduction: str, out: np.ndarray | None = None
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


def _all_reduce_rule(x: TensorType, *, reduction: str, group: int) -> TensorType:
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


def _all_reduce_ref(x: np.ndarray, *, reduction: str, group: int) -> np.ndarray:
    comm = group_communicator(group)
    if comm is None or comm.size == 1:
        return np.array(x, copy=True)
    return comm.all_reduce(np.require(x, requirements="C"), reduction)


def _all_reduce_vjp(b: Any, ct: Any, out: Any, x: Any, *, reduction: str, group: int) -> Any:
    if reduction != "sum":
        raise UnsupportedError(
            f"all_reduce: the {reduction} reduction has no gradient rule; "
            "differentiate through a sum (a mean is a sum divided by the size)"
        )
    # Every rank's output is the sum of every rank's input, so each input's
    # cotangent is the sum over ranks of the output cotangents.
    return (b.emit("all_reduce", ct, reduction="sum", group=group),)


register(
    OpDef(
        "all_reduce",
        ("x",),
        (Attr("reduction", "str", "sum"), Attr("group", "int", 0)),
        _all_reduce_rule,
        _all_reduce_ref,
        _all_reduce_vjp,
        # Deliberately not pure: see the module docstring.
        frozenset({"collective"}),
        doc="elementwise sum/max/min of x over the processes of a communicator group",
    )
)
