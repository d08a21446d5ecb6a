"""Mixed-precision training: 16-bit compute, float32 master weights, loss scaling.

``gc.train_step(loss_fn, opt, mixed_precision="bfloat16")`` keeps parameters
and optimizer state in float32 and runs the loss (forward and, since the
backward is derived from it, backward) through :func:`graphc.passes.autocast`:
matmuls, convolutions and the elementwise work around them in 16 bits;
reductions, ``exp``/``log``, softmax and losses in float32. Gradients reach
the float32 parameters through the casts, so the update is float32.

``"float16"`` adds dynamic loss scaling, as float16's narrow exponent range
underflows small gradients: the loss is multiplied by a scale before the
backward and the gradients divided by it after; a step whose gradients are
not all finite is skipped (parameters and optimizer state unchanged) and
halves the scale; ``growth_interval`` good steps in a row double it. The
scale and the count of good steps live in the optimizer state, so a
checkpoint resumes exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..ir import DType, InputError
from ..passes.autocast import autocast
from ..pytree import tree_flatten, tree_map, tree_unflatten
from ..tracing import TracedArray, current_trace, trace_flat
from ..tracing.ops import operand

PRECISIONS = {"bfloat16": DType.bf16, "float16": DType.f16}
SCALE_KEYS = ("loss_scale", "good_steps")


def precision_dtype(name: str | None) -> DType | None:
    """The 16-bit DType a ``mixed_precision=`` name asks for (None: float32)."""
    if name is None or name == "float32":
        return None
    if name not in PRECISIONS:
        raise InputError(
            f"mixed_precision={name!r} is not a precision; use 'bfloat16', 'float16' "
            "or None (float32)"
        )
    dtype = PRECISIONS[name]
    dtype.np  # noqa: B018 -- bfloat16 needs ml_dtypes; say so here, not mid-trace
    return dtype


def autocast_call(fn: Callable[..., Any], low: DType, *args: Any) -> Any:
    """``fn(*args)`` traced and run in mixed precision (see :func:`autocast`).

    Outside a trace it simply calls ``fn``: the policy is a compilation one.

    >>> import numpy as np, graphc as gc
    >>> w = np.ones((3, 2), np.float32)
    >>> f = lambda w, x: np.tanh(x @ w).sum()
    >>> x = np.full((4, 3), 0.3, np.float32)
    >>> mixed = gc.jit(lambda w, x: autocast_call(f, DType.bf16, w, x))
    >>> round(float(f(w, x)), 3), float(mixed(w, x))  # float32, then bfloat16 activations
    (5.73, 5.75)
    """
    outer = current_trace()
    if outer is None:
        return fn(*args)
    traced = trace_flat(fn, args)
    graph = autocast(traced.graph, low)
    flat = tree_flatten(list(args))[0] + list(traced.captured)
    operands = [operand(outer, a, v.type.dtype) for a, v in zip(flat, graph.inputs)]
    values = outer.builder.call(graph, *operands)
    outs = [TracedArray(outer, v, w) for v, w in zip(values, traced.out_weak)]
    return tree_unflatten(traced.out_tree, outs)


def init_scale(opt_state: dict[str, Any], initial: float) -> dict[str, Any]:
    """``opt_state`` with a loss scale and a count of good steps added."""
    return {
        **opt_state,
        "loss_scale": np.asarray(initial, np.float32),
        "good_steps": np.zeros((), np.int64),
    }


def scaled_update(
    optimizer: Any,
    grads: Any,
    opt_state: dict[str, Any],
    params: Any,
    growth_interval: int,
) -> tuple[Any, dict[str, Any]]:
    """The optimizer's update on unscaled gradients, skipped when any is not finite."""
    scale = opt_state["loss_scale"]
    inner = {k: v for k, v in opt_state.items() if k not in SCALE_KEYS}
    grads = tree_map(lambda g: g / scale.astype(g.dtype), grads)
    finite = np.all(np.stack([np.all(np.isfinite(g)) for g in tree_flatten(grads)[0]]))
    safe = tree_map(lambda g: np.where(finite, g, np.zeros_like(g)), grads)
    new_params, new_inner = optimizer.update(safe, inner, params)
    new_params = tree_map(lambda new, old: np.where(finite, new, old), new_params, params)
    new_inner = tree_map(lambda new, old: np.where(finite, new, old), new_inner, inner)
    good = np.where(finite, opt_state["good_steps"] + 1, 0)
    grow = good >= growth_interval
    new_scale = np.where(
        finite, np.where(grow, scale * np.float32(2.0), scale), scale * np.float32(0.5)
    )
    return new_params, {
        **new_inner,
        "loss_scale": new_scale.astype(np.float32),
        "good_steps": np.where(grow, 0, good).astype(np.int64),
    }
