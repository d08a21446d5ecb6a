"""Which samples each rank trains on.

Every rank computes the same shuffled order of the epoch (a function of the
seed and the epoch only), cuts it into global batches of ``size *
batch_size`` samples, and takes its own contiguous part of each: rank ``r``
takes rows ``r * batch_size`` to ``(r + 1) * batch_size`` of every global
batch. N ranks with per-rank batch b therefore see exactly the samples, in
the same global batches, that one process sees with batch N·b; samples past
the last whole global batch are dropped for the epoch (the next epoch's
shuffle puts others last).
"""

from __future__ import annotations

import numpy as np

__all__ = ["shard", "steps_per_epoch"]


def steps_per_epoch(n: int, batch_size: int, size: int) -> int:
    """Whole global batches of ``size * batch_size`` samples in ``n`` samples.

    >>> steps_per_epoch(100, 8, 2)
    6
    """
    return n // (batch_size * size)


def shard(order: np.ndarray, step: int, batch_size: int, rank: int, size: int) -> np.ndarray:
    """The indices rank ``rank`` trains on at ``step`` of an epoch with sample ``order``.

    >>> order = np.arange(10)
    >>> shard(order, 1, 2, 1, 2).tolist()    # global batch 1 is 4..7; rank 1 takes 6, 7
    [6, 7]
    """
    start = (step * size + rank) * batch_size
    return order[start : start + batch_size]
