"""unroll_control: ``scan`` and ``cond`` in straight-line ops, for backends
without control flow of their own.

This is a lowering, not an optimization: a loop of N steps becomes N copies
of its body (the graph, compile time and code size grow with N), and a
choice runs both branches and keeps one result with ``select`` (both
branches' work is done, and an error in the branch not taken, such as an
index out of range, is raised all the same). Both backends run scans and
conds natively (the LLVM backend as native loops and branches), so no
pipeline uses it; it remains for a backend without control flow and as a
reference in tests.
"""

from __future__ import annotations

from graphc.ir import Graph, Node
from graphc.ir.ops.control import select_cond, unroll_scan

from .manager import count
from .rewrite import Rebuilder, map_subgraphs

EXPANSIONS = {"scan": unroll_scan, "cond": select_cond}


def unroll_control(g: Graph) -> Graph:
    """Replace every ``scan`` by its steps and every ``cond`` by both branches
    and a ``select`` per result, at any depth.

    Contract: a valid graph in; a valid graph with the same inputs, outputs
    and meaning out (for a cond, provided the branch not taken runs without
    error), with no ``scan`` or ``cond`` node. Bodies are unrolled before
    they are copied, so nested loops come out fully unrolled. Cost:
    O(steps x body size) nodes per scan.

    >>> from graphc.ir import GraphBuilder, f64
    >>> body = GraphBuilder("body"); c = body.input(f64[2], "c"); x = body.input(f64[2], "x")
    >>> b = GraphBuilder("f"); c0 = b.input(f64[2], "c0"); xs = b.input(f64[2, 2], "xs")
    >>> out = b.scan(c0, xs, subgraphs=[body.build([body.add(c, x)])],
    ...              length=2, num_carry=1, num_xs=1, num_consts=0)
    >>> print(unroll_control(b.build([out])))
    graph f(%c0: f64[2], %xs: f64[2,2]) -> (f64[2]) {
      %0 = slice %xs {start=(0,0), limit=(1,2), stride=(1,1)} : f64[1,2]
      %1 = reshape %0 {shape=(2,)} : f64[2]
      %2 = add %c0, %1             : f64[2]
      %3 = slice %xs {start=(1,0), limit=(2,2), stride=(1,1)} : f64[1,2]
      %4 = reshape %3 {shape=(2,)} : f64[2]
      %5 = add %2, %4              : f64[2]
      return %5
    }
    """
    if not _has_control(g):
        return g
    rb = Rebuilder(g)
    for n in g.nodes:
        subgraphs = map_subgraphs(n, unroll_control)
        expand = EXPANSIONS.get(n.op)
        if expand is None:
            rb.keep(n, subgraphs=subgraphs)
            continue
        # The expansion copies the bodies, so they are unrolled first.
        node = Node(n.op, n.inputs, n.outputs, n.attrs, subgraphs, n.loc)
        with rb.b.at(n.loc):
            rb.bind(n, expand(rb.b, node, rb.operands(n)))
        rb.changed = True
        count(f"{n.op} nodes expanded")
    return rb.finish()


def _has_control(g: Graph) -> bool:
    return any(n.op in EXPANSIONS or any(_has_control(s) for s in n.subgraphs) for n in g.nodes)
