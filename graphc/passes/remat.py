"""rematerialize: meet a memory budget by computing cheap values a second time.

A value computed early and read again much later (an activation kept for the
backward pass) holds its bytes over the whole stretch in between. If it is
cheap to compute again from values that are kept anyway, a second copy made
right before its late readers frees those bytes in between. This pass does
that automatically while the planned peak is over the budget
(``gc.jit(..., memory_budget=BYTES)``); ``gc.remat`` is the manual form of the
same trade.

What to recompute across the peak is a minimum cut, as in Checkmate and in
PyTorch's min-cut partitioner. In a flow network over the values computed
before the peak, each value is a pair of vertices joined by an edge whose
capacity is what keeping it across the peak costs; values read after the
peak drain into the sink; values that cannot be recomputed (matmul, conv,
reduction and gather results, graph inputs) are fed from the source; and a
cheap value's operands feed it with infinite capacity. The cheapest cut names
the values to keep; the needed values beyond it are recomputed from them.

The copies read what they need through an ``optimization_barrier`` that also
takes a value computed right before their first reader, so fusion keeps them
out of the forward kernels and scheduling keeps them late, exactly as for
``gc.remat``.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from graphc.ir import Graph, GraphBuilder, Node, Value, format_message, get_op
from graphc.ir.plan import MemoryPlan, align

from .dce import eliminate_dead_code
from .inline import recomputed_loc
from .manager import PassRecord, count
from .plan_memory import plan_memory
from .remat_segments import PRODUCTS, chain_of_products, segment_choices, spread_drops
from .schedule import schedule_for_memory

MAX_ROUNDS = 32
# Rounds in a row that may fail to lower the measured peak: a round can move
# the peak without lowering it, and the next one may then get below it.
PATIENCE = 3


class MemoryBudgetWarning(UserWarning):
    """A compiled function's planned peak memory stays over its ``memory_budget``."""


def rematerialize(
    g: Graph,
    budget: int,
    *,
    lower: Callable[[Graph], Graph] | None = None,
    inplace: bool = False,
    donated: Sequence[int] = (),
    views: bool = False,
) -> Graph:
    """Recompute cheap values late until the planned peak is at most ``budget`` bytes.

    Each round orders ``g`` with ``schedule_for_memory``, finds the node where
    the most bytes are live, picks by minimum cut which values computed before
    it to keep and which to compute again (elementwise and shape ops only:
    never matmul, conv, reductions or gathers), and inserts the copies right
    before their first reader after the peak. The budget is checked on
    ``plan_memory(lower(g), inplace=..., views=..., donated=...)``, the plan the backend
    will get, where ``lower`` runs the passes that follow this one (fusion,
    scheduling). The pass stops when under budget, when nothing cheap is
    left, or when rounds stop lowering the measured peak; it returns the best
    graph seen and never fails. The compile report counts the peak before and
    after and, if the budget is not met, the bytes still over it (``gc.jit``
    then warns with :class:`MemoryBudgetWarning`).

    Contract: a graph before fusion in (barriers allowed); the same inputs,
    outputs and meaning out. Cost per round: one schedule, one max-flow over
    the values computed before the peak, one ``lower`` and one memory plan.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[1024], "x")
    >>> t = b.tanh(x)                          # read now and at the very end
    >>> s = b.reduce_sum(t, axes=(0,))
    >>> u = b.exp(b.sin(x))                    # meanwhile, more work on x
    >>> g = b.build([b.add(b.mul(u, s), t)])
    >>> from graphc.passes.inline import remove_barriers
    >>> out = remove_barriers(rematerialize(g, 8192))
    >>> plan_memory(g).peak_bytes, plan_memory(out).peak_bytes
    (12352, 8256)
    >>> [n.op for n in out.nodes]              # tanh again, right before the add
    ['tanh', 'reduce_sum', 'sin', 'exp', 'mul', 'tanh', 'add']
    """
    lower = lower or (lambda h: h)

    def quietly(fn: Callable[[Graph], Graph], h: Graph) -> Graph:
        # In a fresh context, so other passes' counters stay out of this report row.
        return contextvars.Context().run(fn, h)

    def measure(h: Graph) -> tuple[int, int]:
        # The arena, not the most bytes alive at once: a placement can leave gaps,
        # and the arena is what the backend allocates and the memory report compares.
        final = quietly(lower, h)
        plan = plan_memory(final, inplace=inplace, views=views, donated=donated)
        return plan.arena_bytes, sum(_plan_profile(final, plan))

    best_score = first_score = measure(g)
    best, current, misses, recomputed, total = g, g, 0, 0, 0
    for _ in range(MAX_ROUNDS):
        if best_score[0] <= budget or misses >= PATIENCE:
            break
        scheduled = schedule_for_memory(current, donated)
        step = _recompute_across_peak(scheduled)
        if step is None:
            # Cheap recomputation is exhausted: recompute segments, products included.
            step = _recompute_segments(scheduled, budget, measure)
        if step is None:
            break
        # Readers after the peak now use the copies, which can leave the originals unread.
        current, n_values = quietly(eliminate_dead_code, step[0]), step[1]
        total += n_values
        score = measure(current)
        if score < best_score:
            best, best_score, recomputed, misses = current, score, total, 0
        else:
            misses += 1
    count("peak bytes before", first_score[0])
    count("peak bytes after", best_score[0])
    if recomputed:
        count("values recomputed", recomputed)
    products = _products(best) - _products(g)
    if products > 0:
        count("products recomputed", products)
    if best_score[0] > budget:
        count("bytes over budget", best_score[0] - budget)
    return best


