"""What the pass pipeline made of a graph, as a disk cache entry without pickle.

An entry (``<key>.gcp``, stored by the LLVM backend's cache module beside
the compiled objects) is zlib-compressed JSON: the optimized graph as IR
text (``graphc.ir.parse`` reads it back), each node's source location (in
full: error messages name the function and how a node was derived, which
the text's ``loc(...)`` does not hold), the memory plan in terms of value
positions, and the compile report. Loading an entry parses text and JSON and
nothing else, so it cannot run code whoever wrote it; anything that is not
exactly what :func:`encode` writes, or does not fit the graph it is loaded
for, is a damaged entry (:class:`DamagedEntry`), compiled again.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from typing import Any

from graphc.ir import Graph, GraphcError, Loc, Node, Value, parse, verify
from graphc.ir.plan import MemoryPlan

from .passes.manager import CompileReport, PassRecord

FORMAT = "graphc-pipeline-1"


class DamagedEntry(ValueError):
    """A pipeline cache entry that cannot be what :func:`encode` wrote for this graph."""


def encode(optimized: Graph, plan: MemoryPlan | None, report: CompileReport) -> bytes | None:
    """The entry for one pipeline result, or None when it cannot be stored faithfully
    (its text does not parse back to the same graph, or the plan names values
    outside it).

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[3], "x")
    >>> g = b.build([b.exp(x)])
    >>> data = encode(g, None, CompileReport("f"))
    >>> again, plan, report = decode(data, g)
    >>> again == g, plan, report.graph
    (True, None, 'f')
    """
    # Locations go in the JSON (whole); in the text they would cost parse time.
    text = str(optimized)
    try:
        if parse(text) != optimized:
            return None
    except GraphcError:
        return None
    number = _numbering(optimized)
    try:
        stored_plan = None if plan is None else _plan_to_json(plan, number)
    except KeyError:
        return None
    document = {
        "format": FORMAT,
        "graph": text,
        "locs": [_loc_to_json(n.loc) for n in _walk(optimized)],
        "plan": stored_plan,
        "report": {
            "graph": report.graph,
            "passes": [dataclasses.asdict(p) for p in report.passes],
        },
    }
    try:
        return zlib.compress(json.dumps(document, allow_nan=False).encode(), 1)
    except ValueError:
        return None  # a pass counted something JSON cannot hold


def decode(data: bytes, traced: Graph) -> tuple[Graph, MemoryPlan | None, CompileReport]:
    """The pipeline result stored in ``data`` for the traced graph ``traced``.

    Raises :class:`DamagedEntry` for anything else: bytes that are not
    compressed JSON, fields of the wrong kind, IR text that does not parse or
    verify, a graph with another signature, a plan that does not fit it.
    """
    try:
        document = json.loads(zlib.decompress(data))
    except (zlib.error, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise DamagedEntry(f"not a pipeline entry: {exc}") from exc
    _expect(document, dict, "the entry")
    _expect(document.get("format"), str, "format")
    if document["format"] != FORMAT:
        raise DamagedEntry(f"format {document['format']!r:.40}, expected {FORMAT!r}")
    _expect(document.get("graph"), str, "graph")
    try:
        g = verify(parse(document["graph"]))
    except (GraphcError, RecursionError) as exc:
        raise DamagedEntry(f"its graph does not parse: {exc}") from exc
    if g.input_types != traced.input_types or g.output_types != traced.output_types:
        raise DamagedEntry("its graph has another signature than the traced one")
    g = _with_locs(g, _locs_from_json(document.get("locs"), g))
    plan = document.get("plan")
    return g, None if plan is None else _plan_from_json(plan, g), _report_from_json(document)


# -- pieces ------------------------------------------------------------------------------------


def _expect(x: Any, kind: type, what: str) -> None:
    # bool is an int subclass: a count that is True is damage, not 1.
    if not isinstance(x, kind) or (kind is int and isinstance(x, bool)):
        raise DamagedEntry(f"{what} is {type(x).__name__}, expected {kind.__name__}")


def _count(x: Any, what: str) -> int:
    _expect(x, int, what)
    if x < 0:
        raise DamagedEntry(f"{what} is negative")
    return int(x)


def _walk(g: Graph) -> list[Node]:
    """Every node, subgraphs included, in printing order."""
    found = []
    for n in g.nodes:
        found.append(n)
        for sub in n.subgraphs:
            found += _walk(sub)
    return found


def _numbering(g: Graph) -> dict[Value, int]:
    """Positions of the top-level values: inputs first, then node outputs in order."""
    values = list(g.inputs) + [v for n in g.nodes for v in n.outputs]
    return {v: k for k, v in enumerate(values)}


def _loc_to_json(loc: Loc | None) -> list[Any] | None:
    if loc is None:
        return None
    return [loc.file, loc.line, loc.col, loc.function, loc.derived]


def _locs_from_json(stored: Any, g: Graph) -> list[Loc | None]:
    nodes = _walk(g)
    _expect(stored, list, "locs")
    if len(stored) != len(nodes):
        raise DamagedEntry(f"{len(stored)} locations for {len(nodes)} nodes")
    locs: list[Loc | None] = []
    for item in stored:
        if item is None:
            locs.append(None)
            continue
        _expect(item, list, "a location")
        if len(item) != 5:
            raise DamagedEntry("a location has the wrong length")
        file, line, col, function, derived = item
        _expect(file, str, "a location's file")
        _count(line, "a location's line")
        if col is not None:
            _count(col, "a location's column")
        for part in (function, derived):
            if part is not None:
                _expect(part, str, "a location's function")
        locs.append(Loc(file, line, col, function, derived))
    return locs


def _with_locs(g: Graph, locs: list[Loc | None]) -> Graph:
    """``g`` with each node's location replaced, in :func:`_walk` order."""
    queue = iter(locs)

    def rebuild(graph: Graph) -> Graph:
        nodes = []
        for n in graph.nodes:
            loc = next(queue)
            subs = tuple(rebuild(s) for s in n.subgraphs)
            nodes.append(dataclasses.replace(n, loc=loc, subgraphs=subs))
        return graph.replace(nodes=tuple(nodes))

    return rebuild(g)


