"""Intercepting SciPy functions written in Python while tracing.

``scipy.special.logsumexp``, ``softmax``, ``scipy.linalg.solve_triangular``
and friends are Python functions that begin with ``np.asarray(x)``, which a
traced array refuses. ``__array_function__`` never sees them, and replacing
the module attribute would miss ``from scipy.special import logsumexp``
done before tracing. So the function object itself is redirected: while any
trace is active (in any thread), its ``__code__`` is a small trampoline that
sends calls with a traced argument to graphc's implementation and every
other call to an unchanged copy of the original. When the last trace ends
the original code is put back. Only modules already imported are patched:
a module imported after a trace began is patched from the next trace on.

Running frames keep the code they started with, so swapping is safe while
other threads call the function; a counter under a lock decides when to
install and remove.
"""

from __future__ import annotations

import functools
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

from .array import TracedArray

# "module:qualname" -> graphc implementation (same signature as SciPy's)
IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {}
_TARGETS: dict[str, tuple[types.FunctionType, types.CodeType, types.FunctionType]] = {}
_LOCK = threading.Lock()
_ACTIVE = [0]


def intercept(module: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the traced version of ``module.name``."""

    def register(impl: Callable[..., Any]) -> Callable[..., Any]:
        IMPLEMENTATIONS[f"{module}:{name}"] = impl
        return impl

    return register


def _has_tracer(args: Any, kwargs: dict[str, Any]) -> bool:
    for x in (*args, *kwargs.values()):
        if isinstance(x, TracedArray):
            return True
        if isinstance(x, (tuple, list)) and any(isinstance(y, TracedArray) for y in x):
            return True
    return False


def dispatch(key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Called by a trampoline: graphc's version for traced arguments."""
    if _has_tracer(args, kwargs):
        return IMPLEMENTATIONS[key](*args, **kwargs)
    return _TARGETS[key][2](*args, **kwargs)


@functools.cache
def _trampoline(key: str, freevars: int) -> types.CodeType:
    # The new code must have as many free variables as the function has
    # closure cells (decorated SciPy functions have some); they are unused.
    cells = [f"_c{k}" for k in range(freevars)]
    touch = f"        if False: ({', '.join(cells)},)\n" if cells else ""
    source = (
        "def _outer():\n"
        + (f"    {' = '.join(cells)} = None\n" if cells else "")
        + "    def trampoline(*args, **kwargs):\n"
        + touch
        + "        import graphc.tracing.scipy_hooks as hooks\n"
        + f"        return hooks.dispatch({key!r}, args, kwargs)\n"
        + "    return trampoline\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<graphc scipy hook {key}>", "exec"), namespace)
    code: types.CodeType = namespace["_outer"]().__code__
    return code


def _resolve(key: str) -> types.FunctionType | None:
    import importlib

    module, name = key.split(":")
    if module not in sys.modules:
        # Not imported: nothing can call it yet, and importing it here would
        # make every first trace pay for scipy.stats.
        return None
    try:
        fn: Any = importlib.import_module(module)
        for part in name.split("."):  # a class attribute: "rv_continuous.logpdf"
            fn = getattr(fn, part)
    except (ImportError, AttributeError):
        return None
    return fn if isinstance(fn, types.FunctionType) else None


def enter() -> None:
    """A trace begins: install the trampolines if none are."""
    with _LOCK:
        _ACTIVE[0] += 1
        if _ACTIVE[0] > 1:
            return
        for key in IMPLEMENTATIONS:
            fn = _resolve(key)
            if fn is None:
                continue
            found = _TARGETS.get(key)
            if found is None or found[0] is not fn:
                original = types.FunctionType(
                    fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
                )
                original.__kwdefaults__ = fn.__kwdefaults__
                found = (fn, fn.__code__, original)
                _TARGETS[key] = found
            fn.__code__ = _trampoline(key, len(fn.__closure__ or ()))


def leave() -> None:
    """A trace ends: the last one out puts the original code back."""
    with _LOCK:
        _ACTIVE[0] -= 1
        if _ACTIVE[0]:
            return
        for fn, code, _ in _TARGETS.values():
            fn.__code__ = code
