"""Data-parallel training over MPI.

``comm = gc.distributed.init()`` gives this process's :class:`Communicator`
(``.rank``, ``.size``); ``gc.train_step(loss_fn, opt, data_parallel=comm)``
averages gradients over the ranks inside the compiled step, through the IR's
``all_reduce`` op; :func:`shard` gives each rank its part of a global batch.

>>> import numpy as np, graphc as gc
>>> comm = gc.distributed.init()
>>> float(gc.distributed.all_reduce(np.float32(2.0)))    # one rank: the identity
2.0
"""

from __future__ import annotations

from typing import Any

from ..primitives import bind
from .comm import Communicator, NativeMPI, init, launched_by_mpi, world
from .data_parallel import DataParallel
from .errors import DistributedError
from .failure import waiting

__all__ = [
    "Communicator",
    "DataParallel",
    "DistributedError",
    "NativeMPI",
    "all_reduce",
    "init",
    "launched_by_mpi",
    "waiting",
    "world",
]


def all_reduce(x: Any, reduction: str = "sum", *, group: int = 0, compress: str = "") -> Any:
    """Elementwise ``sum``/``max``/``min`` of ``x`` over the ranks of ``group``.

    Traced (inside ``gc.jit``, ``gc.grad``, a train step) it is an
    ``all_reduce`` node of the graph; called on arrays it runs at once.
    The gradient of a sum is the sum of the cotangents over the ranks.
    ``compress="bf16"`` or ``"f16"`` sends 16 bits per element and adds in
    float32, in rank order (sums of floats only).

    >>> import numpy as np, graphc as gc
    >>> gc.distributed.all_reduce(np.array([1.0, 2.0]), "max")
    array([1., 2.])
    """
    if group == 0:
        init()
    return bind("all_reduce", x, reduction=reduction, group=group, compress=compress)
