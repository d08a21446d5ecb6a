"""inline_remat and remove_barriers: the two ends of a recomputation's protection.

A ``remat`` node keeps its region opaque while common-subexpression
elimination runs; ``inline_remat`` then splices the region in. A
recomputation (``recompute=true``) reads its operands through an
``optimization_barrier``, which keeps fusion from merging it with the
forward copy and the scheduler from starting it before its cotangents
exist. ``remove_barriers`` drops the barriers once the node order is final.
"""

from __future__ import annotations

import dataclasses

from graphc.ir import Graph, Loc, Operand, Value

from .manager import count
from .rewrite import Rebuilder, map_subgraphs


def inline_remat(g: Graph) -> Graph:
    """Replace every ``remat`` node by its body (nested ones too).

    Contract: a valid graph in; the same meaning out, with no ``remat`` node
    at any depth. The body of a ``recompute=true`` node reads its tensor
    operands through one ``optimization_barrier`` node placed where the
    ``remat`` node was. Run it after CSE: before, CSE would merge the
    recomputation with the forward values it replaces. Cost: O(nodes
    inlined).

    >>> from graphc.ir import GraphBuilder, f32
    >>> body = GraphBuilder("body"); a = body.input(f32[4], "a")
    >>> b = GraphBuilder("f"); x = b.input(f32[4], "x")
    >>> y = b.remat(x, subgraphs=[body.build([body.exp(a)])], recompute=True)
    >>> print(inline_remat(b.build([y])))
    graph f(%x: f32[4]) -> (f32[4]) {
      %0 = optimization_barrier %x : f32[4]
      %1 = exp %0                  : f32[4]
      return %1
    }
    """
    if not _has_remat(g):
        return g
    rb = Rebuilder(g)
    for n in g.nodes:
        if n.op != "remat":
            rb.keep(n, subgraphs=map_subgraphs(n, inline_remat))
            continue
        (body,) = n.subgraphs
        operands = list(rb.operands(n))
        body = inline_remat(body)
        if n.attrs["recompute"]:
            operands = _behind_barrier(rb, operands, n.loc)
            body = _mark_recomputed(body)
            count("recomputations inlined")
        else:
            count("regions inlined")
        rb.bind(n, rb.b.call(body, *operands))
        rb.changed = True
    return rb.finish()


def recomputed_loc(loc: Loc | None) -> Loc | None:
    """``loc`` marked as a second computation of what that line computes (the
    memory report shows such values as recomputed)."""
    if loc is None or loc.derived is not None:
        return loc  # a derivative's line stays marked as one
    return loc.with_derived("recompute")


def _mark_recomputed(g: Graph) -> Graph:
    """A recomputation's body with its forward nodes marked as recomputed."""
    nodes = tuple(
        n if recomputed_loc(n.loc) is n.loc else dataclasses.replace(n, loc=recomputed_loc(n.loc))
        for n in g.nodes
    )
    return g.replace(nodes=nodes)


def _has_remat(g: Graph) -> bool:
    return any(n.op == "remat" or any(_has_remat(s) for s in n.subgraphs) for n in g.nodes)


def _behind_barrier(rb: Rebuilder, operands: list[Operand], loc: Loc | None) -> list[Operand]:
    values = list(dict.fromkeys(x for x in operands if isinstance(x, Value)))
    if not values:
        return operands
    node = rb.b.emit_node("optimization_barrier", values, {}, (), loc)
    through = dict(zip(values, node.outputs))
    return [through.get(x, x) if isinstance(x, Value) else x for x in operands]


def remove_barriers(g: Graph) -> Graph:
    """Replace every ``optimization_barrier`` by its operands.

    Contract: a valid graph in; the same meaning and node order out, without
    barriers. Run it after the last pass that must not see through them
    (fusion, scheduling): removing identities keeps any valid order valid.
    Cost: O(nodes).

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[4], "x")
    >>> print(remove_barriers(b.build([b.exp(b.optimization_barrier(x))])))
    graph f(%x: f32[4]) -> (f32[4]) {
      %0 = exp %x : f32[4]
      return %0
    }
    """
    rb = Rebuilder(g)
    for n in g.nodes:
        if n.op == "optimization_barrier":
            rb.drop(n)
            rb.bind(n, rb.operands(n))
            continue
        rb.keep(n, subgraphs=map_subgraphs(n, remove_barriers))
    return rb.finish()
