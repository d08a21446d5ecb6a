"""What both backends check before writing an output over a donated argument."""

from __future__ import annotations

from collections.abc import Iterable


def overlapping(extents: Iterable[tuple[int, int, int]]) -> set[int]:
    """Keys of the byte ranges ``(start, end, key)`` that overlap another range:
    one sweep over the ranges sorted by start, remembering the one reaching furthest.

    >>> sorted(overlapping([(0, 8, 0), (8, 16, 1), (12, 20, 2)]))
    [1, 2]
    """
    found: set[int] = set()
    reach, owner = -1, -1
    for start, end, key in sorted(extents):
        if start < reach:
            found.update((key, owner))
        if end > reach:
            reach, owner = end, key
    return found
