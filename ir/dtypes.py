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
    i8 = "i8"
    i16 = "i16"
    i32 = "i32"
    i64 = "i64"
    u8 = "u8"
    u16 = "u16"
    u32 = "u32"
    u64 = "u64"
    f16 = "f16"
    bf16 = "bf16"
    f32 = "f32"
    f64 = "f64"

    # Enum hashes a member by its name in Python code; a member equals only itself,
    # so hashing by identity is as good and runs in C (dtypes key many lookups).
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value

    def __getitem__(self, shape: int | tuple[int, ...]) -> TensorType:
        """Type sugar: ``f32[2, 3]`` is ``TensorType((2, 3), DType.f32)``; ``f32[()]`` a scalar."""
        from .core import TensorType

        dims = shape if isinstance(shape, tuple) else (shape,)
        return TensorType(tuple(int(d) for d in dims), self)

    @property
    def np(self) -> np.dtype:
        found = _TO_NUMPY.get(self)
        if found is None:
            raise UnsupportedError(
                f"dtype {self} needs the ml_dtypes package (pip install ml_dtypes)"
            )
        return found

    @property
    def is_float(self) -> builtins.bool:
        return self.value in _FLOATS

    @property
    def is_int(self) -> builtins.bool:
        """Signed or unsigned integer."""
        return self.value in _SIGNED or self.value in _UNSIGNED

    @property
    def is_unsigned(self) -> builtins.bool:
        return self.value in _UNSIGNED

    @property
    def accumulator(self) -> DType:
        """The dtype ``np.sum``, ``np.prod`` and ``np.cumsum`` give: bool and
        integers narrower than 64 bits widen to the platform integer of their
        signedness (``u8 -> u64``, ``i16 -> i64``); floats keep their dtype."""
        if self.is_bool or self.value in _SIGNED:
            return DType.i64
        if self.value in _UNSIGNED:
            return DType.u64
        return self

    @property
    def is_16bit_float(self) -> builtins.bool:
        """float16 or bfloat16: stored in 16 bits, computed in float32 lanes and
        rounded after every op (NumPy's and ml_dtypes' loops do the same)."""
        return self is DType.f16 or self is DType.bf16

    @property
    def is_bool(self) -> builtins.bool:
        return self is DType.bool

    @property
    def itemsize(self) -> int:
        found = _ITEMSIZE.get(self)
        return found if found is not None else int(self.np.itemsize)

    @staticmethod
    def from_numpy(dtype: object) -> DType:
        """The DType of a NumPy dtype (or anything ``np.dtype`` accepts)."""
        try:
            nd = np.dtype(dtype)  # type: ignore[call-overload]
        except TypeError as exc:
            raise UnsupportedError(f"not a NumPy dtype: {dtype!r}") from exc
        found = _FROM_NUMPY.get(nd)
        if found is None:
            names = ", ".join(str(d) for d in _TO_NUMPY.values())
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


def _bfloat16() -> np.dtype | None:
    # ml_dtypes (an optional dependency, the library JAX uses) registers
    # bfloat16 with NumPy: its casts, ufunc loops and promotion rules.
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


_FLOATS = frozenset({"f16", "bf16", "f32", "f64"})
_SIGNED = frozenset({"i8", "i16", "i32", "i64"})
_UNSIGNED = frozenset({"u8", "u16", "u32", "u64"})
_BF16 = _bfloat16()
_TO_NUMPY = {
    DType.bool: np.dtype(np.bool_),
    DType.i8: np.dtype(np.int8),
    DType.i16: np.dtype(np.int16),
    DType.i32: np.dtype(np.int32),
    DType.i64: np.dtype(np.int64),
    DType.u8: np.dtype(np.uint8),
    DType.u16: np.dtype(np.uint16),
    DType.u32: np.dtype(np.uint32),
    DType.u64: np.dtype(np.uint64),
    DType.f16: np.dtype(np.float16),
    DType.f32: np.dtype(np.float32),
    DType.f64: np.dtype(np.float64),
}
if _BF16 is not None:
    _TO_NUMPY[DType.bf16] = _BF16
_FROM_NUMPY = {v: k for k, v in _TO_NUMPY.items()}
# Sizes of values are summed over every value of a graph by the scheduler and planner.
_ITEMSIZE = {k: int(v.itemsize) for k, v in _TO_NUMPY.items()}


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
