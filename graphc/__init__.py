"""graphc: trace plain NumPy model functions into IR, differentiate, optimize, compile."""

from . import ir
from .api import grad, hvp, jvp, stop_gradient, value_and_grad, vjp
from .ir import (
    DifferentiationError,
    GraphcError,
    InputError,
    OpTypeError,
    ParseError,
    TracingError,
    UnsupportedError,
    VerifyError,
)
from .tracing import trace

__version__ = "0.1.0"
__all__ = [
    "DifferentiationError",
    "GraphcError",
    "InputError",
    "OpTypeError",
    "ParseError",
    "TracingError",
    "UnsupportedError",
    "VerifyError",
    "grad",
    "hvp",
    "ir",
    "jvp",
    "stop_gradient",
    "trace",
    "value_and_grad",
    "vjp",
]
