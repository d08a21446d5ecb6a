"""Element types and NumPy's promotion rules between them."""

from __future__ import annotations

import builtins
import enum
from typing import TYPE_CHECKING

import numpy as np

from .errors import UnsupportedError

if TYPE_CHECKING:
    from .core import TensorType


class DType(enum.Enum):
    """An element type. Printed with its short name (``f32``).

    >>> DType.from_numpy(np.float32)
    <DType.f32: 'f32'>
    >>> DType.f64.np
    dtype('float64')
    """

    bool = "bool"
    i32 = "i32"
    i64 = "i64"
    f32 = "f32"
    f64 = "f64"

    def __str__(self) -> str:
        return self.value

    def __getitem__(self, shape: int | tuple[int, ...]) -> TensorType:
        """Type sugar: ``f32[2, 3]`` is ``TensorType((2, 3), DType.f32)``; ``f32[()]`` a scalar."""
        from .core import TensorType

        dims = shape if isinstance(shape, tuple) else (shape,)
        return TensorType(tuple(int(d) for d in dims), self)

    @property
    def np(self) -> np.dtype:
        return _TO_NUMPY[self]

    @property
    def is_float(self) -> builtins.bool:
        return self in (DType.f32, DType.f64)

    @property
    def is_int(self) -> builtins.bool:
        return self in (DType.i32, DType.i64)

    @property
    def is_bool(self) -> builtins.bool:
        return self is DType.bool

    @property
    def itemsize(self) -> int:
        return int(self.np.itemsize)

    @staticmethod
    def from_numpy(dtype: object) -> DType:
        """The DType of a NumPy dtype (or anything ``np.dtype`` accepts)."""
        try:
            nd = np.dtype(dtype)  # type: ignore[call-overload]
        except TypeError as exc:
            raise UnsupportedError(f"not a NumPy dtype: {dtype!r}") from exc
        found = _FROM_NUMPY.get(nd)
        if found is None:
            names = ", ".join(str(d.np) for d in DType)
            raise UnsupportedError(
                f"dtype {nd} is not supported; graphc supports {names}",
            )
        return found

    @staticmethod
    def parse(name: str) -> DType:
        """The DType with short name ``name`` (``"f32"``) or NumPy name (``"float32"``)."""
        try:
            return DType(name)
        except ValueError:
            return DType.from_numpy(name)


_TO_NUMPY = {
    DType.bool: np.dtype(np.bool_),
    DType.i32: np.dtype(np.int32),
    DType.i64: np.dtype(np.int64),
    DType.f32: np.dtype(np.float32),
    DType.f64: np.dtype(np.float64),
}
_FROM_NUMPY = {v: k for k, v in _TO_NUMPY.items()}


def promote(*dtypes: DType) -> DType:
    """NumPy's result type for strongly typed operands.

    >>> promote(DType.i32, DType.f32)
    <DType.f64: 'f64'>
    """
    return DType.from_numpy(np.result_type(*(d.np for d in dtypes)))


def scalar_dtype(value: object) -> DType:
    """The dtype NumPy gives a Python scalar on its own (bool, int64, float64)."""
    if isinstance(value, (bool, np.bool_)):
        return DType.bool
    if isinstance(value, (int, np.integer)):
        return (
            DType.from_numpy(np.asarray(value).dtype)
            if isinstance(value, np.integer)
            else DType.i64
        )
    if isinstance(value, (float, np.floating)):
        return (
            DType.from_numpy(np.asarray(value).dtype)
            if isinstance(value, np.floating)
            else DType.f64
        )
    raise UnsupportedError(f"not a supported scalar: {value!r} ({type(value).__name__})")
