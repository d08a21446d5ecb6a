"""Every registered op against an independent NumPy oracle (``oracles.py``).

For each op, a table of cases (shapes including 0-d, size-1, empty, odd and
broadcast ones; every dtype; edge values) builds a one-op graph with the
builder, runs :func:`graphc.ir.interpret`, and compares shape, dtype and
values with the oracle. Cases the oracle rejects must be rejected by the
op's type rule with an OpTypeError. The test is parametrized from the
registry, so an op registered without an oracle and cases fails here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from graphc.ir import (
    DType,
    Graph,
    GraphBuilder,
    GraphcIndexError,
    Literal,
    OpTypeError,
    TensorType,
    all_ops,
    interpret,
    verify,
)

from .oracles import APPROXIMATE, ORACLES, OutOfRange, Rejected
from .oracles_numerics import DIFFERENCED

# every op on the dtypes the oracles model; small integers and 16-bit floats
# are checked against NumPy itself in tests/test_dtypes.py
DTYPES = (DType.bool, DType.i32, DType.i64, DType.f32, DType.f64)
FLOATS = (DType.f32, DType.f64)
EDGE = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -2.5, 3.5, 1e-30, 100.0])


@dataclass(frozen=True)
class Weak:
    """A Python scalar operand: the builder gives it the first tensor operand's dtype."""

    value: Any


@dataclass
class Case:
    operands: tuple[Any, ...]  # np.ndarray (graph input), Weak or Literal
    attrs: dict[str, Any] = field(default_factory=dict)
    subgraphs: tuple[Any, ...] = ()
    label: str = ""

    def describe(self) -> str:
        def one(x: Any) -> str:
            if isinstance(x, np.ndarray):
                return f"{DType.from_numpy(x.dtype)}{list(x.shape)}"
            return repr(x)

        ops = ", ".join(one(x) for x in self.operands)
        return f"{self.label}({ops}) {self.attrs}"


def sample(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    dtype: DType,
    low: float = -3.0,
    high: float = 3.0,
) -> np.ndarray:
    if dtype.is_bool:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.is_int:
        return np.asarray(rng.integers(int(low), int(high) + 1, size=shape), dtype.np)
    return np.asarray(rng.uniform(low, high, size=shape), dtype.np)


def int_edges(dtype: DType) -> np.ndarray:
    info = np.iinfo(dtype.np)
    edges = [int(info.min), int(info.max), 0, -1, 1, 7]
    return np.array([v for v in edges if info.min <= v <= info.max], dtype.np)


# ---------------------------------------------------------------------------
# Case tables
# ---------------------------------------------------------------------------

UNARY_SHAPES = [(), (1,), (7,), (2, 3), (0,), (3, 1, 2)]
BINARY_SHAPES = [
    ((), ()),
    ((7,), ()),
    ((), (7,)),
    ((5,), (5,)),
    ((2, 3), (3,)),
    ((3, 1), (1, 4)),
    ((1,), (5,)),
    ((2, 1, 3), (4, 1)),
    ((0,), (1,)),
    ((2, 0), (2, 1)),
    ((3,), (4,)),  # does not broadcast
]


