"""NumPy functions on traced arrays (NEP 18 ``__array_function__``).

The table and its helpers live in :mod:`.dispatch`; importing this module
registers every family of handlers.
"""

from __future__ import annotations

from . import (  # noqa: F401  (imported for their registrations)
    counting,
    decomp_functions,
    einsum,
    elementwise_functions,
    layout_functions,
    linalg_functions,
    matfun_functions,
    reductions,
    scans,
    shape_functions,
    sort_functions,
    spacing_functions,
    special_functions,
    stats_functions,
)
from .dispatch import HANDLERS, apply_function, normalize_axis

__all__ = ["HANDLERS", "apply_function", "normalize_axis"]
