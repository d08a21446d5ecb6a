"""The text form of graphs. The parser reads exactly what this writes.

Grammar (shared with :mod:`graphc.ir.parser`)::

    graph    := "graph" NAME "(" args? ")" "->" "(" types? ")" body
    body     := "{" stmt* "return" operands "}"
    stmt     := values "=" OPNAME operands? attrs? ":" types subgraphs? loc?
    operand  := VALUE | NUMBER (":" DTYPE)? | "true" | "false"
    attrs    := "{" NAME "=" attr ("," NAME "=" attr)* "}"
    attr     := NUMBER | NAME | STRING | DTYPE | "(" (attr ("," attr)*)? ")"
    type     := DTYPE "[" (INT ("," INT)*)? "]"
    subgraphs:= "{" ("(" args? ")" body)+ "}"
    loc      := "loc(" STRING ":" INT (":" INT)? ")"
    comment  := "#" to end of line

A bare literal takes the dtype of the op's first tensor operand; any other
literal carries its dtype (``2:i64``). Attributes equal to their default are
left out. Values are numbered in order; arguments keep their names.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from .core import Graph, Literal, Node, Operand, Value
from .dtypes import DType
from .ops.registry import get_op

_COLUMN = 40  # statements are padded so their types line up, up to this width
_WRAP = 96
_PREFIXES = "tuvwxyz"


def print_graph(g: Graph, *, locations: bool = False, annotate: bool = False) -> str:
    """The text form of ``g``. ``str(g)`` is ``print_graph(g)``.

    ``locations`` appends ``loc("file":line)`` to each statement; ``annotate``
    adds ``#`` comments with the user's source line (the parser skips both
    the comments and, when asked, the locations).
    """
    return "\n".join(_Printer(locations, annotate).graph(g, depth=0))


def format_scalar(value: Any, dtype: DType) -> str:
    return Literal(value, dtype).text()


def _format_items(values: list[Any], dtype: DType) -> list[str]:
    """``format_scalar`` of each of ``values`` (an array's, so all of ``dtype``):
    constant arrays can hold thousands, and a Literal for each is most of their cost."""
    if dtype.is_bool:
        return ["true" if v else "false" for v in values]
    if dtype.is_int:
        return [str(int(v)) for v in values]
    return [repr(x) if math.isfinite(x) else format_scalar(x, dtype) for x in map(float, values)]


def format_attr(value: Any) -> str:
    """One attribute value in the text form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, DType):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_scalar(value, DType.f64)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        sep = "," if all(isinstance(v, int) for v in value) else ", "
        inner = sep.join(format_attr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, np.ndarray):
        dtype = DType.from_numpy(value.dtype)
        if value.ndim == 0:
            return format_scalar(value.item(), dtype)
        items = ", ".join(_format_items(value.ravel().tolist(), dtype))
        return f"({items},)" if value.size == 1 else f"({items})"
    raise TypeError(f"cannot print attribute {value!r}")