def describe_budget_miss(
    name: str, budget: int, record: PassRecord, largest: Sequence[Any] = ()
) -> str:
    """The warning text for a budget that :func:`rematerialize` could not meet;
    ``largest`` are rows of the memory report (the biggest values at the peak)."""
    counts = record.counts
    after = counts.get("peak bytes after", 0)
    details = [
        f"{after - budget:,} bytes over the budget; the largest values alive at the peak:",
        *(f"  {r.nbytes:,} bytes, {r.op}, at {r.line or 'an unknown line'}" for r in largest),
    ]
    if counts.get("products recomputed"):
        details.append(f"{counts['products recomputed']} matrix products are computed again")
    details.append(
        "what is still alive at the peak is read there, or cannot be computed again "
        "(reductions, gathers and random draws are kept)"
    )
    return format_message(
        f"{name}: memory_budget={budget:,} bytes is not met: the planned peak is "
        f"{after:,} bytes ({counts.get('peak bytes before', 0):,} before; "
        f"{counts.get('values recomputed', 0)} values recomputed)",
        details=details,
        hint="raise the budget, wrap larger blocks in gc.remat (it recomputes everything in "
        "them), or use smaller batches",
    )


def _plan_profile(g: Graph, plan: MemoryPlan) -> list[int]:
    """Planned bytes live at each node (the quantity ``plan.peak_bytes`` maximizes)."""
    spans = plan.spans(g)
    return _sweep(
        len(g.nodes), ((spans[v][0], spans[v][1], align(v.type.nbytes)) for v in plan.offsets)
    )


def _sweep(length: int, spans: Iterable[tuple[int, int, int]]) -> list[int]:
    """Bytes live at each of ``length`` steps, from (first step, last step, bytes)."""
    delta = [0] * (length + 1)
    for first, last, size in spans:
        delta[max(first, 0)] += size
        delta[min(last, length - 1) + 1] -= size
    profile, total = [], 0
    for d in delta[:-1]:
        total += d
        profile.append(total)
    return profile


@dataclass
class _Buffers:
    """Liveness with barrier outputs counted as their operands (they are the same bytes)."""

    root: dict[Value, Value]
    first: dict[Value, int]  # root -> index of its node (-1: a graph input)
    readers: dict[Value, list[int]]  # root -> indices of nodes reading any of its names
    names: dict[Value, list[Value]]  # root -> the root and the barrier outputs standing for it
    pinned: set[Value]
    profile: list[int]


def _buffers(g: Graph) -> _Buffers:
    root: dict[Value, Value] = {v: v for v in g.inputs}
    first = {v: -1 for v in g.inputs}
    readers: dict[Value, list[int]] = {v: [] for v in g.inputs}
    for i, n in enumerate(g.nodes):
        for x in n.value_inputs():
            readers[root[x]].append(i)
        if n.op == "optimization_barrier":
            for x, v in zip(n.inputs, n.outputs):
                if isinstance(x, Value):
                    root[v] = root[x]
                else:  # a literal operand: the output is a buffer of its own
                    root[v], first[v], readers[v] = v, i, []
            continue
        for v in n.outputs:
            root[v], first[v], readers[v] = v, i, []
    end = len(g.nodes)
    last = {r: max(readers[r], default=first[r]) for r in first}
    # A graph may return a literal (folded constant): it has no buffer.
    pinned = set(g.inputs) | {root[v] for v in g.outputs if isinstance(v, Value)}
    for r in pinned:
        last[r] = end
    names: dict[Value, list[Value]] = {}
    for v, r in root.items():
        names.setdefault(r, []).append(v)
    spans = ((first[r], last[r], align(r.type.nbytes)) for r in first if r not in pinned)
    return _Buffers(root, first, readers, names, pinned, _sweep(end, spans))


