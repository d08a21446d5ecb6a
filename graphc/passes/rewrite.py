"""Rebuilder: the shared machinery of passes that copy a graph with changes.

A pass never edits a graph. It walks the old graph's nodes in order and
either keeps each node (re-using the very same ``Node`` object when none of
its operands changed, so untouched parts cost nothing) or emits a
replacement through the builder ``rb.b``, mapping the old outputs to the new
operands with :meth:`Rebuilder.bind`. Graph inputs are shared with the old
graph: Values are immutable, so two graphs may hold the same argument.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from graphc.ir import Graph, GraphBuilder, Literal, Node, Operand, Value


class Rebuilder:
    """Copies ``g`` node by node into a new graph through a value map.

    >>> from graphc.ir import f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> g = b.build([b.neg(b.exp(x))])
    >>> rb = Rebuilder(g)
    >>> for n in g.nodes:
    ...     _ = rb.keep(n)
    >>> rb.finish() == g
    True
    """

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.b = GraphBuilder(g.name)
        # Share the arguments, keeping their names exactly (the builder would
        # invent names for unnamed subgraph arguments).
        self.b.inputs.extend(g.inputs)
        self.env: dict[Value, Operand] = {}
        self.changed = False
        self._producers: dict[Value, Node] = {}
        self._synced = 0

    # -- reading the new graph ------------------------------------------------
    def operand(self, x: Operand) -> Operand:
        """The new operand standing for old operand ``x``."""
        if isinstance(x, Literal):
            return x
        return self.env.get(x, x)

    def operands(self, n: Node) -> tuple[Operand, ...]:
        return tuple(self.operand(x) for x in n.inputs)

    def producer(self, x: Operand) -> Node | None:
        """The node of the *new* graph that defines ``x`` (None for arguments, literals)."""
        found = self._producers.get(x)  # type: ignore[arg-type]
        nodes = self.b.nodes
        if found is not None or self._synced == len(nodes) or isinstance(x, Literal):
            return found
        for n in nodes[self._synced :]:
            for v in n.outputs:
                self._producers[v] = n
        self._synced = len(nodes)
        return self._producers.get(x)

    # -- writing ------------------------------------------------------------------
    def keep(
        self,
        n: Node,
        inputs: Sequence[Operand] | None = None,
        subgraphs: Sequence[Graph] | None = None,
    ) -> Node:
        """Copy ``n`` onto its (new) operands; re-use ``n`` itself when nothing changed."""
        new_inputs = tuple(self.operands(n) if inputs is None else inputs)
        new_subgraphs = tuple(n.subgraphs if subgraphs is None else subgraphs)
        same_inputs = len(new_inputs) == len(n.inputs) and all(
            a is b or (isinstance(a, Literal) and a == b) for a, b in zip(new_inputs, n.inputs)
        )
        same_subgraphs = all(a is b for a, b in zip(new_subgraphs, n.subgraphs))
        if same_inputs and same_subgraphs:
            self.b.nodes.append(n)
            return n
        self.changed = True
        if same_subgraphs and all(a.type == b.type for a, b in zip(new_inputs, n.inputs)):
            # Same op, attributes and operand types: the same result types, so
            # the node keeps its result Values and its readers stay as they
            # are. Without this, one rewrite near the start of an unrolled
            # loop re-emitted (and type-checked) every node after it.
            kept = Node(n.op, new_inputs, n.outputs, n.attrs, n.subgraphs, n.loc)
            self.b.nodes.append(kept)
            return kept
        new = self.b.emit_node(n.op, new_inputs, n.attrs, new_subgraphs, n.loc)
        self.bind(n, new.outputs)
        return new

    def bind(self, n: Node, outputs: Sequence[Operand | None]) -> None:
        """Make ``n``'s outputs stand for ``outputs`` from now on (None: dropped)."""
        for old, new in zip(n.outputs, outputs):
            if new is None:
                continue
            if new is not old:
                self.changed = True
            self.env[old] = new

    def drop(self, n: Node) -> None:
        """Leave ``n`` out of the new graph (its outputs must be unused)."""
        self.changed = True

    def finish(self) -> Graph:
        """The new graph, or the old one itself when nothing changed."""
        if not self.changed and len(self.b.nodes) == len(self.g.nodes):
            return self.g
        outs = [self.operand(v) for v in self.g.outputs]
        with self.b.at(None):
            return self.b.build(outs, name=self.g.name)


def map_subgraphs(n: Node, fn: Callable[[Graph], Graph]) -> tuple[Graph, ...]:
    """``fn`` applied to each of ``n``'s subgraphs (the same objects when unchanged)."""
    return tuple(fn(s) for s in n.subgraphs)


def node_count(g: Graph) -> int:
    """Nodes of ``g`` including those inside subgraphs."""
    return g.num_nodes(recursive=True)
