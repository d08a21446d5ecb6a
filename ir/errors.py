"""The graphc error hierarchy.

Every error graphc raises on purpose derives from :class:`GraphcError`, and
also from the built-in exception a NumPy user would expect in its place
(``TypeError``, ``ValueError``, ``IndexError``), so existing ``except`` clauses
keep working. Messages have four parts: what failed, where (the user's
``file:line`` and source text), why, and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .loc import Loc


def format_message(
    what: str,
    *,
    details: Sequence[str] = (),
    loc: Loc | None = None,
    hint: str | None = None,
) -> str:
    """Assemble a four-part error message.

    >>> print(format_message("matmul: dims differ", details=["lhs %x : f32[2,3]"], hint="fix"))
    matmul: dims differ
      lhs %x : f32[2,3]
      hint: fix
    """
    lines = [what]
    lines += [f"  {d}" for d in details]
    if loc is not None:
        lines.append(f"  at {loc.describe()}")
    if hint:
        lines.append(f"  hint: {hint}")
    return "\n".join(lines)


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose."""


class TracingError(GraphcError, TypeError):
    """A traced value was used where Python needs concrete data."""


class UnsupportedError(GraphcError, TypeError):
    """A NumPy function, dtype or feature that graphc does not support."""


class OpTypeError(GraphcError, TypeError, ValueError):
    """An op's type rule rejected its operands (shapes, dtypes or attributes)."""


class ParseError(GraphcError, ValueError):
    """Malformed IR text. Carries the 1-based ``line`` and ``col``."""

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(f"{message} (line {line}, column {col})")
        self.line = line
        self.col = col


class VerifyError(GraphcError, ValueError):
    """The IR breaks an invariant the verifier checks."""


class InterpretError(GraphcError, RuntimeError):
    """An op failed while the reference interpreter executed it."""


class GraphcIndexError(GraphcError, IndexError):
    """An index is out of bounds or of the wrong kind."""


class GraphcOverflowError(GraphcError, OverflowError):
    """A Python integer in the traced code does not fit the dtype it is used at
    (NumPy raises ``OverflowError`` for the same expression)."""


class DifferentiationError(GraphcError, TypeError):
    """A gradient was requested that does not exist (integer input, non-scalar output...)."""


class BackendError(GraphcError, RuntimeError):
    """A backend cannot compile or run a graph."""


class InputError(GraphcError, TypeError, ValueError):
    """A compiled function was called with arguments that do not fit it."""


class InputOverflowError(InputError, OverflowError):
    """A Python int argument is out of range for the dtype it is used at."""


class LinAlgError(GraphcError, np.linalg.LinAlgError):
    """A matrix the operation cannot handle: singular for ``solve``/``inv``,
    not positive definite for ``cholesky``, an eigen/singular value solver that
    did not converge. Also a ``numpy.linalg.LinAlgError``, as NumPy raises."""