def _cheap(n: Node) -> bool:
    opdef = get_op(n.op)
    return len(n.outputs) == 1 and (opdef.has("elementwise") or opdef.has("shape"))


def _recompute_across_peak(g: Graph) -> tuple[Graph, int] | None:
    """One round on a scheduled graph: the min-cut recomputation across its peak."""
    buf = _buffers(g)
    if not buf.profile:
        return None
    peak = max(range(len(buf.profile)), key=buf.profile.__getitem__)
    producer = g.producers()
    at_peak = {buf.root[x] for x in g.nodes[peak].value_inputs()}

    def free(r: Value) -> bool:
        # Caller-owned, or live at the peak no matter what: keeping it costs nothing there.
        return r in buf.pinned or r in at_peak

    needed = [
        r
        for r, i in buf.first.items()
        if 0 <= i < peak and not free(r) and any(k > peak for k in buf.readers[r])
    ]
    if not needed:
        return None
    import networkx as nx  # here: importing graphc should not pay for it

    flow = nx.DiGraph()
    # Values built only from literals and constants never reach the source
    # through an edge; the source must exist anyway.
    flow.add_nodes_from(["source", "sink"])
    stack, seen = list(needed), set(needed)
    while stack:
        r = stack.pop()
        flow.add_edge(("in", r), ("out", r), capacity=0 if free(r) else align(r.type.nbytes))
        p = producer.get(r)
        if p is None or free(r) or not _cheap(p):
            flow.add_edge("source", ("in", r))  # no capacity attribute: infinite
            continue
        for u in {buf.root[x] for x in p.value_inputs()}:
            flow.add_edge(("out", u), ("in", r))
            if u not in seen:
                seen.add(u)
                stack.append(u)
    for r in needed:
        flow.add_edge(("out", r), "sink")
    cut_bytes, (_, sink_side) = nx.minimum_cut(flow, "source", "sink")
    if cut_bytes >= sum(align(r.type.nbytes) for r in needed):
        return None
    # Recompute the needed values beyond the cut, and what they are built from.
    again: set[Value] = set()
    stack = [r for r in needed if ("in", r) in sink_side]
    while stack:
        r = stack.pop()
        if r in again:
            continue
        again.add(r)
        for x in producer[r].value_inputs():
            if ("in", buf.root[x]) in sink_side:
                stack.append(buf.root[x])
    return _insert_copies(g, peak, again, buf), len(again)


def _recompute_segments(
    g: Graph, budget: int, measure: Callable[[Graph], tuple[int, int]]
) -> tuple[Graph, int] | None:
    """One round of checkpointed segments across the peak of scheduled ``g``:
    the shortest segments whose plan meets ``budget``, else the lowest plan."""
    buf = _buffers(g)
    if not buf.profile:
        return None
    peak = max(range(len(buf.profile)), key=buf.profile.__getitem__)
    at_peak = {buf.root[x] for x in g.nodes[peak].value_inputs()}

    def free(r: Value) -> bool:
        return r in buf.pinned or r in at_peak or buf.first.get(r, -1) < 0

    needed = sorted(
        (
            r
            for r, i in buf.first.items()
            if 0 <= i < peak and not free(r) and any(k > peak for k in buf.readers[r])
        ),
        key=buf.first.__getitem__,
    )
    chain, cones = chain_of_products(g, needed, lambda x: free(buf.root.get(x, x)), buf.root)
    best: tuple[tuple[int, int], Graph, set[Value]] | None = None

    def attempt(again: set[Value]) -> bool:
        nonlocal best
        h = contextvars.Context().run(eliminate_dead_code, _insert_copies(g, peak, again, buf))
        score = measure(h)
        if best is None or score < best[0]:
            best = (score, h, again)
        return score[0] <= budget

    # Fewest products first: the smallest number of spread-out drops that meets the
    # budget (bisection: more drops never raise the peak), then shorter segments.
    most = len(chain) // 2
    if most and attempt(spread_drops(chain, cones, most)):
        met, lo = most, 1
        while lo < met:
            mid = (lo + met) // 2
            if attempt(spread_drops(chain, cones, mid)):
                met = mid
            else:
                lo = mid + 1
        assert best is not None
        chosen = spread_drops(chain, cones, met)
        h = contextvars.Context().run(eliminate_dead_code, _insert_copies(g, peak, chosen, buf))
        return h, len(chosen)
    for _, again in segment_choices(chain, cones, math.isqrt(len(chain)) + 1):
        if attempt(again):
            break
    if best is None:
        return None
    return best[1], len(best[2])


