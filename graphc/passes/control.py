"""Passes for ``scan`` and ``cond`` nodes that keep loops whole.

- :func:`merge_scans` lets one loop do the work of two: the derivative of a
  scan recomputes the forward loop with extra results (its residuals), and
  this pass folds the forward loop into that one.
- :func:`prune_scan` and :func:`prune_cond` are dead-code rules
  (``DCE_RULES``): a loop drops the results, carries and operands nobody
  needs, a choice the results and operands.

:func:`unroll_control` (in ``unroll.py``) is the opposite: it removes the
loops for backends that have none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphc.ir import Graph, GraphBuilder, Literal, Node, Operand, Value, get_op, prune

from .manager import count
from .rewrite import Rebuilder, map_subgraphs


def merge_scans(g: Graph) -> Graph:
    """Merge each scan into a later one over the same operands that computes
    all its results and more (its body is the same body with extra results).

    The larger scan takes the place of the first one, whose results become
    the larger one's leading results. This is what the VJP of ``scan``
    counts on: it emits a forward scan whose body extends the original body
    with residuals, and after this pass the forward loop runs once.

    Contract: a valid graph in; the same meaning out, with no two scans of
    which one extends the other (at any depth). Moving a scan earlier is
    legal because its operands are the first scan's operands. Cost: one
    structural comparison of bodies per pair of scans over equal operands.

    >>> from graphc.ir import GraphBuilder, f64
    >>> body = GraphBuilder("body"); c = body.input(f64[2], "c"); x = body.input(f64[2], "x")
    >>> small = body.build([body.add(c, x)])
    >>> big = small.replace(outputs=small.outputs + (c,))
    >>> b = GraphBuilder("f"); c0 = b.input(f64[2], "c0"); xs = b.input(f64[3, 2], "xs")
    >>> attrs = dict(length=3, num_carry=1, num_xs=1, num_consts=0)
    >>> first = b.scan(c0, xs, subgraphs=[small], **attrs)
    >>> _, stacked = b.scan(c0, xs, subgraphs=[big], **attrs)
    >>> merged = merge_scans(b.build([first, stacked]))
    >>> [n.op for n in merged.nodes]
    ['scan']
    """
    g = _map_bodies(g, merge_scans)
    scans = [n for n in g.nodes if n.op == "scan"]
    if len(scans) < 2:
        return g
    groups: dict[Any, list[Node]] = {}
    for n in scans:
        groups.setdefault(_operands_key(n), []).append(n)
    replaced: dict[Node, Node] = {}  # node -> the node whose results stand for its results
    for members in groups.values():
        if len(members) < 2:
            continue
        for i, small in enumerate(members):
            for big in members[i + 1 :]:
                if small in replaced or big in replaced:
                    continue
                if _extends(big, small):
                    replaced[small] = big
                elif _extends(small, big):
                    replaced[big] = small
    if not replaced:
        return g

    def final(n: Node) -> Node:
        while n in replaced:
            n = replaced[n]
        return n

    # Each chain runs once, at the position of its earliest member.
    first_of: dict[Node, Node] = {}
    for n in g.nodes:
        if n.op == "scan":
            first_of.setdefault(final(n), n)
    rb = Rebuilder(g)
    emitted: dict[Node, Node] = {}
    for n in g.nodes:
        if n.op != "scan":
            rb.keep(n)
            continue
        target = final(n)
        if first_of[target] is not n:
            rb.drop(n)
            rb.bind(n, emitted[target].outputs[: len(n.outputs)])
            count("scans merged")
        elif target is n:
            emitted[n] = rb.keep(n)
        else:
            emitted[target] = rb.b.emit_node(
                "scan", rb.operands(n), target.attrs, target.subgraphs, n.loc
            )
            rb.bind(n, emitted[target].outputs[: len(n.outputs)])
    return rb.finish()


def _operands_key(n: Node) -> Any:
    refs = tuple(
        ("lit", x.dtype, x.text()) if isinstance(x, Literal) else ("value", id(x)) for x in n.inputs
    )
    attrs = tuple(n.attrs.items())
    return refs, attrs


def _extends(big: Node, small: Node) -> bool:
    """Whether ``big``'s leading results are ``small``'s results."""
    (b,), (s,) = big.subgraphs, small.subgraphs
    if len(b.outputs) < len(s.outputs) or b.input_types != s.input_types:
        return False
    return prune(b.replace(outputs=b.outputs[: len(s.outputs)])) == prune(s)


def in_bodies(
    inner: Callable[[Graph], Graph], outer: Callable[[Graph], Graph] | None = None
) -> Callable[[Graph], Graph]:
    """A pass that runs ``inner`` on every ``scan`` and ``cond`` body (at any
    depth, innermost first) and then ``outer`` (default ``inner``) on the
    graph itself: for lowering passes that leave subgraphs alone, such as
    fusion, when the backend compiles each body as code of its own.

    >>> from graphc.ir import GraphBuilder, f64
    >>> body = GraphBuilder("body"); c = body.input(f64[2], "c")
    >>> b = GraphBuilder("f"); c0 = b.input(f64[2], "c0")
    >>> out = b.scan(c0, subgraphs=[body.build([body.exp(body.neg(c))])],
    ...              length=3, num_carry=1, num_xs=0, num_consts=0)
    >>> from graphc.passes.fuse import fuse
    >>> g = in_bodies(fuse)(b.build([out]))
    >>> [n.op for n in g.nodes[0].subgraphs[0].nodes]
    ['fusion']
    """
    last = outer or inner

    def run(g: Graph) -> Graph:
        def body(s: Graph) -> Graph:
            return in_bodies(inner)(s)

        if any(n.op in ("scan", "cond") for n in g.nodes):
            rb = Rebuilder(g)
            for n in g.nodes:
                if n.op in ("scan", "cond"):
                    rb.keep(n, subgraphs=tuple(body(s) for s in n.subgraphs))
                else:
                    rb.keep(n)
            g = rb.finish()
        return last(g)

    return run


def _map_bodies(g: Graph, fn: Any) -> Graph:
    if not any(n.subgraphs for n in g.nodes):
        return g
    rb = Rebuilder(g)
    for n in g.nodes:
        rb.keep(n, subgraphs=map_subgraphs(n, fn))
    return rb.finish()


# ---------------------------------------------------------------------------
# Dead-code rules
# ---------------------------------------------------------------------------


def prune_scan(
    b: GraphBuilder, n: Node, inputs: Sequence[Operand], used: Sequence[bool]
) -> Sequence[Operand | None] | None:
    """Drop the ys nobody reads, the carries no live result depends on, and
    the operands the remaining body does not read (a ``DCE_RULES`` entry)."""
    from .dce import eliminate_dead_code

    (body,) = n.subgraphs
    nc, nx = n.attrs["num_carry"], n.attrs["num_xs"]
    deps = _input_dependencies(body)
    # carries that feed a node kept for its effect (a collective) stay too
    live = {i for i in range(nc) if used[i]} | {i for i in _effect_inputs(body) if i < nc}
    ys = [j for j in range(nc, len(n.outputs)) if used[j]]
    frontier = list(live) + ys
    while frontier:
        for i in deps[frontier.pop()]:
            if i < nc and i not in live:
                live.add(i)
                frontier.append(i)
    carries = sorted(live)
    kept = eliminate_dead_code(body.replace(outputs=tuple(body.outputs[k] for k in carries + ys)))
    read = {x for m in kept.nodes for x in m.value_inputs()} | set(kept.outputs)
    xs = [i for i in range(nc, nc + nx) if body.inputs[i] in read]
    consts = [i for i in range(nc + nx, len(inputs)) if body.inputs[i] in read]
    args = carries + xs + consts
    if len(args) == len(inputs) and len(carries) + len(ys) == len(n.outputs):
        return None
    kept = kept.replace(inputs=tuple(body.inputs[i] for i in args))
    attrs = {**n.attrs, "num_carry": len(carries), "num_xs": len(xs), "num_consts": len(consts)}
    new = b.emit_node("scan", [inputs[i] for i in args], attrs, (kept,), n.loc)
    count("scan results pruned", len(n.outputs) - len(carries) - len(ys))
    found = dict(zip(carries + ys, new.outputs))
    return [found.get(k) for k in range(len(n.outputs))]


def prune_cond(
    b: GraphBuilder, n: Node, inputs: Sequence[Operand], used: Sequence[bool]
) -> Sequence[Operand | None] | None:
    """Drop the results nobody reads from both branches, then the operands
    neither branch reads any more (a ``DCE_RULES`` entry)."""
    from .dce import eliminate_dead_code

    keep = [k for k, u in enumerate(used) if u]
    branches = [
        eliminate_dead_code(s.replace(outputs=tuple(s.outputs[k] for k in keep)))
        for s in n.subgraphs
    ]
    read = [{x for m in s.nodes for x in m.value_inputs()} | set(s.outputs) for s in branches]
    args = [
        i for i in range(len(inputs) - 1) if any(s.inputs[i] in r for s, r in zip(branches, read))
    ]
    branches = [s.replace(inputs=tuple(s.inputs[i] for i in args)) for s in branches]
    new = b.emit_node("cond", [inputs[0], *(inputs[i + 1] for i in args)], {}, branches, n.loc)
    count("cond results pruned", len(n.outputs) - len(keep))
    found = dict(zip(keep, new.outputs))
    return [found.get(k) for k in range(len(n.outputs))]


def _effect_inputs(g: Graph) -> set[int]:
    """The indices of the inputs that nodes without the ``pure`` trait read."""
    deps: dict[Value, set[int]] = {v: {i} for i, v in enumerate(g.inputs)}
    found: set[int] = set()
    for m in g.nodes:
        reads = set().union(*(deps.get(x, set()) for x in m.value_inputs()))
        for v in m.outputs:
            deps[v] = reads
        if not get_op(m.op).has("pure"):
            found |= reads
    return found


def _input_dependencies(g: Graph) -> list[set[int]]:
    """For each output of ``g``, the indices of the inputs it depends on."""
    deps: dict[Value, set[int]] = {v: {i} for i, v in enumerate(g.inputs)}
    for m in g.nodes:
        found = set().union(*(deps.get(x, set()) for x in m.value_inputs()))
        for v in m.outputs:
            deps[v] = found
    return [deps.get(v, set()) for v in g.outputs]
