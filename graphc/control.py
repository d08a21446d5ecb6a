"""gc.scan and gc.cond: loops and choices that stay one node in the graph.

Plain Python control flow is unrolled by tracing (a ``for`` loop becomes one
copy of its body per step) and cannot depend on traced data at all (``if
x.sum() > 0:`` raises ``TracingError``). ``gc.scan`` and ``gc.cond`` are the
structured alternatives, with JAX's semantics (``jax.lax.scan``,
``jax.lax.cond``): the body or the branches are traced once, into a
``scan`` or ``cond`` node that holds them as subgraphs, so the graph's size
does not grow with the number of steps and gradients flow through both
(backpropagation through time is a reverse scan).

Called on concrete arrays outside any trace, both simply run Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.ir import (
    DType,
    Graph,
    GraphBuilder,
    GraphcError,
    OpTypeError,
    TensorType,
    format_message,
    promote,
)

from .pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten
from .tracing import TracedArray, current_trace, trace_flat, user_location
from .tracing.ops import cast, operand
from .tracing.trace import function_name, leaf_type


def scan(
    f: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
) -> tuple[Any, Any]:
    """Loop ``f`` over the leading axis of ``xs``, threading a carry.

    ``f(carry, x) -> (carry, y)``; the result is ``(final_carry, ys)`` where
    ``ys`` stacks the per-step ``y`` along a new leading axis. ``init``,
    ``xs`` and the ys are pytrees; every leaf of ``xs`` is sliced along its
    first axis, and all must have the same length. With ``xs=None``, pass
    ``length``; ``f`` then gets ``None`` for ``x``. ``reverse=True`` runs the
    steps from the last index down (``ys[t]`` still belongs to ``xs[t]``).
    The body must return the carry with the shapes and dtypes it came in with
    (a Python-scalar init takes the dtype the body gives it).

    ``unroll=k`` (as in JAX) runs ``k`` steps per iteration of the loop (the
    body is traced ``k`` times, the last ``length % k`` steps form a loop of
    their own); ``unroll=True`` spells every step out, as a Python ``for``
    loop would. The results are the same; only the compiled code differs.

    Semantically this is::

        carry, ys = init, []
        for x in xs:                    # reversed(xs) with reverse=True
            carry, y = f(carry, x)
            ys.append(y)
        return carry, np.stack(ys)

    Traced (inside ``gc.trace``, ``gc.grad``, ``gc.jit``), it becomes one
    ``scan`` node whose body is ``f``'s graph, however many steps there are.

    >>> import numpy as np, graphc as gc
    >>> def cumulative(xs):
    ...     return gc.scan(lambda c, x: (c + x, c + x), 0.0, xs)
    >>> total, partial = cumulative(np.array([1.0, 2.0, 3.0]))
    >>> float(total), partial
    (6.0, array([1., 3., 6.]))
    >>> gc.grad(lambda xs: cumulative(xs)[1].sum())(np.array([1.0, 2.0, 3.0]))
    array([3., 2., 1.])
    """
    loc = user_location()
    if isinstance(length, bool) or (length is not None and not isinstance(length, int)):
        raise OpTypeError(format_message(f"scan: length must be an int, got {length!r}", loc=loc))
    if not isinstance(unroll, (bool, int)) or (unroll is not True and unroll < 1):
        raise OpTypeError(
            format_message(
                f"scan: unroll must be a positive int or True, got {unroll!r}",
                loc=loc,
                hint="unroll=k runs k steps per loop iteration; unroll=True spells out every step",
            )
        )
    carry_leaves, carry_tree = tree_flatten(init)
    x_leaves, x_tree = tree_flatten(xs)
    steps = _scan_length(xs, x_leaves, length, loc)
    leaves = carry_leaves + x_leaves
    per_iteration = steps if unroll is True else max(int(unroll), 1)
    eager = current_trace() is None and not any(isinstance(a, TracedArray) for a in leaves)
    if eager or (per_iteration >= steps and per_iteration > 1):
        # Concrete values, or every step spelled out: a Python loop (traced, it
        # records each step's ops).
        return _scan_eager(f, init, carry_tree, x_leaves, x_tree, steps, reverse, loc)
    if per_iteration > 1:
        from .loops import unrolled_scan

        return unrolled_scan(scan, f, init, x_leaves, x_tree, steps, reverse, per_iteration)
    return _scan_traced(f, init, carry_leaves, carry_tree, x_leaves, x_tree, steps, reverse, loc)


def cond(
    pred: Any, true_fn: Callable[..., Any], false_fn: Callable[..., Any], *operands: Any
) -> Any:
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``, where
    ``pred`` may be traced data.

    ``pred`` is a bool scalar (a traced ``bool[]`` such as ``x.sum() > 0``,
    or a concrete bool). Both functions take the same operands (pytrees) and
    must return the same structure of the same shapes and dtypes. Traced,
    it becomes one ``cond`` node holding both branches; a concrete ``pred``
    just calls its branch.

    >>> import numpy as np, graphc as gc
    >>> def safe_norm(x):
    ...     n2 = (x * x).sum()
    ...     return gc.cond(n2 > 0, lambda x: x / np.sqrt(n2), lambda x: x, x)
    >>> gc.jit(safe_norm, backend="numpy")(np.array([3.0, 4.0]))
    array([0.6, 0.8])
    >>> gc.jit(safe_norm, backend="numpy")(np.zeros(2))
    array([0., 0.])
    """
    loc = user_location()
    if isinstance(pred, TracedArray):
        ty = pred.value.type
        if ty.shape != () or not ty.dtype.is_bool:
            raise _bad_predicate(f"a traced {ty}", loc)
        return _cond_traced(pred, true_fn, false_fn, operands, loc)
    try:
        concrete = np.asarray(pred)
    except Exception:
        concrete = np.asarray(None)
    if concrete.shape != () or concrete.dtype != np.bool_:
        try:
            shown = str(TensorType(concrete.shape, DType.from_numpy(concrete.dtype)))
        except GraphcError:
            shown = str(concrete.dtype)
        raise _bad_predicate(f"{type(pred).__name__} of type {shown}", loc)
    return true_fn(*operands) if bool(concrete) else false_fn(*operands)


