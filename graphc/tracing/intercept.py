"""NumPy entry points that see traced values while a trace is active.

Three things in unmodified NumPy code never reach ``__array_function__``:
array constructors given lists (``np.array([a, b])``), functions given a
Python list of traced arrays or a traced argument NumPy's dispatcher ignores
(``np.mean([x, y])``, ``np.take(table, y)``), and ``np.r_``/``np.c_``. While
the first trace of the process is active, the module attributes ``np.array``,
``np.mean``... are replaced by wrappers; when the last trace ends, the
originals are put back (unless someone else replaced them meanwhile).

A wrapper acts only for the thread that is tracing, and only when called from
the user's code: any other thread, graphc itself and installed libraries
(NumPy, SciPy...) get NumPy's own function (one Python call later). So
tracing in one thread never changes what NumPy does in another.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.ir import OpTypeError, format_message

from .array import TracedArray
from .constructors import (
    TraceConstant,
    as_constant,
    concatenator,
    convert_lists,
    holds_tracer,
    traced_array,
)
from .context import _BACKENDS_DIR, _GRAPHC_DIR, _IR_DIR, _STACK, user_location
from .dispatch import HANDLERS

_OWN = (
    _GRAPHC_DIR + os.sep,
    _IR_DIR + os.sep,
    _BACKENDS_DIR + os.sep,
    sysconfig.get_paths()["stdlib"] + os.sep,
)
# Installed libraries (NumPy itself, SciPy...) keep NumPy's behaviour: their
# code after an np.asarray expects an ndarray (writes into it, reads its memory).
_LIBRARIES = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")

# Functions whose result, made for the user during a trace, comes back as a
# TraceConstant (so that np.eye(C)[y] can gather with a traced y).
_CONSTANT_MAKERS = (
    "eye identity tri arange linspace logspace geomspace zeros ones full empty "
    "zeros_like ones_like full_like empty_like diag diagflat tril triu"
).split()
_CONSTRUCTORS = "array asarray asanyarray ascontiguousarray asfortranarray".split()


def _tracing_user_call() -> bool:
    """Whether this thread is tracing and the wrapper's caller is user code."""
    if not _STACK.traces:
        return False
    filename = sys._getframe(2).f_code.co_filename
    return not filename.startswith(_OWN) and not any(lib in filename for lib in _LIBRARIES)


def _holds_tracer(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return any(holds_tracer(a) for a in args) or any(holds_tracer(v) for v in kwargs.values())


def _function_wrapper(func: Any, constant_result: bool) -> Callable[..., Any]:
    impl = HANDLERS.get(func)
    name = getattr(func, "__name__", "")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _tracing_user_call():
            return func(*args, **kwargs)
        if impl is not None and _holds_tracer(args, kwargs):
            # what NumPy's dispatch would call, had it looked inside the lists
            args, kwargs = convert_lists(name, args, kwargs)
            return impl(*args, **kwargs)
        result = func(*args, **kwargs)
        return as_constant(result) if constant_result else result

    if hasattr(func, "_implementation"):  # NumPy's dispatcher attribute, kept for introspection
        wrapper._implementation = func._implementation  # type: ignore[attr-defined]
    return wrapper


def _constructor_wrapper(func: Any) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
        if not _tracing_user_call():
            return func(obj, *args, **kwargs)
        if holds_tracer(obj):
            dtype = args[0] if args else kwargs.get("dtype")
            out = traced_array(obj, dtype, int(kwargs.get("ndmin", 0)))
            if kwargs.get("copy") is False and not (
                isinstance(obj, TracedArray) and out.value is obj.value
            ):
                raise OpTypeError(
                    format_message(
                        "Unable to avoid copy while creating an array as requested "
                        "(np.array(..., copy=False) of values that must be converted)",
                        loc=user_location(2),
                        hint="leave out copy=False, as NumPy requires too",
                    )
                )
            return out
        return as_constant(func(obj, *args, **kwargs))

    return wrapper


def _concatenator_class(base: type) -> type:
    class Traced(base):  # type: ignore[misc, valid-type]
        __slots__ = ()

        def __getitem__(self, key: Any) -> Any:
            if _tracing_user_call() and holds_tracer(key):
                return concatenator(
                    key, self.axis, self.ndmin, self.trans1d, self.matrix, np.concatenate
                )
            return super().__getitem__(key)

    Traced.__name__ = Traced.__qualname__ = base.__name__
    return Traced


class _Swap:
    """The wrapped attributes of one namespace: name -> original, name -> wrapper."""

    def __init__(self, namespace: Any) -> None:
        self.names: dict[str, Any] = vars(namespace)
        self.originals: dict[str, Any] = {}
        self.wrappers: dict[str, Any] = {}

    def add(self, name: str, original: Any, wrapper: Any) -> None:
        self.originals[name] = original
        self.wrappers[name] = wrapper

    def install(self) -> None:
        names, originals = self.names, self.originals
        # an attribute someone else replaced before the trace stays theirs
        names.update({n: w for n, w in self.wrappers.items() if names.get(n) is originals[n]})

    def restore(self) -> None:
        names, wrappers = self.names, self.wrappers
        names.update({n: o for n, o in self.originals.items() if names.get(n) is wrappers[n]})


def _replacements() -> list[_Swap]:
    from . import functions  # noqa: F401  (fills HANDLERS)

    swaps = []
    for namespace in (np, np.linalg):
        swap = _Swap(namespace)
        for name, func in list(swap.names.items()):
            if name.startswith("_") or not callable(func) or isinstance(func, (type, np.ufunc)):
                continue
            try:
                handled = func in HANDLERS
            except TypeError:
                continue
            maker = namespace is np and name in _CONSTANT_MAKERS
            if namespace is np and name in _CONSTRUCTORS:
                swap.add(name, func, _constructor_wrapper(func))
            elif handled or maker:
                swap.add(name, func, _function_wrapper(func, maker))
        if namespace is np:
            for name in ("r_", "c_"):
                original = swap.names[name]
                swap.add(name, original, _concatenator_class(type(original))())
        swaps.append(swap)
    return swaps


_LOCK = threading.Lock()
_ACTIVE = 0
_SWAPS: list[_Swap] | None = None


def enter() -> None:
    """A trace starts: install the wrappers if it is the first one."""
    global _ACTIVE, _SWAPS
    with _LOCK:
        if _ACTIVE == 0:
            if _SWAPS is None:
                _SWAPS = _replacements()
            for swap in _SWAPS:
                swap.install()
        _ACTIVE += 1


def exit() -> None:  # noqa: A001 - the pair of enter
    """A trace ends: restore NumPy's functions after the last one (someone who
    replaced one meanwhile keeps their replacement)."""
    global _ACTIVE
    with _LOCK:
        _ACTIVE -= 1
        if _ACTIVE == 0 and _SWAPS is not None:
            for swap in _SWAPS:
                swap.restore()


def active() -> bool:
    """Whether the wrappers are installed (some thread is tracing)."""
    return _ACTIVE > 0


__all__ = ["TraceConstant", "active", "enter", "exit"]
