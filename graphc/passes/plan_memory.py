"""plan_memory: liveness-based offsets in one arena (first fit, searched), optionally in place."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.ir import get_op
from graphc.ir.core import Graph, Node, Value
from graphc.ir.liveness import live_intervals
from graphc.ir.plan import ALIGNMENT, MemoryPlan, align

from .donate import plan_donations


def plan_memory(
    g: Graph, *, inplace: bool = False, views: bool = False, donated: Sequence[int] = ()
) -> MemoryPlan:
    """Assign each intermediate an arena offset; buffers whose lifetimes do not
    overlap may share bytes.

    With ``inplace``, the result of an ``elementwise`` node may take over the
    buffer of an operand of exactly its type that dies at that node (as
    ``np.add(a, b, out=a)`` does); such results appear in ``plan.aliases``
    (result -> operand) instead of ``plan.offsets``, and their operand's
    buffer stays reserved until the result's last use. Only backends whose
    elementwise kernels read each element before writing it should ask for it.

    With ``views``, a ``reshape`` of a planned value shares its operand's
    buffer (``plan.aliases``, result -> operand), which stays reserved until
    the result's last use: for backends that read a reshape in place (LLVM)
    instead of copying it because the plan reused the operand's bytes. And a
    ``concatenate`` into contiguous blocks (along its leading axis) is built
    in place: an operand computed by a node, read no later than the result
    and shared by nothing but reshapes, is computed straight into its block
    (``plan.parts``, operand -> (result, byte offset)), so the backend skips
    its copy and its bytes are not counted twice (a stack of per-step states).

    ``donated`` lists inputs the caller gives up: outputs that may legally
    overwrite them are recorded in ``plan.donations`` (see ``donate.py``).

    Contract: ``g`` is in its final node order. Graph inputs and outputs are
    not planned (callers own them). Cost: O(n^2) vectorized for n values (a few ms per thousand).

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
    if views:
        aliases.update(_reshape_views(g, outputs, aliases))
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
    parts = _concat_parts(g, root, span, outputs) if views else {}
    for v, (c, _) in parts.items():
        (a0, a1), (b0, b1) = span[c], span[v]
        span[c] = (min(a0, b0), max(a1, b1))
    candidates = [
        v
        for n in g.nodes
        for v in n.outputs
        if v not in outputs and v not in aliases and v not in parts
    ]
    offsets, arena = _place(candidates, span)
    peak = _peak(offsets, span)
    donations = plan_donations(g, donated) if donated else {}
    return MemoryPlan(offsets, arena, peak, aliases, donations, parts)


# An arena this much over the most bytes alive at once is worth a longer search.
_SEARCH_ABOVE = 1.01
_SEARCH_STARTS = 4  # placements the search starts from
_SEARCH_STEPS = 8  # moves from each
# How a buffer is placed: at the lowest offset free over its lifetime, or in the
# smallest free gap it fits.
FIRST, BEST = "first", "best"


def _place(
    candidates: list[Value], span: dict[Value, tuple[int, int]]
) -> tuple[dict[Value, int], int]:
    """Offsets for ``candidates`` and the arena they make, the smallest found.

    First fit in a few orders, keeping the smallest arena: largest buffers
    first usually wastes least, but the largest bytes x lifetime first, or
    the earliest to die first, sometimes pack tighter (no order is best
    everywhere). When all of them stay clearly above the most bytes alive at
    once (a bound no placement beats), more orders and best fit are tried,
    and then a short search: the buffers that make the arena's top are moved
    to the front of the order, so they are placed before others fill the
    room under them. That is what a small buffer alive through the whole
    backward needs, placed last by size above the big short-lived ones
    (a character RNN's 1.12 x the bound becomes 1.0-1.06). If that still
    misses, the search also starts from the placements that put the buffers
    alive at the busiest position first (the same RNN on NumPy: 1.065 to
    1.0). Deterministic: the same graph always gets the same plan.
    """

    def length(v: Value) -> int:
        return span[v][1] - span[v][0] + 1

    orders = [
        sorted(candidates, key=lambda v: (-v.type.nbytes, span[v][0])),
        sorted(candidates, key=lambda v: -length(v) * v.type.nbytes),
        sorted(candidates, key=lambda v: (span[v][1], -v.type.nbytes)),
    ]
    placed = _first_fit_many(orders, span, [FIRST] * len(orders))
    found = [(offsets, arena, order, FIRST) for (offsets, arena), order in zip(placed, orders)]
    bound = _peak(dict.fromkeys(candidates, 0), span)
    if min(f[1] for f in found) > bound * _SEARCH_ABOVE:
        more = _more_placements(candidates, span, orders, bound)
        found += more
        found.sort(key=lambda f: f[1])
        starts = found[:_SEARCH_STARTS]
        found += _search_many(starts, span, bound)
        if min(f[1] for f in found) > bound * _SEARCH_ABOVE:
            # The placements that put the buffers alive at the busiest position
            # first can start far above the best (small buffers land on top)
            # and still be the ones whose moves reach the bound (W5 on NumPy).
            # They are the last six of ``more`` (three orders, first and best fit).
            peak_first = more[-6::2] if len(more) >= 6 else []
            fresh = [p for p in peak_first if not any(p is s for s in starts)]
            found += _search_many(fresh, span, bound)
    offsets, arena, _, _ = min(found, key=lambda f: f[1])
    return offsets, arena


