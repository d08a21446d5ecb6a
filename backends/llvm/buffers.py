"""Where each tensor of a graph lives while the entry function runs.

A tensor is in one of: the caller's input arrays, fresh output arrays,
constant arrays baked into the executable (these three are pointer slots in
the entry function's ``args``), or the arena, at an offset from the memory
plan (values the plan does not cover are placed after it). A value may
instead alias another's buffer: a donated output is written over its input,
and a reshape may read its operand's bytes as they are. Each node's scratch
memory follows all of these in the arena.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphc.ir import Graph, Value
from graphc.ir.liveness import live_intervals
from graphc.ir.plan import MemoryPlan, align


@dataclass
class Layout:
    """Where each graph tensor lives, for the runtime."""

    n_inputs: int
    output_slots: list[int]  # for each graph output: its args slot
    output_sources: list[tuple[str, int]]  # ("slot", k) written by code, or ("copy", j)
    constants: list[Any] = field(default_factory=list)  # arrays passed after the outputs
    constant_nodes: list[list[int]] = field(default_factory=list)  # paths of node indices
    arena_bytes: int = 0
    plan_bytes: int = 0
    extra_bytes: int = 0
    scratch_bytes: int = 0
    parallel_regions: int = 0  # calls into the worker pool
    uses_blas: bool = False
    profiled: bool = False
    error_paths: list[list[int]] = field(default_factory=list)  # body nodes (see mark_node)


def value_names(g: Graph) -> dict[Value, str]:
    """LLVM names for graph values: arguments keep theirs, node outputs are
    ``v<N>`` where ``%N`` is the printed IR name."""
    names = {v: str(v.name) for v in g.inputs}
    counter = 0
    for n in g.nodes:
        for v in n.outputs:
            names[v] = f"v{counter}"
            counter += 1
    return names


@dataclass
class Placement:
    """Where the code finds each top-level value: an ``args`` slot, an arena
    offset, or (through ``aliases``) another value's buffer."""

    layout: Layout
    slots: dict[Value, int]
    offsets: dict[Value, int]  # bytes into the arena
    aliases: dict[Value, Value]  # value -> the value whose buffer it uses
    scratch_base: int  # where per-node scratch starts in the arena


def place_buffers(g: Graph, plan: MemoryPlan | None) -> Placement:
    """Slots, arena offsets and aliases for ``g``'s values under ``plan``
    (donations included); see :class:`Placement`.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[16], "x")
    >>> g = b.build([b.exp(b.exp(x))])
    >>> p = place_buffers(g, None)
    >>> p.slots[g.outputs[0]], list(p.offsets.values())  # output slot 1, one temporary
    (1, [0])
    """
    n_in, n_out = len(g.inputs), len(g.outputs)
    slots: dict[Value, int] = {v: i for i, v in enumerate(g.inputs)}
    # Constants anywhere (fusion bodies too) are passed by pointer.
    constants = list(_constants(g, ()))
    for k, (_, n) in enumerate(constants):
        slots[n.output] = n_in + n_out + k
    output_slots, sources = [], []
    first: dict[Value, int] = {}
    # A donated output is computed straight into its input's buffer: the
    # value aliases the input, and the runtime returns that input's array.
    donations = dict(plan.donations) if plan is not None else {}
    donated_aliases: dict[Value, Value] = {}
    for j, v in enumerate(g.outputs):
        output_slots.append(n_in + j)
        if v in donations and v not in slots and v not in first:
            u = donations[v]
            donated_aliases[v] = u
            first[v] = j
            sources.append(("donated", slots[u]))
            continue
        if v in slots:
            # An input or a constant: the runtime copies it.
            slot = slots[v]
            sources.append(("input", slot) if slot < n_in else ("const", slot - n_in - n_out))
        elif v in first:
            sources.append(("copy", first[v]))
        else:
            first[v] = j
            sources.append(("slot", n_in + j))
    for v, j in first.items():
        if v not in donated_aliases:
            slots[v] = n_in + j
    layout = Layout(n_in, output_slots, sources)
    layout.constant_nodes = [list(path) for path, _ in constants]
    layout.constants = [n.attrs["value"] for _, n in constants]
    offsets: dict[Value, int] = {}
    aliases: dict[Value, Value] = {}
    plan_bytes = 0
    if plan is not None:
        # A concatenation's parts are computed straight into its bytes.
        offsets = {v: o for v, o in plan.placed().items() if v not in slots}
        aliases = {v: a for v, a in plan.aliases.items() if v not in slots}
        plan_bytes = plan.arena_bytes
    aliases.update(donated_aliases)
    missing = [
        v
        for n in g.nodes
        for v in n.outputs
        if v not in slots and v not in offsets and v not in aliases
    ]
    extra = _first_fit(g, missing, plan_bytes)
    offsets.update(extra)
    end = max((o + align(v.type.nbytes) for v, o in extra.items()), default=plan_bytes)
    layout.plan_bytes = plan_bytes
    layout.extra_bytes = end - plan_bytes
    _alias_reshapes(g, slots, offsets, aliases)
    return Placement(layout, slots, offsets, aliases, end)