def _products(g: Graph) -> int:
    return sum(1 for n in g.nodes if n.op in PRODUCTS)


def _insert_copies(g: Graph, peak: int, again: set[Value], buf: _Buffers) -> Graph:
    """``g`` with each value in ``again`` computed a second time, right before
    its first reader after the peak; readers after the peak use the copy."""
    producer = g.producers()
    # Each copy goes before its first late reader, or before the first copy
    # that reads it (settled from the latest value back to the earliest).
    copies_reading: dict[Value, set[Value]] = {r: set() for r in again}
    for u in again:
        for x in producer[u].value_inputs():
            if buf.root[x] in again:
                copies_reading[buf.root[x]].add(u)
    where: dict[Value, int] = {}
    for r in sorted(again, key=lambda r: -buf.first[r]):
        spots = [k for k in buf.readers[r] if k > peak]
        where[r] = min(spots + [where[u] for u in copies_reading[r]])
    batches: dict[int, list[Value]] = {}
    for r, i in where.items():
        batches.setdefault(i, []).append(r)

    b = GraphBuilder(g.name)
    b.inputs.extend(g.inputs)
    copy: dict[Value, Value] = {}  # every name of a recomputed value -> its copy
    renamed: dict[Value, Value] = {}  # outputs of re-emitted late readers
    for i, n in enumerate(g.nodes):
        if i in batches:
            batch = sorted(batches[i], key=lambda r: buf.first[r])
            _emit_batch(b, g, i, peak, batch, buf, copy, renamed)
        inputs = [renamed.get(x, copy.get(x, x)) if isinstance(x, Value) else x for x in n.inputs]
        if all(a is x for a, x in zip(inputs, n.inputs)):
            b.nodes.append(n)
            continue
        assert i > peak, "only readers after the peak switch to a copy"
        renamed.update(zip(n.outputs, b.copy_node(n, inputs).outputs))
    return b.build([renamed.get(v, v) for v in g.outputs], name=g.name)


def _emit_batch(
    b: GraphBuilder,
    g: Graph,
    at: int,
    peak: int,
    batch: list[Value],
    buf: _Buffers,
    copy: dict[Value, Value],
    renamed: dict[Value, Value],
) -> None:
    """Copies of the producers of ``batch`` (in order), reading what is kept
    through one barrier that waits for a value computed just before ``at``."""
    producer = g.producers()
    nodes = [producer[r] for r in batch]
    recomputed = set(batch)
    kept = list(
        dict.fromkeys(
            x
            for n in nodes
            for x in n.value_inputs()
            if buf.root[x] not in recomputed and x not in copy
        )
    )
    through: dict[Value, Value] = {}
    if kept:
        reader = g.nodes[at]
        late = [x for x in reader.value_inputs() if buf.first.get(buf.root[x], -1) > peak]
        token = max(late, key=lambda x: buf.first[buf.root[x]], default=None)
        if token is None and at - 1 > peak and g.nodes[at - 1].outputs:
            token = g.nodes[at - 1].outputs[0]
        operands = list(kept)
        if token is not None:
            token = renamed.get(token, token)
            if token not in operands:
                operands.append(token)
        barrier = b.emit_node("optimization_barrier", operands, {}, (), nodes[0].loc)
        through = dict(zip(operands, barrier.outputs))
    for n, r in zip(nodes, batch):
        inputs = [copy.get(x, through.get(x, x)) if isinstance(x, Value) else x for x in n.inputs]
        new = b.emit_node(n.op, inputs, n.attrs, n.subgraphs, recomputed_loc(n.loc))
        copy.update((v, new.output) for v in buf.names[r])
