"""Tracing: turn plain NumPy code into IR."""

# The handler tables (NumPy functions, SciPy ufuncs and hooks) fill on import.
from . import functions as _functions  # noqa: E402, F401
from .array import TracedArray
from .context import current_trace, user_location, user_stacklevel
from .trace import Traced, evaluate, trace, trace_flat

__all__ = [
    "TracedArray",
    "Traced",
    "current_trace",
    "evaluate",
    "trace",
    "trace_flat",
    "user_location",
    "user_stacklevel",
]