def _search_many(
    starts: list[tuple[dict[Value, int], int, list[Value], Any]],
    span: dict[Value, tuple[int, int]],
    bound: int,
) -> list[tuple[dict[Value, int], int, list[Value], Any]]:
    """Moves from each start: the buffers at the arena's top go to the front of
    the order, which is placed again, until one meets ``bound``. Each start's
    moves depend on one another, the starts' do not: they are placed side by
    side, and listed start by start as if made one at a time."""
    chains = [[start] for start in starts]
    going = chains[:]
    for _ in range(_SEARCH_STEPS):
        if not going:
            break
        moves = []
        for chain in going:
            offsets, arena, order, fit = chain[-1]
            top = [v for v in order if offsets[v] + align(v.type.nbytes) == arena]
            moved = set(top)
            moves.append((top + [v for v in order if v not in moved], fit))
        placed = _first_fit_many([m[0] for m in moves], span, [m[1] for m in moves])
        for chain, (order, fit), (offsets, arena) in zip(going, moves, placed):
            chain.append((offsets, arena, order, fit))
        going = [chain for chain in going if chain[-1][1] > bound]
    return [placement for chain in chains for placement in chain[1:]]


def _more_placements(
    candidates: list[Value],
    span: dict[Value, tuple[int, int]],
    orders: list[list[Value]],
    bound: int,
) -> list[tuple[dict[Value, int], int, list[Value], str]]:
    """Placements in more orders, first and best fit: by start, by size then
    latest death, and each with the buffers alive at the busiest position
    placed first, stacked with the longest-lived lowest (that position can
    then hold exactly its live bytes). Stops at the first that meets ``bound``
    (the others are placed alongside it, but not returned)."""
    events: dict[int, int] = {}
    for v in candidates:
        events[span[v][0]] = events.get(span[v][0], 0) + align(v.type.nbytes)
        events[span[v][1] + 1] = events.get(span[v][1] + 1, 0) - align(v.type.nbytes)
    busiest, alive, most = 0, 0, -1
    for i in sorted(events):
        alive += events[i]
        if alive > most:
            busiest, most = i, alive
    at = [v for v in candidates if span[v][0] <= busiest <= span[v][1]]
    at_peak = set(at)
    rest = [v for v in candidates if v not in at_peak]
    at.sort(key=lambda v: -span[v][1])
    keys: list[Callable[[Value], Any]] = [
        lambda v: (span[v][0], -v.type.nbytes),
        lambda v: (-v.type.nbytes, -span[v][1]),
    ]
    more = orders + [sorted(candidates, key=k) for k in keys]
    more += [at + sorted(rest, key=k) for k in keys + [lambda v: (-v.type.nbytes, span[v][0])]]
    tries = [
        (order, fit)
        for order in more
        for fit in (FIRST, BEST)
        if not (order in orders and fit == FIRST)  # placed already
    ]
    placed = _first_fit_many([t[0] for t in tries], span, [t[1] for t in tries])
    found = []
    for (order, fit), (offsets, arena) in zip(tries, placed):
        found.append((offsets, arena, order, fit))
        if arena <= bound:
            break
    return found


def _first_fit_all(
    candidates: list[Value], span: dict[Value, tuple[int, int]], fit: str = FIRST
) -> tuple[dict[Value, int], int]:
    """Offsets for ``candidates`` placed in this order, each at the lowest
    offset free over its lifetime (or, with ``fit=BEST``, in the smallest free
    gap it fits), and the arena size that makes."""
    return _first_fit_many([candidates], span, [fit])[0]


# Larger than any offset or gap: the top of the arena, where every buffer fits.
_TOP = np.iinfo(np.int64).max // 4


