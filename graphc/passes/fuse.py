"""fuse: group elementwise work into ``fusion`` nodes that compile as one kernel.

A group is a set of nodes that one loop nest can compute: elementwise ops
whose results all have the group's loop shape, optionally reductions of
loop-shaped values over one common set of axes (the group's tail), and
optionally one ``matmul`` at its head whose elementwise consumers form its
epilogue (bias add, activation). View ops (broadcast_in_dim, transpose,
slice, reverse, reshape) of values from outside a group are copied into every
group that reads them: in a loop they are just strides, so copying them
duplicates no work, and the full-size broadcast never reaches memory.

A node joins the group of one of its operands (vertical fusion) or, failing
that, a group that reads the same values (sibling fusion: one loop then reads
a shared input once, as in a forward pass and its gradient over the same x).
A node that reads only graph inputs may join a group whose values its readers
also read (a forward-mode tangent then shares the primal's loop).

Legality: a node joins a group only if no path leaves the group and comes
back (that would make the group depend on itself), and never reads a
reduction of its own group (a loop cannot use a sum before finishing it).
No computation is ever duplicated.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from graphc.ir import Graph, GraphBuilder, Literal, Node, Operand, Value, get_op

from .dce import eliminate_dead_code

VIEW_OPS = frozenset({"broadcast_in_dim", "transpose", "slice", "reverse", "reshape"})
REDUCE_OPS = frozenset({"reduce_sum", "reduce_prod", "reduce_max", "reduce_min"})
MAX_GROUP = 64  # nodes per group: bounds kernel size and register pressure


@dataclass
class _Group:
    gid: int
    shape: tuple[int, ...]
    members: list[Node] = field(default_factory=list)
    axes: frozenset[int] | None = None  # reduced axes of the tail, once there is one
    has_matmul: bool = False
    reductions: set[Value] = field(default_factory=set)


def fuse(g: Graph, *, max_group: int = MAX_GROUP) -> Graph:
    """Replace groups of fusible nodes with ``fusion`` nodes.

    Contract: a valid graph without fusion nodes in; a valid graph with the
    same inputs, outputs and meaning out, whose fusion bodies are ordinary
    graphs over whole tensors (``kind`` is "elementwise", "reduction",
    "matmul" or "matmul_epilogue"). A group of one node that reads no view
    is left as a plain node. Cost: O(nodes x groups / 64).

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[8], "x")
    >>> g = fuse(b.build([b.reduce_sum(b.exp(b.mul(x, 2.0)), axes=(0,))]))
    >>> [n.op for n in g.nodes], g.nodes[0].attrs["kind"]
    (['fusion'], 'reduction')
    """
    # A dead node must not join a live group: inside a kernel it would run
    # (and could fail, as an integer power with a negative exponent does).
    g = eliminate_dead_code(g)
    producers = g.producers()
    group_of: dict[Node, _Group] = {}
    groups: list[_Group] = []
    # anc[n]: bitset of groups node n depends on (its own group included) as
    # of when n was seen; group_deps[k]: groups that members of group k read.
    # A group keeps growing after its readers were seen, so "does x depend on
    # group k" closes anc[x] over group_deps (see reaches()).
    anc: dict[Node, int] = {}
    group_deps: list[int] = []
    readers: dict[Value, list[_Group]] = {}  # groups whose members read a value
    inputs = set(g.inputs)
    users = g.users()

    def reaches(bits: int, target: int) -> bool:
        seen, frontier = 0, bits
        while frontier:
            if frontier & target:
                return True
            seen |= frontier
            grown = 0
            while frontier:
                low = frontier & -frontier
                grown |= group_deps[low.bit_length() - 1]
                frontier ^= low
            frontier = grown & ~seen
        return False

    def root(x: Operand) -> tuple[Operand, list[Node]]:
        """Follow view ops back to the value they view; returns (root, chain)."""
        chain: list[Node] = []
        while isinstance(x, Value) and x in producers and producers[x].op in VIEW_OPS:
            chain.append(producers[x])
            x = producers[x].inputs[0]
        return x, chain

    def anc_of(x: Operand) -> int:
        if not isinstance(x, Value) or x not in producers:
            return 0
        return anc[producers[x]]

    def can_join(n: Node, grp: _Group, shape: tuple[int, ...]) -> bool:
        if grp.shape != shape or len(grp.members) >= max_group:
            return False
        bit = 1 << grp.gid
        for x in n.inputs:
            r, chain = root(x)
            p = producers.get(r) if isinstance(r, Value) else None
            if p is not None and group_of.get(p) is grp:
                if chain or r in grp.reductions:
                    return False  # a view of, or a reduction from, its own loop
                continue
            if reaches(anc_of(r), bit):
                return False  # grp -> outside -> n would be a cycle
        return True

    for n in g.nodes:
        opdef = get_op(n.op)
        deps = 0
        for x in n.inputs:
            deps |= anc_of(x)
        shape: tuple[int, ...] | None = None
        if opdef.has("elementwise") and n.outputs:
            shape = n.outputs[0].type.shape
        elif n.op in REDUCE_OPS:
            shape = n.inputs[0].type.shape
        elif n.op == "matmul" and n.outputs[0].type.dtype.is_float:
            grp = _Group(len(groups), n.outputs[0].type.shape, [n], has_matmul=True)
            groups.append(grp)
            group_deps.append(deps)
            group_of[n] = grp
            anc[n] = deps | (1 << grp.gid)
            continue
        if shape is None:
            anc[n] = deps
            continue
        # Candidates: the groups producing n's operands (vertical fusion),
        # then groups that read the same values (siblings: one loop reads
        # the shared input once).
        candidates: list[_Group] = []
        roots = [root(x)[0] for x in n.inputs]
        for r in roots:
            p = producers.get(r) if isinstance(r, Value) else None
            if p is not None and p in group_of:
                candidates.append(group_of[p])
        for r in roots:
            if isinstance(r, Value):
                candidates.extend(readers.get(r, ()))
        if not candidates and all(r in inputs or not isinstance(r, Value) for r in roots):
            # Work on graph inputs alone (a tangent entering a forward-mode
            # graph) joins a loop whose values its readers combine it with.
            # Alone it would start a loop of its own, and everything it meets
            # would go through memory. Looking only at its readers' operands
            # keeps unrelated input work (an optimizer's state update) out of
            # loops that run long before its result is needed. (A
            # recomputation reads through a barrier, so it stays out.)
            for user in dict.fromkeys(u for v in n.outputs for u in users.get(v, ())):
                for x in user.inputs:
                    r = root(x)[0]
                    if not isinstance(r, Value):
                        continue
                    p = producers.get(r)
                    near = [group_of[p]] if p in group_of else []
                    near += readers.get(r, [])
                    candidates += [grp for grp in near if grp.shape == shape and not grp.has_matmul]
        chosen: _Group | None = None
        for cand in candidates:
            if n.op in REDUCE_OPS and not _axes_fit(cand, n):
                continue
            if can_join(n, cand, shape):
                chosen = cand
                break
        if chosen is None:
            chosen = _Group(len(groups), shape)
            groups.append(chosen)
            group_deps.append(0)
        chosen.members.append(n)
        group_deps[chosen.gid] |= deps & ~(1 << chosen.gid)
        group_of[n] = chosen
        if n.op in REDUCE_OPS:
            chosen.axes = _axes(n)
            chosen.reductions.update(n.outputs)
        anc[n] = deps | (1 << chosen.gid)
        for r in roots:
            if isinstance(r, Value):
                found = readers.setdefault(r, [])
                if chosen not in found:
                    found.append(chosen)
    return _rebuild(g, groups, group_of)


def _axes(n: Node) -> frozenset[int]:
    ndim = max(n.inputs[0].type.ndim, 1)
    return frozenset(a % ndim for a in n.attrs["axes"])


def _axes_fit(grp: _Group, n: Node) -> bool:
    return grp.axes is None or grp.axes == _axes(n)


def _rebuild(g: Graph, groups: list[_Group], group_of: dict[Node, _Group]) -> Graph:
    producers = g.producers()
    users = g.users()
    outputs = set(g.outputs)
    index = {n: i for i, n in enumerate(g.nodes)}

    def absorbed_chain(x: Operand, grp: _Group) -> list[Node] | None:
        """The view nodes ``grp`` copies to read ``x`` (None: read x itself)."""
        chain: list[Node] = []
        while isinstance(x, Value) and x in producers and producers[x].op in VIEW_OPS:
            p = producers[x]
            if group_of.get(p) is grp:
                break
            chain.append(p)
            x = p.inputs[0]
        if not chain:
            return None
        if isinstance(x, Value) and x in producers and group_of.get(producers[x]) is grp:
            return None
        if not _views_compose(chain):
            return None
        return chain

    # Which view nodes every group copies, and which values leave each group.
    copies: dict[int, list[Node]] = {}
    fused = [grp for grp in groups if grp.members]
    for grp in fused:
        seen: list[Node] = []
        for m in grp.members:
            for x in m.inputs:
                chain = absorbed_chain(x, grp)
                for v in reversed(chain or []):
                    if v not in seen:
                        seen.append(v)
        copies[grp.gid] = seen
    wrapped = {
        grp.gid for grp in fused if len(grp.members) > 1 or copies[grp.gid] or grp.has_matmul
    }
    # A view node still runs on its own when something reads it directly: a
    # plain node, a group that does not copy it, or a view that is needed.
    needed_views: set[Node] = set()
    for n in reversed(g.nodes):
        if n.op not in VIEW_OPS:
            continue
        needed = n.output in outputs
        for u in users[n.output]:
            grp = group_of.get(u)
            if u.op in VIEW_OPS and grp is None:
                needed = needed or u in needed_views
            elif grp is None or grp.gid not in wrapped or n not in copies[grp.gid]:
                needed = True
        if needed:
            needed_views.add(n)

    # Units to schedule: wrapped groups, and every other node on its own.
    unit_of: dict[Node, object] = {}
    units: dict[object, list[Node]] = {}
    for n in g.nodes:
        grp = group_of.get(n)
        if grp is not None and grp.gid in wrapped:
            key: object = ("group", grp.gid)
        elif n.op in VIEW_OPS and n not in needed_views:
            continue
        else:
            key = ("node", index[n])
        unit_of[n] = key
        units.setdefault(key, []).append(n)

    # Kahn's algorithm over units, preferring the original order (by the
    # position of each unit's last member), so the schedule moves little.
    deps: dict[object, set[object]] = {k: set() for k in units}
    for key, members in units.items():
        inside = set(members)
        if key[0] == "group":
            inside.update(copies[key[1]])
        for m in inside:
            for x in m.value_inputs():
                p = producers.get(x)
                if p is None or p in inside:
                    continue
                dep = unit_of.get(p)
                if dep is not None and dep != key:
                    deps[key].add(dep)
    rank = {k: max(index[m] for m in ms) for k, ms in units.items()}
    waiting = {k: len(d) for k, d in deps.items()}
    dependents: dict[object, list[object]] = {k: [] for k in units}
    for k, ds in deps.items():
        for d in ds:
            dependents[d].append(k)
    ready = [(rank[k], k) for k, w in waiting.items() if w == 0]
    heapq.heapify(ready)
    order: list[object] = []
    while ready:
        _, k = heapq.heappop(ready)
        order.append(k)
        for d in dependents[k]:
            waiting[d] -= 1
            if waiting[d] == 0:
                heapq.heappush(ready, (rank[d], d))
    assert len(order) == len(units), "fusion produced a cyclic schedule"

    b = GraphBuilder(g.name)
    b.inputs.extend(g.inputs)
    env: dict[Value, Operand] = {}

    def new(x: Operand) -> Operand:
        return x if isinstance(x, Literal) else env.get(x, x)

    for key in order:
        members = units[key]
        if key[0] == "node":
            (n,) = members
            node = b.copy_node(n, [new(x) for x in n.inputs])
            env.update(zip(n.outputs, node.outputs))
            continue
        grp = next(gr for gr in fused if gr.gid == key[1])
        _emit_group(b, grp, copies[grp.gid], users, outputs, env, new)
    return b.build([new(v) for v in g.outputs])


def _emit_group(
    b: GraphBuilder,
    grp: _Group,
    views: list[Node],
    users: dict[Value, list[Node]],
    outputs: set[Value],
    env: dict[Value, Operand],
    new: object,
) -> None:
    inside = set(grp.members) | set(views)
    body_nodes = _body_order(grp.members, views)
    external: list[Value] = []
    for n in body_nodes:
        for x in n.value_inputs():
            defined_inside = any(x in m.outputs for m in inside)
            if not defined_inside and x not in external:
                external.append(x)
    results: list[Value] = []
    for m in grp.members:
        for v in m.outputs:
            if v in outputs or any(u not in inside for u in users.get(v, [])):
                results.append(v)
    if not results:
        return  # every member is dead (fusible ops are pure)
    body = GraphBuilder(f"{b.name}_fused{grp.gid}")
    inner: dict[Value, Operand] = {}
    for k, x in enumerate(external):
        inner[x] = body.input(x.type, _arg_name(k))
    for n in body_nodes:
        node = body.copy_node(n, [x if isinstance(x, Literal) else inner[x] for x in n.inputs])
        inner.update(zip(n.outputs, node.outputs))
    body_graph = body.build([inner[v] for v in results])
    kind = _kind(grp)
    loc = grp.members[-1].loc
    operands = [new(x) for x in external]  # type: ignore[operator]
    outs = b.emit("fusion", *operands, subgraphs=[body_graph], kind=kind, loc=loc)
    outs = outs if isinstance(outs, tuple) else (outs,)
    env.update(zip(results, outs))


def _body_order(members: list[Node], views: list[Node]) -> list[Node]:
    """Members in their original order, each copied view just before its first reader."""
    placed: list[Node] = []
    pending = list(views)
    made: set[Value] = set()

    def place_views_for(n: Node) -> None:
        for x in n.value_inputs():
            for v in list(pending):
                if x in v.outputs:
                    place_views_for(v)
                    pending.remove(v)
                    placed.append(v)
                    made.update(v.outputs)

    for m in members:
        place_views_for(m)
        placed.append(m)
    return placed


def _kind(grp: _Group) -> str:
    if grp.has_matmul:
        return "matmul_epilogue" if len(grp.members) > 1 else "matmul"
    return "reduction" if grp.reductions else "elementwise"


def _arg_name(k: int) -> str:
    return chr(ord("a") + k) if k < 26 else f"a{k}"


def _views_compose(chain: list[Node]) -> bool:
    """Whether a chain of view ops (outermost first) reads its root through
    strides alone: a reshape must apply to a view whose dims it can merge."""
    # Walk from the root: strides of a contiguous array, updated per view.
    root = chain[-1].inputs[0]
    if not isinstance(root, Value):
        return True  # any view of a scalar literal is that literal, broadcast
    shape = list(root.type.shape)
    strides = _contiguous(shape)
    for n in reversed(chain):
        a = n.attrs
        out = list(n.outputs[0].type.shape)
        if n.op == "reshape":
            if _contiguous(shape) != strides and not _reshape_ok(shape, strides, out):
                return False
            strides = _reshape_strides(shape, strides, out)
        elif n.op == "transpose":
            strides = [strides[p] for p in a["perm"]]
        elif n.op == "broadcast_in_dim":
            new = [0] * len(out)
            for i, d in enumerate(a["broadcast_dimensions"]):
                new[d] = strides[i] if shape[i] == out[d] else 0
            strides = new
        elif n.op == "slice":
            strides = [s * k for s, k in zip(strides, a["stride"])]
        shape = out
    return True


def _contiguous(shape: list[int]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= max(d, 1)
    return out[::-1]


def _reshape_ok(shape: list[int], strides: list[int], out: list[int]) -> bool:
    return _reshape_strides(shape, strides, out) is not None


def _reshape_strides(shape: list[int], strides: list[int], out: list[int]) -> list[int] | None:
    # Only size-1 dims may differ unless the view is contiguous.
    if _contiguous(shape) == strides:
        return _contiguous(out)
    if [d for d in shape if d != 1] != [d for d in out if d != 1]:
        return None
    it = iter(s for d, s in zip(shape, strides) if d != 1)
    return [0 if d == 1 else next(it) for d in out]
