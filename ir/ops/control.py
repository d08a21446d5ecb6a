"""Structured ops: ``scan``, ``while`` and ``cond`` (control flow), ``remat``
and ``optimization_barrier`` (ops that steer the compiler).

``scan`` runs its body once per step, threading a carry and stacking per-step
results; ``while`` runs its body as long as its predicate holds; ``cond``
runs one of two branches. They keep a loop or a choice as one node with
subgraphs, so a graph stays small however long the loop is. The derivatives
of scans and conds are scans and conds again (see ``scan_vjp.py``); a while
loop, whose trip count is only known at run time, has none. Backends without
control flow of their own can use :func:`unroll_scan` and
:func:`select_cond`, which spell a node out in straight-line ops.

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

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core import Graph, Literal, Operand, TensorType, Value
from ..dtypes import DType
from ..errors import DifferentiationError, format_message
from ..liveness import prune
from ..loc import Loc
from .registry import Attr, OpDef, register
from .rules import call_types, type_error
from .scan_vjp import Differentiate, scan_vjp

# ---------------------------------------------------------------------------
# scan
# ---------------------------------------------------------------------------
#
# Operands: carries (num_carry), sliced inputs (num_xs, each of leading
# dimension ``length``) and constants (num_consts). The body maps
# ``(carry..., x_t..., const...) -> (new_carry..., y_t...)``; the results are
# the final carries and the ys stacked along a new leading dimension. With
# ``reverse`` the steps run from the last index down; ys[t] still belongs to
# xs[t].


def _describe_types(types: tuple[TensorType, ...]) -> str:
    return ", ".join(map(str, types))


def _check_arguments(
    op: str,
    body: Graph,
    roles: list[str],
    want: tuple[TensorType, ...],
) -> None:
    got = body.input_types
    if len(got) != len(want):
        raise type_error(
            f"the {op} takes {len(got)} argument(s) ({_describe_types(got)}), "
            f"but is given {len(want)} ({_describe_types(want)})",
        )
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            raise type_error(
                f"argument {i} of the {op} is {g}, but {roles[i]} is {w}",
                hint="the body's arguments must have exactly the types of what is passed to it",
            )


def _scan_parts(
    operands: tuple[Any, ...], num_carry: int, num_xs: int
) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    return (
        operands[:num_carry],
        operands[num_carry : num_carry + num_xs],
        operands[num_carry + num_xs :],
    )


def _scan_rule(
    *operands: TensorType,
    length: int,
    num_carry: int,
    num_xs: int,
    num_consts: int,
    reverse: bool,
    _subgraphs: tuple[Graph, ...],
) -> tuple[TensorType, ...]:
    (body,) = _subgraphs
    if length < 0:
        raise type_error(f"length must be at least 0, got {length}")
    counts = (num_carry, num_xs, num_consts)
    if min(counts) < 0 or sum(counts) != len(operands):
        raise type_error(
            f"num_carry={num_carry}, num_xs={num_xs} and num_consts={num_consts} must add up "
            f"to the {len(operands)} operand(s)"
        )
    carry, xs, consts = _scan_parts(operands, num_carry, num_xs)
    for i, x in enumerate(xs):
        if not x.shape or x.shape[0] != length:
            raise type_error(
                f"sliced operand {i} is {x}, but a scan of length {length} needs a leading "
                f"dimension of {length}",
                hint="every sliced input (xs) must have the scan's length as its first dimension",
            )
    slices = tuple(x.with_shape(x.shape[1:]) for x in xs)
    roles = (
        [f"carry {i}" for i in range(num_carry)]
        + [f"a step of sliced operand {i}" for i in range(num_xs)]
        + [f"constant {i}" for i in range(num_consts)]
    )
    _check_arguments("scan body", body, roles, tuple(carry) + slices + tuple(consts))
    results = body.output_types
    if len(results) < num_carry or results[:num_carry] != tuple(carry):
        raise type_error(
            f"the body returns ({_describe_types(results)}), but its first {num_carry} "
            f"result(s) are the new carry and must be ({_describe_types(tuple(carry))})",
            hint="a scan body must return its carry with unchanged shapes and dtypes",
        )
    if not results:
        raise type_error("a scan must produce at least one value (a carry or a y)")
    ys = tuple(TensorType((length, *t.shape), t.dtype) for t in results[num_carry:])
    return tuple(carry) + ys


def _scan_ref(
    *operands: np.ndarray,
    length: int,
    num_carry: int,
    num_xs: int,
    num_consts: int,
    reverse: bool,
    _subgraphs: tuple[Graph, ...],
    _interpret: Any,
) -> tuple[np.ndarray, ...]:
    (body,) = _subgraphs
    carry, xs, consts = _scan_parts(operands, num_carry, num_xs)
    y_types = body.output_types[num_carry:]
    ys = [np.empty((length, *t.shape), t.dtype.np) for t in y_types]
    for t in range(length - 1, -1, -1) if reverse else range(length):
        out = _interpret(body, *carry, *(x[t] for x in xs), *consts)
        carry = out[:num_carry]
        for y, value in zip(ys, out[num_carry:]):
            y[t] = value
    return tuple(np.array(c) for c in carry) + tuple(ys)


def unroll_scan(b: Any, n: Any, inputs: Sequence[Operand]) -> list[Operand]:
    """The results of scan node ``n`` on ``inputs``, emitted step by step with
    ``b``: each step slices its xs, calls the body, and the ys are
    concatenated. For backends without loops; the graph grows with the length.
    """
    (body,) = n.subgraphs
    length, nc, nx = n.attrs["length"], n.attrs["num_carry"], n.attrs["num_xs"]
    carry, xs, consts = _scan_parts(tuple(inputs), nc, nx)
    steps: dict[int, tuple[Operand, ...]] = {}
    for t in range(length - 1, -1, -1) if n.attrs["reverse"] else range(length):
        sliced = []
        for x in xs:
            rest = x.type.shape[1:]
            part = b.slice(
                x,
                start=(t,) + (0,) * len(rest),
                limit=(t + 1, *rest),
                stride=(1,) * (len(rest) + 1),
            )
            sliced.append(b.reshape(part, shape=rest))
        out = b.call(body, *carry, *sliced, *consts)
        carry, steps[t] = out[:nc], out[nc:]
    ys: list[Operand] = []
    for j, ty in enumerate(body.output_types[nc:]):
        if length == 0:
            zero = Literal(False if ty.dtype.is_bool else 0, ty.dtype)
            ys.append(b.broadcast_in_dim(zero, shape=(0, *ty.shape), broadcast_dimensions=()))
            continue
        rows = [b.reshape(steps[t][j], shape=(1, *ty.shape)) for t in range(length)]
        ys.append(rows[0] if length == 1 else b.concatenate(*rows, axis=0))
    return list(carry) + ys


register(
    OpDef(
        "scan",
        ("*operands",),
        (
            Attr("length", "int"),
            Attr("num_carry", "int"),
            Attr("num_xs", "int"),
            Attr("num_consts", "int"),
            Attr("reverse", "bool", False),
        ),
        _scan_rule,
        _scan_ref,
        scan_vjp,
        frozenset({"pure"}),
        num_subgraphs=1,
        doc="loop of `length` steps: body(carry..., x_t..., const...) -> (carry..., y_t...); "
        "results are the final carries and the stacked ys",
    )
)


# ---------------------------------------------------------------------------
# cond
# ---------------------------------------------------------------------------


def _cond_rule(
    pred: TensorType, *operands: TensorType, _subgraphs: tuple[Graph, ...]
) -> tuple[TensorType, ...]:
    if pred.shape != () or not pred.dtype.is_bool:
        raise type_error(
            f"the predicate must be a bool scalar (bool[]), got {pred}",
            hint="make one with a comparison and a reduction, e.g. gt(reduce_sum(x), 0.0)",
        )
    roles = [f"operand {i}" for i in range(len(operands))]
    for name, branch in zip(("true", "false"), _subgraphs):
        _check_arguments(f"{name} branch", branch, roles, tuple(operands))
    true_types, false_types = (g.output_types for g in _subgraphs)
    if true_types != false_types:
        raise type_error(
            f"the branches return different types: true ({_describe_types(true_types)}), "
            f"false ({_describe_types(false_types)})",
            hint="both branches must return values of the same shapes and dtypes",
        )
    if not true_types:
        raise type_error("a cond must produce at least one value")
    return true_types


def _cond_ref(
    pred: np.ndarray, *operands: np.ndarray, _subgraphs: tuple[Graph, ...], _interpret: Any
) -> tuple[np.ndarray, ...]:
    return tuple(_interpret(_subgraphs[0 if pred else 1], *operands))


def _cond_vjp(
    b: Any,
    ct: Any,
    out: Any,
    pred: Any,
    *operands: Any,
    _subgraphs: tuple[Graph, ...],
    _differentiate: Differentiate,
) -> tuple[Any, ...]:
    # The derivative of a choice is the same choice between the branches'
    # derivatives. Each backward branch recomputes its forward values: only
    # the operands are kept, as for remat.
    first = _subgraphs[0]
    cts = ct if len(first.outputs) > 1 else (ct,)
    seeds = [i for i, c in enumerate(cts) if c is not None and first.outputs[i].type.dtype.is_float]
    wrt = [i for i, x in enumerate(operands) if isinstance(x, Value) and x.type.dtype.is_float]
    if not seeds or not wrt:
        return (None,) * (1 + len(operands))
    branches = []
    for g in _subgraphs:
        joint = _differentiate(g, wrt, seeds, seed="inputs")
        branches.append(prune(joint.replace(outputs=joint.outputs[len(g.outputs) :])))
    results = b.emit("cond", pred, *operands, *(cts[i] for i in seeds), subgraphs=branches)
    found = dict(zip(wrt, results if isinstance(results, tuple) else (results,)))
    return (None, *(found.get(i) for i in range(len(operands))))


def select_cond(b: Any, n: Any, inputs: Sequence[Operand]) -> list[Operand]:
    """The results of cond node ``n`` on ``inputs`` without control flow: both
    branches run and ``select`` keeps the taken one's values (a literal
    predicate runs only its branch). For backends without branches; an error
    in the branch not taken (an index out of range) is raised all the same.
    """
    pred, *operands = inputs
    if isinstance(pred, Literal):
        return list(b.call(n.subgraphs[0 if pred.value else 1], *operands))
    taken = b.call(n.subgraphs[0], *operands)
    other = b.call(n.subgraphs[1], *operands)
    return [b.select(pred, x, y) for x, y in zip(taken, other)]


register(
    OpDef(
        "cond",
        ("pred", "*operands"),
        (),
        _cond_rule,
        _cond_ref,
        _cond_vjp,
        frozenset({"pure"}),
        num_subgraphs=2,
        doc="the true branch's results if pred else the false branch's; both branches take "
        "the operands and return the same types",
    )
)


# ---------------------------------------------------------------------------
# while
# ---------------------------------------------------------------------------
#
# Operands: carries (num_carry), then constants. The predicate (subgraph 0)
# maps ``(carry..., const...) -> bool[]``, the body (subgraph 1) maps
# ``(carry..., const...) -> (carry...)``; the results are the carries once the
# predicate is false. The trip count is only known at run time, so the loop
# has no derivative (a loop of a fixed length is a scan).


def _while_rule(
    *operands: TensorType, num_carry: int, _subgraphs: tuple[Graph, ...]
) -> tuple[TensorType, ...]:
    pred, body = _subgraphs
    if not 0 < num_carry <= len(operands):
        raise type_error(
            f"num_carry={num_carry} must be between 1 and the {len(operands)} operand(s)",
            hint="a while loop needs at least one carry",
        )
    roles = [f"carry {i}" for i in range(num_carry)]
    roles += [f"constant {i}" for i in range(len(operands) - num_carry)]
    _check_arguments("while predicate", pred, roles, tuple(operands))
    _check_arguments("while body", body, roles, tuple(operands))
    if len(pred.output_types) != 1 or pred.output_types[0] != TensorType((), DType.bool):
        raise type_error(
            f"the predicate returns ({_describe_types(pred.output_types)}), but must return "
            "one bool scalar (bool[])",
            hint="compare and reduce to get one, e.g. i < n or (x * x).sum() > tol",
        )
    carry = tuple(operands[:num_carry])
    if body.output_types != carry:
        raise type_error(
            f"the body returns ({_describe_types(body.output_types)}), but the carry is "
            f"({_describe_types(carry)})",
            hint="a while body must return its carry with unchanged shapes and dtypes",
        )
    return carry


def _while_ref(
    *operands: np.ndarray, num_carry: int, _subgraphs: tuple[Graph, ...], _interpret: Any
) -> tuple[np.ndarray, ...]:
    pred, body = _subgraphs
    carry, consts = operands[:num_carry], operands[num_carry:]
    while bool(_interpret(pred, *carry, *consts)[0]):
        carry = tuple(_interpret(body, *carry, *consts))
    return tuple(np.array(c) for c in carry)


def _while_vjp(b: Any, ct: Any, out: Any, *operands: Any, **attrs: Any) -> tuple[Any, ...]:
    loc = b.loc
    if loc is not None:
        loc = Loc(loc.file, loc.line, loc.col, loc.function)
    raise DifferentiationError(
        format_message(
            "cannot differentiate through a while_loop: how many steps it takes is only "
            "known when it runs, so the steps' values are not kept for a backward pass",
            loc=loc,
            hint="for a loop of a fixed number of steps use gc.fori_loop with Python-int "
            "bounds or gc.scan, which are differentiable",
        )
    )


register(
    OpDef(
        "while",
        ("*operands",),
        (Attr("num_carry", "int"),),
        _while_rule,
        _while_ref,
        _while_vjp,
        frozenset({"pure"}),
        num_subgraphs=2,
        doc="loop: while pred(carry..., const...) the carries become body(carry..., const...); "
        "results are the final carries (forward only)",
    )
)


# ---------------------------------------------------------------------------
# remat
# ---------------------------------------------------------------------------


def _remat_rule(
    *xs: TensorType, recompute: bool, saved: int, _subgraphs: tuple[Graph, ...]
) -> tuple[TensorType, ...]:
    body = _subgraphs[0]
    if not 0 <= saved <= len(body.outputs):
        raise type_error(f"remat: saved={saved} but the body returns {len(body.outputs)} values")
    return call_types(xs, body, "remat")


def _remat_ref(
    *xs: Any, recompute: bool, saved: int, _subgraphs: tuple[Graph, ...], _interpret: Any
) -> Any:
    return _interpret(_subgraphs[0], *xs)


def _remat_vjp(
    b: Any,
    ct: Any,
    out: Any,
    *xs: Any,
    recompute: bool,
    saved: int,
    _subgraphs: tuple[Graph, ...],
    _differentiate: Differentiate,
) -> tuple[Any, ...]:
    (body,) = _subgraphs
    n_out = len(body.outputs)
    n_user = n_out - saved
    cts = ct if n_out > 1 else (ct,)
    # The saved values are residuals for this rule, never differentiated outputs.
    seeds = [i for i, c in enumerate(cts[:n_user]) if c is not None]
    wrt = [i for i, v in enumerate(body.inputs) if v.type.dtype.is_float]
    if not wrt or not seeds:
        return (None,) * len(xs)
    joint = _differentiate(body, wrt, seeds, seed="inputs")
    # Only the cotangents leave the recomputation; the forward values it
    # needs are computed inside it and die there, except the saved ones,
    # which the forward region hands over.
    backward = joint.replace(outputs=joint.outputs[n_out:])
    residuals: tuple[Any, ...] = ()
    if saved:
        backward = _reading_saved(backward, joint.outputs[n_user:n_out])
        residuals = (out if isinstance(out, tuple) else (out,))[n_user:]
    backward = prune(backward)
    results = b.emit(
        "remat",
        *xs,
        *(cts[i] for i in seeds),
        *residuals,
        subgraphs=[backward],
        recompute=True,
    )
    found = dict(zip(wrt, results if isinstance(results, tuple) else (results,)))
    return tuple(found.get(i) for i in range(len(xs)))


def _reading_saved(g: Graph, values: Sequence[Value]) -> Graph:
    """``g`` with one more input per value in ``values``, read instead of
    computing that value again."""
    from ..builder import GraphBuilder

    b = GraphBuilder(g.name)
    b.inputs.extend(g.inputs)
    env: dict[Value, Operand] = {}
    for v in values:
        if v not in env:
            env[v] = b.input(v.type, f"saved{len(env)}")
    for n in g.nodes:
        if all(v in env for v in n.outputs):
            continue  # a saved value (or one already standing in for one)
        node = b.copy_node(n, [env.get(x, x) if isinstance(x, Value) else x for x in n.inputs])
        env.update(zip(n.outputs, node.outputs))
    return b.build([env.get(v, v) for v in g.outputs], name=g.name)


register(
    OpDef(
        "remat",
        ("*xs",),
        (Attr("recompute", "bool", False), Attr("saved", "int", 0)),
        _remat_rule,
        _remat_ref,
        _remat_vjp,
        frozenset({"pure"}),
        num_subgraphs=1,
        doc="call of the body; its VJP recomputes the body in the backward instead of "
        "keeping its intermediates (recompute=true marks that recomputation), except its "
        "last `saved` results: values of the body kept for the backward",
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
