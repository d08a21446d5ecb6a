"""Small analyses the rewriting passes ask about operands.

- :func:`known_array`: the value of an operand that is a literal or a
  ``constant`` node.
- :func:`splat`: the single value of an operand whose elements are all equal
  and known (a literal, a broadcast literal, a constant of equal elements).
- :func:`facts`: what holds for every element of an operand: a range, and
  whether it may be NaN or ``-0.0``. The simplifier uses it to apply rewrites
  such as ``x * 0 -> 0`` only where they cannot change NaN, inf or signed-zero
  results.

Each takes a ``producer`` function mapping a Value to its defining node (or
None), so the passes can ask about the graph they are building.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from graphc.ir import DType, Literal, Node, Operand

Producer = Callable[[Operand], "Node | None"]

_MAX_DEPTH = 24  # facts look this far up the graph; further is "unknown"


def known_array(x: Operand, producer: Producer) -> np.ndarray | None:
    """The array ``x`` always holds, for literals and ``constant`` nodes."""
    if isinstance(x, Literal):
        return x.as_array()
    n = producer(x)
    if n is not None and n.op == "constant":
        value: np.ndarray = n.attrs["value"]
        return value
    return None


def splat(x: Operand, producer: Producer) -> Literal | None:
    """A literal equal to every element of ``x``, when that is known.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f")
    >>> z = b.broadcast_in_dim(Literal(0.0, DType.f32), shape=(3,), broadcast_dimensions=())
    >>> producers = {z: b.nodes[-1]}
    >>> splat(z, producers.get)
    0.0:f32
    """
    if isinstance(x, Literal):
        return x
    n = producer(x)
    if n is None:
        return None
    if n.op == "constant":
        return splat_of_array(n.attrs["value"])
    if n.op in ("broadcast_in_dim", "reshape", "transpose", "reverse", "slice", "stop_gradient"):
        return splat(n.inputs[0], producer)
    return None


def splat_of_array(a: np.ndarray) -> Literal | None:
    """The literal every element of ``a`` equals (bit for bit), if there is one."""
    if a.size == 0:
        return None
    first = a.reshape(-1)[:1]
    if a.dtype.kind == "f":
        # Equal bits, so -0.0 and 0.0 (and NaN payloads) are told apart.
        same = bool(np.all(a.view(_uint_of(a.dtype)) == first.view(_uint_of(a.dtype))))
    else:
        same = bool(np.all(a == first))
    if not same:
        return None
    return Literal(first[0].item(), DType.from_numpy(a.dtype))


def _uint_of(dtype: np.dtype) -> type:
    return {1: np.uint8, 2: np.uint16, 4: np.uint32}.get(dtype.itemsize, np.uint64)


def is_splat(x: Operand, producer: Producer, value: float) -> bool:
    """Whether every element of ``x`` is ``value`` (``0`` matches ``-0.0`` too)."""
    lit = splat(x, producer)
    return lit is not None and lit.value == value


def is_negative_zero(lit: Literal) -> bool:
    return lit.dtype.is_float and lit.value == 0 and math.copysign(1.0, lit.value) < 0


@dataclass(frozen=True)
class Facts:
    """What holds for every element: ``lo <= x <= hi`` unless NaN; ``nan``:
    some element may be NaN; ``neg_zero``: some element may be ``-0.0``."""

    lo: float = -math.inf
    hi: float = math.inf
    nan: bool = True
    neg_zero: bool = True

    @property
    def finite(self) -> bool:
        return not self.nan and math.isfinite(self.lo) and math.isfinite(self.hi)

    def union(self, other: Facts) -> Facts:
        return Facts(
            min(self.lo, other.lo),
            max(self.hi, other.hi),
            self.nan or other.nan,
            self.neg_zero or other.neg_zero,
        )


UNKNOWN = Facts()


def _of_dtype(dtype: DType) -> Facts | None:
    if dtype.is_bool:
        return Facts(0, 1, False, False)
    if dtype.is_int:
        info = np.iinfo(dtype.np)
        return Facts(int(info.min), int(info.max), False, False)
    return None


def _of_array(a: np.ndarray) -> Facts:
    if a.size == 0:
        return Facts(0, 0, False, False)
    if a.dtype.kind != "f":
        return Facts(float(a.min()), float(a.max()), False, False)
    nan = bool(np.isnan(a).any())
    real = a[~np.isnan(a)]
    if real.size == 0:
        return Facts(0, 0, True, False)
    neg_zero = bool(np.any((real == 0) & np.signbit(real)))
    return Facts(float(real.min()), float(real.max()), nan, neg_zero)


def facts(x: Operand, producer: Producer, _depth: int = 0) -> Facts:
    """Facts about every element of ``x`` (conservative: unknown means :data:`UNKNOWN`)."""
    base = _of_dtype(x.type.dtype)
    if base is not None:
        return base
    known = known_array(x, producer)
    if known is not None:
        return _of_array(known)
    n = producer(x)
    if n is None or _depth > _MAX_DEPTH:
        return UNKNOWN
    rule = _TRANSFER.get(n.op)
    if rule is None:
        return UNKNOWN

    def arg(i: int) -> Facts:
        return facts(n.inputs[i], producer, _depth + 1)

    found = rule(n, arg)
    # Bounds past the dtype's largest finite value may round to inf.
    limit = float(np.finfo(x.type.dtype.np).max)
    lo = found.lo if found.lo >= -limit else -math.inf
    hi = found.hi if found.hi <= limit else math.inf
    return Facts(lo, hi, found.nan, found.neg_zero)


def _monotone(fn: Callable[[float], float], lo: float, hi: float) -> tuple[float, float]:
    return _safe(fn, lo, -math.inf), _safe(fn, hi, math.inf)


def _safe(fn: Callable[[float], float], v: float, overflow: float) -> float:
    try:
        return fn(v)
    except OverflowError:
        return overflow


def _cast(n: Node, arg: Callable[[int], Facts]) -> Facts:
    src = n.inputs[0].type.dtype
    inner = arg(0)
    if not src.is_float:
        return Facts(inner.lo, inner.hi, False, False)
    dst = n.attrs["dtype"]
    if not dst.is_float or dst.itemsize > src.itemsize:
        return inner
    if dst.is_16bit_float and src != dst:
        # Narrowing to 16 bits may overflow to inf and flush tiny values to zero.
        big = 65504.0 if dst is DType.f16 else 3.3895313892515355e38
        lo = -math.inf if inner.lo < -big else inner.lo
        hi = math.inf if inner.hi > big else inner.hi
        return Facts(lo, hi, inner.nan, inner.neg_zero or inner.lo < 0)
    # Narrowing may round a tiny negative number to -0.0.
    return Facts(inner.lo, inner.hi, inner.nan, inner.neg_zero or inner.lo < 0)


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def _mul(n: Node, arg: Callable[[int], Facts]) -> Facts:
    a, b = arg(0), arg(1)
    if n.inputs[0] is n.inputs[1]:
        lo = 0.0 if a.lo <= 0 <= a.hi else min(a.lo * a.lo, a.hi * a.hi)
        return Facts(lo, max(a.lo * a.lo, a.hi * a.hi), a.nan, False)
    if not (a.finite and b.finite):
        return UNKNOWN
    products = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
    return Facts(min(products), max(products), False, True)


def _add(n: Node, arg: Callable[[int], Facts]) -> Facts:
    a, b = arg(0), arg(1)
    # x + y is -0.0 only when both are -0.0.
    neg_zero = a.neg_zero and b.neg_zero
    if not (a.finite and b.finite):
        return Facts(nan=True, neg_zero=neg_zero)
    return Facts(a.lo + b.lo, a.hi + b.hi, False, neg_zero)


def _select(n: Node, arg: Callable[[int], Facts]) -> Facts:
    return arg(1).union(arg(2))


def _extremum(n: Node, arg: Callable[[int], Facts]) -> Facts:
    a, b = arg(0), arg(1)
    pick = max if n.op == "max" else min
    return Facts(pick(a.lo, b.lo), pick(a.hi, b.hi), a.nan or b.nan, a.neg_zero or b.neg_zero)


def _same(n: Node, arg: Callable[[int], Facts]) -> Facts:
    return arg(0)


def _bounded(lo: float, hi: float, *, keeps_neg_zero: bool) -> Callable[..., Facts]:
    def rule(n: Node, arg: Callable[[int], Facts]) -> Facts:
        a = arg(0)
        return Facts(lo, hi, a.nan or math.isinf(a.lo) or math.isinf(a.hi), keeps_neg_zero)

    return rule


def _unary(fn: Callable[[float], float], *, neg_zero: bool | None) -> Callable[..., Facts]:
    """A monotone increasing ``fn``; ``neg_zero=None`` means "as the operand"."""

    def rule(n: Node, arg: Callable[[int], Facts]) -> Facts:
        a = arg(0)
        lo, hi = _monotone(fn, a.lo, a.hi)
        return Facts(lo, hi, a.nan, a.neg_zero if neg_zero is None else neg_zero)

    return rule


def _abs(n: Node, arg: Callable[[int], Facts]) -> Facts:
    a = arg(0)
    lo = 0.0 if a.lo <= 0 <= a.hi else min(abs(a.lo), abs(a.hi))
    return Facts(lo, max(abs(a.lo), abs(a.hi)), a.nan, False)


def _neg(n: Node, arg: Callable[[int], Facts]) -> Facts:
    a = arg(0)
    return Facts(-a.hi, -a.lo, a.nan, a.lo <= 0 <= a.hi)


def _sqrt(n: Node, arg: Callable[[int], Facts]) -> Facts:
    a = arg(0)
    lo, hi = max(a.lo, 0.0), max(a.hi, 0.0)
    return Facts(math.sqrt(lo), math.sqrt(hi), a.nan or a.lo < 0, a.neg_zero)


def _sum(n: Node, arg: Callable[[int], Facts]) -> Facts:
    # NumPy's sums start from +0.0, so they are never -0.0.
    return Facts(neg_zero=False)


def _iota(n: Node, arg: Callable[[int], Facts]) -> Facts:
    return Facts(0, max(n.attrs["shape"][n.attrs["dimension"]] - 1, 0), False, False)


def _union_all(n: Node, arg: Callable[[int], Facts]) -> Facts:
    out = arg(0)
    for i in range(1, len(n.inputs)):
        out = out.union(arg(i))
    return out


_TRANSFER: dict[str, Callable[[Node, Callable[[int], Facts]], Facts]] = {
    "reshape": _same,
    "transpose": _same,
    "broadcast_in_dim": _same,
    "slice": _same,
    "reverse": _same,
    "stop_gradient": _same,
    "gather": _same,
    "concatenate": _union_all,
    "pad": _union_all,
    "select": _select,
    "iota": _iota,
    "reduce_sum": _sum,
    "cast": _cast,
    "max": _extremum,
    "min": _extremum,
    "mul": _mul,
    "add": _add,
    "neg": _neg,
    "abs": _abs,
    "sqrt": _sqrt,
    "exp": _unary(math.exp, neg_zero=False),
    "sigmoid": _unary(_sigmoid, neg_zero=False),
    "tanh": _unary(math.tanh, neg_zero=None),
    "atan": _unary(math.atan, neg_zero=None),
    "erf": _unary(math.erf, neg_zero=None),
    "sin": _bounded(-1.0, 1.0, keeps_neg_zero=True),
    "cos": _bounded(-1.0, 1.0, keeps_neg_zero=False),
}
