"""The memory report of a compiled function: ``jitted.memory``.

Each backend reports where its bytes went (arena, scratch, constants...).
This module adds what a user needs to judge the plan: the lower bound (the
largest total of intermediates alive at once in the final node order, which
no placement can go under), the plan's ratio to it, the largest values with
the user line that made each and whether it is kept from its first
computation or recomputed late, and a plot of bytes live over the schedule.

Everything here reads the optimized graph and its memory plan; nothing runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from graphc.ir import Graph, Node, Value
from graphc.ir.plan import MemoryPlan, align

# A node marked with this ``Loc.derived`` computes a value a second time
# (rematerialization, or a gc.remat region's recomputation in the backward).
RECOMPUTE = "recompute"


@dataclass(frozen=True)
class ValueRow:
    """One planned buffer: its size, where its values came from and how long it lives.

    ``hows`` labels each value written into the buffer (one, an in-place
    chain, or a concatenation's parts and then itself), in order:
    ``"saved"`` (made by the forward and read by the backward: what the
    backward keeps), ``"recomputed"`` (computed a second time, by
    rematerialization) or ``"temporary"`` (anything else). ``how`` is
    the one label they share, or them in order joined by " > " as ``op`` is (a
    run of one label, or op, written once with its count: "2 temporary").
    """

    name: str  # as printed in the optimized graph ("%12")
    nbytes: int
    op: str  # the op that computes it ("tanh in a matmul_epilogue fusion"), or them in order
    line: str  # the user's source line, "" when unknown
    first: int  # schedule position that computes it
    last: int  # schedule position of its last reader
    how: str  # "saved", "recomputed", "temporary", or per value ("2 temporary > saved")
    hows: tuple[str, ...] = ()  # one label per value in the buffer, in order

    def __str__(self) -> str:
        return (
            f"{self.nbytes:>14,d}  {self.name:>6s}  {self.how:10s}  "
            f"{self.first:>5d}-{self.last:<5d}  {self.op}  {self.line}"
        ).rstrip()


def live_profile(g: Graph, plan: MemoryPlan) -> list[int]:
    """Planned bytes alive at each schedule position of ``g`` under ``plan``
    (a value written in place over another extends that buffer's life; a
    concatenation built in place holds its bytes from its first part on).

    >>> from graphc.ir import GraphBuilder, f32
    >>> from graphc.passes.plan_memory import plan_memory
    >>> b = GraphBuilder("f"); x = b.input(f32[16], "x")
    >>> g = b.build([b.exp(b.exp(b.exp(x)))])
    >>> live_profile(g, plan_memory(g))
    [64, 128, 64]
    """
    length = len(g.nodes)
    delta = [0] * (length + 1)
    # Each buffer counts once: a value written in place over another, or a
    # concatenation's part computed inside it, adds no bytes of its own.
    for v, (first, last) in plan.spans(g).items():
        if v in plan.parts:
            continue
        delta[max(first, 0)] += align(v.type.nbytes)
        delta[min(last, length - 1) + 1] -= align(v.type.nbytes)
    profile, total = [], 0
    for d in delta[:-1]:
        total += d
        profile.append(total)
    return profile


def lower_bound_bytes(g: Graph, plan: MemoryPlan) -> int:
    """The largest total of planned intermediates alive at once: no arena for
    this node order can be smaller.

    >>> from graphc.ir import GraphBuilder, f32
    >>> from graphc.passes.plan_memory import plan_memory
    >>> b = GraphBuilder("f"); x = b.input(f32[16], "x")
    >>> g = b.build([b.exp(b.exp(b.exp(x)))])
    >>> lower_bound_bytes(g, plan_memory(g)), plan_memory(g).arena_bytes
    (128, 128)
    """
    return max(live_profile(g, plan), default=0)


def _origin(n: Node, k: int) -> Node:
    """The node that computes output ``k`` of ``n`` (inside a fusion body)."""
    if n.op != "fusion":
        return n
    body = n.subgraphs[0]
    producer = body.producers().get(body.outputs[k])
    return producer if producer is not None else n


def value_rows(g: Graph, plan: MemoryPlan) -> list[ValueRow]:
    """Every buffer ``plan`` places, largest first (then in schedule order).

    A buffer that values are written into in place (``plan.aliases``, or a
    concatenation's ``plan.parts``) is one row: its ops in order ("matmul >
    add > tanh"), a label per value (see :class:`ValueRow`), the last one's
    line, and a live range from the first write to the last reader of any of
    them.
    """
    names: dict[Value, str] = {}
    where: dict[Value, tuple[Node, int]] = {}
    counter = 0
    for n in g.nodes:
        for k, v in enumerate(n.outputs):
            names[v] = f"%{counter}"
            where[v] = (n, k)
            counter += 1
    chain: dict[Value, list[Value]] = {v: [] for v in plan.offsets}
    root: dict[Value, Value] = {v: v for v in plan.offsets}
    # A concatenation's parts are values of its buffer, computed before it.
    root.update((v, c) for v, (c, _) in plan.parts.items())
    for v in names:  # in schedule order, so an alias's operand is settled first
        a = plan.aliases.get(v)
        if a is not None and a in root:
            root[v] = root[a]
        if v in root:
            chain[root[v]].append(v)
    spans = plan.spans(g)
    backward = {n for n in g.nodes if "vjp" in _derived(n)}
    read_by_backward: set[Value] = set()
    for n in backward:
        read_by_backward.update(x for x in n.inputs if isinstance(x, Value))
    rows = []
    for r, members in chain.items():
        ops, hows = [], []
        for v in members:
            n, k = where[v]
            origin = _origin(n, k)
            op = origin.op
            if origin is not n:
                op += f" in a {n.attrs.get('kind', 'fused')} fusion"
            ops.append(op)
            made = {m.loc.derived if m.loc is not None else None for m in (origin, n)}
            if RECOMPUTE in made:
                hows.append("recomputed")
            elif "vjp" not in made and v in read_by_backward:
                hows.append("saved")
            else:
                hows.append("temporary")
        n, k = where[members[-1]]
        loc = _origin(n, k).loc or n.loc
        line = ""
        if loc is not None:
            text = loc.source_line()
            line = str(loc) + (f" ({loc.derived})" if loc.derived else "")
            line += f"  {text}" if text else ""
        rows.append(
            ValueRow(
                names[r],
                r.type.nbytes,
                _label(ops),
                line,
                spans[r][0],
                spans[r][1],
                _label(hows),
                tuple(hows),
            )
        )
    rows.sort(key=lambda row: (-row.nbytes, row.first))
    return rows


def _label(hows: list[str]) -> str:
    """Per-value labels in order, a run of one label written once with its count
    ("2 temporary > saved > 2 temporary"); one label alone when all agree."""
    runs: list[list[Any]] = []
    for h in hows:
        if runs and runs[-1][0] == h:
            runs[-1][1] += 1
        else:
            runs.append([h, 1])
    if len(runs) == 1:
        return str(runs[0][0])
    return " > ".join(h if k == 1 else f"{k} {h}" for h, k in runs)


def _derived(n: Node) -> set[str | None]:
    """How the work of ``n`` was derived (a fused node: its body's nodes)."""
    if not n.subgraphs:
        return {n.loc.derived if n.loc is not None else None}
    return set().union(*(_derived(m) for sub in n.subgraphs for m in sub.nodes))


class MemoryReport:
    """A compiled function's memory: the backend's own report (its fields,
    ``arena_bytes`` or ``buffer_bytes`` and the rest, read through this
    object) plus the plan judged against its lower bound.

    - ``plan_bytes``: the planned arena for intermediates;
    - ``lower_bound_bytes``: the largest total of intermediates alive at once
      in the final node order; ``plan_to_bound`` is the ratio (1.0 is perfect);
    - ``values``: a :class:`ValueRow` per planned value, largest first;
      ``table(n)`` prints the ``n`` largest; ``recomputed`` counts the values
      computed a second time;
    - ``profile``: bytes alive at each schedule position; ``plot(path)``
      draws it (matplotlib), with recomputed values marked and the budget.

    >>> import numpy as np, graphc as gc
    >>> f = gc.jit(lambda x: np.tanh(np.exp(x) * 2.0).sum(), backend="numpy")
    >>> _ = f(np.ones(4096))
    >>> f.memory.lower_bound_bytes <= f.memory.plan_bytes
    True
    """

    def __init__(
        self,
        backend_report: Any,
        graph: Graph,
        plan: MemoryPlan | None,
        budget: int | None = None,
    ) -> None:
        self.backend_report = backend_report
        self.graph = graph
        self.plan = plan if plan is not None else MemoryPlan({}, 0, 0)
        self.budget_bytes = budget
        self._rows: list[ValueRow] | None = None
        self._profile: list[int] | None = None

    def __getattr__(self, name: str) -> Any:
        # Only reached for names this class lacks: the backend's own fields.
        if name.startswith("_") or name == "backend_report":
            raise AttributeError(name)
        return getattr(self.backend_report, name)

    @property
    def plan_bytes(self) -> int:
        return int(self.plan.arena_bytes)

    @property
    def profile(self) -> list[int]:
        if self._profile is None:
            self._profile = live_profile(self.graph, self.plan)
        return self._profile

    @property
    def lower_bound_bytes(self) -> int:
        return max(self.profile, default=0)

    @property
    def plan_to_bound(self) -> float:
        bound = self.lower_bound_bytes
        return self.plan_bytes / bound if bound else 1.0

    @property
    def values(self) -> list[ValueRow]:
        if self._rows is None:
            self._rows = value_rows(self.graph, self.plan)
        return self._rows

    @property
    def saved_bytes(self) -> int:
        """Bytes of forward values the backward reads: what it keeps from the
        forward (0 without a backward). A buffer counts once, whatever else is
        written into it in place before or after."""
        return sum(r.nbytes for r in self.values if "saved" in r.hows)

    @property
    def recomputed(self) -> int:
        """Values computed a second time (each value of an in-place chain counts)."""
        return sum(r.hows.count("recomputed") for r in self.values)

    def live_at_peak(self, n: int = 3) -> list[ValueRow]:
        """The ``n`` largest values alive where the most bytes are."""
        if not self.profile:
            return []
        peak = max(range(len(self.profile)), key=self.profile.__getitem__)
        return [r for r in self.values if r.first <= peak <= r.last][:n]

    def table(self, n: int = 10) -> str:
        """The ``n`` largest planned values, one line each."""
        head = f"{'bytes':>14s}  {'value':>6s}  {'how':10s}  {'live':^11s}  op  line"
        return "\n".join([head] + [str(r) for r in self.values[:n]])

    def summary(self) -> str:
        lines = [
            f"planned arena   {self.plan_bytes:>14,d}",
            f"lower bound     {self.lower_bound_bytes:>14,d}  "
            f"(plan / bound = {self.plan_to_bound:.3f})",
        ]
        if self.budget_bytes is not None:
            met = "met" if self.plan_bytes <= self.budget_bytes else "NOT met"
            lines.append(f"budget          {self.budget_bytes:>14,d}  ({met})")
        lines.append(f"saved for the backward {self.saved_bytes:>7,d}")
        lines.append(f"values planned  {len(self.values):>14,d}  ({self.recomputed} recomputed)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return "\n".join([str(self.backend_report), self.summary(), "", self.table()])

    def __repr__(self) -> str:
        return (
            f"<MemoryReport plan={self.plan_bytes:,} bound={self.lower_bound_bytes:,} "
            f"ratio={self.plan_to_bound:.3f}>"
        )

    def plot(self, path: str | os.PathLike[str], *, budget: int | None = None) -> None:
        """Save a plot of bytes alive against schedule position to ``path``.

        Recomputed values are marked where they are computed; the budget
        (``budget`` or the one compiled with) is a horizontal line, and so are
        the planned arena and the lower bound. Needs matplotlib.
        """
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as exc:  # an optional extra
            from graphc.ir import GraphcError

            raise GraphcError(
                "memory plot needs matplotlib (pip install 'graphc[examples]')"
            ) from exc
        budget = self.budget_bytes if budget is None else budget
        mib = 1 << 20
        fig, ax = plt.subplots(figsize=(9, 4))
        xs = list(range(len(self.profile)))
        ax.step(xs, [p / mib for p in self.profile], where="post", label="bytes live")
        ax.axhline(self.plan_bytes / mib, color="tab:green", ls="--", label="planned arena")
        ax.axhline(self.lower_bound_bytes / mib, color="tab:gray", ls=":", label="lower bound")
        if budget is not None:
            ax.axhline(budget / mib, color="tab:red", label="budget")
        again = [r for r in self.values if "recomputed" in r.hows]
        if again:
            ax.scatter(
                [r.first for r in again],
                [self.profile[r.first] / mib for r in again],
                marker="v",
                color="tab:orange",
                zorder=3,
                label="recomputed value",
            )
        ax.set_xlabel("schedule position (node)")
        ax.set_ylabel("MiB live")
        ax.set_title(f"{self.graph.name}: plan / lower bound = {self.plan_to_bound:.3f}")
        ax.legend(loc="upper right", fontsize="small")
        fig.tight_layout()
        fig.savefig(os.fspath(path))
        plt.close(fig)
