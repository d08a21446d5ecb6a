"""gc.remat: recompute a function's intermediate values in the backward pass.

Reverse mode normally keeps every forward value a derivative rule reads until
the backward pass reaches it, so a deep model holds all its activations at
once. ``gc.remat(f)`` trades compute for memory: only ``f``'s inputs are kept,
and ``f`` runs a second time, inside the backward, right before its
derivative is needed. (JAX calls this ``jax.checkpoint``, alias ``jax.remat``;
``gc.checkpoint`` is graphc's module for saving training state.)

Traced, ``remat(f)`` emits one ``remat`` node whose body is ``f``'s graph (see
``graphc/ir/ops/control.py`` for what its derivative does). Called on
concrete arrays outside any trace, it simply calls ``f``: nothing is
differentiated there, so nothing is kept.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .ir import Graph, InputError, Value, format_message
from .pytree import tree_flatten, tree_unflatten
from .tracing import TracedArray, current_trace, trace_flat, user_location
from .tracing.ops import operand

POLICIES = ("nothing", "matmuls")
# Ops whose results the "matmuls" policy keeps: the expensive ones to compute again.
_PRODUCTS = frozenset({"matmul", "conv2d"})


@dataclass(frozen=True)
class SaveNames:
    """A remat policy: keep the values named with :func:`checkpoint_name` (see
    :func:`save_only_these_names`)."""

    names: frozenset[str]


def save_only_these_names(*names: str) -> SaveNames:
    """The remat policy that keeps exactly the values named (by
    :func:`checkpoint_name`) with one of ``names`` and recomputes the rest.

    >>> import numpy as np, graphc as gc
    >>> def block(x):
    ...     h = gc.checkpoint_name(np.sin(x) * 2.0, "h")
    ...     return np.tanh(h)
    >>> f = gc.remat(block, policy=gc.save_only_these_names("h"))
    >>> x = np.array([0.5, -1.0])
    >>> bool(np.allclose(gc.grad(lambda x: f(x).sum())(x), gc.grad(lambda x: block(x).sum())(x)))
    True
    """
    return SaveNames(frozenset(names))


_NAMES: contextvars.ContextVar[dict[Value, str] | None] = contextvars.ContextVar(
    "graphc_checkpoint_names", default=None
)


def checkpoint_name(x: Any, name: str) -> Any:
    """``x`` itself, named ``name`` for a remat policy
    (:func:`save_only_these_names`) to keep instead of recomputing.

    Outside a ``gc.remat`` region, or on a value that is not traced, it does
    nothing.

    >>> import numpy as np, graphc as gc
    >>> gc.checkpoint_name(np.ones(2), "h")
    array([1., 1.])
    """
    names = _NAMES.get()
    if names is not None and isinstance(x, TracedArray):
        trace = current_trace()
        if trace is not None and x.trace is trace:
            names[trace.value_of(x)] = name
    return x


def _bad_policy(policy: Any) -> InputError:
    return InputError(
        format_message(
            f"remat: unknown policy {policy!r}",
            loc=user_location(),
            hint='use "nothing", "matmuls" or gc.save_only_these_names("name", ...)',
        )
    )


def _saved_values(body: Graph, policy: Any, names: dict[Value, str]) -> list[Value]:
    """The values of ``body`` that ``policy`` keeps for the backward."""
    if policy in (None, "nothing"):
        return []
    made = {v for n in body.nodes if len(n.outputs) == 1 for v in n.outputs}
    if policy == "matmuls":
        found = [n.output for n in body.nodes if n.op in _PRODUCTS and n.output in made]
    elif isinstance(policy, SaveNames):
        found = [v for v, name in names.items() if name in policy.names and v in made]
    else:
        raise _bad_policy(policy)
    outputs = set(body.outputs)
    return [v for v in dict.fromkeys(found) if v not in outputs]


def remat(
    f: Callable[..., Any] | None = None,
    *,
    static_argnums: int | Sequence[int] = (),
    policy: str | SaveNames | None = None,
) -> Any:
    """``f``, but under differentiation its intermediates are recomputed in the
    backward pass instead of being kept alive from the forward pass.

    Values and gradients are exactly those of ``f``; what changes is the peak
    memory of a compiled training step (lower) and its work (one more forward
    pass through ``f``). Wrap the pieces whose intermediates are large and
    cheap to compute again, such as a block of elementwise activations; a
    region's inputs are always kept. Usable as a decorator, with or without
    arguments; ``static_argnums`` marks arguments that are not arrays.

    ``policy`` says which intermediates to keep after all (JAX's checkpoint
    policies): ``"nothing"`` (the default), ``"matmuls"`` (the results of
    matrix products and convolutions, the costly part to redo; everything
    elementwise around them is recomputed), or
    ``gc.save_only_these_names("a", ...)`` (the values marked with
    ``gc.checkpoint_name(x, "a")`` inside ``f``). Random draws are computed
    again from their key and counter, so a dropout mask is the same bits
    under every policy.

    >>> import numpy as np, graphc as gc
    >>> block = gc.remat(lambda x: np.tanh(np.tanh(x) * 2.0))
    >>> loss = lambda x: block(x).sum()
    >>> x = np.array([0.5, -1.0])
    >>> np.allclose(gc.grad(loss)(x), gc.grad(lambda x: np.tanh(np.tanh(x) * 2.0).sum())(x))
    True
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    if policy is not None and policy not in POLICIES and not isinstance(policy, SaveNames):
        raise _bad_policy(policy)
    if f is None:
        return functools.partial(remat, static_argnums=static, policy=policy)

    @functools.wraps(f)
    def wrapped(*args: Any) -> Any:
        outer = current_trace()
        if outer is None:
            return f(*args)
        names: dict[Value, str] = {}
        token = _NAMES.set(names)
        try:
            traced = trace_flat(f, args, static_argnums=static)
        finally:
            _NAMES.reset(token)
        body = traced.graph
        if not body.outputs:
            return tree_unflatten(traced.out_tree, [])
        saved = _saved_values(body, policy, names)
        if saved:
            body = body.replace(outputs=body.outputs + tuple(saved))
        dynamic = [a for i, a in enumerate(args) if i not in static]
        flat = tree_flatten(dynamic)[0] + list(traced.captured)
        operands = [operand(outer, a, v.type.dtype) for a, v in zip(flat, body.inputs)]
        results = outer.builder.emit(
            "remat", *operands, subgraphs=[body], saved=len(saved), loc=user_location()
        )
        values = results if isinstance(results, tuple) else (results,)
        values = values[: len(values) - len(saved)]
        outs = [TracedArray(outer, v, weak) for v, weak in zip(values, traced.out_weak)]
        return tree_unflatten(traced.out_tree, outs)

    return wrapped
