"""np.bincount on traced values: a scatter_add into a zero array whose length
is static (``minlength``, or the constant input's own ``max + 1``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import OpTypeError, TracingError

from .array import TracedArray
from .dispatch import as_tracer, error, implements, static_int
from .ops import cast, emit


@implements(np.bincount)
def _bincount(x: Any, weights: Any = None, minlength: Any = 0) -> Any:
    n = static_int(0 if minlength is None else minlength, "minlength")
    if n < 0:
        raise error(OpTypeError, "'minlength' must not be negative")
    if np.ndim(x) != 1:
        raise error(OpTypeError, "np.bincount: object too deep for desired array (x must be 1-d)")
    if weights is not None and np.shape(weights) != np.shape(x):
        raise error(OpTypeError, "np.bincount: the weights and list don't have the same length")
    if isinstance(x, TracedArray):
        if not x.value.type.dtype.is_int:
            raise error(OpTypeError, f"np.bincount: x must be integers, got {x.dtype}")
        if n == 0:
            raise error(
                TracingError,
                "np.bincount of traced values needs minlength=: the result's length would "
                "depend on the data",
                hint="pass minlength=n (values must then lie in [0, n); a larger one is an "
                "IndexError when the graph runs, where NumPy would lengthen the result)",
            )
        # a negative value has no bin (NumPy raises): send it out of range, where the op raises
        idx: Any = np.where(x < 0, n, x)
    else:
        values = np.asarray(x)
        if values.size and values.min() < 0:
            raise error(OpTypeError, "np.bincount: the first argument must be non-negative")
        n = max(n, int(values.max()) + 1 if values.size else 0)
        idx = values.astype(np.int64)
    if weights is None:
        ones = np.ones(np.shape(x), np.int64)
        counts = np.zeros(n, np.int64)
    else:
        # NumPy counts weights in float64, whatever their dtype
        ones = cast(as_tracer(weights, x), np.float64)
        counts = np.zeros(n, np.float64)
    out = as_tracer(counts, x, weights)
    t = out.trace
    idx_t, ones_t = as_tracer(idx, out), as_tracer(ones, out)
    return emit(t, "scatter_add", [t.value_of(out), t.value_of(idx_t), t.value_of(ones_t)], axis=0)
