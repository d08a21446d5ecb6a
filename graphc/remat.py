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

import functools
from collections.abc import Callable, Sequence
from typing import Any

from .pytree import tree_flatten, tree_unflatten
from .tracing import TracedArray, current_trace, trace_flat, user_location
from .tracing.ops import operand


def remat(f: Callable[..., Any] | None = None, *, static_argnums: int | Sequence[int] = ()) -> Any:
    """``f``, but under differentiation its intermediates are recomputed in the
    backward pass instead of being kept alive from the forward pass.

    Values and gradients are exactly those of ``f``; what changes is the peak
    memory of a compiled training step (lower) and its work (one more forward
    pass through ``f``). Wrap the pieces whose intermediates are large and
    cheap to compute again, such as a block of elementwise activations; a
    region's inputs are always kept. Usable as a decorator, with or without
    arguments; ``static_argnums`` marks arguments that are not arrays.

    >>> import numpy as np, graphc as gc
    >>> block = gc.remat(lambda x: np.tanh(np.tanh(x) * 2.0))
    >>> loss = lambda x: block(x).sum()
    >>> x = np.array([0.5, -1.0])
    >>> np.allclose(gc.grad(loss)(x), gc.grad(lambda x: np.tanh(np.tanh(x) * 2.0).sum())(x))
    True
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    if f is None:
        return functools.partial(remat, static_argnums=static)

    @functools.wraps(f)
    def wrapped(*args: Any) -> Any:
        outer = current_trace()
        if outer is None:
            return f(*args)
        traced = trace_flat(f, args, static_argnums=static)
        body = traced.graph
        if not body.outputs:
            return tree_unflatten(traced.out_tree, [])
        dynamic = [a for i, a in enumerate(args) if i not in static]
        flat = tree_flatten(dynamic)[0] + list(traced.captured)
        operands = [operand(outer, a, v.type.dtype) for a, v in zip(flat, body.inputs)]
        results = outer.builder.emit("remat", *operands, subgraphs=[body], loc=user_location())
        values = results if isinstance(results, tuple) else (results,)
        outs = [TracedArray(outer, v, weak) for v, weak in zip(values, traced.out_weak)]
        return tree_unflatten(traced.out_tree, outs)

    return wrapped
