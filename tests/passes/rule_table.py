"""The table format of the simplifier's IR-in/IR-out cases.

A case is one rewrite: the rule that must fire, the graph's signature, and
the body before and after. Simplification never changes a graph's signature,
so it is written once and both graphs are named ``f``::

    case("add_zero", "(%x: i32[3]) -> (i32[3])", "%0 = add %x, 0 : i32[3]\\nreturn %0",
         "return %x")
"""

from __future__ import annotations

import textwrap

from graphc.ir import parse
from graphc.passes import Pass, run_passes, simplify
from tests.passes.helpers import check_pass


def graph_text(signature: str, body: str) -> str:
    """The text of graph ``f`` with ``signature`` and the statements of ``body``."""
    statements = textwrap.indent(textwrap.dedent(body).strip("\n"), "  ")
    return f"graph f{signature} {{\n{statements}\n}}"


def case(rule: str, signature: str, before: str, after: str) -> tuple[str, str, str]:
    """A row of a case table: (rule, IR before, IR after)."""
    return rule, graph_text(signature, before), graph_text(signature, after)


def keep(why: str, signature: str, body: str) -> tuple[str, str]:
    """A graph the simplifier must leave exactly as it is, and why."""
    return why, graph_text(signature, body)


def case_ids(cases: list[tuple[str, str, str]]) -> list[str]:
    return [f"{rule}-{i}" for i, (rule, _, _) in enumerate(cases)]


def check_rewrite(before: str, after: str) -> None:
    """``simplify`` turns ``before`` into ``after``, keeping its meaning."""
    assert check_pass(simplify, before, after) is not None


def check_counted(rule: str, before: str) -> None:
    """The pass report credits the rewrite of ``before`` to ``rule``."""
    _, report = run_passes(parse(before), [Pass("simplify", simplify)])
    assert report.passes[0].counts.get(rule, 0) >= 1, report.passes[0].counts
