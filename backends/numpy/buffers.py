"""Which values the generated code writes into preallocated buffers.

NumPy decides some memory sharing by itself: ``reshape``, ``transpose``,
slices and broadcasts return *views* that share their operand's memory. So
the planner first groups values into *storages* (a value and every view of
it) and gives each storage the lifetime of its longest-lived member. Only
then does it hand out buffers, and only to storages that

- are made by an op that can write into a given buffer (``out=``),
- are not returned to the caller (a later call would overwrite them), and
- are at least ``min_bytes`` big (for tiny arrays NumPy's own allocation is
  cheaper than passing ``out=``).

Two storages share a buffer only when their lifetimes do not overlap, except
that an elementwise ufunc may write over an operand that dies at that very
node (``np.add(a, b, out=a)`` is exact in NumPy). Buffers are allocated once,
when the executable is built, and reused by every call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from graphc.ir import Graph, Node, Value
from graphc.ir.plan import MemoryPlan

from .lowerings import Lowering


@dataclass(eq=False)
class Storage:
    """Memory shared by a value (``root``) and the views of it."""

    root: Value
    kind: str  # "input", "const" (computed at build time) or "fresh" (made by a node)
    start: int
    end: int = -1  # last node index reading any member (len(nodes) when returned)
    escapes: bool = False  # a member is a graph output


@dataclass
class BufferPlan:
    """Storage of every value, and the buffer (a typed array) of the planned ones."""

    storage: dict[Value, Storage]
    last_use: dict[Value, int]
    buffers: dict[Value, np.ndarray] = field(default_factory=dict)
    buffer_names: dict[Value, str] = field(default_factory=dict)  # same name, same memory
    readonly: set[Value] = field(default_factory=set)
    slots: list[np.ndarray] = field(default_factory=list)
    donated_into: dict[Value, Value] = field(default_factory=dict)  # output -> donated input

    @property
    def buffer_bytes(self) -> int:
        """Bytes preallocated for intermediates (held for the executable's life)."""
        return sum(s.nbytes for s in self.slots)


def analyze(g: Graph, lowerings: Mapping[str, Lowering], stretched: set[Value]) -> BufferPlan:
    """Storages and last uses; ``stretched`` are broadcasts NumPy makes with
    zero strides (read-only views)."""
    last_use: dict[Value, int] = {v: -1 for v in g.inputs}
    storage: dict[Value, Storage] = {v: Storage(v, "input", -1) for v in g.inputs}
    readonly: set[Value] = set()
    for i, n in enumerate(g.nodes):
        for v in n.value_inputs():
            last_use[v] = i
        values = list(n.value_inputs())
        lowering = lowerings[n.op]
        for v in n.outputs:
            last_use[v] = i
            if not values:
                storage[v] = Storage(v, "const", i)
                readonly.add(v)
            elif lowering.view:
                src = n.inputs[0]
                assert isinstance(src, Value), f"{n.op}: a view of a literal"
                storage[v] = storage[src]
                if src in readonly or v in stretched:
                    readonly.add(v)
            else:
                storage[v] = Storage(v, "fresh", i)
    end = len(g.nodes)
    for v in g.outputs:
        last_use[v] = end
        storage[v].escapes = True
    for v, s in storage.items():
        s.end = max(s.end, last_use[v])
    return BufferPlan(storage, last_use, readonly=readonly)


def _candidates(
    g: Graph, plan: BufferPlan, lowerings: Mapping[str, Lowering], min_bytes: int
) -> list[tuple[int, Value]]:
    found = []
    for i, n in enumerate(g.nodes):
        if len(n.outputs) != 1:
            continue  # results handed back as a tuple (a scan's) are made by the loop itself
        (v,) = n.outputs
        s = plan.storage[v]
        if (
            s.root is v
            and s.kind == "fresh"
            and not s.escapes
            and lowerings[n.op].out
            and v.type.nbytes >= max(min_bytes, 1)
        ):
            found.append((i, v))
    return found


def assign_slots(
    g: Graph, plan: BufferPlan, lowerings: Mapping[str, Lowering], min_bytes: int
) -> None:
    """Greedy buffer reuse in node order, with in-place writes for ufuncs."""
    slot_of: dict[Storage, int] = {}
    sizes: list[int] = []
    free: list[int] = []
    ending: dict[int, list[Storage]] = {}
    handed_on: set[Storage] = set()  # storages whose slot a later value took over in place
    candidates = dict(_candidates(g, plan, lowerings, min_bytes))
    for i, n in enumerate(g.nodes):
        v = candidates.get(i)
        if v is not None:
            donor = _inplace_donor(n, v, i, plan, lambda s: s in slot_of, lowerings[n.op])
            fitting = _best_fit(free, sizes, v.type.nbytes)
            if donor is not None:
                slot = slot_of[donor]
                handed_on.add(donor)
            elif fitting is not None:
                slot = fitting
                free.remove(slot)
            else:
                sizes.append(v.type.nbytes)
                slot = len(sizes) - 1
            s = plan.storage[v]
            slot_of[s] = slot
            ending.setdefault(s.end, []).append(s)
        for s in ending.pop(i, []):
            if s not in handed_on:
                free.append(slot_of[s])
    plan.slots = [np.empty(size, np.uint8) for size in sizes]
    views: dict[tuple[int, object], tuple[str, np.ndarray]] = {}
    for s, slot in slot_of.items():
        v = s.root
        key = (slot, v.type)
        if key not in views:
            kinds = sum(1 for k in views if k[0] == slot)
            name = f"buf{slot}" if not kinds else f"buf{slot}_{kinds}"
            views[key] = (name, _typed_view(plan.slots[slot], v))
        plan.buffer_names[v], plan.buffers[v] = views[key]


def _inplace_donor(
    n: Node,
    v: Value,
    i: int,
    plan: BufferPlan,
    has_buffer: Callable[[Storage], bool],
    lowering: Lowering,
) -> Storage | None:
    """An operand's storage that dies here and that ``v`` may overwrite exactly."""
    if not lowering.inplace:
        return None
    operands = list(n.value_inputs())
    for a in operands:
        s = plan.storage[a]
        if (
            s.root is a
            and has_buffer(s)
            and s.end == i
            and a.type == v.type
            and all(plan.storage[b] is not s for b in operands if b is not a)
        ):
            return s
    return None


def _best_fit(free: list[int], sizes: list[int], need: int) -> int | None:
    fitting = [k for k in free if need <= sizes[k] <= 2 * need]
    return min(fitting, key=lambda k: sizes[k]) if fitting else None


def use_memory_plan(
    g: Graph,
    plan: BufferPlan,
    lowerings: Mapping[str, Lowering],
    memory: MemoryPlan,
    min_bytes: int,
) -> None:
    """Place buffers at the offsets of ``memory`` (and in place where its
    ``aliases`` say so), checking each placement against the storages' real
    lifetimes (views extend them); a value whose placement would overlap a
    live one, or whose in-place write NumPy would not make exact, gets no
    buffer."""
    arena = np.empty(max(memory.arena_bytes, 1), np.uint8)
    active: dict[Value, tuple[int, int, int]] = {}  # owner -> (first byte, end byte, last node)
    for i, v in _candidates(g, plan, lowerings, min_bytes):
        n = g.nodes[i]
        donor = memory.aliases.get(v)
        if donor is not None:
            found = _inplace_donor(n, v, i, plan, lambda s: s.root in active, lowerings[n.op])
            if found is not None and found.root is donor:
                lo, hi, _ = active.pop(donor)
                active[v] = (lo, hi, plan.storage[v].end)
                plan.buffers[v] = plan.buffers[donor]
                plan.buffer_names[v] = plan.buffer_names[donor]
            continue
        offset = memory.offsets.get(v)
        if offset is None or offset + v.type.nbytes > memory.arena_bytes:
            continue
        lo, hi = offset, offset + v.type.nbytes
        for owner in [w for w, (_, _, end) in active.items() if end < i]:
            del active[owner]
        if any(a_lo < hi and lo < a_hi for a_lo, a_hi, _ in active.values()):
            continue
        active[v] = (lo, hi, plan.storage[v].end)
        plan.buffers[v] = _typed_view(arena[lo:], v)
        shape = "x".join(map(str, v.type.shape)) or "scalar"
        plan.buffer_names[v] = f"arena_{lo}_{v.type.dtype}_{shape}"
    plan.slots = [arena]


def use_donations(
    g: Graph, plan: BufferPlan, lowerings: Mapping[str, Lowering], memory: MemoryPlan
) -> None:
    """Write each output that ``memory.donations`` pairs with a donated input
    straight into that input's array (``out=``), so a training step allocates
    nothing for its new parameters. Checked again against NumPy's own storage
    (views extend an input's life): the input is read by nothing after the
    node, and by the node itself only as an operand of an elementwise ufunc
    that may overwrite it exactly (each element read before it is written)."""
    made = {n.outputs[0]: (i, n) for i, n in enumerate(g.nodes) if len(n.outputs) == 1}
    for v, u in memory.donations.items():
        if v not in made or u not in plan.storage or u.type != v.type:
            continue
        i, n = made[v]
        lowering, given = lowerings[n.op], plan.storage[u]
        if not lowering.out or plan.storage[v].root is not v or plan.storage[v].kind != "fresh":
            continue
        if given.kind != "input" or given.escapes or given.end > i:
            continue
        reading = [a for a in n.value_inputs() if plan.storage[a] is given]
        if reading and not (lowering.inplace and all(a is u for a in reading)):
            continue
        plan.donated_into[v] = u


def _typed_view(raw: np.ndarray, v: Value) -> np.ndarray:
    return raw[: v.type.nbytes].view(v.type.dtype.np).reshape(v.type.shape)
