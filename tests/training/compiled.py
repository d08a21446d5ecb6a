"""The backends a compiled train step can run on in this installation."""

from __future__ import annotations

from graphc.compiler import backend_module
from graphc.ir import GraphcError


def available_backends() -> list[str]:
    """Every compiling backend that loads, plus the reference interpreter.

    The interpreter runs the optimized graph, so it checks the pass pipeline
    even where no code generator is installed.
    """
    names = []
    for name in ("numpy", "llvm"):
        try:
            backend_module(name)
        except GraphcError:
            continue
        names.append(name)
    return names + ["interpret"]


BACKENDS = available_backends()
