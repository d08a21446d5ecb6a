"""Graphviz DOT output for graphs."""

from __future__ import annotations

from .core import Graph, Literal, Value


def quote(text: str) -> str:
    """``text`` as a DOT quoted string; line breaks become DOT's ``\\n``.

    >>> print(quote('say "hi"\\nthen go'))
    "say \\"hi\\"\\nthen go"
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'


def to_dot(g: Graph) -> str:
    """DOT source: one box per node, one ellipse per argument, edges labelled by type.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> "exp" in to_dot(b.build([b.exp(x)]))
    True
    """
    lines = [f"digraph {quote(g.name)} {{", "  rankdir=TB;", '  node [fontname="monospace"];']
    where: dict[Value, str] = {}
    for i, v in enumerate(g.inputs):
        where[v] = f"in{i}"
        lines.append(f"  in{i} [shape=ellipse, label={quote(f'%{v.name}: {v.type}')}];")
    for i, n in enumerate(g.nodes):
        label = n.op
        lits = [x.text() for x in n.inputs if isinstance(x, Literal)]
        if lits:
            label += " " + ", ".join(lits)
        if n.subgraphs:
            label += f" ({sum(s.num_nodes(True) for s in n.subgraphs)} inner nodes)"
        if n.loc is not None:
            label += f"\n{n.loc}"
        lines.append(f"  n{i} [shape=box, label={quote(label)}];")
        for x in n.inputs:
            if isinstance(x, Value):
                lines.append(f"  {where[x]} -> n{i} [label={quote(str(x.type))}];")
        for v in n.outputs:
            where[v] = f"n{i}"
    for i, v in enumerate(g.outputs):
        lines.append(f'  out{i} [shape=plaintext, label="output {i}"];')
        lines.append(f"  {where[v]} -> out{i} [label={quote(str(v.type))}];")
    lines.append("}")
    return "\n".join(lines)
