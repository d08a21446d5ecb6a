"""MemoryPlan: where each intermediate value lives in one preallocated arena.

The plan is IR-level data (backends consume it and import nothing else); the
pass that computes it lives in ``graphc/passes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .core import Graph, Value

ALIGNMENT = 64  # bytes; a cache line, and enough for any vector load


@dataclass(frozen=True)
class MemoryPlan:
    """Byte offsets of intermediates in one arena, for one node order.

    ``offsets`` covers node outputs that are neither graph outputs nor
    aliases; graph outputs get fresh memory on every call so a caller's
    results are never overwritten. ``aliases`` maps a value to the value whose
    buffer it shares (in-place updates, reshapes that are views).
    ``peak_bytes`` is the largest total size of buffers alive at once.
    ``donations`` maps a graph output to the donated graph input whose buffer
    it may be written into (the caller gave that input up).

    >>> MemoryPlan({}, 0, 0).arena_bytes
    0
    """

    offsets: Mapping[Value, int]
    arena_bytes: int
    peak_bytes: int
    aliases: Mapping[Value, Value] = field(default_factory=dict)
    donations: Mapping[Value, Value] = field(default_factory=dict)

    def overlaps(self, g: Graph) -> list[tuple[Value, Value]]:
        """Pairs of simultaneously live values whose buffers overlap (should be empty)."""
        from .liveness import live_intervals

        live = live_intervals(g)
        items = [(v, o, v.type.nbytes) for v, o in self.offsets.items()]
        bad = []
        for i, (v, o, n) in enumerate(items):
            for w, p, m in items[i + 1 :]:
                (a0, a1), (b0, b1) = live[v], live[w]
                if a0 <= b1 and b0 <= a1 and o < p + m and p < o + n and n and m:
                    bad.append((v, w))
        return bad


def align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT
