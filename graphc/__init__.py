"""graphc: trace plain NumPy model functions into IR, differentiate, optimize, compile."""

from . import ir
from .ir import GraphcError

__version__ = "0.1.0"
__all__ = ["GraphcError", "ir"]
