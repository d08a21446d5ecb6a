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
    ``parts`` maps a value to ``(c, k)``: it is computed straight into bytes
    ``k`` onwards of the buffer of ``c``, a ``concatenate`` that then has
    nothing left to copy; ``c`` is in ``offsets`` and its bytes are taken from
    the first part's computation on.
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
    parts: Mapping[Value, tuple[Value, int]] = field(default_factory=dict)

    def placed(self) -> dict[Value, int]:
        """The arena offset of every buffer: ``offsets`` and each part's own.

        >>> MemoryPlan({}, 0, 0).placed()
        {}
        """
        found = dict(self.offsets)
        for v, (c, k) in self.parts.items():
            found[v] = self.offsets[c] + k
        return found

    def spans(self, g: Graph) -> dict[Value, tuple[int, int]]:
        """Schedule positions from the first write of each placed buffer
        (``placed()``) to the last read of any value in it: aliases extend
        their root's, and a concatenation's bytes are taken from its first
        part's computation to the last read of any part.

        >>> from graphc.ir import GraphBuilder, f32
        >>> b = GraphBuilder("f"); x = b.input(f32[16], "x")
        >>> y = b.exp(x); g = b.build([b.exp(y)])
        >>> MemoryPlan({y: 0}, 64, 64).spans(g) == {y: (0, 1)}
        True
        """
        from .liveness import live_intervals

        live = live_intervals(g)
        root: dict[Value, Value] = {}
        for n in g.nodes:
            for v in n.outputs:
                a = self.aliases.get(v)
                root[v] = root.get(a, a) if a is not None else v
        span: dict[Value, tuple[int, int]] = {}
        for v, r in root.items():
            first, last = span.get(r, live[r])
            span[r] = (first, max(last, live[v][1]))
        for v, (c, _) in self.parts.items():
            (a0, a1), (b0, b1) = span[c], span[v]
            span[c] = (min(a0, b0), max(a1, b1))
        return {v: span[v] for v in self.placed()}

    def overlaps(self, g: Graph) -> list[tuple[Value, Value]]:
        """Pairs of buffers whose bytes overlap while both are live (should be
        empty); a part inside its own concatenation's bytes is meant to."""
        span = self.spans(g)
        items = [(v, o, v.type.nbytes) for v, o in self.placed().items()]
        bad = []
        for i, (v, o, n) in enumerate(items):
            for w, p, m in items[i + 1 :]:
                if self.parts.get(v, (None,))[0] is w or self.parts.get(w, (None,))[0] is v:
                    continue
                (a0, a1), (b0, b1) = span[v], span[w]
                if a0 <= b1 and b0 <= a1 and o < p + m and p < o + n and n and m:
                    bad.append((v, w))
        return bad


def align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT
