"""The verifier: checks every invariant a Graph must satisfy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .core import Graph, Literal, Node, TensorType, Value
from .dtypes import DType
from .errors import GraphcError, VerifyError
from .ops.registry import get_op

_CONTEXT = 4  # IR lines shown on each side of the offending node


def verify(g: Graph) -> Graph:
    """Check ``g`` and return it; raise :class:`VerifyError` naming the broken rule.

    Checks: SSA (each value defined once, defined before use), known ops,
    complete and well-formed attributes, each node's types equal to its
    op's type rule, subgraph arity, and outputs defined. The message names
    the op and the rule, then shows the IR around the offending line, marked
    with ``>``.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> verify(b.build([b.exp(x)])).name
    'f'
    """
    _verify(g)
    return g


def _verify(g: Graph) -> None:
    defined: set[Value] = set()
    for v in g.inputs:
        if v in defined:
            raise VerifyError(
                _report(g, _header, f"graph {g.name}: argument %{v.name} appears twice")
            )
        problem = _type_problem(v.type)
        if problem:
            raise VerifyError(_report(g, _header, f"graph {g.name}: argument %{v.name} {problem}"))
        defined.add(v)
    for index, n in enumerate(g.nodes):

        def fail(rule: str, n: Node = n, index: int = index) -> VerifyError:
            return VerifyError(_report(g, _statement(index), f"{n.op}: {rule}"))

        try:
            opdef = get_op(n.op)
        except GraphcError:
            raise fail("unknown op") from None
        for i, x in enumerate(n.inputs):
            if isinstance(x, Value):
                if x not in defined:
                    raise fail(f"operand {i} is used before it is defined (or never defined)")
            elif not isinstance(x, Literal):
                raise fail(f"operand {i} is neither a Value nor a Literal: {x!r}")
            elif not _fits(x):
                raise fail(f"literal operand {i} ({x.value!r}) is not a {x.dtype} value")
        try:
            opdef.check_arity(len(n.inputs))
            attrs = opdef.normalize_attrs(n.attrs)
            if set(attrs) != set(n.attrs):
                missing = ", ".join(sorted(set(attrs) - set(n.attrs)))
                raise VerifyError(f"attributes are incomplete (missing {missing})")
            if len(n.subgraphs) != opdef.num_subgraphs:
                raise VerifyError(
                    f"expects {opdef.num_subgraphs} subgraph(s), has {len(n.subgraphs)}"
                )
            extra = {"_subgraphs": n.subgraphs} if opdef.num_subgraphs else {}
            expected = opdef.infer(tuple(x.type for x in n.inputs), {**attrs, **extra})
        except GraphcError as exc:
            reason = str(exc).splitlines()[0]
            # Type rules name the op themselves; say it once.
            raise fail(reason.removeprefix(f"{n.op}: ")) from None
        for v in n.outputs:
            problem = _type_problem(v.type)
            if problem:
                raise fail(f"a result {problem}")
        got = tuple(v.type for v in n.outputs)
        if got != expected:
            shown = ", ".join(map(str, expected))
            raise fail(
                f"result types {', '.join(map(str, got))} differ from the type rule's {shown}"
            )
        for k, sub in enumerate(n.subgraphs):
            try:
                _verify(sub)
            except VerifyError as exc:
                raise VerifyError(
                    f"{exc}\n{_report(g, _statement(index), f'in subgraph {k} of this {n.op}')}"
                ) from None
        for v in n.outputs:
            if v in defined:
                raise fail("redefines a value (SSA allows one definition)")
            defined.add(v)
    for i, v in enumerate(g.outputs):
        if v not in defined:
            raise VerifyError(
                _report(g, _return, f"return: output {i} is not defined in graph {g.name}")
            )


def _type_problem(ty: object) -> str | None:
    if not isinstance(ty, TensorType) or not isinstance(ty.dtype, DType):
        return f"has type {ty!r}, not a TensorType"
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in ty.shape):
        return f"has a malformed shape {ty.shape!r}"
    return None


def _fits(x: Literal) -> bool:
    """Whether a literal's Python value is exactly a value of its dtype."""
    value = x.value
    if x.dtype.is_bool:
        return isinstance(value, (bool, np.bool_))
    if x.dtype.is_int:
        if isinstance(value, (bool, np.bool_)):
            return False
        if isinstance(value, (float, np.floating)) and not float(value).is_integer():
            return False  # also inf and nan
        info = np.iinfo(x.dtype.np)
        return bool(info.min <= int(value) <= info.max)
    return isinstance(value, (int, float, np.integer, np.floating))


LineFinder = Callable[[list[str]], int]


def _header(lines: list[str]) -> int:
    return 0


def _return(lines: list[str]) -> int:
    return max(i for i, line in enumerate(lines) if line.startswith("  return"))


def _statement(index: int) -> LineFinder:
    # Nodes with subgraphs span several lines, so find the index-th line that
    # starts a top-level statement.
    def find(lines: list[str]) -> int:
        starts = [i for i, line in enumerate(lines) if line.startswith("  %")]
        return starts[index] if index < len(starts) else -1

    return find


def _report(g: Graph, where: LineFinder, message: str) -> str:
    from .printer import print_graph

    try:
        lines = print_graph(g).splitlines()
        at = where(lines)
    except Exception:  # the graph may be too broken to print
        return message
    if at < 0:
        return message
    lo, hi = max(0, at - _CONTEXT), min(len(lines), at + _CONTEXT + 1)
    shown = [("> " if i == at else "  ") + lines[i] for i in range(lo, hi)]
    return message + "\n" + "\n".join(shown)
