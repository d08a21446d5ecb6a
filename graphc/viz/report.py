"""The HTML compile report: one self-contained page (inline SVG and CSS, no
script, nothing fetched) showing what the compiler made of a function.

Sections: summary, compile-time breakdown, the traced and the optimized
graph (fused groups coloured), the fused groups, the per-pass table, the
memory plan (arena vs the lower bound, timeline, largest values) and the
generated code per kernel.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from graphc.ir import Graph

from .memory_view import human_bytes, largest_values, timeline, timeline_svg
from .render import RenderError, svg

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       color: #222; background: #fff; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: .6em; overflow: auto; max-height: 32em; font-size: .8em; }
.graph { overflow: auto; max-height: 48em; border: 1px solid #eee; margin: .5em 0; }
.graph svg { max-width: 100%; height: auto; }
.bar { display: inline-block; height: .9em; background: #2a6fdb; vertical-align: middle; }
.swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #888;
          vertical-align: middle; }
nav a { margin-right: 1em; } details { margin: .4em 0; } summary { cursor: pointer; }
.note { color: #666; font-size: .9em; }
"""

SECTIONS = (
    ("summary", "Summary"),
    ("timing", "Compile time"),
    ("graphs", "Graphs"),
    ("fused", "Fused groups"),
    ("passes", "Per-pass table"),
    ("memory", "Memory plan"),
    ("code", "Generated code"),
)


def write_html(
    path: str | os.PathLike[str],
    *,
    traced: Graph,
    optimized: Graph,
    report: Any,
    memory: Any = None,
    plan: Any = None,
    backend: str = "numpy",
    executable: Any = None,
    seconds: dict[str, float] | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    max_nodes: int = 300,
) -> Path:
    """Write the report page to ``path`` and return it (see the module docstring).

    ``jitted.report.html(path)`` fills every argument from a compiled function;
    called directly, only the graphs and the pass report are needed:

    >>> import numpy as np, graphc as gc, tempfile, os
    >>> from graphc.passes.pipeline import optimize
    >>> g = gc.trace(lambda x: np.exp(x) * 1.0, np.ones(2))
    >>> opt, rep = optimize(g)
    >>> page = write_html(os.path.join(tempfile.mkdtemp(), "r.html"),
    ...                   traced=g, optimized=opt, report=rep)
    >>> "simplify" in page.read_text()
    True
    """
    page = build_html(
        traced=traced,
        optimized=optimized,
        report=report,
        memory=memory,
        plan=plan,
        backend=backend,
        executable=executable,
        seconds=seconds or {},
        input_names=input_names,
        output_names=output_names,
        max_nodes=max_nodes,
    )
    target = Path(path)
    target.write_text(page, encoding="utf-8")
    return target


