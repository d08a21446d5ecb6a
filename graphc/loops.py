"""gc.fori_loop and gc.while_loop, and unrolled scans (``gc.scan(..., unroll=k)``).

Both loops follow JAX (``jax.lax.fori_loop``, ``jax.lax.while_loop``).
``fori_loop`` with Python-int bounds is a ``scan`` over the step index, so it
is differentiable; with traced bounds it is a ``while_loop``. A
``while_loop`` is one ``while`` node holding the predicate and the body; its
trip count is only known at run time, so it runs forward only and
differentiating through it is an error that points at ``fori_loop`` and
``scan``. Called on concrete values outside any trace, both run Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.ir import DType, GraphBuilder, OpTypeError, TensorType, format_message

from .pytree import TreeDef, tree_flatten, tree_unflatten
from .tracing import TracedArray, current_trace, trace_flat, user_location
from .tracing.ops import cast, operand
from .tracing.trace import function_name, leaf_type


def fori_loop(lower: Any, upper: Any, body_fun: Callable[[Any, Any], Any], init_val: Any) -> Any:
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``; returns ``val``.

    ``init_val`` is any pytree; ``body_fun`` returns one of the same
    structure, shapes and dtypes. With Python-int (or concrete integer)
    bounds the loop is a ``gc.scan`` over ``i`` and can be differentiated;
    traced bounds make it a ``gc.while_loop`` (forward only).

    >>> import numpy as np, graphc as gc
    >>> def power(x, n):
    ...     return gc.fori_loop(0, n, lambda i, acc: acc * x, np.ones_like(x))
    >>> power(np.array([2.0, 3.0]), 3)
    array([ 8., 27.])
    >>> gc.grad(lambda x: power(x, 3).sum())(np.array([2.0, 3.0]))
    array([12., 27.])
    """
    loc = user_location()
    static = [_static_int(b) for b in (lower, upper)]
    if static[0] is not None and static[1] is not None:
        start, stop = static
        if current_trace() is None and not _any_traced(init_val):
            val = init_val
            for i in range(start, stop):
                val = body_fun(np.int64(i), val)
            return val
        from .control import scan

        steps = np.arange(start, max(start, stop), dtype=np.int64)
        return scan(lambda val, i: (body_fun(i, val), None), init_val, steps)[0]
    for bound, name in ((lower, "lower"), (upper, "upper")):
        ty, _ = leaf_type(bound, f"fori_loop {name} bound")
        if ty.shape != () or not ty.dtype.is_int:
            raise OpTypeError(
                format_message(
                    f"fori_loop: the {name} bound must be an integer scalar, got {ty}",
                    loc=loc,
                )
            )
    result = while_loop(
        lambda c: c[0] < upper,
        lambda c: (c[0] + 1, body_fun(c[0], c[1])),
        (lower, init_val),
    )
    return result[1]


def while_loop(
    cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any], init_val: Any
) -> Any:
    """``val = body_fun(val)`` as long as ``cond_fun(val)``; returns ``val``.

    ``init_val`` is any pytree; ``cond_fun`` returns a bool scalar and
    ``body_fun`` a pytree of the same structure, shapes and dtypes. The
    number of steps may depend on the data. Forward only: differentiating
    through a ``while_loop`` raises ``DifferentiationError`` (use
    :func:`fori_loop` with Python-int bounds, or ``gc.scan``, for a loop of
    a known length).

    >>> import numpy as np, graphc as gc
    >>> def halve_until_small(x):
    ...     return gc.while_loop(lambda c: c[0].sum() > 1.0,
    ...                          lambda c: (c[0] / 2, c[1] + 1), (x, 0))
    >>> x, steps = gc.jit(halve_until_small)(np.array([3.0, 5.0]))
    >>> x, int(steps)
    (array([0.375, 0.625]), 3)
    """
    loc = user_location()
    leaves, tree = tree_flatten(init_val)
    if not leaves:
        raise OpTypeError(format_message("while_loop: init_val has no arrays to carry", loc=loc))
    if current_trace() is None and not any(isinstance(a, TracedArray) for a in leaves):
        return _while_eager(cond_fun, body_fun, init_val, tree, loc)
    return _while_traced(cond_fun, body_fun, leaves, tree, loc)


def _static_int(x: Any) -> int | None:
    if isinstance(x, (bool, np.bool_)) or isinstance(x, TracedArray):
        return None
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, np.ndarray) and x.shape == () and x.dtype.kind in "iu":
        return int(x)
    return None


def _any_traced(tree: Any) -> bool:
    return any(isinstance(a, TracedArray) for a in tree_flatten(tree)[0])


def _predicate_error(got: str, fname: str, loc: Any) -> OpTypeError:
    return OpTypeError(
        format_message(
            f"while_loop: the predicate {fname} must return a bool scalar, got {got}",
            loc=loc,
            hint="compare and reduce to get one, e.g. lambda c: c[0] < n or "
            "lambda c: (c * c).sum() > tol",
        )
    )


def _check_carry(before: TreeDef, after: TreeDef, fname: str, loc: Any) -> None:
    if before != after:
        raise OpTypeError(
            format_message(
                f"while_loop: the body {fname} must return the carry's structure {before}, "
                f"got {after}",
                loc=loc,
            )
        )


def _while_eager(
    cond_fun: Callable[[Any], Any],
    body_fun: Callable[[Any], Any],
    val: Any,
    tree: TreeDef,
    loc: Any,
) -> Any:
    pname, bname = function_name(cond_fun), function_name(body_fun)
    while True:
        flag = np.asarray(cond_fun(val))
        if flag.shape != () or flag.dtype != np.bool_:
            raise _predicate_error(f"an array of {flag.dtype} {flag.shape}", pname, loc)
        if not flag:
            return val
        val = body_fun(val)
        _check_carry(tree, tree_flatten(val)[1], bname, loc)