def _alias_reshapes(
    g: Graph, slots: dict[Value, int], offsets: dict[Value, int], aliases: dict[Value, Value]
) -> None:
    """Let a reshape's result share its operand's buffer (no copy) when
    nothing else is placed in those bytes while the result is still read
    (adds to ``aliases``)."""
    arena = _ArenaBlocks(g, offsets)
    for n in g.nodes:
        if n.op != "reshape" or not isinstance(n.inputs[0], Value):
            continue
        v, x = n.output, n.inputs[0]
        if v in slots or v in aliases:
            continue
        root = x
        while root in aliases:
            root = aliases[root]
        if root not in slots:
            if root not in offsets:
                continue
            # The plan may reuse the bytes once x is last read; v reads them later.
            if not arena.free_over(root, arena.last_use(x), arena.last_use(v)):
                continue
            arena.extend(root, arena.last_use(v))
        aliases[v] = x


class _ArenaBlocks:
    """The planned values' bytes and live intervals, and whether a value's
    bytes are left alone over an interval (so it may be kept alive longer)."""

    def __init__(self, g: Graph, offsets: dict[Value, int]) -> None:
        self.live = live_intervals(g)
        self.blocks = {v: (o, align(v.type.nbytes)) for v, o in offsets.items()}

    def last_use(self, v: Value) -> int:
        return self.live[v][1]

    def free_over(self, owner: Value, after: int, through: int) -> bool:
        """Whether no other value placed in ``owner``'s bytes is alive at
        some node in (after, through]."""
        start, size = self.blocks[owner]
        return not any(
            o < start + size and start < o + sz and first <= through and last > after
            for u, (o, sz) in self.blocks.items()
            if u is not owner
            for first, last in [self.live[u]]
        )

    def extend(self, owner: Value, through: int) -> None:
        first, last = self.live[owner]
        self.live[owner] = (first, max(last, through))


def _constants(g: Graph, path: tuple[int, ...]) -> Any:
    """(path, node) for every constant node, bodies included; a path is node
    index, subgraph index, node index, ... down to the constant."""
    for i, n in enumerate(g.nodes):
        if n.op == "constant":
            yield (*path, i), n
        for k, sub in enumerate(n.subgraphs):
            yield from _constants(sub, (*path, i, k))


def _first_fit(g: Graph, values: list[Value], base: int) -> dict[Value, int]:
    """Arena offsets (from ``base``) for values the plan does not cover."""
    if not values:
        return {}
    live = live_intervals(g)
    placed: list[tuple[int, int, int, int]] = []
    out: dict[Value, int] = {}
    for v in sorted(values, key=lambda v: -v.type.nbytes):
        size = align(v.type.nbytes)
        first, last = live[v]
        busy = sorted((o, s) for o, s, a, b in placed if a <= last and first <= b)
        offset = base
        for o, s in busy:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
        out[v] = offset
    return out
