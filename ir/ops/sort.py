"""Sorting: ``argsort`` along the last axis.

One primitive is enough: sorted values are a ``take_along_axis`` of the
permutation (so their gradient flows back through ``gather``), and order
statistics (median, quantile) index the sorted values. The order is NumPy's
stable sort: equal keys keep their original order and NaNs go last.
"""

from __future__ import annotations

import numpy as np

from ..core import TensorType
from ..dtypes import DType
from .registry import OpDef, register
from .rules import type_error


def _argsort_rule(x: TensorType) -> TensorType:
    if x.ndim == 0:
        raise type_error("argsort needs at least a 1-d operand", hint="reshape scalars to (1,)")
    if x.dtype.is_bool:
        raise type_error("argsort of bool is not supported", hint="cast to an integer type first")
    return TensorType(x.shape, DType.i64)


register(
    OpDef(
        "argsort",
        ("x",),
        (),
        _argsort_rule,
        lambda x: np.argsort(x, axis=-1, kind="stable").astype(np.int64),
        None,
        frozenset({"pure"}),
        doc="stable np.argsort along the last axis (NaNs last)",
    )
)
