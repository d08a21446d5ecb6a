"""graphc.backends: code generators that consume only graphc.ir.

A backend is a module with ``NAME``, ``compile(g, plan=None)`` returning a
callable executable (``exe(*arrays) -> tuple of arrays``), and two tables
keyed by op name: ``LOWERINGS`` (ops it implements) and ``DECOMPOSITIONS``
(ops it rewrites into implemented ones). Every registered op must be in one
of the two; ``tests/backends/test_lowering_coverage.py`` checks that for
every backend listed here.

>>> get_backend("numpy").NAME
'numpy'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from graphc.ir import UnsupportedError

# Backend name -> module path, imported on first use.
BACKENDS: dict[str, str] = {
    "numpy": "graphc.backends.numpy",
    "llvm": "graphc.backends.llvm",
}


def register_backend(name: str, module: str) -> None:
    """Make ``get_backend(name)`` import ``module``."""
    BACKENDS[name] = module


def backend_names() -> list[str]:
    """Names of the registered backends."""
    return list(BACKENDS)


def get_backend(name: str) -> ModuleType:
    """The backend module called ``name`` (``"numpy"``, ``"llvm"``...)."""
    module = BACKENDS.get(name)
    if module is None:
        known = ", ".join(sorted(BACKENDS))
        raise UnsupportedError(f"unknown backend '{name}'; available: {known}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UnsupportedError(f"backend '{name}' is unavailable: {exc}") from exc
