"""The IR records: TensorType, Literal, Value, Node and Graph.

All records are frozen. A pass never edits a graph; it builds a new one with
:class:`graphc.ir.GraphBuilder`. Derived facts (producers, users, use counts)
are analyses computed from a graph and cached on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dtypes import DType
from .loc import Loc


@dataclass(frozen=True, slots=True)
class TensorType:
    """Shape and element type of a value. ``f32[2,3]``; ``f32[]`` is a scalar.

    >>> TensorType((2, 3), DType.f32)
    f32[2,3]
    """

    shape: tuple[int, ...]
    dtype: DType

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"

    __repr__ = __str__

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def with_shape(self, shape: tuple[int, ...]) -> TensorType:
        return TensorType(tuple(shape), self.dtype)

    def with_dtype(self, dtype: DType) -> TensorType:
        return TensorType(self.shape, dtype)


@dataclass(frozen=True, slots=True)
class Literal:
    """A scalar constant used directly as an operand (``add %x, 1.0``).

    The value is kept as the Python scalar the user wrote; its meaning is
    ``dtype(value)``. Two literals are equal when dtype and value print alike.
    """

    value: bool | int | float
    dtype: DType

    @property
    def type(self) -> TensorType:
        return TensorType((), self.dtype)

    def as_array(self) -> np.ndarray:
        return np.asarray(self.value, dtype=self.dtype.np)

    def text(self) -> str:
        """The value as the printer writes it (without a dtype suffix)."""
        if self.dtype.is_bool:
            return "true" if self.value else "false"
        if self.dtype.is_int:
            return str(int(self.value))
        x = float(self.value)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return repr(x)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Literal) and self.dtype == other.dtype and self.text() == other.text()
        )

    def __hash__(self) -> int:
        return hash((self.dtype, self.text()))

    def __repr__(self) -> str:
        return f"{self.text()}:{self.dtype}"


@dataclass(frozen=True, slots=True, eq=False)
class Value:
    """An SSA value. Compared by identity; only graph arguments carry a name."""

    type: TensorType
    name: str | None = None

    def __repr__(self) -> str:
        label = f"%{self.name}" if self.name else f"%<{id(self) & 0xFFFF:x}>"
        return f"{label}: {self.type}"


Operand = Value | Literal


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """One operation: ``outputs = op(inputs) {attrs}``, maybe with subgraphs.

    ``attrs`` is complete (defaults filled in) and must not be mutated.
    """

    op: str
    inputs: tuple[Operand, ...]
    outputs: tuple[Value, ...]
    attrs: Mapping[str, Any]
    subgraphs: tuple[Graph, ...] = ()
    loc: Loc | None = None

    @property
    def output(self) -> Value:
        assert len(self.outputs) == 1, f"{self.op} has {len(self.outputs)} outputs"
        return self.outputs[0]

    def value_inputs(self) -> Iterator[Value]:
        return (v for v in self.inputs if isinstance(v, Value))

    def __repr__(self) -> str:
        return f"<Node {self.op} at 0x{id(self):x}>"


@dataclass(frozen=True, eq=False)
class Graph:
    """A function in SSA form: typed inputs, nodes in topological order, outputs.

    Equality and hashing are structural: the same ops, attributes, types,
    wiring and outputs. Names and source locations do not count.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("double")
    >>> x = b.input(f32[3], "x")
    >>> print(b.build([b.add(x, x)]))
    graph double(%x: f32[3]) -> (f32[3]) {
      %0 = add %x, %x : f32[3]
      return %0
    }
    """

    name: str
    inputs: tuple[Value, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[Value, ...]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # -- structure ---------------------------------------------------------
    def structural_key(self) -> tuple[Any, ...]:
        """A hashable canonical form: what equality and hashing compare."""
        key = self._cache.get("key")
        if key is None:
            key = _structural_key(self)
            self._cache["key"] = key
        return key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self is other or self.structural_key() == other.structural_key()

    def __hash__(self) -> int:
        return hash(self.structural_key())

    # -- analyses (cached) -------------------------------------------------
    def producers(self) -> dict[Value, Node]:
        """Map from each node output to the node that defines it."""
        found = self._cache.get("producers")
        if found is None:
            found = {v: n for n in self.nodes for v in n.outputs}
            self._cache["producers"] = found
        return found

    def users(self) -> dict[Value, list[Node]]:
        """Map from each value to the nodes that read it (in order, with repeats)."""
        found = self._cache.get("users")
        if found is None:
            found = {v: [] for v in self.inputs}
            for n in self.nodes:
                for v in n.outputs:
                    found[v] = []
                for v in n.value_inputs():
                    found.setdefault(v, []).append(n)
            self._cache["users"] = found
        return found

    def use_counts(self) -> dict[Value, int]:
        """Number of reads of each value, counting graph outputs as reads."""
        found = self._cache.get("use_counts")
        if found is None:
            found = {v: len(us) for v, us in self.users().items()}
            for v in self.outputs:
                found[v] = found.get(v, 0) + 1
            self._cache["use_counts"] = found
        return found

    # -- convenience -------------------------------------------------------
    @property
    def input_types(self) -> tuple[TensorType, ...]:
        return tuple(v.type for v in self.inputs)

    @property
    def output_types(self) -> tuple[TensorType, ...]:
        return tuple(v.type for v in self.outputs)

    def num_nodes(self, recursive: bool = False) -> int:
        """Number of nodes; with ``recursive``, nodes inside subgraphs count too."""
        if not recursive:
            return len(self.nodes)
        return sum(1 + sum(s.num_nodes(True) for s in n.subgraphs) for n in self.nodes)

    def replace(self, **changes: Any) -> Graph:
        fields: dict[str, Any] = {
            "name": self.name,
            "inputs": self.inputs,
            "nodes": self.nodes,
            "outputs": self.outputs,
        }
        fields.update(changes)
        return Graph(**fields)

    def __str__(self) -> str:
        from .printer import print_graph

        return print_graph(self)

    def format(self, *, locations: bool = False, annotate: bool = False) -> str:
        """The text form; ``locations`` appends ``loc(...)``, ``annotate`` adds ``#`` notes."""
        from .printer import print_graph

        return print_graph(self, locations=locations, annotate=annotate)

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"

    def to_dot(self) -> str:
        """The graph as Graphviz DOT source (render with ``dot -Tsvg``)."""
        from .dot import to_dot

        return to_dot(self)

    def render(self, path: Any, **options: Any) -> Any:
        """Draw the graph with Graphviz into ``path`` (``.svg``, ``.png``, ``.pdf``, ``.dot``).

        Fused groups and loop bodies are drawn as clusters, each node's
        tooltip is its source line (see ``graphc.viz.render`` for the options).
        """
        if _RENDERER is None:
            raise RuntimeError("import graphc to render graphs")
        return _RENDERER(self, path, **options)


