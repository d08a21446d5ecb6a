"""Structured ops that steer the compiler: ``remat`` and ``optimization_barrier``.

``remat`` calls its body, like ``fusion``; what sets it apart is its
derivative. Its VJP does not keep the body's intermediate values for the
backward: it emits a second ``remat`` node (``recompute=true``) whose body is
the body's own forward+backward graph, fed with the region's inputs and the
cotangents of its outputs, so the region is computed again in the backward.
Passes treat a ``remat`` node as one opaque call until the pipeline inlines
it after common-subexpression elimination (which would otherwise merge the
recomputation with the forward copy and keep the values alive after all).

A recomputation is inlined behind an ``optimization_barrier`` over its
operands: an identity that no pass looks through. Fusion therefore cannot
pull the recomputation into a forward kernel, and the scheduler cannot start
it before the cotangents it reads exist. The pipeline removes the barriers
once the final node order is fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import Graph, TensorType, Value
from .registry import Attr, OpDef, register
from .rules import type_error

# ``differentiate(g, wrt, seed_outputs, seed="inputs")``: the driver hands it
# to the VJP rules of ops with a body, as the interpreter hands ``_interpret``
# to their references (``ir`` cannot import the driver itself).
Differentiate = Callable[..., Graph]


# ---------------------------------------------------------------------------
# remat
# ---------------------------------------------------------------------------


def _remat_rule(
    *xs: TensorType, recompute: bool, _subgraphs: tuple[Graph, ...]
) -> tuple[TensorType, ...]:
    (body,) = _subgraphs
    if tuple(xs) != body.input_types:
        got = ", ".join(map(str, xs))
        want = ", ".join(map(str, body.input_types))
        raise type_error(f"operands ({got}) do not match the body's arguments ({want})")
    if not body.outputs:
        raise type_error("a remat body must return at least one value")
    return body.output_types


def _remat_ref(*xs: Any, recompute: bool, _subgraphs: tuple[Graph, ...], _interpret: Any) -> Any:
    return _interpret(_subgraphs[0], *xs)


def _remat_vjp(
    b: Any,
    ct: Any,
    out: Any,
    *xs: Any,
    recompute: bool,
    _subgraphs: tuple[Graph, ...],
    _differentiate: Differentiate,
) -> tuple[Any, ...]:
    (body,) = _subgraphs
    cts = ct if len(body.outputs) > 1 else (ct,)
    seeds = [i for i, c in enumerate(cts) if c is not None]
    wrt = [i for i, v in enumerate(body.inputs) if v.type.dtype.is_float]
    if not wrt or not seeds:
        return (None,) * len(xs)
    joint = _differentiate(body, wrt, seeds, seed="inputs")
    # Only the cotangents leave the recomputation; the forward values it
    # needs are computed inside it and die there.
    backward = _prune(joint.replace(outputs=joint.outputs[len(body.outputs) :]))
    results = b.emit("remat", *xs, *(cts[i] for i in seeds), subgraphs=[backward], recompute=True)
    found = dict(zip(wrt, results if isinstance(results, tuple) else (results,)))
    return tuple(found.get(i) for i in range(len(xs)))


def _prune(g: Graph) -> Graph:
    needed: set[Value] = set(g.outputs)
    keep = []
    for n in reversed(g.nodes):
        if any(v in needed for v in n.outputs):
            keep.append(n)
            needed.update(n.value_inputs())
    return g.replace(nodes=tuple(reversed(keep)))


register(
    OpDef(
        "remat",
        ("*xs",),
        (Attr("recompute", "bool", False),),
        _remat_rule,
        _remat_ref,
        _remat_vjp,
        frozenset({"pure"}),
        num_subgraphs=1,
        doc="call of the body; its VJP recomputes the body in the backward instead of "
        "keeping its intermediates (recompute=true marks that recomputation)",
    )
)


# ---------------------------------------------------------------------------
# optimization_barrier
# ---------------------------------------------------------------------------


def _barrier_rule(*xs: TensorType) -> tuple[TensorType, ...]:
    if not xs:
        raise type_error("optimization_barrier needs at least one operand")
    return tuple(xs)


def _barrier_ref(*xs: Any) -> Any:
    return tuple(xs) if len(xs) > 1 else xs[0]


def _barrier_vjp(b: Any, ct: Any, out: Any, *xs: Any) -> tuple[Any, ...]:
    cts = tuple(ct) if len(xs) > 1 else (ct,)
    return tuple(c if x.type.dtype.is_float else None for c, x in zip(cts, xs))


register(
    OpDef(
        "optimization_barrier",
        ("*xs",),
        (),
        _barrier_rule,
        _barrier_ref,
        _barrier_vjp,
        frozenset({"pure"}),
        doc="identity on its operands that no pass looks through (keeps a recomputation "
        "separate from the forward and after its cotangents)",
    )
)