# ---------------------------------------------------------------------------
# scan
# ---------------------------------------------------------------------------


def _scan_length(xs: Any, x_leaves: list[Any], length: int | None, loc: Any) -> int:
    lengths: dict[int, list[str]] = {}
    for path, leaf in zip(tree_paths(xs), x_leaves):
        name = "xs" + "".join(f"[{k!r}]" for k in path)
        shape = leaf.shape if isinstance(leaf, TracedArray) else np.shape(leaf)
        if not shape:
            raise OpTypeError(
                format_message(
                    f"scan: {name} is a scalar, but scan slices every leaf of xs along its "
                    "first axis",
                    loc=loc,
                    hint="pass arrays with the steps along axis 0 (or use the scalar in the body "
                    "through a closure)",
                )
            )
        lengths.setdefault(shape[0], []).append(name)
    if len(lengths) > 1:
        shown = "; ".join(f"{', '.join(names)}: {n}" for n, names in lengths.items())
        raise OpTypeError(
            format_message(
                f"scan: the leaves of xs have different lengths along axis 0 ({shown})",
                loc=loc,
                hint="every leaf of xs must have the number of steps as its first dimension",
            )
        )
    if lengths:
        (found,) = lengths
        if length is not None and length != found:
            raise OpTypeError(
                format_message(
                    f"scan: length={length}, but the leaves of xs have length {found}", loc=loc
                )
            )
        return found
    if length is None:
        raise OpTypeError(
            format_message(
                "scan: xs has no arrays, so the number of steps is unknown",
                loc=loc,
                hint="pass length=N (with xs=None the body gets None for x)",
            )
        )
    if length < 0:
        raise OpTypeError(format_message(f"scan: length must be >= 0, got {length}", loc=loc))
    return length


