"""Run a function through the interpreter and both backends and compare each
with NumPy/SciPy on plain arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import graphc as gc
from graphc.pytree import tree_flatten

from ..tracing.helpers import assert_same, check

BACKENDS = ("numpy", "llvm")


def check_all(f: Callable[..., Any], *args: Any, rtol: float | None = None) -> None:
    """Interpreter, NumPy backend and LLVM backend all agree with ``f`` on NumPy."""
    check(f, *args, rtol=rtol, signed_zeros=False)
    with np.errstate(all="ignore"):
        want = tree_flatten(f(*args))[0]
    for backend in BACKENDS:
        got = tree_flatten(gc.jit(f, backend=backend)(*args))[0]
        assert len(got) == len(want)
        for k, (a, b) in enumerate(zip(got, want)):
            try:
                assert_same(np.asarray(a), b, rtol=rtol, signed_zeros=False)
            except AssertionError as exc:
                raise AssertionError(f"{backend} output {k}: {exc}") from None


def raises_at_line(
    f: Callable[..., Any], x: Any, error: type[Exception], words: str, line: int
) -> None:
    """``f(x)`` raises ``error`` mentioning ``words`` and the caller's line,
    under the interpreter (gc.grad-free trace + interpret) and both backends."""
    import pytest

    from graphc.ir import interpret
    from graphc.tracing import trace_flat

    g = trace_flat(f, (x,)).graph
    runs = [lambda: interpret(g, x)] + [
        lambda backend=backend: gc.jit(f, backend=backend)(x) for backend in BACKENDS
    ]
    for run in runs:
        with pytest.raises(error) as info:
            run()
        text = str(info.value)
        assert words in text, text
        assert f":{line}" in text, text
