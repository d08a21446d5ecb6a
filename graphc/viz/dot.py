"""Graphviz DOT source for a graph, with fused groups and bodies as clusters.

``graphc.ir``'s own ``to_dot`` is the plain one-box-per-node form; this one is
for reading a compiled program: inputs and outputs by pytree path, every
value labelled with dtype and shape, each node's user source line as its
tooltip, and nodes with subgraphs drawn as clusters holding their inner ops.
A ``fusion`` or ``remat`` body is a call, so edges run straight into the
cluster; the bodies of ``scan`` and ``cond`` get their own argument nodes.
Bodies larger than ``expand`` nodes stay one box (their node count says how
much is inside) so a large graph stays legible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from graphc.ir import Graph, Literal, Node, Value
from graphc.ir.dot import quote

# Fill colours of fused groups, cycled; light enough for black text.
PALETTE = (
    "#cfe8ff",
    "#ffe0b3",
    "#d4f5d0",
    "#f5d0f0",
    "#fff5b3",
    "#d9d2ff",
    "#c8f0ec",
    "#ffd1d1",
)
CALL_OPS = ("fusion", "remat")
# Above this many boxes, ask dot for a quicker layout.
FAST_LAYOUT = 80
# Bodies of at most this many nodes are drawn inside their cluster by default.
EXPAND = 60


def path_label(root: str, path: Sequence[Any]) -> str:
    """A pytree path written as Python would index it.

    >>> path_label("params", ("w1",)), path_label("output", (1, "b2"))
    ("params['w1']", "output[1]['b2']")
    """
    return root + "".join(f"[{k!r}]" for k in path)


@dataclass
class _Writer:
    expand: int
    lines: list[str] = field(default_factory=list)
    # Edges go after every cluster: an edge written inside a cluster would pull
    # both of its ends into that cluster.
    edges: list[str] = field(default_factory=list)
    counter: int = 0
    clusters: int = 0
    fused_groups: int = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"


def dot_source(
    g: Graph,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    expand: int = EXPAND,
    max_nodes: int = 300,
    title: str | None = None,
) -> str:
    """DOT source for ``g``; see the module docstring for what is drawn.

    Args:
        input_names, output_names: labels for the graph's inputs and outputs
            (pytree paths such as ``params['w1']``); default the input names
            and ``output[i]``.
        expand: draw bodies of at most this many nodes as clusters; larger
            ones as one box.
        max_nodes: above this many boxes, bodies are collapsed to one box
            each; if that is still too many, nodes are drawn one box per user
            source line (Graphviz's layout takes minutes past ~1,000 boxes).

    >>> import numpy as np, graphc as gc
    >>> text = dot_source(gc.trace(lambda x: np.exp(x) + 1.0, np.ones(3)))
    >>> "exp" in text and 'tooltip=' in text
    True
    """
    by_line = False
    if drawn_boxes(g, expand) > max_nodes:
        expand = 0
        by_line = len(g.nodes) > max_nodes
    w = _Writer(expand)
    heading = title or g.name
    if by_line:
        heading += f"\n({g.num_nodes(True)} nodes drawn as one box per source line)"
    elif expand == 0 and any(n.subgraphs for n in g.nodes):
        heading += "\n(fused groups and bodies collapsed to one box each)"
    layout = "  rankdir=TB; compound=true; newrank=true;"
    if (len(g.nodes) if expand == 0 else drawn_boxes(g, expand)) > FAST_LAYOUT:
        # Curved edge routing and crossing minimization dominate dot's time on
        # large graphs (26 s -> 2 s for 220 boxes); straight edges read fine there.
        layout += " splines=false; mclimit=0.1; nslimit=1; nslimit1=1;"
    w.lines += [
        f"digraph {quote(g.name)} {{",
        layout,
        f"  labelloc=t; label={quote(heading)};",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8, color="#555555"];',
    ]
    where: dict[Value, str | None] = {}
    for i, v in enumerate(g.inputs):
        name = input_names[i] if input_names and i < len(input_names) else f"%{v.name or i}"
        ident = f"in{i}"
        where[v] = ident
        label = f"{name}\n{v.type}"
        w.lines.append(
            f'  {ident} [shape=ellipse, style=filled, fillcolor="#eeeeee", '
            f'label={quote(label)}, tooltip={quote(f"input {i}: {name}")}, class="input"];'
        )
    if by_line:
        _emit_by_line(w, g, where)
    else:
        _emit_nodes(w, g, where, "  ")
    for i, v in enumerate(g.outputs):
        name = output_names[i] if output_names and i < len(output_names) else f"output[{i}]"
        ident = f"out{i}"
        label = quote(f"{name}\n{v.type}")
        w.lines.append(f'  {ident} [shape=note, label={label}, class="output"];')
        _edge(w, where, v, ident)
    w.lines += w.edges
    w.lines.append("}")
    return "\n".join(w.lines)


def _edge(w: _Writer, where: dict[Value, str | None], x: Value | Literal, target: str) -> None:
    # A literal operand is written in its node's label (``mul 2.0``), not drawn.
    source = where.get(x) if isinstance(x, Value) else None
    if source is not None:
        w.edges.append(f"  {source} -> {target};")


def _tooltip(n: Node) -> str:
    head = f"{n.op} -> {', '.join(str(v.type) for v in n.outputs)}"
    return f"{head}\n{n.loc.describe()}" if n.loc is not None else head


def _label(n: Node) -> str:
    label = n.op
    if n.op == "fusion":
        label += f" ({n.attrs.get('kind', '')})"
    lits = [x.text() for x in n.inputs if isinstance(x, Literal)]
    if lits:
        label += " " + ", ".join(lits)
    shown = [f"{k}={v}" for k, v in n.attrs.items() if k != "kind" and len(str(v)) <= 24]
    if shown:
        label += "\n" + " ".join(shown[:3])
    label += "\n" + ", ".join(str(v.type) for v in n.outputs)
    if n.loc is not None:
        label += f"\n{n.loc.file.rsplit('/', 1)[-1]}:{n.loc.line}"
    return label


def _emit_nodes(w: _Writer, g: Graph, where: dict[Value, str | None], indent: str) -> None:
    for n in g.nodes:
        if n.subgraphs and n.op in CALL_OPS and _size(n) <= w.expand:
            _emit_call(w, n, where, indent)
            continue
        ident = w.fresh("n")
        extra = ""
        if n.subgraphs:
            extra = f"\n({_size(n)} inner nodes)"
        w.lines.append(
            f"{indent}{ident} [shape=box, style=rounded, label={quote(_label(n) + extra)}, "
            f'tooltip={quote(_tooltip(n))}, class="op"];'
        )
        for x in n.inputs:
            _edge(w, where, x, ident)
        for v in n.outputs:
            where[v] = ident
        if n.subgraphs and n.op not in CALL_OPS and _size(n) <= w.expand:
            _emit_bodies(w, n, ident, indent)


def drawn_boxes(g: Graph, expand: int = EXPAND) -> int:
    """How many boxes :func:`_emit_nodes` would draw for ``g``."""
    total = 0
    for n in g.nodes:
        if n.subgraphs and _size(n) <= expand:
            inner = sum(drawn_boxes(s, expand) + len(s.inputs) for s in n.subgraphs)
            total += inner if n.op in CALL_OPS else 1 + inner
        else:
            total += 1
    return total


def _emit_by_line(w: _Writer, g: Graph, where: dict[Value, str | None]) -> None:
    """One box per user source line (forward and gradient apart), edges between boxes."""
    groups: dict[Any, tuple[str, list[Node]]] = {}
    for n in g.nodes:
        key: Any = (n.loc.file, n.loc.line, n.loc.derived) if n.loc is not None else id(n)
        if key not in groups:
            groups[key] = (w.fresh("n"), [])
        ident, members = groups[key]
        members.append(n)
        for x in n.value_inputs():
            source = where.get(x)
            if source is not None and source != ident:
                w.edges.append(f"  {source} -> {ident};")
        for v in n.outputs:
            where[v] = ident
    w.edges = list(dict.fromkeys(w.edges))  # one edge per pair of boxes
    for ident, members in groups.values():
        first = members[0]
        ops: dict[str, int] = {}
        for m in members:
            ops[m.op] = ops.get(m.op, 0) + 1
        summary = ", ".join(f"{op} x{k}" if k > 1 else op for op, k in ops.items())
        if first.loc is not None:
            where_text = f"{first.loc.file.rsplit('/', 1)[-1]}:{first.loc.line}"
            if first.loc.derived:
                where_text += f" ({first.loc.derived})"
            tip = first.loc.describe()
        else:
            where_text, tip = first.op, _tooltip(first)
        label = f"{where_text}\n{_wrap(summary)}"
        w.lines.append(
            f"  {ident} [shape=box, style=rounded, label={quote(label)}, "
            f'tooltip={quote(tip)}, class="op line"];'
        )


def _wrap(text: str, width: int = 40) -> str:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = ""
        line += (" " if line else "") + word
    return "\n".join(lines + [line])


def _size(n: Node) -> int:
    return sum(s.num_nodes(True) for s in n.subgraphs)


def _emit_call(w: _Writer, n: Node, where: dict[Value, str | None], indent: str) -> None:
    """A fusion or remat: its body, inline, in a cluster; the body's inputs are the operands."""
    (body,) = n.subgraphs
    w.clusters += 1
    cluster = f"cluster_{w.clusters}"
    if n.op == "fusion":
        color = PALETTE[w.fused_groups % len(PALETTE)]
        w.fused_groups += 1
        style = f'style="filled,rounded"; fillcolor="{color}"; color="#777777";'
        title = f"fused group {w.fused_groups} ({n.attrs.get('kind', '')})"
        css = "fused"
    else:
        style = 'style="dashed,rounded"; color="#aa5500";'
        title = "remat (recomputed in the backward pass)"
        css = "remat"
    if n.loc is not None:
        title += f"\n{n.loc}"
    w.lines.append(f"{indent}subgraph {cluster} {{")
    inner = indent + "  "
    w.lines.append(
        f'{inner}{style} label={quote(title)}; tooltip={quote(_tooltip(n))}; class="{css}";'
    )
    inner_where: dict[Value, str | None] = {}
    for param, x in zip(body.inputs, n.inputs):
        inner_where[param] = where.get(x) if isinstance(x, Value) else None
    _emit_nodes(w, body, inner_where, inner)
    w.lines.append(f"{indent}}}")
    for v, inner_out in zip(n.outputs, body.outputs):
        where[v] = inner_where[inner_out]


def _emit_bodies(w: _Writer, n: Node, owner: str, indent: str) -> None:
    """Bodies of a loop or branch: their own arguments, linked to the op by a dashed edge."""
    names = ("true branch", "false branch") if n.op == "cond" else ()
    for k, body in enumerate(n.subgraphs):
        w.clusters += 1
        cluster = f"cluster_{w.clusters}"
        inner = indent + "  "
        what = names[k] if k < len(names) else f"{n.op} body"
        w.lines.append(f"{indent}subgraph {cluster} {{")
        w.lines.append(
            f'{inner}style="dashed,rounded"; color="#3366aa"; label={quote(what)}; class="body";'
        )
        body_where: dict[Value, str | None] = {}
        first = None
        for i, v in enumerate(body.inputs):
            ident = w.fresh("arg")
            first = first or ident
            body_where[v] = ident
            label = quote(f"arg {i}\n{v.type}")
            w.lines.append(
                f'{inner}{ident} [shape=ellipse, label={label}, fontsize=8, class="input"];'
            )
        _emit_nodes(w, body, body_where, inner)
        for i, v in enumerate(body.outputs):
            ident = w.fresh("ret")
            w.lines.append(f"{inner}{ident} [shape=plaintext, label={quote(f'result {i}')}];")
            _edge(w, body_where, v, ident)
        w.lines.append(f"{indent}}}")
        if first is not None:
            w.edges.append(
                f'  {owner} -> {first} [style=dashed, color="#3366aa", lhead={cluster}];'
            )