def _split_pair(result: Any, fname: str, loc: Any) -> tuple[Any, Any]:
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise OpTypeError(
            format_message(
                f"scan: the body {fname} must return a pair (carry, y), "
                f"got {type(result).__name__}",
                loc=loc,
                hint="return (new_carry, y); use None for y when there is nothing to stack",
            )
        )
    return result[0], result[1]


def _carry_names(init: Any) -> list[str]:
    return ["carry" + "".join(f"[{k!r}]" for k in path) for path in tree_paths(init)]


def _structure_error(what: str, before: TreeDef, after: TreeDef, loc: Any) -> OpTypeError:
    return OpTypeError(
        format_message(
            f"scan: the body changed the structure of the {what}: it came in as {before} "
            f"and went out as {after}",
            loc=loc,
            hint=f"return the {what} with the structure it came in with",
        )
    )


def _carry_type_error(name: str, before: TensorType, after: TensorType, loc: Any) -> OpTypeError:
    return OpTypeError(
        format_message(
            f"scan: the body changed the type of {name}: it came in as {before} "
            f"and went out as {after}",
            loc=loc,
            hint="a carry keeps its shape and dtype across steps: cast it back with "
            ".astype(...), or start from an init of the type the body produces",
        )
    )


def _leaf_info(leaf: Any, where: str) -> tuple[TensorType, bool]:
    return leaf_type(leaf, where)


def _scan_eager(
    f: Callable[..., Any],
    init: Any,
    carry_tree: TreeDef,
    x_leaves: list[Any],
    x_tree: TreeDef,
    steps: int,
    reverse: bool,
    loc: Any,
) -> tuple[Any, Any]:
    names = _carry_names(init)
    fname = function_name(f)
    types = [_leaf_info(leaf, name) for leaf, name in zip(tree_flatten(init)[0], names)]
    carry = init
    ys: dict[int, list[Any]] = {}
    y_tree: TreeDef | None = None
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        x = tree_unflatten(x_tree, [leaf[t] for leaf in x_leaves])
        carry, y = _split_pair(f(carry, x), fname, loc)
        leaves, tree = tree_flatten(carry)
        if tree != carry_tree:
            raise _structure_error("carry", carry_tree, tree, loc)
        for k, (leaf, name) in enumerate(zip(leaves, names)):
            before, weak = types[k]
            after, out_weak = _leaf_info(leaf, name)
            if after.shape != before.shape:
                raise _carry_type_error(name, before, after, loc)
            if after.dtype != before.dtype and not out_weak:
                if not weak:
                    raise _carry_type_error(name, before, after, loc)
                types[k] = (after, False)  # a Python-scalar init takes the body's dtype
        y_leaves, tree = tree_flatten(y)
        if y_tree is None:
            y_tree = tree
        elif tree != y_tree:
            raise _structure_error("y it returns", y_tree, tree, loc)
        ys[t] = y_leaves
    if y_tree is None:
        # No step ran: the body's result types come from tracing it once.
        return init, _empty_ys(f, init, x_leaves, x_tree, loc)
    stacked = []
    for j in range(y_tree.num_leaves):
        rows = [ys[t][j] for t in range(steps)]
        try:
            stacked.append(
                np.stack([r if isinstance(r, TracedArray) else np.asarray(r) for r in rows])
            )
        except ValueError as exc:
            raise OpTypeError(
                format_message(f"scan: the body's y changed shape between steps ({exc})", loc=loc)
            ) from None
    return carry, tree_unflatten(y_tree, stacked)


def _placeholder(ty: TensorType) -> np.ndarray:
    # Only the type matters to the tracer; a zero-stride view allocates nothing.
    return np.broadcast_to(np.zeros((), ty.dtype.np), ty.shape)


