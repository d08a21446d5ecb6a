"""Graphviz DOT output for graphs."""

from __future__ import annotations

import json

from .core import Graph, Literal, Value


def to_dot(g: Graph) -> str:
    """DOT source: one box per node, one ellipse per argument, edges labelled by type.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> "exp" in to_dot(b.build([b.exp(x)]))
    True
    """
    lines = [f"digraph {json.dumps(g.name)} {{", "  rankdir=TB;", '  node [fontname="monospace"];']
    where: dict[Value, str] = {}
    for i, v in enumerate(g.inputs):
        where[v] = f"in{i}"
        lines.append(f"  in{i} [shape=ellipse, label={json.dumps(f'%{v.name}: {v.type}')}];")
    for i, n in enumerate(g.nodes):
        label = n.op
        lits = [x.text() for x in n.inputs if isinstance(x, Literal)]
        if lits:
            label += " " + ", ".join(lits)
        if n.subgraphs:
            label += f" ({sum(s.num_nodes(True) for s in n.subgraphs)} inner nodes)"
        if n.loc is not None:
            label += f"\\n{n.loc}"
        lines.append(
            f"  n{i} [shape=box, label={json.dumps(label).replace(chr(92) * 2, chr(92))}];"
        )
        for x in n.inputs:
            if isinstance(x, Value):
                lines.append(f'  {where[x]} -> n{i} [label="{x.type}"];')
        for v in n.outputs:
            where[v] = f"n{i}"
    for i, v in enumerate(g.outputs):
        lines.append(f'  out{i} [shape=plaintext, label="output {i}"];')
        lines.append(f'  {where[v]} -> out{i} [label="{v.type}"];')
    lines.append("}")
    return "\n".join(lines)