# Drawing lives in graphc.viz, above the IR; it registers itself here on import
# so that a Graph can offer .render() without the IR importing graphc.
_RENDERER: Callable[..., Any] | None = None


def set_renderer(renderer: Callable[..., Any]) -> None:
    """Install the function behind :meth:`Graph.render` (done by ``graphc.viz``)."""
    global _RENDERER
    _RENDERER = renderer


def _attr_key(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, tuple):
        return tuple(_attr_key(v) for v in value)
    return value


def _structural_key(g: Graph) -> tuple[Any, ...]:
    number: dict[Value, int] = {v: i for i, v in enumerate(g.inputs)}

    def ref(x: Operand) -> Any:
        if isinstance(x, Literal):
            return ("lit", x.dtype, x.text())
        return number[x] if x in number else ("free", id(x))

    nodes = []
    for n in g.nodes:
        ins = tuple(ref(x) for x in n.inputs)
        for v in n.outputs:
            number[v] = len(number)
        attrs = tuple((k, _attr_key(v)) for k, v in n.attrs.items())
        subs = tuple(s.structural_key() for s in n.subgraphs)
        nodes.append((n.op, ins, tuple(v.type for v in n.outputs), attrs, subs))
    return (g.input_types, tuple(nodes), tuple(ref(v) for v in g.outputs))