def _step_placeholders(x_leaves: list[Any]) -> list[np.ndarray]:
    out = []
    for leaf in x_leaves:
        ty, _ = _leaf_info(leaf, "xs")
        out.append(_placeholder(ty.with_shape(ty.shape[1:])))
    return out


def _empty_ys(
    f: Callable[..., Any], init: Any, x_leaves: list[Any], x_tree: TreeDef, loc: Any
) -> Any:
    x = tree_unflatten(x_tree, _step_placeholders(x_leaves))
    traced = trace_flat(lambda c, x: _split_pair(f(c, x), function_name(f), loc), (init, x))
    y_tree = traced.out_tree.children[1]
    y_types = traced.graph.output_types[traced.out_tree.num_leaves - y_tree.num_leaves :]
    return tree_unflatten(y_tree, [np.empty((0, *t.shape), t.dtype.np) for t in y_types])


class _Promote(Exception):
    """The body gave a Python-scalar carry a dtype of its own: trace again with it."""

    def __init__(self, dtypes: dict[int, DType]) -> None:
        self.dtypes = dtypes


def _scan_traced(
    f: Callable[..., Any],
    init: Any,
    carry_leaves: list[Any],
    carry_tree: TreeDef,
    x_leaves: list[Any],
    x_tree: TreeDef,
    steps: int,
    reverse: bool,
    loc: Any,
) -> tuple[Any, Any]:
    outer = current_trace()
    assert outer is not None, "tracers outside any active trace"
    names = _carry_names(init)
    fname = function_name(f)
    types = [_leaf_info(leaf, name) for leaf, name in zip(carry_leaves, names)]
    promoted: dict[int, DType] = {}

    def body(carry: Any, x: Any) -> Any:
        new_carry, y = _split_pair(f(carry, x), fname, loc)
        leaves, tree = tree_flatten(new_carry)
        if tree != carry_tree:
            raise _structure_error("carry", carry_tree, tree, loc)
        fixed, wanted = [], {}
        for k, (leaf, name) in enumerate(zip(leaves, names)):
            before, weak = types[k]
            if k in promoted:
                before, weak = before.with_dtype(promoted[k]), False
            after, out_weak = _leaf_info(leaf, name)
            if after.shape != before.shape:
                raise _carry_type_error(name, before, after, loc)
            if after.dtype != before.dtype:
                if out_weak:
                    leaf = cast(leaf, before.dtype.np)  # a Python scalar takes the carry's dtype
                elif weak:
                    wanted[k] = after.dtype
                else:
                    raise _carry_type_error(name, before, after, loc)
            fixed.append(leaf)
        if wanted:
            raise _Promote(wanted)
        return tree_unflatten(carry_tree, fixed), y

    x_step = tree_unflatten(x_tree, _step_placeholders(x_leaves))
    for _ in range(2):
        start = [
            _placeholder(types[k][0].with_dtype(promoted[k])) if k in promoted else leaf
            for k, leaf in enumerate(carry_leaves)
        ]
        try:
            traced = trace_flat(body, (tree_unflatten(carry_tree, start), x_step), name=fname)
            break
        except _Promote as again:
            promoted.update(again.dtypes)
    else:  # pragma: no cover - the second trace starts from the promoted dtypes
        raise AssertionError("scan: carry dtypes did not settle")

    g = traced.graph
    nc, nx = len(carry_leaves), len(x_leaves)
    y_tree = traced.out_tree.children[1]
    if not g.outputs:
        return init, tree_unflatten(y_tree, [])
    flat = carry_leaves + x_leaves + list(traced.captured)
    operands = [operand(outer, a, v.type.dtype) for a, v in zip(flat, g.inputs)]
    results = outer.builder.emit(
        "scan",
        *operands,
        subgraphs=[g],
        length=steps,
        num_carry=nc,
        num_xs=nx,
        num_consts=len(operands) - nc - nx,
        reverse=reverse,
        loc=loc,
    )
    values = results if isinstance(results, tuple) else (results,)
    carry = [TracedArray(outer, v, w) for v, w in zip(values[:nc], traced.out_weak)]
    ys = [TracedArray(outer, v) for v in values[nc:]]
    return tree_unflatten(carry_tree, carry), tree_unflatten(y_tree, ys)


