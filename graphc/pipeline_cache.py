"""What the pass pipeline made of a graph, as a disk cache entry without pickle.

An entry (``<key>.gcp``, stored by the LLVM backend's cache module beside
the compiled objects) is zlib-compressed JSON: the optimized graph as plain
JSON lists (see ``_graph_to_json``), the memory plan in terms of value
positions, and the compile report. Loading an entry reads JSON and nothing
else, so it cannot run code whoever wrote it; anything that is not exactly
what :func:`encode` writes, or does not fit the graph it is loaded for, is a
damaged entry (:class:`DamagedEntry`), compiled again.

The graph is not stored as IR text because parsing text cost about as much
as running the passes again. Loading is still a full check: every node is
rebuilt by :class:`graphc.ir.GraphBuilder`, so its op's type rule runs on the
loaded operand types and attributes, and must give the stored result types.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
import zlib
from typing import Any

import numpy as np

from graphc.ir import (
    DType,
    Graph,
    GraphBuilder,
    GraphcError,
    Literal,
    Loc,
    Node,
    Operand,
    TensorType,
    Value,
    get_op,
)
from graphc.ir.plan import MemoryPlan

from .passes.manager import CompileReport, PassRecord

FORMAT = "graphc-pipeline-2"


class DamagedEntry(ValueError):
    """A pipeline cache entry that cannot be what :func:`encode` wrote for this graph."""


def encode(optimized: Graph, plan: MemoryPlan | None, report: CompileReport) -> bytes | None:
    """The entry for one pipeline result, or None when it cannot be stored faithfully
    (it does not load back as the same graph, or the plan names values outside it).

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[3], "x")
    >>> g = b.build([b.exp(x)])
    >>> data = encode(g, None, CompileReport("f"))
    >>> again, plan, report = decode(data, g)
    >>> again == g, plan, report.graph
    (True, None, 'f')
    """
    try:
        stored_graph = _graph_to_json(optimized)
        text = json.dumps(stored_graph, allow_nan=False)
        if _Reader(optimized.input_types).graph(json.loads(text)) != optimized:
            return None
    except (KeyError, ValueError, TypeError, RecursionError, GraphcError):
        return None  # an attribute or literal this form cannot hold, or a broken graph
    number = _numbering(optimized)
    try:
        stored_plan = None if plan is None else _plan_to_json(plan, number)
    except KeyError:
        return None
    document = {
        "format": FORMAT,
        "graph": stored_graph,
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
    compressed JSON, fields of the wrong kind, a graph that is not well formed
    or well typed, a graph with another signature, a plan that does not fit it.
    """
    try:
        document = json.loads(zlib.decompress(data))
    except (zlib.error, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise DamagedEntry(f"not a pipeline entry: {exc}") from exc
    _expect(document, dict, "the entry")
    _expect(document.get("format"), str, "format")
    if document["format"] != FORMAT:
        raise DamagedEntry(f"format {document['format']!r:.40}, expected {FORMAT!r}")
    try:
        g = _Reader(traced.input_types).graph(document.get("graph"))
    except RecursionError as exc:
        raise DamagedEntry("its graph is nested too deeply") from exc
    if g.output_types != traced.output_types:
        raise DamagedEntry("its graph has another signature than the traced one")
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


# -- the graph ---------------------------------------------------------------------------------
#
#   graph   = {"name": str, "inputs": [[name, type], ...], "nodes": [node, ...],
#              "outputs": [ref, ...]}
#   node    = [op, [operand, ...], {attribute: value}, [type, ...], [graph, ...], loc]
#   operand = ref | [dtype, scalar]          a literal
#   ref     = int                            position of a value of this graph: its
#                                            inputs, then the node results in order
#   type    = "f32[2,3]"                     as printed
#   scalar  = bool | int | float | "inf" | "-inf" | "nan"
#   loc     = null | [file, line, col, function, derived]
#
# Attribute values follow their schema kind: ints and intss are (nested) lists,
# a dtype its name, a float a scalar, an array [dtype, shape, base64 bytes].

_DTYPES = {d.value: d for d in DType}
# At most 18 digits a dimension: no array is larger, and int() refuses thousands.
_TYPE = re.compile(rf"({'|'.join(_DTYPES)})\[([0-9]{{1,18}}(?:,[0-9]{{1,18}})*)?\]")
_INT_RANGE = {d: (int(np.iinfo(d.np).min), int(np.iinfo(d.np).max)) for d in DType if d.is_int}
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _graph_to_json(g: Graph) -> dict[str, Any]:
    number: dict[Value, int] = {v: k for k, v in enumerate(g.inputs)}
    nodes = []
    for n in g.nodes:
        schema = get_op(n.op).attr_index
        operands = [number[x] if isinstance(x, Value) else _literal_to_json(x) for x in n.inputs]
        attrs = {k: _attr_to_json(schema[k].kind, v) for k, v in n.attrs.items()}
        for v in n.outputs:
            number[v] = len(number)
        subgraphs = [_graph_to_json(s) for s in n.subgraphs]
        types = [str(v.type) for v in n.outputs]
        nodes.append([n.op, operands, attrs, types, subgraphs, _loc_to_json(n.loc)])
    return {
        "name": g.name,
        "inputs": [[v.name, str(v.type)] for v in g.inputs],
        "nodes": nodes,
        "outputs": [number[v] for v in g.outputs],
    }


def _scalar_to_json(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _literal_to_json(x: Operand) -> list[Any]:
    if not isinstance(x, Literal):
        raise TypeError(f"operand {x!r} is neither a Value nor a Literal")
    d = x.dtype
    value = bool(x.value) if d.is_bool else int(x.value) if d.is_int else float(x.value)
    return [d.value, value if d.is_bool or d.is_int else _scalar_to_json(value)]


def _attr_to_json(kind: str, value: Any) -> Any:
    if kind == "dtype":
        return value.value
    if kind == "float" or (kind == "scalar" and isinstance(value, float)):
        return _scalar_to_json(value)
    if kind == "array":
        d = DType.from_numpy(value.dtype)
        raw = np.ascontiguousarray(value, dtype=d.np.newbyteorder("<")).tobytes()
        return [d.value, list(value.shape), base64.b64encode(raw).decode("ascii")]
    return value  # int, bool, str, scalar; ints and intss become lists


def _loc_to_json(loc: Loc | None) -> list[Any] | None:
    if loc is None:
        return None
    return [loc.file, loc.line, loc.col, loc.function, loc.derived]


def _float(x: Any) -> float | None:
    if type(x) is float or type(x) is int:
        return float(x)
    if type(x) is str:
        return _NONFINITE.get(x)
    return None


class _Reader:
    """Rebuilds graphs from :func:`_graph_to_json`'s form, checking every piece."""

    def __init__(self, input_types: tuple[TensorType, ...]) -> None:
        self.input_types = input_types  # of the top-level graph
        self.types: dict[str, TensorType] = {}
        self.locs: dict[tuple[Any, ...], Loc] = {}
        # What the builder made of each (op, operand types, attributes) seen so far:
        # unrolled loops repeat a few node shapes many times.
        self.rules: dict[tuple[Any, ...], tuple[Any, list[TensorType]]] = {}

    def graph(self, stored: Any, top: bool = True) -> Graph:
        _expect(stored, dict, "a graph")
        name = stored.get("name")
        _expect(name, str, "a graph's name")
        inputs, nodes, outputs = stored.get("inputs"), stored.get("nodes"), stored.get("outputs")
        _expect(inputs, list, "a graph's inputs")
        _expect(nodes, list, "a graph's nodes")
        _expect(outputs, list, "a graph's outputs")
        b = GraphBuilder(name)
        values: list[Value] = []
        spelled: list[str] = []  # each value's type as stored: cheap to hash
        for item in inputs:
            _expect(item, list, "a graph input")
            if len(item) != 2 or not (item[0] is None or type(item[0]) is str):
                raise DamagedEntry("a graph input is not [name, type]")
            values.append(b.input(self.type(item[1]), item[0]))
            spelled.append(item[1])
        if top and tuple(v.type for v in values) != self.input_types:
            raise DamagedEntry("its graph has another signature than the traced one")
        for stored_node in nodes:
            values.extend(self.node(b, stored_node, values, spelled))
        return b.build([self.ref(x, values) for x in outputs], name=name)

    def node(
        self, b: GraphBuilder, stored: Any, values: list[Value], spelled: list[str]
    ) -> tuple[Value, ...]:
        if type(stored) is not list or len(stored) != 6:
            raise DamagedEntry(f"a node is {type(stored).__name__}, not a list of 6 fields")
        op, operands, attrs, types, subgraphs, loc = stored
        if type(op) is not str:
            raise DamagedEntry(f"an op name is {type(op).__name__}, expected str")
        try:
            opdef = get_op(op)
        except GraphcError:
            raise DamagedEntry(f"unknown op {op!r:.40}") from None
        if not (
            type(operands) is list
            and type(attrs) is dict
            and type(types) is list
            and type(subgraphs) is list
        ):
            raise DamagedEntry(
                f"the operands, attributes, types or subgraphs of {op} are malformed"
            )
        inputs = [self.literal(x) if type(x) is list else self.ref(x, values) for x in operands]
        given = {}
        for key, value in attrs.items():
            spec = opdef.attr_index.get(key)
            if spec is None:
                raise DamagedEntry(f"{op} has no attribute {key!r:.40}")
            given[key] = _attr_from_json(spec.kind, value, op, key)
        stored_types = [self.type(t) for t in types]
        where = self.loc(loc)
        if subgraphs or op == "constant":
            signature = None  # subgraphs and arrays make poor keys; these nodes are few
        else:
            in_types = tuple(
                spelled[x] if type(x) is int else f"{x[0]}[]" for x in operands
            )  # as checked above: a ref, or a literal of a known dtype
            # The class keeps True, 1 and 1.0 apart, which compare equal.
            signature = (op, in_types, tuple((k, v.__class__, v) for k, v in given.items()))
            known = self.rules.get(signature)
            if known is not None:
                # The type rule already accepted exactly these operand types and attributes.
                full, out_types = known
                if stored_types != out_types:
                    raise DamagedEntry(f"{op}'s stored result types differ from its type rule's")
                outputs = tuple(Value(t) for t in out_types)
                b.nodes.append(Node(op, tuple(inputs), outputs, dict(full), (), where))
                spelled += types
                return outputs
        subs = [self.graph(s, top=False) for s in subgraphs]
        try:
            node = b.emit_node(op, inputs, given, subs, where)
        except GraphcError as exc:
            raise DamagedEntry(f"invalid {op}: {str(exc).splitlines()[0]}") from None
        except Exception as exc:  # a malformed node must never escape as another error
            raise DamagedEntry(f"invalid {op}: {exc!r:.200}") from None
        made: tuple[Value, ...] = node.outputs
        out_types = [v.type for v in made]
        if out_types != stored_types:
            raise DamagedEntry(f"{op}'s stored result types differ from its type rule's")
        if signature is not None:
            self.rules[signature] = (node.attrs, out_types)
        spelled += types
        return made

    @staticmethod
    def ref(x: Any, values: list[Value]) -> Value:
        # Only values defined before: that is SSA, and no cycles.
        if type(x) is not int or not 0 <= x < len(values):
            raise DamagedEntry(f"operand {x!r:.40} names no value defined before it")
        return values[x]

    def type(self, x: Any) -> TensorType:
        found = self.types.get(x) if type(x) is str else None
        if found is None:
            m = _TYPE.fullmatch(x) if type(x) is str else None
            if m is None:
                raise DamagedEntry(f"{x!r:.40} is not a type")
            dims = tuple(int(d) for d in m[2].split(",")) if m[2] else ()
            found = self.types[x] = TensorType(dims, _DTYPES[m[1]])
        return found

    @staticmethod
    def literal(x: list[Any]) -> Literal:
        if len(x) == 2 and type(x[0]) is str and x[0] in _DTYPES:
            dtype, value = _DTYPES[x[0]], x[1]
            if dtype.is_bool and type(value) is bool:
                return Literal(value, dtype)
            if dtype.is_int and type(value) is int:
                lo, hi = _INT_RANGE[dtype]
                if lo <= value <= hi:
                    return Literal(value, dtype)
            if dtype.is_float and (number := _float(value)) is not None:
                return Literal(number, dtype)
        raise DamagedEntry(f"{x!r:.60} is not a literal")

    def loc(self, x: Any) -> Loc | None:
        if x is None:
            return None
        if type(x) is not list or len(x) != 5:
            raise DamagedEntry("a location is not a list of 5 fields")
        key = tuple(x)
        try:
            found = self.locs.get(key)
        except TypeError:  # a list or dict inside: not a location
            found = None
        if found is None:
            file, line, col, function, derived = x
            _expect(file, str, "a location's file")
            _count(line, "a location's line")
            if col is not None:
                _count(col, "a location's column")
            for part in (function, derived):
                if part is not None:
                    _expect(part, str, "a location's function")
            found = self.locs[key] = Loc(file, line, col, function, derived)
        return found


def _attr_from_json(kind: str, x: Any, op: str, key: str) -> Any:
    t = type(x)
    if kind == "int" and t is int or kind == "bool" and t is bool or kind == "str" and t is str:
        return x
    if kind == "ints" and t is list and all(type(v) is int for v in x):
        return tuple(x)
    if kind == "intss" and t is list and all(type(r) is list for r in x):
        if all(type(v) is int for r in x for v in r):
            return tuple(tuple(r) for r in x)
    if kind == "dtype" and t is str and x in _DTYPES:
        return _DTYPES[x]
    if kind == "scalar" and (t is bool or t is int):
        return x
    if kind in ("float", "scalar") and (number := _float(x)) is not None:
        return number
    if kind == "array" and t is list and len(x) == 3:
        return _array_from_json(x, f"attribute {key} of {op}")
    raise DamagedEntry(f"attribute {key} of {op} is not a valid {kind} value")


def _array_from_json(x: list[Any], what: str) -> np.ndarray:
    name, shape, data = x
    if not (type(name) is str and name in _DTYPES and type(shape) is list and type(data) is str):
        raise DamagedEntry(f"{what} is not [dtype, shape, data]")
    if not all(type(d) is int and d >= 0 for d in shape):
        raise DamagedEntry(f"{what} has a malformed shape")
    dtype = _DTYPES[name]
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise DamagedEntry(f"{what} is not base64: {exc}") from None
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise DamagedEntry(f"{what} holds {len(raw)} bytes, its shape needs another number")
    if dtype.is_bool and raw.translate(None, b"\x00\x01"):
        raise DamagedEntry(f"{what} holds bools other than 0 and 1")
    return np.frombuffer(raw, dtype.np.newbyteorder("<")).astype(dtype.np).reshape(shape)


# -- the plan and the report -------------------------------------------------------------------


def _plan_to_json(plan: MemoryPlan, number: dict[Value, int]) -> dict[str, Any]:
    return {
        "arena_bytes": plan.arena_bytes,
        "peak_bytes": plan.peak_bytes,
        "offsets": sorted([number[v], o] for v, o in plan.offsets.items()),
        "aliases": sorted([number[v], number[a]] for v, a in plan.aliases.items()),
        "donations": sorted([number[v], number[u]] for v, u in plan.donations.items()),
        "parts": sorted([number[v], number[c], k] for v, (c, k) in plan.parts.items()),
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
        # In-place updates keep the type, reshape views only the size.
        if j >= len(values) or values[j].type.nbytes != values[k].type.nbytes:
            raise DamagedEntry(f"aliases pair values {k} and {j} of different sizes")
        aliases[values[k]] = values[j]
    donations: dict[Value, Value] = {}
    outputs = set(g.outputs)
    for k, j in _pairs(stored.get("donations"), "donations", len(values)):
        v = values[k]
        if j >= n_in or v not in outputs or g.inputs[j].type != v.type:
            raise DamagedEntry(f"donations pair values {k} and {j} that cannot share a buffer")
        donations[v] = g.inputs[j]
    parts: dict[Value, tuple[Value, int]] = {}
    stored_parts = stored.get("parts", [])
    _expect(stored_parts, list, "parts")
    for item in stored_parts:
        _expect(item, list, "parts")
        if len(item) != 3:
            raise DamagedEntry(f"parts holds a list of length {len(item)}")
        k, j, start = (_count(x, "parts") for x in item)
        # A part outside its concatenation's bytes would have native code write past them.
        if not n_in <= k < len(values) or j >= len(values) or values[j] not in offsets:
            raise DamagedEntry(f"parts place value {k} in value {j}, which has no buffer")
        if values[k] in offsets or start + values[k].type.nbytes > values[j].type.nbytes:
            raise DamagedEntry(f"parts place value {k} outside the bytes of value {j}")
        parts[values[k]] = (values[j], start)
    return MemoryPlan(offsets, arena, peak, aliases, donations, parts)


_RECORD_FIELDS = {f.name for f in dataclasses.fields(PassRecord)}


def _report_from_json(document: dict[str, Any]) -> CompileReport:
    stored = document.get("report")
    if not isinstance(stored, dict):
        raise DamagedEntry(f"report is {type(stored).__name__}, expected dict")
    _expect(stored.get("graph"), str, "the report's graph")
    _expect(stored.get("passes"), list, "the report's passes")
    records = []
    for p in stored["passes"]:
        _expect(p, dict, "a pass record")
        if set(p) != _RECORD_FIELDS:
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