def unary_cases(op: str, rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        for shape in UNARY_SHAPES:
            yield Case((sample(rng, shape, dtype),), label=op)
        if dtype.is_float:
            yield Case((EDGE.astype(dtype.np),), label=f"{op} edges")
            yield Case((EDGE.astype(dtype.np).reshape(3, 4).T,), label=f"{op} edges 2-d")
        elif dtype.is_int:
            yield Case((int_edges(dtype),), label=f"{op} int edges")


def binary_cases(op: str, rng: np.random.Generator) -> Iterator[Case]:
    # NumPy refuses negative integer powers at run time; keep exponents >= 0.
    nonneg = op == "pow"
    for dx, dy in itertools.product(DTYPES, DTYPES):
        for sx, sy in BINARY_SHAPES:
            y = sample(rng, sy, dy, low=0 if nonneg else -3)
            yield Case((sample(rng, sx, dx), y), label=op)
    for dtype in FLOATS:
        yield Case(
            (EDGE[:, None].astype(dtype.np), EDGE[None, :].astype(dtype.np)), label=f"{op} edges"
        )
    yield Case((EDGE[:, None].astype(np.float32), EDGE[None, :]), label=f"{op} edges f32,f64")
    for dtype in (DType.i32, DType.i64):
        edges = int_edges(dtype)
        y = edges[None, :] if not nonneg else np.abs(edges[None, 2:])
        yield Case((edges[:, None], y), label=f"{op} int edges")
    # Literal operands: weak Python scalars take the tensor's dtype; strong ones keep theirs.
    weak_values = {
        DType.bool: [True, False],
        DType.i32: [3, 0, -2],
        DType.i64: [3, 0, -2],
        DType.f32: [2.5, -0.0, math.inf, math.nan],
        DType.f64: [2.5, -0.0, -math.inf, math.nan],
    }
    for dtype, values in weak_values.items():
        x = sample(rng, (2, 3), dtype, low=0 if nonneg else -3)
        for v in values:
            if nonneg and not isinstance(v, bool) and dtype.is_int:
                v = abs(v)
            yield Case((x, Weak(v)), label=f"{op} weak")
            yield Case((Weak(v), x), label=f"{op} weak first")
    for dtype in DTYPES:
        x = sample(rng, (4,), dtype, low=0 if nonneg else -3)
        for lit in (Literal(2, DType.i64), Literal(1.5, DType.f64), Literal(True, DType.bool)):
            yield Case((x, lit), label=f"{op} strong")
            yield Case((lit, x), label=f"{op} strong first")


def select_cases(rng: np.random.Generator) -> Iterator[Case]:
    shapes = [
        ((), (), ()),
        ((3,), (3,), (3,)),
        ((2, 1), (3,), (2, 3)),
        ((1,), (), (4,)),
        ((0,), (1,), ()),
        ((2,), (3,), (3,)),
    ]
    for (sc, sx, sy), (dx, dy) in itertools.product(shapes, itertools.product(DTYPES, DTYPES)):
        yield Case((sample(rng, sc, DType.bool), sample(rng, sx, dx), sample(rng, sy, dy)))
    for dtype in DTYPES:
        x = sample(rng, (3,), dtype)
        yield Case((sample(rng, (3,), DType.bool), x, Weak(True if dtype.is_bool else 0)))
        yield Case((sample(rng, (3,), dtype), x, x), label="non-bool condition")
    cond = np.array([True, False, True, False, True, False] * 2)
    yield Case((cond, EDGE, EDGE[::-1].copy()), label="edges")


def cast_cases(rng: np.random.Generator) -> Iterator[Case]:
    for src, dst in itertools.product(DTYPES, DTYPES):
        for shape in ((), (7,), (2, 0), (2, 3)):
            yield Case((sample(rng, shape, src, -100, 100),), {"dtype": dst})
        if src.is_float:
            special = EDGE if not dst.is_int else np.array([0.0, -0.0, 1.5, -1.5, 2.9, -2.9])
            yield Case((special.astype(src.np),), {"dtype": dst}, label="edges")
        if src.is_int:
            yield Case((int_edges(src),), {"dtype": dst}, label="int edges")
    yield Case((sample(rng, (2,), DType.f32),), {"dtype": "float64"}, label="dtype by name")


def identity_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        for shape in UNARY_SHAPES:
            yield Case((sample(rng, shape, dtype),))


def _subsets(ndim: int) -> Iterator[tuple[int, ...]]:
    for r in range(ndim + 1):
        yield from itertools.combinations(range(ndim), r)


def reduction_cases(op: str, rng: np.random.Generator) -> Iterator[Case]:
    shapes = [(), (7,), (2, 3), (2, 3, 4), (3, 0), (0,), (1, 1)]
    for dtype, shape in itertools.product(DTYPES, shapes):
        x = sample(rng, shape, dtype, -2, 2)
        for axes in _subsets(len(shape)):
            for keepdims in (False, True):
                yield Case((x,), {"axes": axes, "keepdims": keepdims})
        if shape:
            yield Case((x,), {"axes": (-1,)}, label="negative axis")
            yield Case((x,), {"axes": (0, -len(shape))}, label="repeated axis")
            yield Case((x,), {"axes": (len(shape),)}, label="axis out of range")
    for dtype in FLOATS:
        yield Case((EDGE.astype(dtype.np).reshape(3, 4),), {"axes": (1,)}, label="edges")
        yield Case((EDGE.astype(dtype.np).reshape(3, 4),), {"axes": (0,)}, label="edges")
    ties = np.array([[1.0, 3.0, 3.0], [-0.0, 0.0, -1.0]])
    yield Case((ties,), {"axes": (1,)}, label="ties")


def argreduce_cases(op: str, rng: np.random.Generator) -> Iterator[Case]:
    for dtype, shape in itertools.product(DTYPES, [(7,), (2, 3), (3, 1, 2), (1,)]):
        x = sample(rng, shape, dtype, -1, 1)  # a small range makes ties likely
        for axis in range(-len(shape), len(shape)):
            for keepdims in (False, True):
                yield Case((x,), {"axis": axis, "keepdims": keepdims})
        yield Case((x,), {"axis": len(shape)}, label="axis out of range")
    yield Case((np.float64(1.0).reshape(()),), {"axis": 0}, label="0-d")
    yield Case((np.zeros((2, 0)),), {"axis": 1}, label="empty axis")
    yield Case((np.zeros((0, 2)),), {"axis": 1}, label="reduce a non-empty axis of an empty array")
    yield Case((EDGE.reshape(3, 4),), {"axis": 1}, label="edges")
    yield Case((np.array([[2, 5, 5, 1], [0, 0, 0, 0]], np.int32),), {"axis": 1}, label="ties")


def cumsum_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype, shape in itertools.product(DTYPES, [(7,), (2, 3), (3, 1, 2), (0, 2)]):
        x = sample(rng, shape, dtype)
        for axis in range(-len(shape), len(shape)):
            for reverse in (False, True):
                yield Case((x,), {"axis": axis, "reverse": reverse})
    yield Case((np.float64(1.0).reshape(()),), {"axis": 0}, label="0-d")
    yield Case((EDGE,), {"axis": 0}, label="edges")


def reshape_cases(rng: np.random.Generator) -> Iterator[Case]:
    table = [
        ((2, 3), (3, 2)),
        ((2, 3), (6,)),
        ((2, 3), (1, 6, 1)),
        ((), (1, 1)),
        ((1, 1), ()),
        ((0, 3), (3, 0)),
        ((7,), (7,)),
        ((2, 3), (4,)),
        ((2, 3), (-1,)),
    ]
    for dtype in DTYPES:
        for src, dst in table:
            yield Case((sample(rng, src, dtype),), {"shape": dst})


def broadcast_cases(rng: np.random.Generator) -> Iterator[Case]:
    table = [
        ((3,), (2, 3), (1,)),
        ((3,), (3, 2), (0,)),
        ((3, 1), (3, 4), (0, 1)),
        ((), (2, 2), ()),
        ((1,), (4, 5), (0,)),
        ((1, 1), (2, 1, 3), (0, 2)),
        ((2, 3), (2, 3), (0, 1)),
        ((0,), (2, 0), (1,)),
        ((3,), (2, 4), (1,)),  # 3 cannot stretch to 4
        ((2, 3), (2, 3, 1), (1, 0)),  # dims must increase
        ((3,), (3,), ()),  # one dim per operand dim
    ]
    for dtype in DTYPES:
        for src, shape, dims in table:
            attrs = {"shape": shape, "broadcast_dimensions": dims}
            yield Case((sample(rng, src, dtype),), attrs)


def transpose_cases(rng: np.random.Generator) -> Iterator[Case]:
    table = [
        ((2, 3), (1, 0)),
        ((2, 3, 4), (2, 0, 1)),
        ((), ()),
        ((5,), (0,)),
        ((2, 3), (0, 0)),
        ((1, 0, 2), (1, 2, 0)),
        ((2, 3), (0,)),
    ]
    for dtype in DTYPES:
        for shape, perm in table:
            yield Case((sample(rng, shape, dtype),), {"perm": perm})


def slice_cases(rng: np.random.Generator) -> Iterator[Case]:
    table = [
        ((7,), (1,), (6,), (2,)),
        ((7,), (0,), (7,), (3,)),
        ((7,), (3,), (3,), (1,)),
        ((4, 5), (1, 0), (4, 5), (2, 3)),
        ((), (), (), ()),
        ((0, 3), (0, 1), (0, 3), (1, 1)),
        ((7,), (0,), (8,), (1,)),  # limit past the end
        ((7,), (4,), (2,), (1,)),  # start after limit
        ((7,), (0,), (7,), (0,)),  # zero stride
        ((7,), (0, 0), (7, 7), (1, 1)),  # too many entries
    ]
    for dtype in DTYPES:
        for shape, start, limit, stride in table:
            attrs = {"start": start, "limit": limit, "stride": stride}
            yield Case((sample(rng, shape, dtype),), attrs)


def reverse_cases(rng: np.random.Generator) -> Iterator[Case]:
    table = [
        ((7,), (0,)),
        ((2, 3), (1,)),
        ((2, 3), (0, 1)),
        ((2, 3), (-1,)),
        ((), ()),
        ((2, 3, 4), (0, 2)),
        ((2, 3), ()),
        ((2, 3), (0, 0)),
        ((2, 3), (2,)),
    ]
    for dtype in DTYPES:
        for shape, axes in table:
            yield Case((sample(rng, shape, dtype),), {"axes": axes})


def pad_cases(rng: np.random.Generator) -> Iterator[Case]:
    table = [
        ((3,), (1,), (2,), (0,)),
        ((3,), (0,), (0,), (2,)),
        ((3,), (-1,), (1,), (1,)),
        ((2, 3), (1, -1), (0, 2), (0, 1)),
        ((4,), (-2,), (-2,), (0,)),
        ((0,), (1,), (1,), (3,)),
        ((1,), (0,), (0,), (5,)),
        ((), (), (), ()),
        ((3,), (-5,), (5,), (1,)),  # crops past the operand into the high padding
        ((3,), (-3,), (-1,), (0,)),  # crops more than the operand has
        ((3,), (0,), (0,), (-1,)),  # negative interior
        ((3,), (0, 0), (0, 0), (0, 0)),  # wrong number of entries
    ]
    for dtype in DTYPES:
        for shape, low, high, interior in table:
            attrs = {"low": low, "high": high, "interior": interior}
            x = sample(rng, shape, dtype)
            yield Case((x, Weak(True if dtype.is_bool else 9)), attrs)
            yield Case((x, sample(rng, (), dtype)), attrs, label="value operand")
    x = sample(rng, (3,), DType.f32)
    cfg = {"low": (1,), "high": (1,), "interior": (0,)}
    yield Case((x, Literal(1.0, DType.f64)), cfg, label="value of another dtype")
    yield Case((x, sample(rng, (2,), DType.f32)), cfg, label="non-scalar value")
    yield Case((EDGE, Weak(-0.0)), {"low": (2,), "high": (1,), "interior": (1,)}, label="edges")


def concatenate_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        a, b, c = (sample(rng, s, dtype) for s in [(2, 3), (2, 1), (2, 0)])
        yield Case((a, b, c), {"axis": 1})
        yield Case((a, b, c), {"axis": -1})
        yield Case((a,), {"axis": 0})
        yield Case((a, a), {"axis": 0})
        yield Case((a, sample(rng, (3, 2), dtype)), {"axis": 0}, label="shapes differ")
        yield Case((a, a), {"axis": 2}, label="axis out of range")
        yield Case((sample(rng, (), dtype), sample(rng, (), dtype)), {"axis": 0}, label="0-d")
    yield Case(
        (sample(rng, (2,), DType.f32), sample(rng, (2,), DType.f64)),
        {"axis": 0},
        label="mixed dtypes",
    )
    yield Case((), {"axis": 0}, label="no operands")


def gather_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        x = sample(rng, (4, 5), dtype)
        for idx_dtype in (np.int32, np.int64):
            for axis in (0, 1, -1):
                n = x.shape[axis]
                for ishape in [(), (3,), (2, 2), (0,)]:
                    idx = rng.integers(-n, n, size=ishape).astype(idx_dtype)
                    yield Case((x, idx), {"axis": axis}, label="gather (negative indices too)")
        yield Case((x, np.array([0, 4], np.int64)), {"axis": 0}, label="index out of range")
        yield Case((x, np.array([-5], np.int64)), {"axis": 0}, label="index out of range")
        yield Case((x, np.array([0, 1], np.int64)), {"axis": 2}, label="axis out of range")
        yield Case((x, np.array([0.0, 1.0])), {"axis": 0}, label="float indices")
        yield Case((x, np.array([True])), {"axis": 0}, label="bool indices")
    yield Case((np.zeros((0, 2)), np.zeros((0,), np.int64)), {"axis": 0}, label="empty")
    yield Case((np.zeros((0, 2)), np.zeros((1,), np.int64)), {"axis": 0}, label="empty axis")


def scatter_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        x = sample(rng, (4, 3), dtype)
        for axis in (0, 1, -2):
            n = x.shape[axis]
            a = axis % 2
            for ishape in [(), (5,), (2, 3), (0,)]:
                idx = rng.integers(-n, n, size=ishape).astype(np.int64)
                ushape = x.shape[:a] + ishape + x.shape[a + 1 :]
                label = "repeated and negative indices accumulate"
                yield Case((x, idx, sample(rng, ushape, dtype)), {"axis": axis}, label=label)
        repeated = np.array([1, 1, -3, 1], np.int32)
        yield Case((x, repeated, sample(rng, (4, 3), dtype)), {"axis": 0}, label="repeats")
        yield Case(
            (x, np.array([4]), sample(rng, (1, 3), dtype)), {"axis": 0}, label="index out of range"
        )
        yield Case(
            (x, np.array([0]), sample(rng, (2, 3), dtype)),
            {"axis": 0},
            label="updates of the wrong shape",
        )
    x = sample(rng, (3,), DType.f32)
    yield Case(
        (x, np.array([0]), sample(rng, (1,), DType.f64)),
        {"axis": 0},
        label="updates of another dtype",
    )


def matmul_cases(rng: np.random.Generator) -> Iterator[Case]:
    shapes = [
        ((3,), (3,)),
        ((2, 3), (3,)),
        ((3,), (3, 4)),
        ((2, 3), (3, 4)),
        ((5, 2, 3), (3, 4)),
        ((5, 2, 3), (1, 3, 4)),
        ((2, 1, 2, 3), (5, 3, 1)),
        ((3,), (2, 3, 4)),
        ((2, 2, 3), (3,)),
        ((1, 1), (1, 1)),
        ((2, 0), (0, 3)),
        ((0, 3), (3, 2)),
        ((2, 3), (4, 5)),  # contracting dims differ
        ((2, 2, 3), (3, 3, 4)),  # batch dims do not broadcast
        ((), (3,)),
    ]
    for (sa, sb), (da, db) in itertools.product(shapes, [(d, d) for d in DTYPES]):
        yield Case((sample(rng, sa, da), sample(rng, sb, db)))
    for da, db in [(DType.f32, DType.f64), (DType.i32, DType.f32), (DType.bool, DType.i64)]:
        yield Case((sample(rng, (2, 3), da), sample(rng, (3, 2), db)), label="mixed dtypes")


def conv_cases(rng: np.random.Generator) -> Iterator[Case]:
    configs = [
        ((1, 1, 5, 5), (1, 1, 3, 3), {}),
        ((2, 3, 7, 6), (4, 3, 3, 2), {"stride": (2, 1)}),
        ((1, 2, 5, 7), (2, 2, 2, 3), {"padding": ((1, 0), (2, 1))}),
        ((1, 2, 7, 7), (3, 2, 3, 3), {"dilation": (2, 1), "stride": (1, 2)}),
        ((2, 4, 5, 5), (6, 2, 3, 3), {"groups": 2, "padding": ((1, 1), (1, 1))}),
        ((1, 4, 4, 4), (4, 1, 1, 1), {"groups": 4}),
        ((1, 1, 1, 1), (1, 1, 1, 1), {}),
        ((1, 3, 4, 4), (2, 2, 3, 3), {}),  # channels differ
        ((1, 1, 2, 2), (1, 1, 3, 3), {}),  # kernel larger than input
        ((1, 4, 4, 4), (2, 2, 1, 1), {"groups": 3}),  # groups do not divide
        ((1, 1, 4), (1, 1, 3, 3), {}),  # not 4-d
    ]
    for xs, ws, attrs in configs:
        for dx, dw in [(DType.f64, DType.f64), (DType.f32, DType.f32), (DType.f32, DType.f64)]:
            yield Case((sample(rng, xs, dx), sample(rng, ws, dw)), attrs)
    yield Case(
        (sample(rng, (1, 1, 3, 3), DType.i32), sample(rng, (1, 1, 2, 2), DType.i32)),
        label="integer conv",
    )


def pool_cases(op: str, rng: np.random.Generator) -> Iterator[Case]:
    configs = [
        ((1, 1, 4, 4), {"window": (2, 2), "stride": (2, 2)}),
        ((2, 3, 5, 7), {"window": (3, 2)}),
        ((1, 2, 5, 5), {"window": (3, 3), "stride": (2, 2), "padding": ((1, 1), (1, 1))}),
        ((1, 1, 4, 5), {"window": (2, 3), "stride": (1, 2), "padding": ((1, 0), (0, 2))}),
        ((1, 1, 1, 1), {"window": (1, 1)}),
        ((1, 1, 3, 3), {"window": (4, 4)}),  # larger than the input
        ((1, 1, 3, 3), {"window": (2, 2), "padding": ((2, 0), (0, 0))}),  # padding >= window
        ((1, 1, 3, 3), {"window": (2, 2), "padding": ((0, 2), (0, 0))}),  # padding >= window
        ((1, 3, 3), {"window": (2, 2)}),  # not 4-d
    ]
    for shape, attrs in configs:
        for dtype in DTYPES:
            x = sample(rng, shape, dtype)
            yield Case((x,), attrs)
            if op == "avg_pool2d":
                yield Case((x,), {**attrs, "count_include_pad": False})
    edges = np.tile(EDGE[:9].reshape(1, 1, 3, 3), (1, 2, 1, 1))
    yield Case((edges,), {"window": (2, 2), "padding": ((1, 1), (1, 1))}, label="edges")


def iota_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        for shape, dim in [
            ((5,), 0),
            ((2, 3), 1),
            ((2, 3), 0),
            ((0, 4), 1),
            ((1,), 0),
            ((3,), 1),
            ((), 0),
        ]:
            yield Case((), {"shape": shape, "dimension": dim, "dtype": dtype})
    yield Case((), {"shape": (3,)}, label="default dtype")


def constant_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        for shape in UNARY_SHAPES:
            yield Case((), {"value": sample(rng, shape, dtype)})
    yield Case((), {"value": EDGE}, label="edges")
    yield Case((), {"value": np.asfortranarray(np.arange(6.0).reshape(2, 3))}, label="fortran")


def random_bits_cases(rng: np.random.Generator) -> Iterator[Case]:
    for kd, cd in [(np.int64, np.int64), (np.int32, np.int64), (np.int64, np.int32)]:
        for key, counter in [(0, 0), (42, 7), (-1, 2**31 - 1), (2**31 - 1, -(2**31))]:
            for shape in [(), (1,), (5,), (2, 3), (0,)]:
                yield Case((np.array(key, kd), np.array(counter, cd)), {"shape": shape})
    yield Case((np.array(2**62 + 5), np.array(-(2**40))), {"shape": (3,)}, label="wide key")
    yield Case((np.array([1, 2]), np.array(0)), {"shape": (2,)}, label="key array")
    yield Case((np.array(1.0), np.array(0)), {"shape": (2,)}, label="float key")
    yield Case((np.array(1), np.array(True)), {"shape": (2,)}, label="bool counter")


def fusion_cases(rng: np.random.Generator) -> Iterator[Case]:
    # One elementwise chain with a broadcast, one multi-output body with a
    # reduction tail, and a nested fusion.
    b = GraphBuilder("body")
    x, y = b.input(TensorType((2, 3), DType.f64)), b.input(TensorType((3,), DType.f64))
    chain = b.build([b.exp(b.mul(b.sub(x, y), 0.5))])
    yield Case(
        (sample(rng, (2, 3), DType.f64), sample(rng, (3,), DType.f64)),
        subgraphs=(chain,),
        label="chain",
    )
    b = GraphBuilder("body")
    x = b.input(TensorType((4,), DType.f32))
    t = b.sub(x, 1.0)
    multi = b.build([t, b.reduce_sum(b.mul(t, t), axes=(0,)), b.gt(t, 0.0)])
    yield Case((sample(rng, (4,), DType.f32),), {"kind": "reduction"}, (multi,), "multi-output")
    b = GraphBuilder("outer")
    x = b.input(TensorType((2, 3), DType.f64))
    y = b.input(TensorType((3,), DType.f64))
    nested = b.build([b.neg(b.fusion(x, y, subgraphs=[chain]))])
    yield Case(
        (sample(rng, (2, 3), DType.f64), sample(rng, (3,), DType.f64)),
        subgraphs=(nested,),
        label="nested",
    )
    yield Case((sample(rng, (3,), DType.f64),), subgraphs=(chain,), label="operands differ")


def remat_cases(rng: np.random.Generator) -> Iterator[Case]:
    # A chain with a matmul, a multi-output body with a reduction and a bool
    # result, a literal operand, a nested remat, and a recomputation.
    b = GraphBuilder("body")
    x, w = b.input(TensorType((2, 3), DType.f64)), b.input(TensorType((3, 4), DType.f64))
    chain = b.build([b.tanh(b.add(b.matmul(x, w), 1.0))])
    operands = (sample(rng, (2, 3), DType.f64), sample(rng, (3, 4), DType.f64))
    yield Case(operands, subgraphs=(chain,), label="chain")
    yield Case(operands, {"recompute": True}, (chain,), "recompute")
    b = GraphBuilder("body")
    x, s = b.input(TensorType((4,), DType.f32)), b.input(TensorType((), DType.f32))
    t = b.mul(x, s)
    multi = b.build([t, b.reduce_sum(b.exp(t), axes=(0,)), b.gt(t, 0.0)])
    yield Case((sample(rng, (4,), DType.f32), Literal(1.5, DType.f32)), subgraphs=(multi,))
    b = GraphBuilder("outer")
    x, w = b.input(TensorType((2, 3), DType.f64)), b.input(TensorType((3, 4), DType.f64))
    nested = b.build([b.neg(b.remat(x, w, subgraphs=[chain]))])
    yield Case(operands, subgraphs=(nested,), label="nested")
    yield Case(operands[::-1], subgraphs=(chain,), label="operands differ")
    yield Case((operands[0].astype(np.float32), operands[1]), subgraphs=(chain,), label="dtype")


def scan_attrs(length: int, nc: int, nx: int, nk: int, reverse: bool = False) -> dict[str, Any]:
    return {
        "length": length,
        "num_carry": nc,
        "num_xs": nx,
        "num_consts": nk,
        "reverse": reverse,
    }


def rnn_body(dtype: DType = DType.f64) -> Graph:
    """(h[3], x[2], w[2,3]) -> (tanh(x @ w + h), 2 h') : an RNN cell."""
    b = GraphBuilder("cell")
    h, x = b.input(TensorType((3,), dtype), "h"), b.input(TensorType((2,), dtype), "x")
    w = b.input(TensorType((2, 3), dtype), "w")
    h_next = b.tanh(b.add(b.matmul(x, w), h))
    return b.build([h_next, b.mul(h_next, 2.0)])


def scan_cases(rng: np.random.Generator) -> Iterator[Case]:
    # An RNN forward and reverse; integer and bool carries and ys; no steps;
    # no xs; a literal carry; a scan nested in the body; rejected signatures.
    h0, xs, w = (
        sample(rng, (3,), DType.f64),
        sample(rng, (5, 2), DType.f64),
        sample(rng, (2, 3), DType.f64),
    )
    for reverse in (False, True):
        yield Case((h0, xs, w), scan_attrs(5, 1, 1, 1, reverse), (rnn_body(),), "rnn")
    b = GraphBuilder("count")
    c, k = b.input(TensorType((4,), DType.f32), "c"), b.input(TensorType((), DType.i64), "k")
    x = b.input(TensorType((4,), DType.f32), "x")
    counting = b.build([b.add(c, x), b.add(k, 1), b.gt(c, 0.0), b.mul(k, 2)])
    yield Case(
        (sample(rng, (4,), DType.f32), np.array(3), sample(rng, (6, 4), DType.f32)),
        scan_attrs(6, 2, 1, 0, True),
        (counting,),
        "int and bool",
    )
    yield Case((h0, np.zeros((0, 2)), w), scan_attrs(0, 1, 1, 1), (rnn_body(),), "no steps")
    b = GraphBuilder("decay")
    c = b.input(TensorType((3,), DType.f64), "c")
    decay = b.build([b.add(b.mul(c, 0.5), 1.0)])
    yield Case((h0,), scan_attrs(4, 1, 0, 0), (decay,), "no xs")
    b = GraphBuilder("total")
    s, x = b.input(TensorType((), DType.f64), "s"), b.input(TensorType((), DType.f64), "x")
    total = b.build([b.add(s, x), b.mul(s, x)])
    yield Case(
        (Literal(0.5, DType.f64), sample(rng, (7,), DType.f64)),
        scan_attrs(7, 1, 1, 0),
        (total,),
        "literal carry",
    )
    b = GraphBuilder("map")
    x = b.input(TensorType((2,), DType.f64), "x")
    mapped = b.build([b.exp(x), b.reduce_sum(x, axes=(0,))])
    yield Case((xs,), scan_attrs(5, 0, 1, 0), (mapped,), "no carry")
    b = GraphBuilder("outer")
    h, row = (
        b.input(TensorType((3,), DType.f64), "h"),
        b.input(TensorType((4, 2), DType.f64), "row"),
    )
    w_in = b.input(TensorType((2, 3), DType.f64), "w")
    inner_h, inner_ys = b.scan(h, row, w_in, subgraphs=[rnn_body()], **scan_attrs(4, 1, 1, 1))
    nested = b.build([inner_h, b.reduce_sum(inner_ys, axes=(0,))])
    yield Case(
        (h0, sample(rng, (3, 4, 2), DType.f64), w), scan_attrs(3, 1, 1, 1), (nested,), "nested"
    )
    yield Case((h0, xs, w), scan_attrs(4, 1, 1, 1), (rnn_body(),), "length differs")
    yield Case((h0, xs, w), scan_attrs(5, 2, 0, 1), (rnn_body(),), "roles differ")
    yield Case((h0, xs, w), scan_attrs(5, 1, 1, 0), (rnn_body(),), "counts differ")
    yield Case((h0.astype(np.float32), xs, w), scan_attrs(5, 1, 1, 1), (rnn_body(),), "carry dtype")
    b = GraphBuilder("bad")
    c = b.input(TensorType((3,), DType.f64), "c")
    wider = b.build([b.reduce_sum(c, axes=(0,))])
    yield Case((h0,), scan_attrs(2, 1, 0, 0), (wider,), "carry changes type")


def cond_cases(rng: np.random.Generator) -> Iterator[Case]:
    # Both outcomes with two results of different dtypes; a literal
    # predicate; branches without operands; rejected predicates and branches.
    b = GraphBuilder("if_true")
    x, s = b.input(TensorType((2, 3), DType.f64), "x"), b.input(TensorType((), DType.i64), "s")
    if_true = b.build([b.mul(b.sin(x), s), b.gt(x, 0.0)])
    b = GraphBuilder("if_false")
    x, s = b.input(TensorType((2, 3), DType.f64), "x"), b.input(TensorType((), DType.i64), "s")
    if_false = b.build([b.exp(x), b.lt(b.reduce_sum(x, axes=(1,), keepdims=True), 0.0)])
    x, s = sample(rng, (2, 3), DType.f64), np.array(3)
    for pred in (True, False):
        yield Case((np.array(pred), x, s), subgraphs=(if_true, if_false), label=f"{pred}")
        yield Case((Literal(pred, DType.bool), x, s), subgraphs=(if_true, if_false))
    b = GraphBuilder("one")
    one = b.build([b.constant(value=np.ones(3))])
    b = GraphBuilder("ramp")
    ramp = b.build([b.iota(shape=(3,), dimension=0, dtype=DType.f64)])
    yield Case((np.array(False),), subgraphs=(one, ramp), label="no operands")
    yield Case((np.array(1), x, s), subgraphs=(if_true, if_false), label="int predicate")
    yield Case((np.array([True]), x, s), subgraphs=(if_true, if_false), label="vector predicate")
    fewer = if_true.replace(outputs=if_true.outputs[:1])
    yield Case((np.array(True), x, s), subgraphs=(if_true, fewer), label="results differ")
    yield Case((np.array(True), x), subgraphs=(if_true, if_false), label="operands differ")


def while_cases(rng: np.random.Generator) -> Iterator[Case]:
    # A loop whose trip count depends on the data (zero, one, several steps);
    # an int carry next to a float one with a constant; rejected signatures.
    b = GraphBuilder("small")
    x, n, lim = (b.input(TensorType((3,), DType.f64), "x"), b.input(TensorType((), DType.i64), "n"),
                 b.input(TensorType((), DType.f64), "lim"))  # fmt: skip
    pred = b.build([b.lt(b.reduce_sum(b.abs(x), axes=(0,)), lim)])
    b = GraphBuilder("grow")
    x, n, lim = (b.input(TensorType((3,), DType.f64), "x"), b.input(TensorType((), DType.i64), "n"),
                 b.input(TensorType((), DType.f64), "lim"))  # fmt: skip
    grow = b.build([b.add(b.mul(x, 2.0), 0.25), b.add(n, 1)])
    x = sample(rng, (3,), DType.f64)
    for limit in (0.0, float(np.abs(x).sum()) + 0.1, 50.0):
        yield Case((x, np.array(0), np.array(limit)), {"num_carry": 2}, (pred, grow), f"{limit}")
    yield Case((x, np.array(0), Literal(9.0, DType.f64)), {"num_carry": 2}, (pred, grow), "literal")
    yield Case((x, np.array(0), np.array(1.0)), {"num_carry": 1}, (pred, grow), "roles differ")
    yield Case((x, np.array(0), np.array(1.0)), {"num_carry": 0}, (pred, grow), "no carry")
    yield Case((x, np.array(0), np.array(1.0)), {"num_carry": 2}, (grow, pred), "swapped")


def barrier_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        for shape in UNARY_SHAPES:
            yield Case((sample(rng, shape, dtype),))
    yield Case((sample(rng, (2, 3), DType.f32), sample(rng, (), DType.i64), Weak(2.0)))
    yield Case((), label="no operands")


def all_reduce_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        for reduction in ("sum", "max", "min"):
            for shape in UNARY_SHAPES:
                yield Case((sample(rng, shape, dtype),), {"reduction": reduction})
    yield Case((sample(rng, (2,), DType.f32),), {"reduction": "mean"}, label="unknown reduction")
    yield Case((sample(rng, (2,), DType.f32),), {"group": -1}, label="negative group")
    yield Case((sample(rng, (2,), DType.f64),), {"group": 3}, label="unregistered group")
    for dtype in (DType.f32, DType.f64):
        for compress in ("bf16", "f16"):
            for shape in UNARY_SHAPES:
                yield Case((sample(rng, shape, dtype),), {"compress": compress})
    yield Case((sample(rng, (2,), DType.f32),), {"compress": "f8"}, label="unknown compression")
    yield Case((sample(rng, (2,), DType.i32),), {"compress": "bf16"}, label="compressed ints")
    yield Case(
        (sample(rng, (2,), DType.f32),), {"compress": "f16", "reduction": "max"}, label="max"
    )


def all_reduce_start_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        for reduction in ("sum", "max"):
            for shape in UNARY_SHAPES:
                yield Case((sample(rng, shape, dtype),), {"reduction": reduction})
    yield Case((sample(rng, (2,), DType.f32),), {"reduction": "mean"}, label="unknown")


def all_reduce_done_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        for shape in UNARY_SHAPES:
            yield Case((sample(rng, shape, dtype),))
    yield Case((sample(rng, (2, 3), DType.f32), sample(rng, (4,), DType.i64)), label="after")


CASES: dict[str, Callable[[np.random.Generator], Iterator[Case]]] = {
    "select": select_cases,
    "cast": cast_cases,
    "stop_gradient": identity_cases,
    "argmax": lambda rng: argreduce_cases("argmax", rng),
    "argmin": lambda rng: argreduce_cases("argmin", rng),
    "cumsum": cumsum_cases,
    "reshape": reshape_cases,
    "broadcast_in_dim": broadcast_cases,
    "transpose": transpose_cases,
    "slice": slice_cases,
    "reverse": reverse_cases,
    "pad": pad_cases,
    "concatenate": concatenate_cases,
    "gather": gather_cases,
    "scatter_add": scatter_cases,
    "matmul": matmul_cases,
    "conv2d": conv_cases,
    "max_pool2d": lambda rng: pool_cases("max_pool2d", rng),
    "avg_pool2d": lambda rng: pool_cases("avg_pool2d", rng),
    "iota": iota_cases,
    "constant": constant_cases,
    "random_bits": random_bits_cases,
    "fusion": fusion_cases,
    "remat": remat_cases,
    "optimization_barrier": barrier_cases,
    "all_reduce": all_reduce_cases,
    "all_reduce_start": all_reduce_start_cases,
    "all_reduce_done": all_reduce_done_cases,
    "scan": scan_cases,
    "cond": cond_cases,
    "while": while_cases,
}
for _name in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min"):
    CASES[_name] = lambda rng, _name=_name: reduction_cases(_name, rng)
UNARY = [
    "neg",
    "exp",
    "exp2",
    "expm1",
    "log",
    "log2",
    "log10",
    "log1p",
    "sqrt",
    "cbrt",
    "rsqrt",
    "sigmoid",
    "tanh",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "asinh",
    "acosh",
    "atanh",
    "erf",
    "abs",
    "sign",
    "floor",
    "ceil",
    "round",
    "not",
    "isnan",
    "isinf",
    "isfinite",
]
BINARY = [
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "max",
    "min",
    "atan2",
    "rem",
    "floordiv",
    "and",
    "or",
    "xor",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
]
for _name in UNARY:
    CASES[_name] = lambda rng, _name=_name: unary_cases(_name, rng)
for _name in BINARY:
    CASES[_name] = lambda rng, _name=_name: binary_cases(_name, rng)


# ---------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------


def oracle_inputs(case: Case) -> list[np.ndarray]:
    weak = next((x.dtype for x in case.operands if isinstance(x, np.ndarray)), None)
    arrays = []
    for x in case.operands:
        if isinstance(x, Weak):
            assert weak is not None
            arrays.append(np.asarray(x.value, dtype=weak))
        elif isinstance(x, Literal):
            arrays.append(x.as_array())
        else:
            arrays.append(x)
    return arrays


def tolerance(op: str, dtype: np.dtype) -> tuple[float, float] | None:
    """(rtol, atol), or None for an exact comparison."""
    if dtype.kind != "f":
        return None
    if dtype == np.float32:
        return (2e-6, 1e-6) if op not in ("conv2d", "matmul", "expm") else (1e-5, 1e-5)
    if op in DIFFERENCED:
        return (1e-8, 1e-12)
    return (1e-13, 1e-14) if op in APPROXIMATE else None


def assert_same(op: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape, f"shape {got.shape} != oracle {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != oracle {want.dtype}"
    tol = tolerance(op, want.dtype)
    if tol is None:
        np.testing.assert_array_equal(got, want)
        if want.dtype.kind == "f":
            zeros = want == 0
            assert np.array_equal(np.signbit(got[zeros]), np.signbit(want[zeros])), "sign of zero"
    else:
        np.testing.assert_allclose(got, want, rtol=tol[0], atol=tol[1], equal_nan=True)


def build_case(op: str, case: Case) -> tuple[Graph, list[np.ndarray]]:
    """The one-op graph of a case and its input arrays; OpTypeError if rejected."""
    b = GraphBuilder(op)
    operands: list[Any] = []
    inputs: list[np.ndarray] = []
    for x in case.operands:
        if isinstance(x, np.ndarray):
            operands.append(b.input(TensorType(x.shape, DType.from_numpy(x.dtype))))
            inputs.append(x)
        elif isinstance(x, Weak):
            operands.append(x.value)
        else:
            operands.append(x)
    result = b.emit(op, *operands, subgraphs=case.subgraphs, **case.attrs)
    outs = list(result) if isinstance(result, tuple) else [result]
    return b.build(outs), inputs


def run_case(op: str, case: Case) -> None:
    """Build, verify and interpret one case and compare it with the oracle."""
    arrays = oracle_inputs(case)
    expected: Any = None
    rejected = out_of_range = False
    try:
        with np.errstate(all="ignore"):
            extra = {"_subgraphs": case.subgraphs} if case.subgraphs else {}
            expected = ORACLES[op](*arrays, **case.attrs, **extra)
    except Rejected:
        rejected = True
    except OutOfRange:
        out_of_range = True

    try:
        g, inputs = build_case(op, case)
    except OpTypeError as exc:
        assert rejected, f"the type rule rejected a case NumPy accepts: {exc}"
        assert str(exc).startswith(op), f"message does not name the op: {exc}"
        return
    assert not rejected, f"the type rule accepted a case it must reject: {g.nodes[-1].outputs}"
    verify(g)
    if out_of_range:
        with pytest.raises(GraphcIndexError, match="out of bounds"):
            interpret(g, *inputs)
        return
    got = interpret(g, *inputs)
    want = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(want)
    for v, gv, wv in zip(g.outputs, got, want):
        assert gv.shape == v.type.shape and gv.dtype == v.type.dtype.np, "result type"
        assert_same(op, gv, np.asarray(wv))


@pytest.mark.parametrize("op", sorted(all_ops()))
def test_op_matches_oracle(op: str) -> None:
    assert op in ORACLES, f"op '{op}' has no oracle in tests/ir/oracles.py"
    assert op in CASES, f"op '{op}' has no cases in tests/ir/test_ops_forward.py"
    rng = np.random.default_rng(sum(map(ord, op)))
    failures = []
    count = 0
    for case in CASES[op](rng):
        count += 1
        try:
            run_case(op, case)
        except AssertionError as exc:
            failures.append(f"{case.describe()}: {str(exc).strip().splitlines()[0]}")
    assert count, f"op '{op}' has no cases"
    assert not failures, f"{len(failures)} of {count} cases failed:\n" + "\n".join(failures[:15])


def test_tables_name_only_registered_ops() -> None:
    registered = set(all_ops())
    assert set(ORACLES) <= registered, set(ORACLES) - registered
    assert set(CASES) <= registered, set(CASES) - registered


def test_philox_known_answers() -> None:
    """The oracle's Philox against the Random123 known-answer vectors."""
    from .oracles import philox4x32_10

    assert philox4x32_10((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    ones = 0xFFFFFFFF
    assert philox4x32_10((ones,) * 4, (ones, ones)) == (
        0x408F276D,
        0x41C83B0E,
        0xA20BC7C6,
        0x6D5451FD,
    )
    assert philox4x32_10(
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)
    ) == (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)


# -- sorting, special functions, factorizations -------------------------------------------------


def _argsort_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in DTYPES:
        for shape in [(7,), (2, 3), (3, 1, 2), (0,), (2, 0)]:
            yield Case((sample(rng, shape, dtype),), label="argsort")
    ties = np.array([[1.0, np.nan, -0.0, 0.0, 1.0, -np.inf, np.nan, 2.0]])
    yield Case((ties,), label="argsort ties and NaN")
    yield Case((np.array(1.0),), label="0-d")


def _polygamma_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in (DType.f32, DType.f64, DType.i64):
        for n in range(4):
            yield Case((sample(rng, (2, 3), dtype, 0.1, 5.0),), {"n": n}, label="polygamma")
    yield Case((EDGE,), {"n": 1}, label="polygamma edges")
    yield Case((EDGE,), {"n": -1}, label="negative order")


def _matrix_cases(op: str, rng: np.random.Generator) -> Iterator[Case]:
    from .oracles_numerics import spd, well_conditioned

    make = spd if op in ("cholesky", "eigh") else well_conditioned
    for dtype in FLOATS:
        for shape in [(1, 1), (3, 3), (2, 4, 4), (2, 1, 3, 3)]:
            a = make(rng, shape, dtype)
            if op in ("solve", "triangular_solve"):
                b = sample(rng, shape[:-1] + (2,), dtype)
                attrs: list[dict[str, Any]] = [{}]
                if op == "triangular_solve":
                    attrs = [
                        {"lower": lo, "transpose_a": t, "unit_diagonal": u}
                        for lo, t, u in itertools.product((True, False), repeat=3)
                    ]
                for at in attrs:
                    yield Case((a, b), at, label=op)
            else:
                yield Case((a,), label=op)
    two = op in ("solve", "triangular_solve")
    rhs = (sample(rng, (3, 2), DType.f64),) if two else ()
    yield Case((sample(rng, (2, 3), DType.f64), *rhs), label="not square")
    yield Case((sample(rng, (3, 3), DType.i64), *rhs), label="integer")
    if two:
        a = well_conditioned(rng, (3, 3), DType.f64)
        yield Case((a, sample(rng, (4, 2), DType.f64)), label="rows differ")
        yield Case((a, sample(rng, (3, 2), DType.f32)), label="dtypes differ")


def _incomplete_cases(op: str, rng: np.random.Generator) -> Iterator[Case]:
    arity = 3 if op.startswith("beta") else 2
    x_high = 8.0 if arity == 2 else 0.95
    for dtype in (DType.f32, DType.f64, DType.i64):
        if op.endswith(("_a", "_grad")) and dtype != DType.f64:
            continue  # the derivative ops are only made on float operands
        shapes = [(2, 3), (3,), ()][:arity]
        params = [sample(rng, s, dtype, 0.3, 6.0) for s in shapes[: arity - 1]]
        x = sample(rng, (2, 3), dtype, 0.05 if arity == 3 else 0.1, x_high)
        if op == "stdtr":
            x = sample(rng, (2, 3), dtype, -6.0, 6.0)
        if op.endswith("inv"):
            x = sample(rng, (2, 3), dtype, 0.02, 0.98)
        yield Case((*params, x), label=op)
    if not op.endswith(("_a", "_grad")):
        edges = [EDGE[:, None]] * (arity - 1) + [EDGE[None, :]]
        yield Case(tuple(e.astype(np.float64) for e in edges), label=f"{op} edges")


CASES["argsort"] = _argsort_cases
for _name in (
    "gammainc", "gammaincc", "betainc", "stdtr", "gammainc_grad_a", "betainc_grad",
    "gammaincinv", "gammainccinv", "betaincinv", "betainccinv",
):  # fmt: skip
    CASES[_name] = lambda rng, _name=_name: _incomplete_cases(_name, rng)
CASES["polygamma"] = _polygamma_cases
for _name in ("gammaln", "digamma", "erfc", "erfinv", "ndtri", "log_ndtr", "i0e", "i1e"):
    CASES[_name] = lambda rng, _name=_name: unary_cases(_name, rng)
for _name in ("cholesky", "solve", "triangular_solve", "slogdet", "eigh", "lu"):
    CASES[_name] = lambda rng, _name=_name: _matrix_cases(_name, rng)


def _expm_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in FLOATS:
        for shape in [(1, 1), (3, 3), (2, 4, 4), (2, 1, 3, 3)]:
            yield Case((sample(rng, shape, dtype, -1.5, 1.5),), label="expm")
        yield Case((np.zeros((3, 3), dtype.np),), label="expm of zero")
        big = np.array([[1.0, 20.0, -3.0], [-4.0, 0.5, 2.0], [0.0, 6.0, -2.0]], dtype.np)
        yield Case((big,), label="expm with squarings")
    yield Case((sample(rng, (2, 3), DType.f64),), label="not square")
    yield Case((sample(rng, (3, 3), DType.i64),), label="integer")


CASES["expm"] = _expm_cases


def _orthogonal_cases(op: str, rng: np.random.Generator) -> Iterator[Case]:
    flag = "full_matrices" if op == "svd" else "complete"
    for dtype in FLOATS:
        for shape in [(3, 3), (4, 2), (2, 4), (2, 3, 2), (1, 1)]:
            for full in (False, True):
                yield Case((sample(rng, shape, dtype),), {flag: full}, label=op)
    yield Case((sample(rng, (3,), DType.f64),), label="1-d")
    yield Case((sample(rng, (3, 3), DType.i64),), label="integer")


CASES["svd"] = lambda rng: _orthogonal_cases("svd", rng)
CASES["qr"] = lambda rng: _orthogonal_cases("qr", rng)