# ---------------------------------------------------------------------------
# cond
# ---------------------------------------------------------------------------


def _bad_predicate(what: str, loc: Any) -> OpTypeError:
    return OpTypeError(
        format_message(
            f"cond: the predicate must be a bool scalar, got {what}",
            loc=loc,
            hint="reduce and compare to get one, e.g. gc.cond(x.sum() > 0, ...); for an "
            "elementwise choice use np.where",
        )
    )


def _cond_traced(
    pred: TracedArray,
    true_fn: Callable[..., Any],
    false_fn: Callable[..., Any],
    operands: Sequence[Any],
    loc: Any,
) -> Any:
    outer = current_trace()
    assert outer is not None, "a tracer outside any active trace"
    branches = [trace_flat(fn, operands, name=function_name(fn)) for fn in (true_fn, false_fn)]
    t, e = branches
    if t.out_tree != e.out_tree:
        raise OpTypeError(
            format_message(
                f"cond: the branches return different structures: {function_name(true_fn)} "
                f"returns {t.out_tree}, {function_name(false_fn)} returns {e.out_tree}",
                loc=loc,
                hint="both branches must return the same structure of the same types",
            )
        )
    targets = []
    for k, (a, b) in enumerate(zip(t.graph.output_types, e.graph.output_types)):
        weak_a, weak_b = t.out_weak[k], e.out_weak[k]
        if a.shape != b.shape or (a.dtype != b.dtype and not (weak_a or weak_b)):
            raise OpTypeError(
                format_message(
                    f"cond: the branches return different types for result {k}: "
                    f"{function_name(true_fn)} gives {a}, {function_name(false_fn)} gives {b}",
                    loc=loc,
                    hint="both branches must return the same shapes and dtypes (cast one with "
                    ".astype(...))",
                )
            )
        if a.dtype == b.dtype or (weak_a and weak_b):
            targets.append(promote(a.dtype, b.dtype))
        else:
            targets.append(b.dtype if weak_a else a.dtype)
    if not t.graph.outputs:
        return tree_unflatten(t.out_tree, [])
    n_args = len(tree_flatten(list(operands))[0])
    captured: list[TracedArray] = []
    for c in t.captured + e.captured:
        if not any(c is seen for seen in captured):
            captured.append(c)
    bodies = [_closed_branch(br, n_args, captured, targets) for br in branches]
    flat = tree_flatten(list(operands))[0] + captured
    ir_operands = [operand(outer, a, v.type.dtype) for a, v in zip(flat, bodies[0].inputs)]
    results = outer.builder.emit(
        "cond", outer.value_of(pred), *ir_operands, subgraphs=bodies, loc=loc
    )
    values = results if isinstance(results, tuple) else (results,)
    weak = [a and b for a, b in zip(t.out_weak, e.out_weak)]
    return tree_unflatten(t.out_tree, [TracedArray(outer, v, w) for v, w in zip(values, weak)])


def _closed_branch(
    traced: Any, n_args: int, captured: list[TracedArray], targets: list[DType]
) -> Graph:
    """The branch as a graph over the operands and *all* captured values, so
    both branches take the same arguments; results cast to ``targets``."""
    g = traced.graph
    b = GraphBuilder(g.name)
    args = [b.input(v.type, v.name) for v in g.inputs[:n_args]]
    shared = [b.input(c.value.type, f"captured{i}") for i, c in enumerate(captured)]
    mine = [shared[next(i for i, c in enumerate(captured) if c is x)] for x in traced.captured]
    outs = b.call(g, *args, *mine)
    return b.build([o if o.type.dtype == d else b.cast(o, dtype=d) for o, d in zip(outs, targets)])