class _Printer:
    def __init__(self, locations: bool, annotate: bool) -> None:
        self.locations = locations
        self.annotate = annotate

    def graph(self, g: Graph, depth: int) -> list[str]:
        names = self._name_inputs(g, depth)
        args = [f"%{names[v]}: {v.type}" for v in g.inputs]
        results = ", ".join(str(t) for t in g.output_types)
        head = f"graph {_identifier(g.name)}("
        lines = _wrap(head, args, f") -> ({results}) {{")
        lines += self.body(g, names, depth, indent="  ")
        lines.append("}")
        return lines

    def body(self, g: Graph, names: dict[Value, str], depth: int, indent: str) -> list[str]:
        prefix = _PREFIXES[depth - 1] if depth <= len(_PREFIXES) else f"t{depth}_"
        prefix = "" if depth == 0 else prefix
        counter = 0
        rendered: list[tuple[str, str, Node]] = []
        for n in g.nodes:
            # Operands first: in a broken graph a node may read its own result,
            # which must then show as undefined.
            ops = self.operands(n.inputs, names)
            for v in n.outputs:
                names[v] = f"{prefix}{counter}"
                counter += 1
            left = ", ".join(f"%{names[v]}" for v in n.outputs)
            stmt = f"{left} = {n.op}"
            if ops:
                stmt += " " + ops
            attrs = self.attrs(n)
            if attrs:
                stmt += " " + attrs
            rendered.append((stmt, ", ".join(str(v.type) for v in n.outputs), n))
        width = max((len(s) for s, _, _ in rendered if len(s) <= _COLUMN), default=0)
        lines = []
        for stmt, types, n in rendered:
            line = f"{indent}{stmt.ljust(width)} : {types}"
            sub_lines: list[str] = []
            for sub in n.subgraphs:
                sub_lines += self.subgraph(sub, depth + 1, indent)
            if sub_lines:
                line += " {"
                lines.append(line)
                lines += sub_lines
                line = f"{indent}}}"
            if self.locations and n.loc is not None:
                col = f":{n.loc.col}" if n.loc.col is not None else ""
                line += f" loc({json.dumps(n.loc.file)}:{n.loc.line}{col})"
            if self.annotate and n.loc is not None:
                # A comment runs to the end of the line, so it must not contain one.
                line += "  # " + n.loc.describe().replace("\n", "\\n")
            lines.append(line)
        ret = self.operands(g.outputs, names)
        lines.append(f"{indent}return {ret}" if ret else f"{indent}return")
        return lines

    def subgraph(self, g: Graph, depth: int, indent: str) -> list[str]:
        names = self._name_inputs(g, depth)
        args = ", ".join(f"%{names[v]}: {v.type}" for v in g.inputs)
        inner = indent + "  "
        lines = [f"{inner}({args}) {{"]
        lines += self.body(g, names, depth, inner + "  ")
        lines.append(f"{inner}}}")
        return lines

    @staticmethod
    def _name_inputs(g: Graph, depth: int) -> dict[Value, str]:
        names: dict[Value, str] = {}
        used: set[str] = set()
        for i, v in enumerate(g.inputs):
            base = _identifier(v.name) if v.name else ""
            base = base or (chr(ord("a") + i) if i < 26 and depth else f"arg{i}")
            if base[0].isdigit() or (depth and base[0] in _PREFIXES and base[1:].isdigit()):
                base = "a" + base
            name, k = base, 1
            while name in used:
                name, k = f"{base}_{k}", k + 1
            used.add(name)
            names[v] = name
        return names

    @staticmethod
    def operands(xs: tuple[Operand, ...], names: dict[Value, str]) -> str:
        first = next((x.type.dtype for x in xs if isinstance(x, Value)), None)
        parts = []
        for x in xs:
            if isinstance(x, Value):
                parts.append(f"%{names[x]}" if x in names else "%<undefined>")
            elif not isinstance(x, Literal):
                # Only a hand-built, invalid graph gets here; the verifier shows it.
                parts.append(f"<not an operand: {x!r}>")
            elif x.dtype == first:
                parts.append(x.text())
            else:
                parts.append(f"{x.text()}:{x.dtype}")
        return ", ".join(parts)

    @staticmethod
    def attrs(n: Node) -> str:
        try:
            schema = get_op(n.op).attrs
        except Exception:
            schema = ()
        shown = []
        for a in schema:
            if a.name not in n.attrs:
                continue  # only in hand-built graphs; the verifier reports it
            value = n.attrs[a.name]
            if a.kind != "array" and _same(value, a.default):
                continue
            shown.append(f"{a.name}={format_attr(value)}")
        return "{" + ", ".join(shown) + "}" if shown else ""


def _identifier(name: str) -> str:
    # Graphs built without the builder may carry any name; print one the
    # parser reads (names do not take part in equality).
    cleaned = re.sub(r"[^A-Za-z0-9_.]", "_", name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else "_" + cleaned


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, float) and isinstance(default, float):
        return value == default or (math.isnan(value) and math.isnan(default))
    return type(value) is type(default) and value == default


def _wrap(head: str, items: list[str], tail: str) -> list[str]:
    one = head + ", ".join(items) + tail
    if len(one) <= _WRAP or not items:
        return [one]
    lines, current = [], head
    pad = " " * len(head)
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if current.strip() and len(current) + len(piece) + 1 > _WRAP and current != head:
            lines.append(current.rstrip())
            current = pad
        current += piece + " "
    lines.append(current.rstrip() + tail)
    return lines
