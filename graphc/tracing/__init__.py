"""Tracing: turn plain NumPy code into IR."""

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
