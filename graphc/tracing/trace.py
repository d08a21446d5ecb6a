"""trace: run a Python function on tracers and collect the graph it builds."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ir import DType, Graph, TensorType, UnsupportedError, Value, format_message, interpret
from graphc.pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten

from .arguments import containers, explain_python_error, refused_kind, refused_leaf_error
from .array import TracedArray
from .context import Trace, current_trace, escaped_error, pop_trace, push_trace, user_location
from .ops import operand


@dataclass
class Traced:
    """A traced function: its graph plus what is needed to call it like Python.

    The graph's inputs are the flattened non-static arguments, followed by one
    input per captured outer tracer (``captured``). Its outputs are the
    flattened results (``out_tree``); ``out_weak`` marks results that came from
    Python scalars.
    """

    graph: Graph
    in_tree: TreeDef
    out_tree: TreeDef
    captured: list[TracedArray]
    out_weak: tuple[bool, ...]
    input_weak: tuple[bool, ...]


def leaf_type(leaf: Any, where: str) -> tuple[TensorType, bool]:
    """The IR type of an argument leaf, and whether it is weakly typed."""
    if isinstance(leaf, TracedArray):
        return leaf.value.type, leaf.weak
    if isinstance(leaf, (bool, int, float)) and not isinstance(leaf, np.generic):
        dtype = (
            DType.bool
            if isinstance(leaf, bool)
            else DType.i64
            if isinstance(leaf, int)
            else DType.f64
        )
        return TensorType((), dtype), True
    if isinstance(leaf, (np.ndarray, np.generic)):
        refused = refused_kind(leaf)
        if refused is not None:
            raise refused_leaf_error(leaf, where, refused)
        try:
            # Byte order is storage, not type: a big-endian float64 is an f64.
            native = leaf.dtype.newbyteorder("=")
            return TensorType(tuple(np.shape(leaf)), DType.from_numpy(native)), False
        except UnsupportedError as exc:
            raise UnsupportedError(
                format_message(
                    f"argument {where}: {exc}",
                    loc=user_location(3),
                    hint="convert it with .astype(np.float32) (or another supported dtype)",
                )
            ) from None
    raise UnsupportedError(
        format_message(
            f"argument {where} is a {type(leaf).__name__}, not an array or a number",
            loc=user_location(3),
            hint="pass arrays, numbers, or dicts/lists/tuples of them; mark other arguments static "
            "(gc.jit(f, static_argnums=...))",
        )
    )


def _arg_names(f: Callable[..., Any], count: int) -> list[str]:
    try:
        params = [
            p.name
            for p in inspect.signature(f).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"arg{i}" for i in range(count)]


def input_names(f: Callable[..., Any], args: Sequence[Any]) -> list[str]:
    """A readable, unique name per leaf: the last key of its pytree path when that
    is unique, otherwise the whole dotted path."""
    names = _arg_names(f, len(args))
    paths: list[tuple[Any, ...]] = []
    for name, a in zip(names, args):
        paths += [(name,) + p for p in tree_paths(a)]
    last = [str(p[-1]) for p in paths]
    counts = {n: last.count(n) for n in last}
    return [
        last[i] if counts[last[i]] == 1 and not last[i][0].isdigit() else ".".join(map(str, p))
        for i, p in enumerate(paths)
    ]


def function_name(f: Callable[..., Any]) -> str:
    name = getattr(f, "__name__", None) or type(f).__name__
    return "lambda" if name == "<lambda>" else name


def trace_flat(
    f: Callable[..., Any],
    args: Sequence[Any],
    *,
    static_argnums: Sequence[int] = (),
    name: str | None = None,
) -> Traced:
    """Trace ``f(*args)``; arguments listed in ``static_argnums`` are passed as is."""
    dynamic = [a for i, a in enumerate(args) if i not in static_argnums]
    leaves, in_tree = tree_flatten(dynamic)
    names = (
        input_names(f, dynamic) if len(leaves) < 10_000 else [f"x{i}" for i in range(len(leaves))]
    )
    trace = push_trace(name or function_name(f))
    arg_names = _arg_names(f, len(args))
    trace.none_arguments = containers(args, arg_names)[0]
    try:
        tracers = []
        weak_flags = []
        for leaf, leaf_name in zip(leaves, names):
            ty, weak = leaf_type(leaf, leaf_name)
            tracers.append(trace.new_input(ty, leaf_name, weak))
            weak_flags.append(weak)
        rebuilt = tree_unflatten(in_tree, tracers)
        it = iter(rebuilt)
        call_args = [a if i in static_argnums else next(it) for i, a in enumerate(args)]
        try:
            result = f(*call_args)
        except (TypeError, AttributeError) as exc:
            explained = explain_python_error(exc, args, arg_names)
            if explained is None:
                raise
            raise explained from exc
        out_leaves, out_tree = tree_flatten(result)
        outputs = [_output_value(trace, x, i) for i, x in enumerate(out_leaves)]
        graph = trace.builder.build(outputs)
    finally:
        pop_trace(trace)
    out_weak = tuple(
        isinstance(x, (bool, int, float)) or (isinstance(x, TracedArray) and x.weak)
        for x in out_leaves
    )
    return Traced(graph, in_tree, out_tree, list(trace.captured), out_weak, tuple(weak_flags))


def _output_value(trace: Trace, x: Any, index: int) -> Value:
    if isinstance(x, TracedArray):
        return trace.value_of(x)
    if isinstance(x, (np.ndarray, np.generic, bool, int, float)):
        return trace.builder.materialize(operand(trace, x))
    raise UnsupportedError(
        format_message(
            f"output {index} is a {type(x).__name__}, not an array or a number",
            loc=None,
            hint="return arrays, numbers, or dicts/lists/tuples of them",
        )
    )


def trace(f: Callable[..., Any], *args: Any, static_argnums: Sequence[int] = ()) -> Graph:
    """Trace ``f(*args)`` into a graph.

    >>> import numpy as np
    >>> g = trace(lambda x: np.exp(x).sum(), np.ones(3))
    >>> print(g)
    graph lambda(%x: f64[3]) -> (f64[]) {
      %0 = exp %x                    : f64[3]
      %1 = reduce_sum %0 {axes=(0,)} : f64[]
      return %1
    }
    """
    return trace_flat(f, args, static_argnums=tuple(static_argnums)).graph


def evaluate(
    g: Graph,
    flat_args: Sequence[Any],
    out_weak: Sequence[bool] | None = None,
    runner: Callable[..., Any] | None = None,
) -> list[Any]:
    """Run ``g`` on flat arguments: concretely (interpreter or ``runner``), or,
    when a trace is active, by inlining it into that trace."""
    outer = current_trace()
    if outer is None and not any(isinstance(a, TracedArray) for a in flat_args):
        run = runner or (lambda *xs: interpret(g, *xs))
        return list(run(*[_as_input(a, v) for a, v in zip(flat_args, g.inputs)]))
    if outer is None:  # tracers, yet no trace is running: they escaped a finished one
        raise escaped_error()
    operands = [operand(outer, a, v.type.dtype) for a, v in zip(flat_args, g.inputs)]
    values = outer.builder.call(g, *operands)
    weak = out_weak or (False,) * len(values)
    return [TracedArray(outer, v, w) for v, w in zip(values, weak)]


def _as_input(a: Any, v: Value) -> Any:
    if isinstance(a, (bool, int, float)):
        return np.asarray(a, dtype=v.type.dtype.np)
    return a
