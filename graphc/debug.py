"""Finding where a NaN (or an infinity) came from.

``gc.jit(f, debug_nans=True)`` (or ``GRAPHC_DEBUG_NANS=1`` in the
environment when the function is jitted) checks every result of every call.
When a result holds a NaN that the arguments did not, the call runs again op
by op in the reference interpreter, on copies of the same arguments taken
before the call, and :class:`NaNError` names the first op whose result has
a NaN while its operands have none, with its operands' ranges and the
user's source line; it looks inside ``gc.remat`` regions, fused groups, the
``gc.cond`` branch that ran and the ``gc.scan`` step that made it.
``debug_infs=True`` (``GRAPHC_DEBUG_INFS=1``) does the same for infinities.
Nothing is compiled differently: with the flags off a jitted function is
exactly what it was, and with them on the generated code is the same, only
the calls are checked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ir import Graph, GraphcError, Node, Value, format_message
from graphc.ir.interpret import _check_input, run_node

from .jit import Jitted
from .pytree import tree_flatten, tree_leaves
from .tracing import TracedArray, current_trace


class NaNError(GraphcError, FloatingPointError):
    """A computation produced a NaN (or an infinity) its inputs did not contain."""


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to something other than 0/empty.

    >>> env_flag("GRAPHC_SURELY_UNSET_VARIABLE")
    False
    """
    return os.environ.get(name, "") not in ("", "0", "false", "False")


def _bad(x: Any, infs: bool) -> np.ndarray | None:
    """The mask of non-finite elements to flag in ``x`` (None when there can be none)."""
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.inexact):
        return None
    return ~np.isfinite(a) if infs else np.isnan(a)


def _has_bad(x: Any, infs: bool) -> bool:
    mask = _bad(x, infs)
    return mask is not None and bool(mask.any())


@dataclass
class Culprit:
    """The first node of a graph whose result turned bad, and what it read."""

    node: Node
    operands: list[tuple[str, Any]]
    path: list[str]  # enclosing ops, outermost first (a remat region, a fused group)


def first_bad_node(g: Graph, args: Sequence[Any], infs: bool) -> Culprit | None:
    """Run ``g`` op by op on ``args``; the first node whose result is bad while
    its operands are not (or None when the interpreter's results are clean).

    >>> import numpy as np, graphc as gc
    >>> g = gc.trace(lambda x: np.sqrt(np.exp(x) - 2.0), np.zeros(2))
    >>> first_bad_node(g, [np.zeros(2)], infs=False).node.op
    'sqrt'
    """
    env: dict[Value, np.ndarray] = {v: _check_input(g, v, a) for v, a in zip(g.inputs, args)}
    return _walk(g, env, infs, [])


def _walk(g: Graph, env: dict[Value, np.ndarray], infs: bool, path: list[str]) -> Culprit | None:
    producer: dict[Value, Node] = {}
    for n in g.nodes:
        arrays = [env[x] if isinstance(x, Value) else x.as_array() for x in n.inputs]
        results = run_node(n, arrays)
        env.update(zip(n.outputs, results))
        producer.update(dict.fromkeys(n.outputs, n))
        if not any(_has_bad(r, infs) for r in results):
            continue
        if any(_has_bad(a, infs) for a in arrays):
            continue  # passed along from an operand: the source is earlier (or an input)
        if n.op in ("scan", "while"):
            walk = _walk_scan if n.op == "scan" else _walk_while
            found = walk(n, arrays, infs, path)
            if found is not None:
                return found
        body, operands = _taken_body(n, arrays)
        if body is not None:
            # A call or a branch: look inside for the op itself.
            found = _walk(body, dict(zip(body.inputs, operands)), infs, [*path, n.op])
            if found is not None:
                return found
        operands = [
            (_operand_name(k, x, producer), a) for k, (x, a) in enumerate(zip(n.inputs, arrays))
        ]
        return Culprit(n, operands, path)
    return None


def _walk_scan(n: Node, arrays: list[np.ndarray], infs: bool, path: list[str]) -> Culprit | None:
    """Run a scan's body step by step until one step makes the bad value."""
    (body,) = n.subgraphs
    k, m = n.attrs["num_carry"], n.attrs["num_xs"]
    carry, xs, consts = arrays[:k], arrays[k : k + m], arrays[k + m :]
    length = int(n.attrs["length"])
    steps = range(length - 1, -1, -1) if n.attrs["reverse"] else range(length)
    for t in steps:
        env = dict(zip(body.inputs, [*carry, *(x[t] for x in xs), *consts]))
        found = _walk(body, env, infs, [*path, f"scan step {t}"])
        if found is not None:
            return found
        carry = [env[v] for v in body.outputs[:k]]
    return None


