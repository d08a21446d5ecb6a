"""Native lowerings of ``scan``, ``while`` and ``cond``: a Python loop or an if/else
over bodies compiled as generated functions of their own.

A ``scan`` line of the generated code reads ``v3, v4 = k_scan0(v0, xs, w)``;
``k_scan0`` runs the body's executable once per step, slicing the xs and
writing each step's ys into the stacked results. A ``cond`` line calls one
of two branch executables. Bodies are compiled by this backend's ``compile``
(each with its own buffers, reused by every step), so nested loops work the
same way and a failure inside a body names the body's node.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.ir import Graph, Node

from .lowerings import Emit, Lowering

_IDS = itertools.count()


def _compiled(g: Graph) -> Callable[..., tuple[np.ndarray, ...]]:
    from . import compile  # the package imports this module

    return compile(g)


def _operands(e: Emit) -> list[str]:
    # Every operand with its exact dtype: a carry or a constant may be a literal.
    return [e.operand_as(i, x.type.dtype) for i, x in enumerate(e.node.inputs)]


def scan_runner(
    body: Callable[..., tuple[np.ndarray, ...]], n: Node
) -> Callable[..., tuple[np.ndarray, ...]]:
    """The loop of scan node ``n`` around the compiled ``body``."""
    length, nc, nx = n.attrs["length"], n.attrs["num_carry"], n.attrs["num_xs"]
    steps = range(length - 1, -1, -1) if n.attrs["reverse"] else range(length)
    y_types = [(v.type.shape, v.type.dtype.np) for v in n.outputs[nc:]]

    def run(*operands: Any) -> tuple[np.ndarray, ...]:
        carry = operands[:nc]
        xs = operands[nc : nc + nx]
        consts = operands[nc + nx :]
        ys = [np.empty(shape, dtype) for shape, dtype in y_types]
        for t in steps:
            # x[t, ...] is a view (a 0-d array, not a NumPy scalar, for 1-d xs).
            out = body(*carry, *[x[t, ...] for x in xs], *consts)
            carry = out[:nc]
            for y, value in zip(ys, out[nc:]):
                y[t] = value
        if not length:
            # The body returns fresh arrays; without a step the carries are the
            # operands themselves, which must not escape as results.
            carry = tuple(np.array(c) for c in carry)
        return (*carry, *ys)

    return run


def cond_runner(
    if_true: Callable[..., tuple[np.ndarray, ...]], if_false: Callable[..., tuple[np.ndarray, ...]]
) -> Callable[..., tuple[np.ndarray, ...]]:
    """Call the branch ``pred`` selects."""

    def run(pred: Any, *operands: Any) -> tuple[np.ndarray, ...]:
        return (if_true if pred else if_false)(*operands)

    return run


def while_runner(
    pred: Callable[..., tuple[np.ndarray, ...]],
    body: Callable[..., tuple[np.ndarray, ...]],
    num_carry: int,
) -> Callable[..., tuple[np.ndarray, ...]]:
    """Call ``body`` on the carries as long as ``pred`` says so."""

    def run(*operands: Any) -> tuple[np.ndarray, ...]:
        carry, consts = operands[:num_carry], operands[num_carry:]
        stepped = False
        while pred(*carry, *consts)[0]:
            carry = body(*carry, *consts)
            stepped = True
        # Without a step the carries are the operands, which must not escape.
        return carry if stepped else tuple(np.array(c) for c in carry)

    return run


def _while(e: Emit) -> str:
    pred, body = (_compiled(g) for g in e.node.subgraphs)
    run = while_runner(pred, body, e.node.attrs["num_carry"])
    return e.call(f"k_while{next(_IDS)}", run, *_operands(e))


def _scan(e: Emit) -> str:
    (body,) = e.node.subgraphs
    run = scan_runner(_compiled(body), e.node)
    return e.call(f"k_scan{next(_IDS)}", run, *_operands(e))


def _cond(e: Emit) -> str:
    run = cond_runner(*(_compiled(g) for g in e.node.subgraphs))
    return e.call(f"k_cond{next(_IDS)}", run, *_operands(e))


LOWERINGS: dict[str, Lowering] = {
    "scan": Lowering(_scan, tuple_result=True),
    "cond": Lowering(_cond, tuple_result=True),
    "while": Lowering(_while, tuple_result=True),
}