def _plan_to_json(plan: MemoryPlan, number: dict[Value, int]) -> dict[str, Any]:
    return {
        "arena_bytes": plan.arena_bytes,
        "peak_bytes": plan.peak_bytes,
        "offsets": sorted([number[v], o] for v, o in plan.offsets.items()),
        "aliases": sorted([number[v], number[a]] for v, a in plan.aliases.items()),
        "donations": sorted([number[v], number[u]] for v, u in plan.donations.items()),
    }


def _pairs(stored: Any, what: str, limit: int) -> list[tuple[int, int]]:
    _expect(stored, list, what)
    pairs = []
    for item in stored:
        _expect(item, list, what)
        if len(item) != 2:
            raise DamagedEntry(f"{what} holds a list of length {len(item)}")
        a, b = (_count(x, what) for x in item)
        if a >= limit:
            raise DamagedEntry(f"{what} names value {a}, the graph has {limit}")
        pairs.append((a, b))
    return pairs


def _plan_from_json(stored: Any, g: Graph) -> MemoryPlan:
    _expect(stored, dict, "plan")
    values = list(g.inputs) + [v for n in g.nodes for v in n.outputs]
    n_in = len(g.inputs)
    arena = _count(stored.get("arena_bytes"), "arena_bytes")
    peak = _count(stored.get("peak_bytes"), "peak_bytes")
    offsets: dict[Value, int] = {}
    for k, offset in _pairs(stored.get("offsets"), "offsets", len(values)):
        v = values[k]
        # An offset outside the arena would have native code write past it.
        if k < n_in or offset + v.type.nbytes > arena:
            raise DamagedEntry(f"offsets place value {k} outside the arena")
        offsets[v] = offset
    aliases: dict[Value, Value] = {}
    for k, j in _pairs(stored.get("aliases"), "aliases", len(values)):
        if j >= len(values) or values[j].type != values[k].type:
            raise DamagedEntry(f"aliases pair values {k} and {j} of different types")
        aliases[values[k]] = values[j]
    donations: dict[Value, Value] = {}
    outputs = set(g.outputs)
    for k, j in _pairs(stored.get("donations"), "donations", len(values)):
        v = values[k]
        if j >= n_in or v not in outputs or g.inputs[j].type != v.type:
            raise DamagedEntry(f"donations pair values {k} and {j} that cannot share a buffer")
        donations[v] = g.inputs[j]
    return MemoryPlan(offsets, arena, peak, aliases, donations)


def _report_from_json(document: dict[str, Any]) -> CompileReport:
    stored = document.get("report")
    if not isinstance(stored, dict):
        raise DamagedEntry(f"report is {type(stored).__name__}, expected dict")
    _expect(stored.get("graph"), str, "the report's graph")
    _expect(stored.get("passes"), list, "the report's passes")
    records = []
    for p in stored["passes"]:
        _expect(p, dict, "a pass record")
        if set(p) != {f.name for f in dataclasses.fields(PassRecord)}:
            raise DamagedEntry(f"a pass record has fields {sorted(p)}")
        _expect(p["name"], str, "a pass name")
        seconds = p["seconds"]
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise DamagedEntry("a pass time is not a number")
        _expect(p["counts"], dict, "a pass's counts")
        for name, value in p["counts"].items():
            _expect(value, int, f"count {name!r:.40}")
        _expect(p["disabled"], bool, "a pass's disabled flag")
        records.append(
            PassRecord(
                p["name"],
                float(seconds),
                _count(p["nodes_before"], "nodes_before"),
                _count(p["nodes_after"], "nodes_after"),
                dict(p["counts"]),
                p["disabled"],
            )
        )
    return CompileReport(stored["graph"], records, from_cache=True)