def _walk_while(n: Node, arrays: list[np.ndarray], infs: bool, path: list[str]) -> Culprit | None:
    """Run a while loop's predicate and body step by step until one makes the
    bad value (the loop ended when the call ran, so it ends here too)."""
    pred, body = n.subgraphs
    k = n.attrs["num_carry"]
    carry, consts = arrays[:k], arrays[k:]
    step = 0
    while True:
        env = dict(zip(pred.inputs, [*carry, *consts]))
        found = _walk(pred, env, infs, [*path, f"while predicate, step {step}"])
        if found is not None or not bool(env[pred.outputs[0]]):
            return found
        env = dict(zip(body.inputs, [*carry, *consts]))
        found = _walk(body, env, infs, [*path, f"while step {step}"])
        if found is not None:
            return found
        carry = [env[v] for v in body.outputs[:k]]
        step += 1


def _taken_body(n: Node, arrays: list[np.ndarray]) -> tuple[Graph | None, list[np.ndarray]]:
    """The body a node ran on these operands, when it ran exactly one once."""
    if n.op in ("remat", "fusion"):
        return n.subgraphs[0], arrays
    if n.op == "cond":
        return n.subgraphs[0 if bool(arrays[0]) else 1], arrays[1:]
    return None, arrays  # loops: the op itself is reported


def _operand_name(k: int, x: Any, producer: dict[Value, Node]) -> str:
    if not isinstance(x, Value):
        return f"{k} (literal {x.text()})"
    made = producer.get(x)
    if made is None:
        return f"{k} (%{x.name}: {x.type})" if x.name else f"{k} ({x.type})"
    where = f" at {made.loc.file.rsplit('/', 1)[-1]}:{made.loc.line}" if made.loc else ""
    return f"{k} ({x.type} from {made.op}{where})"


def _describe_range(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size == 0:
        return "empty"
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        return f"{a.dtype}"
    finite = a[np.isfinite(a)] if np.issubdtype(a.dtype, np.inexact) else a
    parts = []
    if finite.size:
        parts.append(f"range [{finite.min():.6g}, {finite.max():.6g}]")
    if np.issubdtype(a.dtype, np.inexact):
        nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        if nan or inf:
            parts.append(f"{nan} NaN, {inf} inf")
        zeros = int((a == 0).sum())
        if zeros:
            parts.append(f"{zeros} zero(s)")
    return ", ".join(parts) or "no finite values"


def nan_error(
    name: str,
    where: str,
    culprit: Culprit | None,
    infs: bool,
) -> NaNError:
    """The error for a bad result ``where`` of function ``name``."""
    what = "NaN or inf" if infs else "NaN"
    head = f"{name} produced {what} in {where}, which its arguments did not contain"
    if culprit is None:
        return NaNError(
            format_message(
                head,
                details=[
                    "running the traced graph op by op in the reference interpreter "
                    f"gives no {what}: the compiled code differs from the reference here"
                ],
                hint="compare backends (backend='numpy' / 'llvm'), or report this as a bug",
            )
        )
    n = culprit.node
    details = [
        f"first op to produce it: {n.op} -> {', '.join(str(v.type) for v in n.outputs)}"
        + (f" (inside {' > '.join(culprit.path)})" if culprit.path else "")
    ]
    details += [f"operand {label}: {_describe_range(a)}" for label, a in culprit.operands]
    return NaNError(
        format_message(
            head,
            details=details,
            loc=n.loc,
            hint="guard the operand (np.clip, np.maximum(x, eps), np.where) before this op",
        )
    )


class DebugJitted(Jitted):
    """A jitted function whose every call checks its results for NaN (and inf)."""

    def __init__(self, *args: Any, debug_nans: bool, debug_infs: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.debug_infs = debug_infs
        self.debug_nans = debug_nans or debug_infs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            args = self._bind_kwargs(args, kwargs)
        if current_trace() is not None:
            return self._inline(args)
        static = self._static(len(args))
        leaves, _ = tree_flatten([a for i, a in enumerate(args) if i not in static])
        if any(isinstance(x, TracedArray) for x in leaves):
            return self._inline(args)
        infs = self.debug_infs
        # Copies: a donated argument may be overwritten by the call itself.
        saved = [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in leaves]
        out = super().__call__(*args)
        outs = tree_leaves(out)
        bad = [i for i, x in enumerate(outs) if _has_bad(x, infs)]
        if bad and not any(_has_bad(x, infs) for x in saved):
            compiled = self._latest()
            from .viz.compiled import output_labels

            labels = output_labels(compiled)
            where = labels[bad[0]] if bad[0] < len(labels) else f"output leaf {bad[0]}"
            culprit = first_bad_node(compiled.graph, saved, infs)
            raise nan_error(compiled.graph.name, where, culprit, infs)
        return out
