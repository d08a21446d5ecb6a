"""Direct access to IR ops from user code, eager or traced.

``bind("conv2d", x, w, stride=(2, 2))`` emits the op when any operand is
traced and otherwise evaluates it right away with the op's reference
semantics, so library code (``gc.nn``) runs unchanged both ways.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import DType, GraphBuilder, TensorType, Value, interpret

from .tracing.context import innermost
from .tracing.ops import emit, operand


def bind(op: str, *operands: Any, **attrs: Any) -> Any:
    """Apply primitive ``op`` to ``operands``.

    >>> import numpy as np
    >>> bind("reduce_max", np.array([[1.0, 5.0], [3.0, 2.0]]), axes=(1,))
    array([5., 3.])
    """
    trace = innermost(operands)
    if trace is not None:
        return emit(trace, op, [operand(trace, x) for x in operands], **attrs)
    b = GraphBuilder(op)
    inputs: list[Any] = []
    args: list[Value | Any] = []
    for x in operands:
        if isinstance(x, (bool, int, float)):
            args.append(x)
            continue
        arr = np.asarray(x)
        v = b.input(TensorType(arr.shape, DType.from_numpy(arr.dtype)), f"x{len(inputs)}")
        inputs.append(arr)
        args.append(v)
    out = b.emit(op, *args, **attrs)
    outs = out if isinstance(out, tuple) else (out,)
    results = interpret(b.build(list(outs)), *inputs)
    return results if isinstance(out, tuple) else results[0]