def _while_traced(
    cond_fun: Callable[[Any], Any],
    body_fun: Callable[[Any], Any],
    leaves: list[Any],
    tree: TreeDef,
    loc: Any,
) -> Any:
    outer = current_trace()
    assert outer is not None, "tracers outside any active trace"
    types = [leaf_type(leaf, "while_loop carry")[0] for leaf in leaves]
    start = [np.broadcast_to(np.zeros((), t.dtype.np), t.shape) for t in types]
    carry = tree_unflatten(tree, start)
    pname, bname = function_name(cond_fun), function_name(body_fun)
    pred = trace_flat(cond_fun, [carry], name=pname)
    body = trace_flat(lambda c: _fixed_carry(body_fun(c), tree, types, bname, loc), [carry],
                      name=bname)  # fmt: skip
    if pred.graph.output_types != (TensorType((), DType.bool),):
        got = ", ".join(map(str, pred.graph.output_types)) or "nothing"
        raise _predicate_error(got, pname, loc)
    captured: list[TracedArray] = []
    for c in pred.captured + body.captured:
        if not any(c is seen for seen in captured):
            captured.append(c)
    graphs = [_closed(t, len(leaves), captured) for t in (pred, body)]
    flat = list(leaves) + captured
    ir_operands = [operand(outer, a, v.type.dtype) for a, v in zip(flat, graphs[0].inputs)]
    results = outer.builder.emit(
        "while", *ir_operands, subgraphs=graphs, num_carry=len(leaves), loc=loc
    )
    values = results if isinstance(results, tuple) else (results,)
    return tree_unflatten(tree, [TracedArray(outer, v) for v in values])


def _fixed_carry(
    val: Any, tree: TreeDef, types: list[TensorType], fname: str, loc: Any
) -> list[Any]:
    leaves, after = tree_flatten(val)
    _check_carry(tree, after, fname, loc)
    fixed = []
    for k, (leaf, want) in enumerate(zip(leaves, types)):
        got, weak = leaf_type(leaf, "while_loop carry")
        if got.shape != want.shape or (got.dtype != want.dtype and not weak):
            raise OpTypeError(
                format_message(
                    f"while_loop: the body {fname} changed carry leaf {k} from {want} to {got}",
                    loc=loc,
                    hint="return the carry with unchanged shapes and dtypes (cast with "
                    ".astype(...); give a Python-scalar init the dtype the body produces, "
                    "e.g. np.float32(0))",
                )
            )
        fixed.append(leaf if got.dtype == want.dtype else cast(leaf, want.dtype.np))
    return fixed


def _closed(traced: Any, n_args: int, captured: list[TracedArray]) -> Any:
    """The traced function as a graph over the carries and *all* captured
    values, so predicate and body take the same arguments."""
    g = traced.graph
    b = GraphBuilder(g.name)
    args = [b.input(v.type, v.name) for v in g.inputs[:n_args]]
    shared = [b.input(c.value.type, f"captured{i}") for i, c in enumerate(captured)]
    mine = [shared[next(i for i, c in enumerate(captured) if c is x)] for x in traced.captured]
    return b.build(list(b.call(g, *args, *mine)))


# ---------------------------------------------------------------------------
# scan(..., unroll=k)
# ---------------------------------------------------------------------------


def unrolled_scan(
    scan: Callable[..., Any],
    f: Callable[[Any, Any], Any],
    init: Any,
    x_leaves: list[Any],
    x_tree: TreeDef,
    steps: int,
    reverse: bool,
    k: int,
) -> tuple[Any, Any]:
    """A traced scan doing ``k`` steps per iteration: a scan over blocks of
    ``k`` rows whose body runs ``f`` ``k`` times, and the remaining
    ``steps % k`` steps as a scan of their own."""
    blocks, rest = divmod(steps, k)
    cut = blocks * k

    def block(carry: Any, xb: Any) -> Any:
        rows = tree_flatten(xb)[0]
        ys: dict[int, Any] = {}
        for i in range(k - 1, -1, -1) if reverse else range(k):
            carry, ys[i] = f(carry, tree_unflatten(x_tree, [r[i] for r in rows]))
        y_leaves = [tree_flatten(ys[i])[0] for i in range(k)]
        y_tree = tree_flatten(ys[0])[1]
        return carry, tree_unflatten(y_tree, [np.stack(col) for col in zip(*y_leaves)])

    head = tree_unflatten(x_tree, [x[:cut].reshape(blocks, k, *x.shape[1:]) for x in x_leaves])
    tail = tree_unflatten(x_tree, [x[cut:] for x in x_leaves])
    tail_ys = None
    carry = init
    if reverse and rest:
        carry, tail_ys = scan(f, carry, tail, length=rest, reverse=True)
    carry, head_ys = scan(block, carry, head, length=blocks, reverse=reverse)
    if not reverse and rest:
        carry, tail_ys = scan(f, carry, tail, length=rest)
    y_leaves, y_tree = tree_flatten(head_ys)
    stacked = [y.reshape(cut, *y.shape[2:]) for y in y_leaves]
    if tail_ys is not None:
        stacked = [np.concatenate([y, t]) for y, t in zip(stacked, tree_flatten(tail_ys)[0])]
    return carry, tree_unflatten(y_tree, stacked)
