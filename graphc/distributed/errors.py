"""Errors of distributed runs."""

from __future__ import annotations

from ..ir import GraphcError


class DistributedError(GraphcError, RuntimeError):
    """Ranks disagree (different graphs or shapes), or a rank failed or timed out."""
