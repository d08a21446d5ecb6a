"""Ops with no tensor operands: iota and constant."""

from __future__ import annotations

import numpy as np

from ..core import TensorType
from ..dtypes import DType
from .registry import Attr, OpDef, register
from .rules import type_error


def _iota_rule(*, shape: tuple[int, ...], dimension: int, dtype: DType) -> TensorType:
    if not 0 <= dimension < len(shape):
        raise type_error(f"dimension {dimension} is out of range for shape {list(shape)}")
    if any(d < 0 for d in shape):
        raise type_error(f"shape {list(shape)} has a negative dimension")
    if dtype.is_bool:
        raise type_error("iota counts 0, 1, 2, ...; bool cannot hold that", hint="use i32 or i64")
    return TensorType(shape, dtype)


def _iota_ref(*, shape: tuple[int, ...], dimension: int, dtype: DType) -> np.ndarray:
    line = np.arange(shape[dimension], dtype=dtype.np)
    expand = [1] * len(shape)
    expand[dimension] = shape[dimension]
    return np.broadcast_to(line.reshape(expand), shape).copy()


register(
    OpDef(
        "iota",
        (),
        (Attr("shape", "ints"), Attr("dimension", "int", 0), Attr("dtype", "dtype", DType.i64)),
        _iota_rule,
        _iota_ref,
        None,
        frozenset({"pure"}),
        doc="0, 1, 2, ... along `dimension`, broadcast over the other dims",
    )
)


def _constant_rule(*, value: np.ndarray) -> TensorType:
    return TensorType(tuple(int(d) for d in value.shape), DType.from_numpy(value.dtype))


register(
    OpDef(
        "constant",
        (),
        (Attr("value", "array"),),
        _constant_rule,
        lambda *, value: value,
        None,
        frozenset({"pure"}),
        doc="an array baked into the graph",
    )
)
