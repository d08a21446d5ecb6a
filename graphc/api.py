"""Function transformations: grad, value_and_grad, vjp, jvp, hvp.

Each traces the function, differentiates the graph (:mod:`graphc.autodiff`)
and evaluates the result: with the interpreter when called on concrete
arrays, or by inlining into the enclosing trace when called inside ``trace``,
``grad`` or ``jit`` — which is why the transforms compose.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.ir import DifferentiationError, Graph, InputError, format_message, prune

from .autodiff import differentiate
from .pytree import tree_flatten, tree_paths, tree_unflatten
from .tracing import Traced, TracedArray, evaluate, trace_flat, user_location


def _normalize_argnums(argnums: int | Sequence[int], nargs: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise DifferentiationError("argnums must name at least one argument")
    out = []
    for a in nums:
        if not isinstance(a, int) or isinstance(a, bool):
            raise DifferentiationError(f"argnums must be ints, got {a!r}")
        if not -nargs <= a < nargs:
            raise DifferentiationError(
                format_message(
                    f"argnums={argnums} is out of range for a function called with {nargs} "
                    f"positional argument(s)",
                    loc=user_location(4),
                )
            )
        out.append(a % nargs)
    return tuple(out)


def _leaf_ranges(args: Sequence[Any]) -> list[range]:
    """The flat leaf indices of each positional argument."""
    ranges, start = [], 0
    for a in args:
        n = len(tree_flatten(a)[0])
        ranges.append(range(start, start + n))
        start += n
    return ranges


def _trace_with_aux(f: Callable[..., Any], args: Sequence[Any], has_aux: bool) -> Traced:
    if not has_aux:
        return trace_flat(f, args)

    @functools.wraps(f)
    def split(*a: Any) -> Any:
        result = f(*a)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise DifferentiationError(
                format_message(
                    "with has_aux=True the function must return a pair (output, aux)",
                    loc=user_location(3),
                )
            )
        return tuple(result)

    return trace_flat(split, args)


def _check_scalar_output(traced: Traced, what: str, has_aux: bool = False) -> None:
    tree = traced.out_tree.children[0] if has_aux else traced.out_tree
    if tree.kind != "leaf":
        raise DifferentiationError(
            format_message(
                f"{what} needs a single scalar output, but the function returned a "
                f"container {tree}",
                loc=user_location(4),
                hint="return one scalar (sum the parts yourself), pass auxiliary results with "
                "has_aux=True, or use gc.vjp",
            )
        )
    out = traced.graph.outputs[0]
    if out.type.shape != ():
        raise DifferentiationError(
            format_message(
                f"{what} needs a scalar output, but the function returned {out.type}",
                loc=user_location(4),
                hint="reduce the output (e.g. .sum() or .mean()), or use gc.vjp",
            )
        )
    if not out.type.dtype.is_float:
        raise DifferentiationError(
            format_message(
                f"{what} needs a float output, but the function returned {out.type}",
                loc=user_location(4),
            )
        )


def _wrt_indices(traced: Traced, args: Sequence[Any], argnums: tuple[int, ...]) -> list[int]:
    ranges = _leaf_ranges(args)
    wrt = []
    names = [v.name for v in traced.graph.inputs]
    for a in argnums:
        for i in ranges[a]:
            v = traced.graph.inputs[i]
            if not v.type.dtype.is_float:
                raise DifferentiationError(
                    format_message(
                        f"cannot differentiate with respect to argument {a} leaf %{names[i]} of "
                        f"dtype {v.type.dtype}",
                        loc=user_location(4),
                        hint="gradients exist only for float inputs; leave integer and bool "
                        "arguments out of argnums",
                    )
                )
            wrt.append(i)
    return wrt


def _flat_args(traced: Traced, args: Sequence[Any]) -> list[Any]:
    return tree_flatten(list(args))[0] + list(traced.captured)


def _with_kwargs(f: Callable[..., Any], kwargs: dict[str, Any] | None) -> Callable[..., Any]:
    """``f`` with keyword arguments bound. They are closed over, not
    differentiated (as in JAX): arrays among them become constants of the
    trace, and traced values from an enclosing trace are captured, so an outer
    transform still differentiates through them."""
    if not kwargs:
        return f
    bound = functools.partial(f, **kwargs)
    functools.update_wrapper(bound, f)  # keeps the name that errors and graphs show
    return bound


def value_and_grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """A function returning ``(f(*args), gradient)``, or ``((f, aux), gradient)``
    with ``has_aux``. The gradient mirrors the pytree of ``args[argnums]`` (a
    tuple of such when ``argnums`` is a tuple). Keyword arguments are passed
    to ``f`` and not differentiated.

    >>> import numpy as np
    >>> value, g = value_and_grad(lambda x: (x ** 2).sum())(np.array([1.0, 2.0]))
    >>> float(value), g
    (5.0, array([2., 4.]))
    """

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nums = _normalize_argnums(argnums, len(args))
        traced = _trace_with_aux(_with_kwargs(f, kwargs), args, has_aux)
        _check_scalar_output(traced, "grad", has_aux)
        wrt = _wrt_indices(traced, args, nums)
        joint = differentiate(traced.graph, wrt, seed_outputs=[0])
        results = evaluate(joint, _flat_args(traced, args), traced.out_weak + (False,) * len(wrt))
        n_out = len(traced.graph.outputs)
        value = tree_unflatten(traced.out_tree, results[:n_out])
        flat_grads = iter(results[n_out:])
        ranges = _leaf_ranges(args)
        grads = []
        for a in nums:
            treedef = tree_flatten(args[a])[1]
            grads.append(tree_unflatten(treedef, [next(flat_grads) for _ in ranges[a]]))
        grad_tree = grads[0] if isinstance(argnums, int) else tuple(grads)
        return value, grad_tree

    return wrapped


def grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """The gradient of scalar-valued ``f`` with respect to ``args[argnums]``.

    Composes with itself and with ``jit``: ``grad(grad(f))`` works because
    the backward graph is ordinary IR. Keyword arguments are passed to ``f``
    and not differentiated.

    >>> import numpy as np
    >>> grad(lambda x: np.sin(x).sum())(np.zeros(2))
    array([1., 1.])
    >>> float(grad(grad(lambda x: x ** 3))(2.0))
    12.0
    >>> float(grad(lambda x, scale=1.0: scale * x ** 2)(2.0, scale=3.0))
    12.0
    """
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapped


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False, **kwargs: Any) -> Any:
    """``(f(*primals, **kwargs), vjp_fn)``; ``vjp_fn(ct)`` returns one cotangent
    per primal (keyword arguments are not differentiated).

    >>> import numpy as np
    >>> out, pullback = vjp(lambda x: x * 3.0, np.ones(2))
    >>> pullback(np.array([1.0, 2.0]))
    (array([3., 6.]),)
    >>> vjp(lambda x, k=1.0: x * k, np.ones(2), k=5.0)[1](np.ones(2))
    (array([5., 5.]),)
    """
    traced = _trace_with_aux(_with_kwargs(f, kwargs), primals, has_aux)
    flat = _flat_args(traced, primals)
    results = evaluate(traced.graph, flat, traced.out_weak)
    out = tree_unflatten(traced.out_tree, results)
    primal_out, aux = (out[0], out[1]) if has_aux else (out, None)
    n_primary = len(tree_flatten(primal_out)[0])
    seeds = list(range(n_primary))
    float_inputs = [
        i
        for i, v in enumerate(traced.graph.inputs[: len(tree_flatten(list(primals))[0])])
        if v.type.dtype.is_float
    ]
    joint: Graph | None = None

    def vjp_fn(ct: Any) -> tuple[Any, ...]:
        nonlocal joint
        ct_leaves, ct_tree = tree_flatten(ct)
        out_tree = tree_flatten(primal_out)[1]
        if ct_tree != out_tree:
            raise DifferentiationError(
                f"the cotangent's structure {ct_tree} differs from the output's {out_tree}"
            )
        for i, (c, v) in enumerate(zip(ct_leaves, traced.graph.outputs)):
            if np.shape(c) != v.type.shape:
                raise DifferentiationError(
                    f"cotangent {i} has shape {np.shape(c)}, the output has {v.type.shape}"
                )
        if joint is None:
            joint = differentiate(traced.graph, float_inputs, seeds, seed="inputs")
        results = evaluate(joint, flat + list(ct_leaves))
        grads = dict(zip(float_inputs, results[len(traced.graph.outputs) :]))
        leaves = []
        for i, v in enumerate(traced.graph.inputs[: len(tree_flatten(list(primals))[0])]):
            leaves.append(grads[i] if i in grads else _zero_cotangent(v.type))
        return tuple(tree_unflatten(tree_flatten(list(primals))[1], leaves))

    return (primal_out, vjp_fn, aux) if has_aux else (primal_out, vjp_fn)


def _zero_cotangent(ty: Any) -> np.ndarray:
    # integer and bool inputs have no tangent space; mirror JAX's float0 with zeros
    return np.zeros(ty.shape, ty.dtype.np)


def jvp(
    f: Callable[..., Any],
    primals: Sequence[Any],
    tangents: Sequence[Any],
    kwargs: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """Forward mode: ``(f(*primals, **kwargs), J @ tangents)``.

    Primals and tangents may be traced values, so ``jvp`` works inside
    ``grad``, ``jit`` and another ``jvp``. ``kwargs`` are passed to ``f`` and
    not differentiated.

    Built by transposing the VJP: the VJP is linear in its cotangent, so
    differentiating it with respect to the cotangent, seeded with the
    tangents, gives the Jacobian-vector product. Only the forward outputs and
    the pushed tangents are kept; the pullback's own results (evaluated at a
    zero cotangent) are pruned away.

    >>> import numpy as np
    >>> jvp(lambda x: x ** 2, (np.array([3.0]),), (np.array([1.0]),))
    (array([9.]), array([6.]))
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if tree_flatten(list(primals))[1] != tree_flatten(list(tangents))[1]:
        raise DifferentiationError("primals and tangents must have the same structure")
    traced = trace_flat(_with_kwargs(f, kwargs), primals)
    g = traced.graph
    n_in = len(tree_flatten(list(primals))[0])
    float_inputs = [i for i in range(n_in) if g.inputs[i].type.dtype.is_float]
    tangent_leaves = tree_flatten(list(tangents))[0]
    _check_tangents(g, primals, tangent_leaves, float_inputs)
    n_out = len(g.outputs)
    float_outputs = [i for i in range(n_out) if g.outputs[i].type.dtype.is_float]
    push = _pushforward(g, float_inputs, float_outputs)
    flat = _flat_args(traced, primals)
    dummy_ct = [
        np.zeros(g.outputs[i].type.shape, g.outputs[i].type.dtype.np) for i in float_outputs
    ]
    seeds = [tangent_leaves[i] for i in float_inputs]
    weak = traced.out_weak + (False,) * len(float_outputs)
    results = evaluate(push, flat + dummy_ct + seeds, weak)
    outs = results[:n_out]
    it = iter(results[n_out:])
    tangent_out = [
        next(it) if i in float_outputs else _zero_cotangent(g.outputs[i].type) for i in range(n_out)
    ]
    return (tree_unflatten(traced.out_tree, outs), tree_unflatten(traced.out_tree, tangent_out))