def _first_fit_many(
    orders: list[list[Value]], span: dict[Value, tuple[int, int]], fits: list[str]
) -> list[tuple[dict[Value, int], int]]:
    """:func:`_first_fit_all` for each order and fit, computed side by side.

    A placement is one small step per buffer, and each step's cost is mostly
    NumPy's per-call overhead: taking the k-th step of every placement at once
    costs little more than one placement's step alone (the search tries
    dozens of placements of the same buffers).
    """
    rows, count = len(orders), len(orders[0])
    if not count:
        return [({}, 0) for _ in orders]
    size = np.array([[align(v.type.nbytes) for v in order] for order in orders], np.int64)
    lives = np.array([[span[v] for v in order] for order in orders], np.int64)
    best = np.array([fit == BEST for fit in fits])
    any_best = bool(best.any())
    # The placed buffers of each row sorted by offset (equal offsets in the order
    # they were placed, as a stable sort orders them): offset, end, and the
    # first and last position alive.
    placed = np.zeros((4, rows, count), np.int64)
    chosen = np.zeros((rows, count), np.int64)
    # before[:, i]: the highest end among the buffers below the i-th that overlap
    # the one being placed in time; column k holds the highest of all (the top).
    before = np.zeros((rows, count + 1), np.int64)
    # gaps[:, i]: the free bytes under the i-th placed buffer (-1 for buffers that
    # do not overlap); column k, the top, where every buffer fits.
    gaps = np.zeros((rows, count + 1), np.int64)
    row = np.arange(rows)
    column = np.arange(count + 1)
    new = np.empty((4, rows), np.int64)
    for k in range(count):
        need = size[:, k, None]
        first, last = lives[:, k, 0, None], lives[:, k, 1, None]
        start, end, born, dies = placed[:, :, :k]
        busy = born <= last
        busy &= dies >= first
        np.maximum.accumulate(end * busy, axis=1, out=before[:, 1 : k + 1])
        gap = gaps[:, : k + 1]
        np.subtract(start, before[:, :k], out=gap[:, :k])
        gap[:, :k][~busy] = -1
        gap[:, k] = _TOP
        fitting = gap >= need
        at = fitting.argmax(axis=1)  # the lowest gap it fits
        if any_best:
            smallest = np.where(fitting, gap, _TOP + 1).argmin(axis=1)
            at = np.where(best, smallest, at)
        offset = before[row, at]
        chosen[:, k] = offset
        # Insert after the buffers at or below the offset.
        slot = (start <= offset[:, None]).sum(axis=1)
        source = column[: k + 1] - (column[: k + 1] > slot[:, None])
        placed[:, :, : k + 1] = placed[:, row[:, None], source]
        new[0], new[1], new[2], new[3] = offset, offset + need[:, 0], first[:, 0], last[:, 0]
        placed[:, row, slot] = new
    arenas = (chosen + size).max(axis=1)
    return [
        (dict(zip(order, map(int, offsets))), int(arena))
        for order, offsets, arena in zip(orders, chosen, arenas)
    ]


def _peak(offsets: dict[Value, int], span: dict[Value, tuple[int, int]]) -> int:
    """Largest total of buffers alive at one node: a sweep over start and end events."""
    deltas: dict[int, int] = {}
    for v in offsets:
        first, last = span[v]
        size = align(v.type.nbytes)
        deltas[first] = deltas.get(first, 0) + size
        deltas[last + 1] = deltas.get(last + 1, 0) - size
    peak = alive = 0
    for i in sorted(deltas):
        alive += deltas[i]
        peak = max(peak, alive)
    return peak


def _concat_parts(
    g: Graph, root: dict[Value, Value], span: dict[Value, tuple[int, int]], outputs: set[Value]
) -> dict[Value, tuple[Value, int]]:
    """Buffers each computed into its block of a ``concatenate`` (see ``plan_memory``)."""
    producers = g.producers()
    # A buffer also written by an in-place update would overwrite its block
    # after the concatenation reads it; reshapes only read it.
    shared_by_writers = {r for v, r in root.items() if v is not r and producers[v].op != "reshape"}
    parts: dict[Value, tuple[Value, int]] = {}
    built: set[Value] = set()  # concatenations with parts: their buffers are not parts
    for n in g.nodes:
        c = n.output if n.op == "concatenate" else None
        if c is None or c in outputs or c in parts:
            continue
        axis = n.attrs["axis"] % c.type.ndim
        if math.prod(c.type.shape[:axis]) != 1:
            continue  # the operands are interleaved, not blocks
        offset = 0
        for x in n.inputs:
            r = root.get(x) if isinstance(x, Value) else None
            if (
                r is not None
                and producers[r].op != "constant"
                and r not in outputs
                and r not in parts
                and r not in built
                and r not in shared_by_writers
                and r.type.nbytes == x.type.nbytes
                and span[r][1] <= span[c][1]
                and offset % ALIGNMENT == 0
            ):
                parts[r] = (c, offset)
                built.add(c)
            offset += x.type.nbytes
    return parts


def _reshape_views(g: Graph, outputs: set[Value], taken: dict[Value, Value]) -> dict[Value, Value]:
    views: dict[Value, Value] = {}
    producers = g.producers()
    for n in g.nodes:
        x = n.inputs[0] if n.op == "reshape" else None
        if not isinstance(x, Value) or x not in producers or producers[x].op == "constant":
            continue  # inputs and constants are not in the arena
        if n.output in outputs or x in outputs or n.output in taken:
            continue
        views[n.output] = x
    return views


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
