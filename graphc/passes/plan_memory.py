"""plan_memory: liveness-based offsets in one arena (first fit), optionally in place."""

from __future__ import annotations

from collections.abc import Sequence

from graphc.ir import get_op
from graphc.ir.core import Graph, Node, Value
from graphc.ir.liveness import live_intervals
from graphc.ir.plan import MemoryPlan, align

from .donate import plan_donations


def plan_memory(g: Graph, *, inplace: bool = False, donated: Sequence[int] = ()) -> MemoryPlan:
    """Assign each intermediate an arena offset; buffers whose lifetimes do not
    overlap may share bytes.

    With ``inplace``, the result of an ``elementwise`` node may take over the
    buffer of an operand of exactly its type that dies at that node (as
    ``np.add(a, b, out=a)`` does); such results appear in ``plan.aliases``
    (result -> operand) instead of ``plan.offsets``, and their operand's
    buffer stays reserved until the result's last use. Only backends whose
    elementwise kernels read each element before writing it should ask for it.

    ``donated`` lists inputs the caller gives up: outputs that may legally
    overwrite them are recorded in ``plan.donations`` (see ``donate.py``).

    Contract: ``g`` is in its final node order. Graph inputs and outputs are
    not planned (callers own them). Cost: O(n * live) for n values.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[16], "x")
    >>> g = b.build([b.exp(b.exp(b.exp(x)))])
    >>> plan_memory(g).arena_bytes  # two 64-byte temporaries, never alive together with a third
    128
    >>> plan = plan_memory(g, inplace=True)
    >>> plan.arena_bytes, len(plan.aliases)  # the second exp overwrites the first
    (64, 1)
    """
    live = live_intervals(g)
    outputs = set(g.outputs)
    aliases = _inplace_aliases(g, live, outputs) if inplace else {}
    root: dict[Value, Value] = {}
    for n in g.nodes:
        for v in n.outputs:
            a = aliases.get(v)
            root[v] = root[a] if a is not None else v
    # A buffer lives from its root's definition to the last use of any value in it.
    span: dict[Value, tuple[int, int]] = {}
    for v, r in root.items():
        first, last = span.get(r, live[r])
        span[r] = (first, max(last, live[v][1]))
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets: dict[Value, int] = {}
    arena = 0
    # Place the largest buffers first: first fit then wastes less.
    candidates = [v for n in g.nodes for v in n.outputs if v not in outputs and v not in aliases]
    candidates.sort(key=lambda v: (-v.type.nbytes, span[v][0]))
    for v in candidates:
        size = align(v.type.nbytes)
        first, last = span[v]
        busy = sorted((o, s) for o, s, a, b in placed if a <= last and first <= b)
        offset = 0
        for o, s in busy:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
        offsets[v] = offset
        arena = max(arena, offset + size)
    peak = 0
    for i in range(len(g.nodes)):
        alive = sum(align(v.type.nbytes) for v in offsets if span[v][0] <= i <= span[v][1])
        peak = max(peak, alive)
    donations = plan_donations(g, donated) if donated else {}
    return MemoryPlan(offsets, arena, peak, aliases, donations)


def _inplace_aliases(
    g: Graph, live: dict[Value, tuple[int, int]], outputs: set[Value]
) -> dict[Value, Value]:
    aliases: dict[Value, Value] = {}
    inputs = set(g.inputs)
    for i, n in enumerate(g.nodes):
        if len(n.outputs) != 1 or not get_op(n.op).has("elementwise"):
            continue
        (v,) = n.outputs
        if v in outputs:
            continue
        donor = _donor(n, i, v, live, inputs | outputs)
        if donor is not None:
            aliases[v] = donor
    return aliases


def _donor(
    n: Node, i: int, v: Value, live: dict[Value, tuple[int, int]], owned_elsewhere: set[Value]
) -> Value | None:
    operands = list(n.value_inputs())
    for a in operands:
        if a not in owned_elsewhere and a.type == v.type and live[a][1] == i:
            return a
    return None
