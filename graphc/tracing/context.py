"""Trace contexts: which graph is being built, and where the user is.

Traces nest (``grad`` inside a traced function, ``jit`` inside ``grad``).
A traced value from an enclosing trace that shows up in an inner one is
*captured*: it becomes an extra input of the inner graph, and whoever binds
the inner graph passes the outer value for it. That is closure conversion,
and it keeps every graph closed.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.ir import (
    GraphBuilder,
    Loc,
    TensorType,
    TracingError,
    UnsupportedError,
    Value,
    format_message,
)

if TYPE_CHECKING:
    from .array import TracedArray

_GRAPHC_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_IR_DIR = os.path.join(os.path.dirname(_GRAPHC_DIR), "ir")
_BACKENDS_DIR = os.path.join(os.path.dirname(_GRAPHC_DIR), "backends")
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))
# SciPy too: when scipy.special.logsumexp calls np.asarray on a tracer, the
# line to show is the user's call, not SciPy's internals.
_SCIPY_DIR = os.path.join(os.path.dirname(_NUMPY_DIR), "scipy")
_SKIP = (
    _GRAPHC_DIR + os.sep,
    _IR_DIR + os.sep,
    _BACKENDS_DIR + os.sep,
    _NUMPY_DIR + os.sep,
    _SCIPY_DIR + os.sep,
)


def user_location(depth: int = 2) -> Loc | None:
    """The first stack frame outside graphc and NumPy: the user's source line."""
    frame = sys._getframe(depth)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_SKIP) and not filename.startswith("<__array_function__"):
            return Loc(filename, frame.f_lineno, None, frame.f_code.co_name)
        frame = frame.f_back  # type: ignore[assignment]
    return None


def user_instruction(depth: int = 2) -> str:
    """The bytecode operation the user's line is executing (``BINARY_SUBSCR``
    while ``table[y]`` runs), or "" when it cannot be told; error messages use
    it to say what the user was doing when NumPy asked a traced value for data."""
    frame = sys._getframe(depth)
    while frame is not None and (
        frame.f_code.co_filename.startswith(_SKIP)
        or frame.f_code.co_filename.startswith("<__array_function__")
    ):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return ""
    import dis

    for ins in dis.get_instructions(frame.f_code):
        if ins.offset == frame.f_lasti:
            if ins.opname == "BINARY_OP" and ins.argrepr == "[]":  # Python 3.14
                return "BINARY_SUBSCR"
            return ins.opname
    return ""


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes ``warnings.warn``, called by the caller of
    this function, point at the user's line (the first frame outside graphc
    and NumPy), however many graphc frames lie in between."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_SKIP):
        frame = frame.f_back
        level += 1
    return level


class Trace:
    """One graph under construction."""

    def __init__(self, name: str, parent: Trace | None) -> None:
        self.builder = GraphBuilder(name)
        self.parent = parent
        self.level = 0 if parent is None else parent.level + 1
        self.active = True
        # captured outer tracers, in capture order, and their inner input values
        self.captured: list[TracedArray] = []
        # paths of the arguments that are None, for errors when one is used as an array
        self.none_arguments: list[str] = []
        self._capture_index: dict[int, Value] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # ``x.trace`` names this trace, so ``x.trace()`` (ndarray.trace) lands here
        raise UnsupportedError(
            format_message(
                "ndarray.trace() is not available on traced arrays",
                loc=user_location(2),
                hint="use np.trace(x, offset, axis1, axis2)",
            )
        )

    def new_input(self, ty: TensorType, name: str, weak: bool = False) -> TracedArray:
        from .array import TracedArray

        return TracedArray(self, self.builder.input(ty, name), weak)

    def value_of(self, x: TracedArray) -> Value:
        """The Value standing for tracer ``x`` inside this trace (capturing if needed)."""
        if x.trace is self:
            return x.value
        if not x.trace.active:
            raise escaped_error()
        ancestor = self.parent
        while ancestor is not None and ancestor is not x.trace:
            ancestor = ancestor.parent
        if ancestor is None:
            raise TracingError(
                format_message(
                    "a traced value from an unrelated trace (another thread's, or a sibling "
                    "transformation's) was used here",
                    loc=user_location(3),
                )
            )
        found = self._capture_index.get(id(x))
        if found is None:
            found = self.builder.input(x.value.type, f"captured{len(self.captured)}")
            self._capture_index[id(x)] = found
            self.captured.append(x)
        return found


class _Stack(threading.local):
    # One stack per thread: tracing in one thread never sees another's traces.
    def __init__(self) -> None:
        self.traces: list[Trace] = []


_STACK = _Stack()


def current_trace() -> Trace | None:
    traces = _STACK.traces
    return traces[-1] if traces else None


def push_trace(name: str) -> Trace:
    from . import intercept

    t = Trace(name, current_trace())
    intercept.enter()
    _STACK.traces.append(t)
    return t


def pop_trace(t: Trace) -> None:
    traces = _STACK.traces
    if not traces or traces[-1] is not t:
        raise TracingError("traces were exited out of order (a trace began in another thread?)")
    traces.pop()
    t.active = False
    from . import intercept

    intercept.exit()


def escaped_error() -> TracingError:
    return TracingError(
        format_message(
            "a traced value escaped from a finished trace (it was stored in a global, a closure "
            "or an attribute while tracing, and used afterwards)",
            loc=user_location(3),
            hint="return values from the traced function instead of storing them",
        )
    )


def innermost(args: Any) -> Trace | None:
    """The deepest trace among the tracers in ``args`` (a flat iterable)."""
    from .array import TracedArray

    best: Trace | None = None
    for a in args:
        if isinstance(a, TracedArray) and (best is None or a.trace.level > best.level):
            best = a.trace
    return best
