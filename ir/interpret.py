"""The reference interpreter: runs a graph with each op's NumPy semantics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .core import Graph, Literal, Node, Value
from .dtypes import DType
from .errors import GraphcError, InputError, InterpretError, format_message
from .ops.registry import get_op


def interpret(g: Graph, *args: Any) -> tuple[np.ndarray, ...]:
    """Run ``g`` on flat inputs (in graph order); returns a tuple of arrays.

    Inputs are converted to the graph's input dtypes only when that loses
    nothing (Python scalars, same-kind arrays); anything else is an error.

    >>> from graphc.ir import GraphBuilder, f64
    >>> b = GraphBuilder("f"); x = b.input(f64[3], "x")
    >>> interpret(b.build([b.mul(x, 2.0)]), np.arange(3.0))
    (array([0., 2., 4.]),)
    """
    if len(args) != len(g.inputs):
        raise InputError(f"graph {g.name} takes {len(g.inputs)} inputs, got {len(args)}")
    env: dict[Value, np.ndarray] = {}
    for v, a in zip(g.inputs, args):
        env[v] = _check_input(g, v, a)
    for n in g.nodes:
        try:
            arrays = [env[x] if isinstance(x, Value) else x.as_array() for x in n.inputs]
        except KeyError:
            # Only a graph built by hand can read a value before defining it.
            raise InterpretError(
                f"graph {g.name}: {n.op} reads a value before it is defined; "
                "graphc.ir.verify(g) shows where"
            ) from None
        env.update(zip(n.outputs, run_node(n, arrays)))
    missing = [i for i, v in enumerate(g.outputs) if v not in env]
    if missing:
        raise InterpretError(f"graph {g.name}: output {missing[0]} is never computed")
    return tuple(env[v] for v in g.outputs)


def run_node(n: Node, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Evaluate one node on NumPy arrays; failures name the node and its location."""
    opdef = get_op(n.op)
    attrs: dict[str, Any] = dict(n.attrs)
    if opdef.num_subgraphs:
        attrs["_subgraphs"] = n.subgraphs
        attrs["_interpret"] = interpret
    try:
        with np.errstate(all="ignore"):
            result = opdef.reference(*arrays, **attrs)
    except GraphcError as exc:
        raise type(exc)(format_message(str(exc), details=[_describe(n)], loc=n.loc)) from None
    except Exception as exc:
        raise InterpretError(
            format_message(f"{n.op} failed: {exc}", details=[_describe(n)], loc=n.loc)
        ) from exc
    results = result if isinstance(result, tuple) else (result,)
    out = []
    for v, r in zip(n.outputs, results):
        r = np.asarray(r)
        assert r.shape == v.type.shape and r.dtype == v.type.dtype.np, (
            f"{n.op}: reference gave {r.dtype}{list(r.shape)}, type rule says {v.type}"
        )
        out.append(r)
    return tuple(out)


def _describe(n: Node) -> str:
    ins = ", ".join(str(x.type) if isinstance(x, Value) else repr(x) for x in n.inputs)
    return f"while running {n.op}({ins}) -> {', '.join(str(v.type) for v in n.outputs)}"


def _check_input(g: Graph, v: Value, a: Any) -> np.ndarray:
    where = f"graph {g.name}: input %{v.name}"
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:  # ragged nested lists, odd objects
        raise InputError(
            f"{where} expects an array of {v.type}, got {type(a).__name__}: {exc}"
        ) from None
    want = v.type
    if arr.shape != want.shape:
        raise InputError(f"{where} expects shape {list(want.shape)}, got {list(arr.shape)}")
    if not arr.dtype.isnative:  # byte order is storage, not type (as on both backends)
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype != want.dtype.np:
        try:
            got = DType.from_numpy(arr.dtype)
        except GraphcError:
            got = None
        if got is None or not np.can_cast(arr.dtype, want.dtype.np, casting="same_kind"):
            raise InputError(f"{where} expects {want.dtype}, got {arr.dtype}")
        with np.errstate(all="ignore"):
            converted = arr.astype(want.dtype.np)
        # Same-kind narrowing (i64 -> i32, f64 -> f32) must not change what a
        # value means: integers must fit, finite floats must stay finite.
        if want.dtype.is_int and not np.array_equal(converted, arr):
            raise InputError(f"{where} is {want.dtype}, and some {arr.dtype} values do not fit")
        if want.dtype.is_float and np.any(np.isinf(converted) & ~np.isinf(arr)):
            raise InputError(f"{where} is {want.dtype}, and some {arr.dtype} values overflow it")
        arr = converted
    return arr


def literal_array(x: Literal) -> np.ndarray:
    return x.as_array()
