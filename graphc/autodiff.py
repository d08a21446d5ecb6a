"""Reverse-mode differentiation as a graph-to-graph pass.

``differentiate`` copies the forward graph, then walks it backwards calling
each op's VJP rule (which emits ordinary IR), summing cotangents where a value
fans out. The result is one joint graph: forward outputs followed by the
cotangents of the requested inputs. Because the backward part is plain IR,
every pass and backend applies to it, and it can be differentiated again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphc.ir import (
    DifferentiationError,
    Graph,
    GraphBuilder,
    Operand,
    Value,
    format_message,
    get_op,
    prune,
)
from graphc.ir.ops.vjp_util import unbroadcast, zeros

from .passes.control import merge_scans


def differentiate(
    g: Graph,
    wrt: Sequence[int],
    seed_outputs: Sequence[int],
    *,
    seed: str = "ones",
) -> Graph:
    """The joint forward+backward graph of ``g``.

    Args:
        wrt: indices of the inputs to differentiate with respect to.
        seed_outputs: indices of the outputs whose cotangents are seeded.
        seed: ``"ones"`` seeds each with 1 (outputs must be scalars: this is
            ``grad``); ``"inputs"`` appends one cotangent input per seeded
            output (this is ``vjp``).

    Returns a graph with inputs ``g.inputs`` (+ cotangent inputs) and outputs
    ``g.outputs`` followed by one cotangent per ``wrt`` input (zeros when the
    outputs do not depend on it).

    >>> from graphc.ir import GraphBuilder, f64
    >>> b = GraphBuilder("f"); x = b.input(f64[3], "x")
    >>> g = b.build([b.reduce_sum(b.mul(x, x), axes=(0,))])
    >>> differentiate(g, wrt=[0], seed_outputs=[0]).output_types
    (f64[], f64[3])
    """
    b = GraphBuilder(g.name + "_vjp")
    env: dict[Value, Operand] = {v: b.input(v.type, v.name) for v in g.inputs}
    ct_inputs: dict[int, Value] = {}
    if seed == "inputs":
        for i in seed_outputs:
            ct_inputs[i] = b.input(g.outputs[i].type, f"ct{i}")
    for n in g.nodes:
        copy = b.copy_node(n, [env[x] if isinstance(x, Value) else x for x in n.inputs])
        env.update(zip(n.outputs, copy.outputs))

    active = _active_values(g, wrt)
    cts: dict[Value, Operand] = {}

    def accumulate(v: Value, ct: Operand) -> None:
        ct = unbroadcast(b, ct, v.type) if isinstance(ct, Value) else ct
        cts[v] = ct if v not in cts else b.add(cts[v], ct)

    for i in seed_outputs:
        out = g.outputs[i]
        if out not in active:
            continue
        if seed == "inputs":
            accumulate(out, ct_inputs[i])
        else:
            accumulate(out, b.emit("constant", value=np.ones(out.type.shape, out.type.dtype.np)))

    for n in reversed(g.nodes):
        out_cts = [cts.get(v) for v in n.outputs]
        if all(c is None for c in out_cts):
            continue
        if not any(x in active for x in n.value_inputs()):
            continue
        opdef = get_op(n.op)
        if opdef.has("lowering_only"):
            raise DifferentiationError(
                format_message(
                    f"cannot differentiate through '{n.op}'",
                    loc=n.loc,
                    hint="differentiate the graph before running lowering passes such as fusion",
                )
            )
        rule = opdef.vjp
        if rule is None:
            continue  # piecewise-constant or integer-valued: the derivative is zero
        inputs = [env[x] if isinstance(x, Value) else x for x in n.inputs]
        outs = [env[v] for v in n.outputs]
        attrs = dict(n.attrs)
        if opdef.num_subgraphs:
            # A rule for an op with a body (remat) differentiates the body with
            # this driver, which the IR cannot import.
            attrs.update(_subgraphs=n.subgraphs, _differentiate=differentiate)
        with b.at(n.loc.with_derived("vjp") if n.loc else None):
            if len(n.outputs) == 1:
                result = rule(b, out_cts[0], outs[0], *inputs, **attrs)
            else:
                result = rule(b, tuple(out_cts), tuple(outs), *inputs, **attrs)
            assert len(result) == len(n.inputs), f"{n.op}: VJP returned {len(result)} cotangents"
            for x, ct in zip(n.inputs, result):
                if ct is not None and isinstance(x, Value) and x in active:
                    accumulate(x, ct)

    grads: list[Operand] = []
    for i in wrt:
        v = g.inputs[i]
        found = cts.get(v)
        grads.append(found if found is not None else zeros(b, v.type))
    outputs = [env[v] for v in g.outputs] + grads
    joint = prune(b.build(outputs))
    # A scan's VJP recomputes the forward loop with extra results; merged,
    # the forward loop runs once.
    return merge_scans(joint) if _has_op(joint, "scan") else joint


def _has_op(g: Graph, op: str) -> bool:
    return any(n.op == op or any(_has_op(s, op) for s in n.subgraphs) for n in g.nodes)


def _active_values(g: Graph, wrt: Sequence[int]) -> set[Value]:
    """Float values that depend on a ``wrt`` input: only they carry cotangents."""
    active = {g.inputs[i] for i in wrt}
    for n in g.nodes:
        if any(x in active for x in n.value_inputs()):
            active.update(v for v in n.outputs if v.type.dtype.is_float)
    return active


def check_differentiable_input(v: Value, where: str) -> None:
    if not v.type.dtype.is_float:
        raise DifferentiationError(
            format_message(
                f"cannot differentiate with respect to {where} of dtype {v.type.dtype}",
                hint="gradients exist only for float32/float64 inputs; pass integer and bool "
                "arguments outside argnums",
            )
        )
