"""widen_16bit as a pipeline pass: see :mod:`graphc.ir.widen`.

It runs before fusion, so the casts it adds fuse with their neighbours.
"""

from __future__ import annotations

from graphc.ir.widen import widen_16bit

__all__ = ["widen_16bit"]
