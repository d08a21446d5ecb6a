"""Strided views: how a kernel reads a tensor without copying it.

A view is a buffer plus an element offset and one stride per dimension.
broadcast_in_dim, transpose, slice, reverse and most reshapes only change
the view, so inside a fused kernel they cost nothing; a stride of 0 repeats
an element (broadcasting).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major strides in elements."""
    strides = []
    acc = 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(strides))


@dataclass(frozen=True)
class View:
    """``source`` (a buffer id chosen by the caller) seen with ``shape``,
    ``offset`` and ``strides`` in elements."""

    source: Any
    shape: tuple[int, ...]
    offset: int
    strides: tuple[int, ...]

    @staticmethod
    def of(source: Any, shape: Sequence[int]) -> View:
        return View(source, tuple(shape), 0, contiguous_strides(shape))

    def broadcast_to(self, shape: Sequence[int]) -> View:
        """NumPy broadcasting (right-aligned) to ``shape``."""
        shape = tuple(shape)
        lead = len(shape) - len(self.shape)
        assert lead >= 0, (self.shape, shape)
        strides = [0] * lead
        for d, (n, s) in enumerate(zip(self.shape, self.strides)):
            target = shape[lead + d]
            assert n in (1, target), (self.shape, shape)
            strides.append(s if n == target else 0)
        return View(self.source, shape, self.offset, tuple(strides))

    def broadcast_in_dim(self, shape: Sequence[int], dims: Sequence[int]) -> View:
        strides = [0] * len(shape)
        for i, d in enumerate(dims):
            strides[d] = self.strides[i] if self.shape[i] == shape[d] else 0
        return View(self.source, tuple(shape), self.offset, tuple(strides))

    def transpose(self, perm: Sequence[int]) -> View:
        return View(
            self.source,
            tuple(self.shape[p] for p in perm),
            self.offset,
            tuple(self.strides[p] for p in perm),
        )

    def slice(self, start: Sequence[int], stride: Sequence[int], shape: Sequence[int]) -> View:
        offset = self.offset + sum(a * s for a, s in zip(start, self.strides))
        strides = tuple(s * k for s, k in zip(self.strides, stride))
        return View(self.source, tuple(shape), offset, strides)

    def reverse(self, axes: Sequence[int]) -> View:
        offset = self.offset
        strides = list(self.strides)
        for a in axes:
            offset += (self.shape[a] - 1) * strides[a]
            strides[a] = -strides[a]
        return View(self.source, self.shape, offset, tuple(strides))

    def reshape(self, shape: Sequence[int]) -> View | None:
        """The same elements in ``shape`` (row-major order), or None when no
        strides can express it (the data must then be copied)."""
        shape = tuple(shape)
        if math.prod(shape) == 0:
            return View(self.source, shape, self.offset, contiguous_strides(shape))
        old = [(n, s) for n, s in zip(self.shape, self.strides) if n != 1]
        new_dims = [n for n in shape if n != 1]
        strides_new: list[int] = []
        i = j = 0
        while i < len(old) and j < len(new_dims):
            # Grow matching groups of old and new dims with equal products.
            oi, nj = i + 1, j + 1
            po, pn = old[i][0], new_dims[j]
            while po != pn:
                if po < pn:
                    po *= old[oi][0]
                    oi += 1
                else:
                    pn *= new_dims[nj]
                    nj += 1
            group = old[i:oi]
            for k in range(len(group) - 1):
                if group[k][1] != group[k + 1][1] * group[k + 1][0]:
                    return None
            stride = group[-1][1]
            for n in reversed(new_dims[j:nj]):
                strides_new.append(stride)
                stride *= n
            strides_new[len(strides_new) - (nj - j) :] = reversed(
                strides_new[len(strides_new) - (nj - j) :]
            )
            i, j = oi, nj
        it = iter(strides_new)
        full = tuple(0 if n == 1 else next(it) for n in shape)
        return View(self.source, shape, self.offset, full)


def coalesce(
    shape: Sequence[int], flags: Sequence[bool], strides: Sequence[Sequence[int]]
) -> tuple[list[int], list[bool], list[list[int]]]:
    """Merge loop dims that every access walks contiguously, and drop size-1
    dims, so most kernels become one or two flat loops.

    ``flags`` marks reduced dims; a reduced and a kept dim never merge.
    Returns the new shape, flags and per-access strides (at least one dim).
    """
    keep = [d for d, n in enumerate(shape) if n != 1]
    dims = [shape[d] for d in keep]
    fl = [flags[d] for d in keep]
    st = [[s[d] for d in keep] for s in strides]
    d = len(dims) - 2
    while d >= 0:
        if fl[d] == fl[d + 1] and all(s[d] == s[d + 1] * dims[d + 1] for s in st):
            dims[d] *= dims[d + 1]
            for s in st:
                s[d] = s[d + 1]
                del s[d + 1]
            del dims[d + 1], fl[d + 1]
        d -= 1
    if not dims:
        return [1], [False], [[0] for _ in st]
    return dims, fl, st