def _pushforward(g: Graph, float_inputs: list[int], float_outputs: list[int]) -> Graph:
    """The JVP graph of ``g``: inputs ``g.inputs`` + one (unused) cotangent per
    float output + one tangent per float input; outputs ``g.outputs`` + one
    tangent per float output."""
    n_out = len(g.outputs)
    pullback = differentiate(g, float_inputs, float_outputs, seed="inputs")
    ct_positions = list(range(len(g.inputs), len(g.inputs) + len(float_outputs)))
    grad_outputs = list(range(n_out, n_out + len(float_inputs)))
    push = differentiate(pullback, ct_positions, grad_outputs, seed="inputs")
    # push returns g's outputs, then the pullback's cotangents at the dummy
    # cotangent (dead weight), then the pushed tangents: keep the first and last.
    n_push = len(push.outputs)
    keep = list(range(n_out)) + list(range(n_push - len(ct_positions), n_push))
    return prune(push.replace(outputs=tuple(push.outputs[i] for i in keep)))


def _leaf_shape_dtype(x: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    if isinstance(x, TracedArray):
        return x.value.type.shape, x.value.type.dtype.np
    a = np.asarray(x)
    return a.shape, a.dtype


def _check_tangents(
    g: Graph, primals: tuple[Any, ...], tangents: list[Any], float_inputs: list[int]
) -> None:
    """Each tangent must have its primal's shape (and a float dtype), checked
    here so the error names the argument instead of an internal graph input.
    Tangents may be traced (a jvp inside grad, jit or another jvp)."""
    paths = tree_paths(list(primals))
    for i in float_inputs:
        want = g.inputs[i].type
        shape, dtype = _leaf_shape_dtype(tangents[i])
        problem = None
        if shape != want.shape:
            problem = f"has shape {shape}, its primal {want.shape}"
        elif dtype.kind not in "fiub":
            problem = f"has dtype {dtype}, which is not numeric"
        if problem is not None:
            where = "".join(f"[{k!r}]" for k in paths[i][1:])
            raise InputError(
                format_message(
                    f"jvp: the tangent of argument {paths[i][0]}{where} {problem}",
                    loc=user_location(3),
                    hint="tangents mirror the primals: same structure, shapes and dtypes",
                )
            )


def hvp(
    f: Callable[..., Any],
    primals: Sequence[Any],
    tangents: Sequence[Any],
    kwargs: dict[str, Any] | None = None,
) -> Any:
    """Hessian-vector product of scalar ``f`` at ``primals`` along ``tangents``
    (forward-over-reverse: the JVP of the gradient). Primals and tangents may
    be traced; ``kwargs`` are passed to ``f`` and not differentiated.

    >>> import numpy as np
    >>> hvp(lambda x: (x ** 3).sum(), (np.array([1.0, 2.0]),), (np.array([1.0, 0.0]),))
    array([6., 0.])
    """
    nums = tuple(range(len(tuple(primals))))
    g = grad(_with_kwargs(f, kwargs), argnums=nums)
    _, tangent_out = jvp(lambda *a: g(*a), primals, tangents)
    return tangent_out[0] if len(nums) == 1 else tangent_out


def stop_gradient(x: Any) -> Any:
    """``x`` unchanged, but no gradient flows through it.

    >>> import numpy as np
    >>> grad(lambda x: (x * stop_gradient(x)).sum())(np.array([3.0]))
    array([3.])
    """
    if isinstance(x, TracedArray):
        from .tracing.ops import emit

        return emit(x.trace, "stop_gradient", [x.trace.value_of(x)], weak=x.weak)
    return x
