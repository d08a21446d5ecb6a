"""GraphBuilder: the one way to make graphs.

Each node's output types come from its op's type rule at the moment it is
built, so a graph that exists is well typed. Ops are available as methods:
``b.add(x, y)``, ``b.reduce_sum(x, axes=(0,))``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .core import Graph, Literal, Node, Operand, TensorType, Value
from .dtypes import DType, scalar_dtype
from .errors import GraphcError, OpTypeError, format_message
from .loc import Loc
from .ops.registry import OpDef, get_op

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def _sanitize(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.]", "_", name)
    if not cleaned or not (cleaned[0].isalpha() or cleaned[0] == "_"):
        cleaned = "a" + cleaned
    return cleaned


class GraphBuilder:
    """Builds a :class:`Graph` node by node.

    >>> from graphc.ir import f32
    >>> b = GraphBuilder("f")
    >>> x = b.input(f32[2, 3], "x")
    >>> y = b.reduce_sum(b.mul(x, 2.0), axes=(1,))
    >>> b.build([y]).output_types
    (f32[2],)
    """

    def __init__(self, name: str = "f") -> None:
        self.name = _sanitize(name)
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.loc: Loc | None = None
        self._names: set[str] = set()

    # -- inputs and locations ----------------------------------------------
    def input(self, ty: TensorType, name: str | None = None) -> Value:
        """Add a graph argument. Names are made valid and unique."""
        base = _sanitize(name or f"arg{len(self.inputs)}")
        unique, k = base, 1
        while unique in self._names:
            unique, k = f"{base}_{k}", k + 1
        self._names.add(unique)
        v = Value(ty, unique)
        self.inputs.append(v)
        return v

    @contextmanager
    def at(self, loc: Loc | None) -> Iterator[None]:
        """Attach ``loc`` to every node emitted inside the block."""
        saved = self.loc
        self.loc = loc if loc is not None else saved
        try:
            yield
        finally:
            self.loc = saved

    # -- emitting ------------------------------------------------------------
    def emit(
        self,
        op: str,
        *operands: Any,
        subgraphs: Sequence[Graph] = (),
        loc: Loc | None = None,
        **attrs: Any,
    ) -> Any:
        """Add one node; returns its output Value (or a tuple for several outputs).

        Python scalars become literals with the dtype of the first non-bool
        tensor operand, or of the first tensor operand when all are bool (weak
        typing; a condition never lends its dtype, so ``b.select(c, x, 0.5)``
        gives a literal of ``x``'s dtype). A scalar that the dtype cannot hold
        exactly (``2`` for bool, ``2.5`` for i32) is an error, never rounded.
        NumPy arrays become ``constant`` nodes.
        """
        opdef = get_op(op)
        loc = loc if loc is not None else self.loc
        inputs = self._operands(opdef, operands, loc)
        node = self._make_node(opdef, inputs, attrs, tuple(subgraphs), loc)
        self.nodes.append(node)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def emit_node(
        self,
        op: str,
        inputs: Sequence[Operand],
        attrs: Mapping[str, Any],
        subgraphs: Sequence[Graph] = (),
        loc: Loc | None = None,
    ) -> Node:
        """Like :meth:`emit` for already-normalized operands; returns the Node."""
        node = self._make_node(get_op(op), tuple(inputs), attrs, tuple(subgraphs), loc)
        self.nodes.append(node)
        return node

    def copy_node(self, n: Node, inputs: Sequence[Operand]) -> Node:
        """Re-emit ``n`` (same op, attributes, subgraphs and location) on new inputs."""
        return self.emit_node(n.op, inputs, n.attrs, n.subgraphs, n.loc)

    def call(self, g: Graph, *operands: Operand) -> tuple[Value, ...]:
        """Inline ``g`` applied to ``operands``; returns its outputs here."""
        if len(operands) != len(g.inputs):
            raise OpTypeError(
                f"call of graph {g.name}: expects {len(g.inputs)} operands, got {len(operands)}"
            )
        env: dict[Value, Operand] = {}
        for formal, actual in zip(g.inputs, operands):
            if formal.type != actual.type:
                raise OpTypeError(
                    f"call of graph {g.name}: argument %{formal.name} is {formal.type}, "
                    f"got {actual.type}"
                )
            env[formal] = actual
        # Every operand has its formal's type, so every node copied in order
        # sees the types it was built with: its results keep their types and
        # need no type rule (inlining a differentiated graph into the trace
        # re-checked thousands of nodes for nothing).
        nodes = self.nodes
        for n in g.nodes:
            inputs = tuple(env[x] if isinstance(x, Value) else x for x in n.inputs)
            outputs = tuple(Value(v.type) for v in n.outputs)
            nodes.append(Node(n.op, inputs, outputs, n.attrs, n.subgraphs, n.loc))
            env.update(zip(n.outputs, outputs))
        outs = tuple(env[v] for v in g.outputs)
        return tuple(self.materialize(o) for o in outs)

    def materialize(self, x: Operand) -> Value:
        """A Value for ``x``: literals become a 0-d ``constant`` node."""
        if isinstance(x, Value):
            return x
        return self.emit("constant", value=x.as_array())

    def literal(self, value: Any, dtype: DType) -> Literal:
        """A literal of an explicit dtype."""
        return Literal(_python_scalar(value, dtype), dtype)

    def build(self, outputs: Iterable[Operand], name: str | None = None) -> Graph:
        """Finish: the graph returning ``outputs`` (literals are materialized)."""
        outs = tuple(self.materialize(o) for o in outputs)
        return Graph(name or self.name, tuple(self.inputs), tuple(self.nodes), outs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            get_op(name)
        except GraphcError:
            raise AttributeError(f"GraphBuilder has no op or attribute '{name}'") from None

        def emit_op(*operands: Any, **attrs: Any) -> Any:
            return self.emit(name, *operands, **attrs)

        emit_op.__name__ = name
        return emit_op

    # -- internals -------------------------------------------------------------
    def _operands(
        self, opdef: OpDef, operands: tuple[Any, ...], loc: Loc | None
    ) -> tuple[Operand, ...]:
        dtypes = [x.type.dtype for x in operands if isinstance(x, Value)]
        weak_dtype = next((d for d in dtypes if not d.is_bool), dtypes[0] if dtypes else None)
        out: list[Operand] = []
        for x in operands:
            if isinstance(x, (Value, Literal)):
                out.append(x)
            elif isinstance(x, np.ndarray):
                if x.ndim == 0:
                    out.append(Literal(x.item(), DType.from_numpy(x.dtype)))
                else:
                    out.append(self.emit("constant", value=x, loc=loc))
            elif isinstance(x, np.generic):
                out.append(Literal(x.item(), DType.from_numpy(x.dtype)))
            elif isinstance(x, (bool, int, float)):
                dtype = weak_dtype if weak_dtype is not None else scalar_dtype(x)
                try:
                    out.append(Literal(_python_scalar(x, dtype), dtype))
                except OpTypeError as exc:
                    hint = "pass a typed literal (b.literal(value, dtype)) or cast the tensor first"
                    raise OpTypeError(
                        format_message(
                            f"{opdef.name}: {exc}",
                            details=[_show_operand(y) for y in operands],
                            loc=loc,
                            hint=hint,
                        )
                    ) from None
            else:
                raise OpTypeError(
                    f"{opdef.name}: operand {x!r} of type {type(x).__name__} is not a value"
                )
        return tuple(out)

    def _make_node(
        self,
        opdef: OpDef,
        inputs: tuple[Operand, ...],
        attrs: Mapping[str, Any],
        subgraphs: tuple[Graph, ...],
        loc: Loc | None,
    ) -> Node:
        try:
            opdef.check_arity(len(inputs))
            if len(subgraphs) != opdef.num_subgraphs:
                raise OpTypeError(
                    f"{opdef.name}: expects {opdef.num_subgraphs} subgraph(s), got {len(subgraphs)}"
                )
            full = opdef.normalize_attrs(attrs)
            types = tuple(x.type for x in inputs)
            if opdef.num_subgraphs:
                out_types = opdef.infer(types, {**full, "_subgraphs": subgraphs})
            else:
                out_types = opdef.infer(types, full)
        except OpTypeError as exc:
            raise describe_type_error(exc, opdef, inputs, loc) from None
        outputs = tuple(Value(t) for t in out_types)
        return Node(opdef.name, inputs, outputs, full, subgraphs, loc)


def describe_type_error(
    exc: OpTypeError, opdef: OpDef, inputs: Sequence[Operand], loc: Loc | None
) -> OpTypeError:
    """Re-raise a type-rule failure with the four-part message."""
    if getattr(exc, "described", False):
        return exc
    reason = str(exc)
    if not reason.startswith(opdef.name + ":"):
        reason = f"{opdef.name}: {reason}"
    details = []
    names = list(opdef.operands)
    for i, x in enumerate(inputs):
        label = names[min(i, len(names) - 1)].lstrip("*") if names else f"operand{i}"
        if isinstance(x, Value):
            shown = f"%{x.name}" if x.name else "value"
        else:
            shown = f"literal {x.text()}"
        details.append(f"{label} {shown} : {x.type}")
    new = OpTypeError(
        format_message(reason, details=details, loc=loc, hint=getattr(exc, "hint", None))
    )
    new.described = True  # type: ignore[attr-defined]
    new.hint = getattr(exc, "hint", None)  # type: ignore[attr-defined]
    new.op = opdef.name  # type: ignore[attr-defined]
    new.loc = loc  # type: ignore[attr-defined]
    return new


def _show_operand(x: Any) -> str:
    if isinstance(x, Value):
        return f"{'%' + x.name if x.name else 'value'} : {x.type}"
    return f"scalar {x!r}"


def _python_scalar(value: Any, dtype: DType) -> bool | int | float:
    if dtype.is_bool:
        if not isinstance(value, (bool, np.bool_)):
            # bool(2) is True: converting would change the value silently.
            raise OpTypeError(f"Python scalar {value!r} is not a bool but the operand is bool")
        return bool(value)
    if dtype.is_int:
        if isinstance(value, float) and not value.is_integer():
            raise OpTypeError(f"literal {value!r} is not an integer but the operand is {dtype}")
        iv = int(value)
        info = np.iinfo(dtype.np)
        if not info.min <= iv <= info.max:
            raise OpTypeError(f"Python integer {iv} out of bounds for {dtype}")
        return iv
    try:
        return float(value)
    except OverflowError:
        raise OpTypeError(f"Python integer {value} is out of range for {dtype}") from None
