"""Source locations: where in the user's program a node came from."""

from __future__ import annotations

import linecache
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Loc:
    """A user source position attached to a node.

    ``derived`` names the transformation that produced the node from the one
    at this position (``"vjp"`` for gradient nodes), so a backward node still
    points at the forward line it differentiates.

    >>> str(Loc("model.py", 7, function="loss"))
    'model.py:7'
    """

    file: str
    line: int
    col: int | None = None
    function: str | None = None
    derived: str | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def source_line(self) -> str:
        """The text of the line, or '' when the file cannot be read."""
        try:
            return linecache.getline(self.file, self.line).strip()
        except (OSError, ValueError, UnicodeError):
            # Error reporting must not fail on an odd file name (a NUL byte, say).
            return ""

    def describe(self) -> str:
        """``file:line in function:  source`` for error messages."""
        where = str(self)
        if self.function:
            where += f" in {self.function}"
        if self.derived:
            where += f" ({self.derived})"
        text = self.source_line()
        return f"{where}:  {text}" if text else where

    def with_derived(self, how: str) -> Loc:
        return Loc(self.file, self.line, self.col, self.function, how)
