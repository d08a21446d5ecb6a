"""Gradient averaging inside a compiled train step.

A data-parallel step differs from a plain one in three places, all of them
ordinary IR built at trace time:

- the gradients (and the loss, for reporting) are packed into buckets of at
  most ``bucket_bytes``, each bucket is summed over the ranks by one
  ``all_reduce`` node, unpacked and divided by the number of ranks;
- the dropout key is folded with the rank (an input of the step, so every
  rank compiles the same graph), so ranks draw different masks, reproducibly;
- nothing else: the optimizer update then runs on identical averaged
  gradients and identical parameters, so every rank computes bit-identical
  new parameters.

Buckets follow the reverse order of the parameters, the order in which
backpropagation produces their gradients, as PyTorch's DDP does: the first
bucket's gradients exist first. Fewer, larger messages pay the per-message
latency fewer times; one bucket per parameter is ``bucket_bytes=0``.
With ``overlap=True`` each bucket becomes an ``all_reduce_start`` /
``all_reduce_done`` pair, and the ``schedule_collectives`` pass starts it as
soon as the bucket's gradients exist and waits after the backward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir import InputError
from ..pytree import tree_flatten, tree_unflatten
from .comm import Communicator, init

__all__ = ["DataParallel", "average", "average_floats", "data_parallel_options"]

DEFAULT_BUCKET_BYTES = 4 << 20


@dataclass(frozen=True)
class DataParallel:
    """How a train step spreads over ranks (``train_step(..., data_parallel=...)``).

    Args:
        comm: the communicator (default: ``gc.distributed.init()``).
        bucket_bytes: the largest gradient bucket one ``all_reduce`` moves.
        compress: ``"bf16"`` or ``"f16"`` sends gradients as 16-bit floats
            (half the bytes of float32) and adds them in float32 in rank
            order; the loss is always averaged in full precision.
        overlap: start each bucket's allreduce (nonblocking) as soon as its
            gradients exist and wait for all of them after the backward
            (``all_reduce_start``/``all_reduce_done``), so communication
            runs alongside the rest of the backward. Not with ``compress``.
    """

    comm: Communicator | None = None
    bucket_bytes: int = DEFAULT_BUCKET_BYTES
    compress: str = ""
    overlap: bool = False

    @property
    def communicator(self) -> Communicator:
        return self.comm if self.comm is not None else init()


def data_parallel_options(value: Any) -> DataParallel | None:
    """Normalize ``train_step``'s ``data_parallel`` argument: ``None``/``False``,
    ``True`` (the world), a :class:`Communicator`, or a :class:`DataParallel`."""
    if value is None or value is False:
        return None
    if value is True:
        return DataParallel()
    if isinstance(value, Communicator):
        return DataParallel(value)
    if isinstance(value, DataParallel):
        if value.bucket_bytes < 0:
            raise InputError("DataParallel: bucket_bytes must be >= 0")
        if value.overlap and value.compress:
            raise InputError("DataParallel: overlap and compress cannot be combined yet")
        if value.compress not in ("", "bf16", "f16"):
            raise InputError(
                f"DataParallel: compress must be '', 'bf16' or 'f16', not {value.compress!r}"
            )
        return value
    raise InputError(
        f"train_step: data_parallel must be a Communicator (gc.distributed.init()), a "
        f"gc.distributed.DataParallel, True or None; got {type(value).__name__}"
    )


def average(
    tree: Any,
    size: int,
    bucket_bytes: int = DEFAULT_BUCKET_BYTES,
    compress: str = "",
    overlap: bool = False,
) -> Any:
    """The mean over ``size`` ranks of every array in ``tree`` (traced or not),
    moved in buckets of at most ``bucket_bytes`` per dtype, last leaf first
    (``compress``: see :class:`DataParallel`).

    >>> import numpy as np
    >>> average({"a": np.ones(2), "b": np.float64(3.0)}, 1)
    {'a': array([1., 1.]), 'b': array(3.)}
    """
    from ..primitives import bind
    from . import all_reduce

    leaves, structure = tree_flatten(tree)
    out: list[Any] = list(leaves)
    buckets = _buckets(leaves, bucket_bytes)
    packed = []
    for bucket in buckets:
        flat = [np.reshape(leaves[i], (-1,)) for i in bucket]
        packed.append(flat[0] if len(flat) == 1 else np.concatenate(flat))
    if overlap and packed:
        started = [bind("all_reduce_start", p, reduction="sum", group=0) for p in packed]
        # Every wait comes after the last start, which needs the last gradient
        # of the backward: the scheduler cannot pull a wait in front of compute.
        sums = [bind("all_reduce_done", r, *([started[-1]] if r is not started[-1] else []))
                for r in started]  # fmt: skip
    else:
        sums = [all_reduce(p, "sum", compress=compress) for p in packed]
    for bucket, summed in zip(buckets, sums):
        sizes = [int(np.size(leaves[i])) for i in bucket]
        start = 0
        for i, n in zip(bucket, sizes):
            part = summed[start : start + n] if len(bucket) > 1 else summed
            start += n
            value = np.reshape(part, np.shape(leaves[i]))
            # Dividing by 1 is exact, so a one-rank step equals the plain one.
            out[i] = value / np.asarray(size, dtype=value.dtype) if size > 1 else value
    return tree_unflatten(structure, out)


def average_floats(tree: Any, size: int, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> Any:
    """:func:`average` of the float arrays of ``tree``; other leaves stay as they are.

    >>> average_floats({"n": np.arange(2), "m": np.ones(2)}, 1)
    {'m': array([1., 1.]), 'n': array([0, 1])}
    """
    leaves, structure = tree_flatten(tree)
    floats = [i for i, x in enumerate(leaves) if x is not None and _is_float(x)]
    if not floats:
        return tree
    averaged = average([leaves[i] for i in floats], size, bucket_bytes)
    for i, value in zip(floats, averaged):
        leaves[i] = value
    return tree_unflatten(structure, leaves)


def _is_float(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return np.issubdtype(np.dtype(dtype) if dtype is not None else np.result_type(x), np.floating)


def _buckets(leaves: list[Any], limit: int) -> list[list[int]]:
    by_dtype: dict[str, list[list[int]]] = {}
    fill: dict[str, int] = {}
    for i in reversed(range(len(leaves))):
        if leaves[i] is None:
            continue
        dtype = np.dtype(getattr(leaves[i], "dtype", None) or np.result_type(leaves[i]))
        if not np.issubdtype(dtype, np.floating):
            raise InputError(f"data-parallel averaging needs float arrays, got {dtype}")
        nbytes = int(np.size(leaves[i])) * dtype.itemsize
        groups = by_dtype.setdefault(dtype.str, [])
        if not groups or fill[dtype.str] + nbytes > limit:
            groups.append([])
            fill[dtype.str] = 0
        groups[-1].append(i)
        fill[dtype.str] += nbytes
    # Buckets run in the order their first gradient becomes ready.
    return sorted((b for groups in by_dtype.values() for b in groups), key=lambda b: -b[0])
