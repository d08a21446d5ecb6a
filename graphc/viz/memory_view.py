"""The memory plan as a reader sees it: bytes alive over the schedule, and the
largest values with the user line that made them."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from graphc.ir import Graph, Value
from graphc.ir.liveness import live_intervals
from graphc.memory_report import live_profile


@dataclass
class Timeline:
    """Bytes of planned intermediates alive at each node of the schedule."""

    alive: list[int]
    arena_bytes: int
    peak_bytes: int


def timeline(g: Graph, plan: Any) -> Timeline:
    """Alive bytes per node index of ``g`` for the values ``plan`` places.

    >>> import numpy as np, graphc as gc
    >>> from graphc.passes.plan_memory import plan_memory
    >>> g = gc.trace(lambda x: np.exp(np.exp(x)).sum(), np.ones(16, np.float32))
    >>> t = timeline(g, plan_memory(g))
    >>> max(t.alive) == t.peak_bytes
    True
    """
    # one definition of the curve: the memory report's
    return Timeline(live_profile(g, plan), plan.arena_bytes, plan.peak_bytes)


def timeline_svg(t: Timeline, width: int = 760, height: int = 180) -> str:
    """An inline SVG step chart of ``t`` with the arena size and peak marked."""
    if not t.alive:
        return "<p>No intermediates to plan.</p>"
    top = max(max(t.alive), t.arena_bytes, 1)
    pad = 40
    w, h = width - 2 * pad, height - 2 * pad
    n = len(t.alive)

    def x(i: float) -> float:
        return pad + w * i / n

    def y(b: float) -> float:
        return pad + h * (1 - b / top)

    points = []
    for i, b in enumerate(t.alive):
        points += [f"{x(i):.1f},{y(b):.1f}", f"{x(i + 1):.1f},{y(b):.1f}"]
    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" role="img" aria-label="memory over the schedule">',
        f'<rect x="{pad}" y="{pad}" width="{w}" height="{h}" fill="#fafafa" stroke="#ccc"/>',
        f'<polyline fill="none" stroke="#2a6fdb" stroke-width="1.5" points="{" ".join(points)}"/>',
    ]
    for label, value, color in (
        ("arena", t.arena_bytes, "#d33"),
        ("peak alive (lower bound)", t.peak_bytes, "#393"),
    ):
        parts.append(
            f'<line x1="{pad}" x2="{pad + w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="{color}" stroke-dasharray="4 3"/>'
            f'<text x="{pad + w - 4}" y="{y(value) - 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{color}">{escape(label)} {human_bytes(value)}</text>'
        )
    parts.append(
        f'<text x="{pad}" y="{height - 10}" font-size="11">node 0</text>'
        f'<text x="{pad + w}" y="{height - 10}" font-size="11" text-anchor="end">'
        f"node {n - 1}</text></svg>"
    )
    return "".join(parts)


def largest_values(g: Graph, plan: Any, count: int = 12) -> list[dict[str, Any]]:
    """The ``count`` largest planned values: type, bytes, producer, user line, lifetime."""
    live = live_intervals(g)
    producer: dict[Value, Any] = {v: n for n in g.nodes for v in n.outputs}
    rows = []
    for v in sorted(plan.offsets, key=lambda v: -v.type.nbytes)[:count]:
        n = producer.get(v)
        loc = n.loc if n is not None else None
        rows.append(
            {
                "type": str(v.type),
                "bytes": v.type.nbytes,
                "offset": plan.offsets[v],
                "op": n.op if n is not None else "?",
                "where": loc.describe() if loc is not None else "",
                "live": live[v],
            }
        )
    return rows


def human_bytes(n: int) -> str:
    """``1536`` -> ``'1.5 KiB'``.

    >>> human_bytes(1536), human_bytes(12)
    ('1.5 KiB', '12 B')
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