def build_html(
    *,
    traced: Graph,
    optimized: Graph,
    report: Any,
    memory: Any,
    plan: Any,
    backend: str,
    executable: Any,
    seconds: dict[str, float],
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
    max_nodes: int = 300,
) -> str:
    """The report page as a string."""
    names = {"input_names": input_names, "output_names": output_names}
    body = [
        f"<h1>Compile report: {escape(traced.name)}</h1>",
        "<nav>" + "".join(f'<a href="#{k}">{escape(t)}</a>' for k, t in SECTIONS) + "</nav>",
        _section("summary", _summary(traced, optimized, report, backend, memory)),
        _section("timing", _timing(report, seconds, executable)),
        _section("graphs", _graphs(traced, optimized, backend, names, max_nodes)),
        _section("fused", _fused(optimized)),
        _section("passes", _passes(report)),
        _section("memory", _memory(optimized, plan, memory)),
        _section("code", _code(backend, executable)),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>graphc report: {escape(traced.name)}</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _section(key: str, content: str) -> str:
    title = dict(SECTIONS)[key]
    return f'<section id="{key}"><h2>{escape(title)}</h2>\n{content}\n</section>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            css = ' class="num"' if i in numeric else ""
            cells.append(f"<td{css}>{cell}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    return f"<table>{thead}<tbody>{''.join(lines)}</tbody></table>"


def _summary(traced: Graph, optimized: Graph, report: Any, backend: str, memory: Any) -> str:
    rows = [
        ("backend", escape(backend)),
        ("inputs / outputs", f"{len(traced.inputs)} / {len(traced.outputs)}"),
        ("traced nodes", str(traced.num_nodes(recursive=True))),
        ("optimized nodes (inner included)", str(optimized.num_nodes(recursive=True))),
        ("fused groups", str(sum(1 for n in optimized.nodes if n.op == "fusion"))),
    ]
    if getattr(report, "from_cache", False):
        rows.append(("pipeline", "loaded from the disk cache (times are from the first compile)"))
    if memory is not None:
        # a MemoryReport wraps the backend's own report; show both
        backend_report = getattr(memory, "backend_report", memory)
        for field in getattr(backend_report, "__dataclass_fields__", {}):
            value = getattr(backend_report, field)
            shown = human_bytes(value) if field.endswith("bytes") else str(value)
            rows.append((field.replace("_", " "), shown))
        shown_already = set(getattr(backend_report, "__dataclass_fields__", {}))
        for field in ("plan_bytes", "lower_bound_bytes", "saved_bytes"):
            if field in shown_already or backend_report is memory:
                continue
            value = getattr(memory, field, None)
            if isinstance(value, int):
                rows.append((field.replace("_", " "), human_bytes(value)))
    return _table(("", ""), [(escape(a), b) for a, b in rows], set())


def _timing(report: Any, seconds: dict[str, float], executable: Any) -> str:
    stages: list[tuple[str, float]] = []
    if "trace" in seconds:
        stages.append(("tracing", seconds["trace"]))
    if "cache_load" in seconds:
        stages.append(("pipeline loaded from cache", seconds["cache_load"]))
    # Passes loaded from the cache did not run now: their stored times would mislead.
    if "cache_load" not in seconds:
        for p in getattr(report, "passes", []):
            if not p.disabled:
                stages.append((f"pass: {p.name}", p.seconds))
    if "memory_plan" in seconds:
        stages.append(("memory planning", seconds["memory_plan"]))
    split = getattr(executable, "stage_seconds", None) or {}
    if split:
        stages.append(("codegen: LLVM IR", split.get("llvm_ir", 0.0)))
        stages.append(("LLVM: optimize, emit, load", split.get("llvm", 0.0)))
    elif "codegen" in seconds:
        cached = getattr(executable, "from_cache", False)
        stages.append(
            (
                "codegen (machine code from the disk cache)" if cached else "codegen",
                seconds["codegen"],
            )
        )
    if not stages:
        return '<p class="note">No timings recorded.</p>'
    total = sum(s for _, s in stages) or 1.0
    rows = [
        (
            escape(name),
            f"{s * 1e3:.2f}",
            f"{100 * s / total:.1f}%",
            f'<span class="bar" style="width:{max(1, int(300 * s / total))}px"></span>',
        )
        for name, s in stages
    ]
    rows.append(("<b>total</b>", f"<b>{total * 1e3:.2f}</b>", "100%", ""))
    return _table(("stage", "ms", "share", ""), rows, {1, 2})


def _inline_svg(g: Graph, **options: Any) -> str:
    try:
        text = svg(g, **options)
    except RenderError as exc:
        return f'<p class="note">Graph not drawn: {escape(str(exc))}</p>'
    # Keep only the <svg> element: the XML prolog and DOCTYPE are not allowed mid-page.
    start = text.find("<svg")
    text = text[start:] if start >= 0 else text
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def _graphs(
    traced: Graph, optimized: Graph, backend: str, names: dict[str, Any], max_nodes: int
) -> str:
    parts = []
    for title, g, kind in (
        ("Traced graph", traced, "traced"),
        ("Optimized graph", optimized, "optimized"),
    ):
        nodes = g.num_nodes(recursive=True)
        picture = _inline_svg(
            g, title=f"{g.name} ({kind}, {backend})", max_nodes=max_nodes, **_fit(g, names)
        )
        parts.append(
            f'<details open class="graph-block" id="graph-{kind}"><summary>{title} '
            f'({nodes} nodes)</summary><div class="graph">{picture}</div>'
            f"{_bodies(g, max_nodes)}"
            f"<details><summary>IR text</summary><pre>{escape(g.format(locations=True))}</pre>"
            "</details></details>"
        )
    return (
        '<p class="note">Hover a node for its source line. Fused groups are the coloured '
        "clusters; dashed clusters are loop and branch bodies or recomputed regions.</p>"
        + "".join(parts)
    )


def _bodies(g: Graph, max_nodes: int, limit: int = 40) -> str:
    """When the drawing above collapsed the bodies, each one drawn on its own, folded."""
    from .dot import EXPAND, drawn_boxes

    if drawn_boxes(g, EXPAND) <= max_nodes:
        return ""
    owners = [n for n in g.nodes if n.subgraphs]
    if not owners:
        return ""
    items = []
    for k, n in enumerate(owners[:limit]):
        where = f" at {n.loc}" if n.loc is not None else ""
        kind = f" ({n.attrs['kind']})" if "kind" in n.attrs else ""
        for body in n.subgraphs:
            picture = _inline_svg(body, title=f"{n.op}{kind}{where}", max_nodes=max_nodes)
            items.append(
                f'<details class="body"><summary>{k + 1}. {escape(n.op + kind)}: '
                f"{body.num_nodes(True)} nodes{escape(where)}</summary>"
                f'<div class="graph">{picture}</div></details>'
            )
    more = len(owners) - limit
    tail = f'<p class="note">{more} more not drawn.</p>' if more > 0 else ""
    return (
        "<details><summary>Bodies collapsed above, drawn one by one "
        f"({len(owners)})</summary>{''.join(items)}{tail}</details>"
    )


def _fit(g: Graph, names: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, count in (("input_names", len(g.inputs)), ("output_names", len(g.outputs))):
        labels = names.get(key)
        if labels and len(labels) == count:
            out[key] = list(labels)
    return out


def _fused(optimized: Graph) -> str:
    from .dot import PALETTE

    rows = []
    groups = [n for n in optimized.nodes if n.op == "fusion"]
    for k, n in enumerate(groups):
        body = n.subgraphs[0]
        ops = ", ".join(m.op for m in body.nodes)
        color = PALETTE[k % len(PALETTE)]
        rows.append(
            (
                f'<span class="swatch" style="background:{color}"></span> {k + 1}',
                escape(str(n.attrs.get("kind", ""))),
                str(len(body.nodes)),
                escape(ops),
                escape(", ".join(str(v.type) for v in n.outputs)),
                escape(n.loc.describe() if n.loc is not None else ""),
            )
        )
    if not rows:
        return '<p class="note">No fused groups (only the LLVM backend fuses).</p>'
    return _table(("group", "kind", "ops", "inner ops", "outputs", "user line"), rows, {2})


def _passes(report: Any) -> str:
    rows = []
    for p in getattr(report, "passes", []):
        if p.disabled:
            rows.append((escape(p.name), "-", "", "", "disabled"))
            continue
        rules = ", ".join(f"{escape(k)} &times;{v}" for k, v in sorted(p.counts.items()))
        change = p.nodes_after - p.nodes_before
        rows.append(
            (
                escape(p.name),
                f"{p.seconds * 1e3:.2f}",
                f"{p.nodes_before} &rarr; {p.nodes_after}",
                f"{change:+d}" if change else "0",
                rules,
            )
        )
    if not rows:
        return '<p class="note">No passes ran.</p>'
    return _table(("pass", "ms", "nodes", "change", "rewrites by rule"), rows, {1, 3})


def _memory(optimized: Graph, plan: Any, memory: Any) -> str:
    if plan is None:
        return '<p class="note">No memory plan (the interpreter allocates as it goes).</p>'
    t = timeline(optimized, plan)
    ratio = plan.arena_bytes / plan.peak_bytes if plan.peak_bytes else 1.0
    head = (
        f"<p>Arena <b>{human_bytes(plan.arena_bytes)}</b> for the intermediates; the most "
        f"alive at once in this order (a lower bound for any arena) is "
        f"<b>{human_bytes(plan.peak_bytes)}</b>, so the plan is {ratio:.2f}&times; the bound. "
        f"{len(plan.offsets)} values placed, {len(plan.aliases)} written in place.</p>"
    )
    rows = [
        (
            escape(r["type"]),
            human_bytes(r["bytes"]),
            str(r["offset"]),
            f"{r['live'][0]}&ndash;{r['live'][1]}",
            escape(r["op"]),
            escape(r["where"]),
        )
        for r in largest_values(optimized, plan)
    ]
    table = _table(
        ("value", "size", "offset", "alive (nodes)", "made by", "user line"), rows, {1, 2}
    )
    return head + timeline_svg(t) + "<h3>Largest values</h3>" + table


def _code(backend: str, executable: Any) -> str:
    if executable is None:
        return '<p class="note">No generated code.</p>'
    if backend == "numpy":
        source = getattr(executable, "source", "")
        return f"<p>The generated NumPy function:</p><pre>{escape(str(source))}</pre>"
    text = getattr(executable, "llvm_ir", None)
    if not text:
        return '<p class="note">The interpreter runs the graph directly; no code is generated.</p>'
    kernels = _llvm_functions(str(text))
    parts = [f"<p>{len(kernels)} LLVM functions (one per kernel, and the entry point):</p>"]
    for name, body in kernels:
        parts.append(
            f"<details><summary><code>{escape(name)}</code> ({body.count(chr(10)) + 1} lines)"
            f"</summary><pre>{escape(body)}</pre></details>"
        )
    asm = getattr(executable, "asm", None)
    if asm:
        parts.append(
            f"<details><summary>machine assembly</summary><pre>{escape(str(asm))}</pre></details>"
        )
    return "".join(parts)


def _llvm_functions(text: str) -> list[tuple[str, str]]:
    """Each ``define`` in LLVM IR text, with its name."""
    out = []
    for match in re.finditer(r"^define [^\n]*?@\"?([\w.$-]+)\"?\(.*?^}", text, re.S | re.M):
        out.append((match.group(1), match.group(0)))
    return out
