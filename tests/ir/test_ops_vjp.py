"""Every VJP rule in the registry against central finite differences (float64).

The cases are keyed by op name and the test is parametrized from the
registry: an op with a VJP rule and no cases fails, a differentiable op
without a VJP rule fails, and an op declared non-differentiable must have no
rule (or a rule that returns only ``None``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from graphc.ir import DType, GraphBuilder, Literal, TensorType, all_ops, get_op, interpret

from .vjp_check import Arg, build_vjp_graph, check_graph_vjp, check_vjp

# Ops with no derivative: integer- or bool-valued results, piecewise-constant
# functions, and sources. Their VJP is None.
NOT_DIFFERENTIABLE = frozenset(
    {
        "sign", "floor", "ceil", "round", "not", "isnan", "isinf", "isfinite",
        "floordiv", "and", "or", "xor", "eq", "ne", "lt", "le", "gt", "ge",
        "argmax", "argmin", "iota", "constant", "random_bits", "argsort",
        # Fusion happens after differentiation; the differentiator rejects it.
        "fusion",
    }
)  # fmt: skip
# Rules that raise DifferentiationError: a loop of unknown length, and the
# summed derivatives of the incomplete gamma and beta functions.
REFUSING = frozenset({"while", "gammainc_grad_a", "betainc_grad"})
# Differentiable in value but cut on purpose: the rule exists and returns None.
GRADIENT_STOPPED = frozenset({"stop_gradient"})

POS = Arg((2, 3), 0.3, 3.0)  # positive operand for log, sqrt and friends
UNIT = Arg((2, 3), -0.9, 0.9)  # inside (-1, 1) for asin, acos, atanh
SHAPES = [(), (7,), (2, 3)]


def _matrix_vjp_cases() -> dict[str, list[Any]]:
    rng = np.random.default_rng(11)

    def spd(shape: tuple[int, ...]) -> np.ndarray:
        m = rng.normal(size=shape)
        return m @ np.swapaxes(m, -1, -2) + shape[-1] * np.eye(shape[-1])

    def general(shape: tuple[int, ...]) -> np.ndarray:
        return rng.normal(size=shape) + 3 * np.eye(shape[-1])

    shapes = [(3, 3), (2, 3, 3)]
    tri = [
        {"lower": lo, "transpose_a": t, "unit_diagonal": u}
        for lo in (True, False)
        for t in (True, False)
        for u in (True, False)
    ]
    # eigh: distinct eigenvalues keep the gap terms finite.
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    distinct = q @ np.diag([1.0, 2.5, 4.0]) @ q.T
    return {
        "cholesky": [([Arg(values=spd(s))], {}) for s in shapes],
        "solve": [([Arg(values=general(s)), Arg(s[:-1] + (2,))], {}) for s in shapes],
        "triangular_solve": [([Arg(values=general((3, 3))), Arg((3, 2))], at) for at in tri],
        "slogdet": [([Arg(values=general(s))], {}) for s in shapes],
        "lu": [([Arg(values=rng.normal(size=s))], {}) for s in shapes],
        # the last one needs squarings in the forward and in the rule's double-size expm
        "expm": [([Arg(s, -1.0, 1.0)], {}) for s in [(1, 1), (3, 3), (2, 2, 2)]]
        + [([Arg(values=4 * rng.normal(size=(3, 3)))], {})],
        "eigh": [([Arg(values=distinct + 0.1 * np.triu(rng.normal(size=(3, 3)), 1))], {})],
        "svd": [([Arg(s)], {}) for s in [(3, 3), (4, 2), (2, 4), (2, 3, 2)]]
        + [([Arg((3, 3))], {"full_matrices": True})],
        "qr": [([Arg(s)], {}) for s in [(3, 3), (4, 2), (2, 3, 2)]]
        + [([Arg((3, 3))], {"complete": True})],
    }


def unary(low: float = -2.0, high: float = 2.0, avoid: tuple[float, ...] = ()) -> list[Any]:
    return [([Arg(s, low, high, avoid)], {}) for s in SHAPES]


def binary(
    x: tuple[float, float] = (-2.0, 2.0),
    y: tuple[float, float] = (-2.0, 2.0),
    x_avoid: tuple[float, ...] = (),
    y_avoid: tuple[float, ...] = (),
    literal_x: float = 1.5,
    literal_y: float = 1.5,
) -> list[Any]:
    pairs = [((2, 3), (2, 3)), ((2, 3), (3,)), ((3, 1), (1, 4)), ((), (5,)), ((4,), ())]
    cases: list[Any] = [([Arg(sx, *x, x_avoid), Arg(sy, *y, y_avoid)], {}) for sx, sy in pairs]
    cases.append(([Arg((3,), *x, x_avoid), Arg(literal=literal_y)], {}))
    cases.append(([Arg(literal=literal_x), Arg((3,), *y, y_avoid)], {}))
    return cases


def reductions(avoid_ties: bool = False, low: float = -2.0) -> list[Any]:
    cases = []
    for shape, axes in [
        ((2, 3, 4), (1,)),
        ((2, 3, 4), (0, 2)),
        ((2, 3, 4), (-1,)),
        ((5,), (0,)),
        ((), ()),
        ((2, 3), ()),
        ((2, 3), (0, 1)),
    ]:
        for keepdims in (False, True):
            cases.append(([Arg(shape, low, 2.0)], {"axes": axes, "keepdims": keepdims}))
    return cases


ZEROS_PROD = [
    # A square operand reduced over its first axis: the moved layout has the same shape.
    ([Arg((3, 3), 0.3, 2.0)], {"axes": (0,)}),
    ([Arg((2, 3, 4), 0.3, 2.0)], {"axes": (2, 0)}),
    ([Arg(values=np.array([[0.0, 2.0, 3.0], [1.5, -1.0, 0.5]]))], {"axes": (1,)}),
    ([Arg(values=np.array([[0.0, 2.0, 0.0], [1.5, 0.0, 0.5]]))], {"axes": (1,)}),
    ([Arg(values=np.array([[0.0, 2.0], [0.0, 0.0]]))], {"axes": (0, 1), "keepdims": True}),
]


def conv_cases() -> list[Any]:
    configs = [
        ((1, 1, 5, 5), (1, 1, 3, 3), {}),
        ((2, 3, 7, 6), (4, 3, 3, 2), {"stride": (2, 1)}),
        ((1, 2, 5, 7), (2, 2, 2, 3), {"padding": ((1, 0), (2, 1))}),
        ((1, 2, 7, 8), (3, 2, 3, 2), {"dilation": (2, 1), "stride": (1, 3)}),
        ((2, 4, 5, 5), (6, 2, 3, 3), {"groups": 2, "padding": ((1, 1), (1, 1)), "stride": (2, 2)}),
        ((1, 4, 6, 6), (4, 1, 2, 2), {"groups": 4, "stride": (3, 3), "dilation": (1, 2)}),
        ((1, 1, 6, 6), (1, 1, 2, 2), {"stride": (3, 3), "padding": ((2, 0), (0, 2))}),
    ]
    return [([Arg(xs), Arg(ws)], attrs) for xs, ws, attrs in configs]


def pool_cases(op: str) -> list[Any]:
    configs = [
        ((1, 1, 4, 4), {"window": (2, 2), "stride": (2, 2)}),
        ((2, 3, 5, 7), {"window": (3, 2)}),
        ((1, 2, 5, 5), {"window": (3, 3), "stride": (2, 2), "padding": ((1, 1), (1, 1))}),
        ((1, 1, 4, 5), {"window": (2, 3), "stride": (1, 2), "padding": ((1, 0), (0, 2))}),
        ((1, 1, 7, 7), {"window": (2, 2), "stride": (3, 3)}),
    ]
    cases = [([Arg(shape)], attrs) for shape, attrs in configs]
    if op == "avg_pool2d":
        cases += [([Arg(shape)], {**attrs, "count_include_pad": False}) for shape, attrs in configs]
    return cases


IDX = np.array([[2, -1, 0], [2, 2, -4]], np.int64)  # repeated and negative indices


def remat_cases() -> list[Any]:
    """Bodies with one float argument (the small second-order driver handles
    single-output nodes, and the recomputation has one output per float
    argument), plus integer and literal arguments."""
    f64 = DType.f64
    b = GraphBuilder("body")
    x = b.input(TensorType((2, 3), f64), "x")
    w = b.constant(value=np.linspace(-1.0, 1.0, 12).reshape(3, 4))
    layer = b.build([b.tanh(b.add(b.matmul(b.mul(x, x), w), 0.5))])
    b = GraphBuilder("body")
    x = b.input(TensorType((3,), f64), "x")
    two = b.build([b.exp(x), b.mul(b.sin(x), x)])
    b = GraphBuilder("body")
    x, i = b.input(TensorType((3,), f64), "x"), b.input(TensorType((2,), DType.i64), "i")
    gathered = b.build([b.mul(b.gather(b.exp(x), i, axis=0), 2.0)])
    b = GraphBuilder("body")
    x, s = b.input(TensorType((3,), f64), "x"), b.input(TensorType((), DType.i64), "s")
    scaled = b.build([b.reduce_sum(b.mul(b.log1p(b.mul(x, x)), s), axes=(0,))])
    return [
        ([Arg((2, 3))], {"subgraphs": [layer]}),
        ([Arg((2, 3))], {"subgraphs": [layer], "recompute": True}),
        ([Arg((3,))], {"subgraphs": [two]}),
        ([Arg((3,)), Arg(values=np.array([2, 0]))], {"subgraphs": [gathered]}),
        ([Arg((3,)), Arg(literal=3, dtype=DType.i64)], {"subgraphs": [scaled]}),
    ]


def scan_cases() -> list[Any]:
    """An RNN cell forward and reverse (carry, sliced input and constant all
    differentiated); two carries of which one has no cotangent of its own;
    an integer counter used as an index; a literal constant; a nested scan;
    no steps at all."""
    f64, i64 = DType.f64, DType.i64

    def attrs(body: Any, length: int, nc: int, nx: int, nk: int, **more: Any) -> dict[str, Any]:
        return {
            "subgraphs": [body],
            "length": length,
            "num_carry": nc,
            "num_xs": nx,
            "num_consts": nk,
            **more,
        }

    b = GraphBuilder("cell")
    h, x = b.input(TensorType((3,), f64), "h"), b.input(TensorType((2,), f64), "x")
    w = b.input(TensorType((2, 3), f64), "w")
    h_next = b.tanh(b.add(b.matmul(x, w), b.mul(h, 0.5)))
    cell = b.build([h_next, b.mul(b.sin(h_next), h)])
    b = GraphBuilder("pair")
    p, q, x = (b.input(TensorType((2,), f64), n) for n in ("p", "q", "x"))
    pair = b.build([b.mul(p, b.cos(q)), b.add(q, b.mul(x, p)), b.reduce_sum(b.exp(q), axes=(0,))])
    b = GraphBuilder("index")
    k, acc = b.input(TensorType((), i64), "k"), b.input(TensorType((), f64), "acc")
    table = b.input(TensorType((4,), f64), "table")
    picked = b.gather(table, k, axis=0)
    index = b.build([b.add(k, 1), b.add(acc, b.mul(picked, picked)), b.mul(picked, acc)])
    b = GraphBuilder("scaled")
    h, x = b.input(TensorType((3,), f64), "h"), b.input(TensorType((3,), f64), "x")
    s = b.input(TensorType((), f64), "s")
    scaled = b.build([b.add(b.mul(b.log1p(b.mul(h, h)), s), x)])
    b = GraphBuilder("outer")
    h, rows = b.input(TensorType((3,), f64), "h"), b.input(TensorType((4, 2), f64), "rows")
    w = b.input(TensorType((2, 3), f64), "w")
    inner_h, inner_ys = b.scan(h, rows, w, **attrs(cell, 4, 1, 1, 1))
    nested = b.build([inner_h, b.reduce_sum(inner_ys, axes=(1,))])
    return [
        ([Arg((3,)), Arg((5, 2)), Arg((2, 3))], attrs(cell, 5, 1, 1, 1)),
        ([Arg((3,)), Arg((5, 2)), Arg((2, 3))], attrs(cell, 5, 1, 1, 1, reverse=True)),
        ([Arg((2,)), Arg((2,)), Arg((4, 2))], attrs(pair, 4, 2, 1, 0)),
        ([Arg(values=np.array(0)), Arg(()), Arg((4,))], attrs(index, 4, 2, 0, 1)),
        ([Arg((3,)), Arg((6, 3)), Arg(literal=0.7)], attrs(scaled, 6, 1, 1, 1)),
        ([Arg((3,)), Arg((3, 4, 2)), Arg((2, 3))], attrs(nested, 3, 1, 1, 1)),
        ([Arg((3,)), Arg((0, 2)), Arg((2, 3))], attrs(cell, 0, 1, 1, 1)),
    ]


def cond_cases() -> list[Any]:
    """Both outcomes of a choice between two functions of two operands, with
    two results; an integer operand; a branch that ignores an operand."""
    f64 = DType.f64
    b = GraphBuilder("if_true")
    x, y = b.input(TensorType((2, 3), f64), "x"), b.input(TensorType((3,), f64), "y")
    if_true = b.build([b.mul(b.sin(x), y), b.reduce_sum(b.mul(y, y), axes=(0,))])
    b = GraphBuilder("if_false")
    x, y = b.input(TensorType((2, 3), f64), "x"), b.input(TensorType((3,), f64), "y")
    if_false = b.build([b.exp(x), b.reduce_sum(x, axes=(0, 1))])
    b = GraphBuilder("gather")
    x, i = b.input(TensorType((4,), f64), "x"), b.input(TensorType((2,), DType.i64), "i")
    gather = b.build([b.gather(b.tanh(x), i, axis=0)])
    b = GraphBuilder("other")
    x, i = b.input(TensorType((4,), f64), "x"), b.input(TensorType((2,), DType.i64), "i")
    other = b.build([b.mul(b.slice(x, start=(1,), limit=(3,), stride=(1,)), 3.0)])
    cases = []
    for pred in (True, False):
        cases.append(
            (
                [Arg(values=np.array(pred)), Arg((2, 3)), Arg((3,))],
                {"subgraphs": [if_true, if_false]},
            )
        )
        cases.append(
            (
                [Arg(values=np.array(pred)), Arg((4,)), Arg(values=np.array([3, 0]))],
                {"subgraphs": [gather, other]},
            )
        )
    return cases


VJP_CASES: dict[str, list[Any]] = {
    "neg": unary(),
    "exp": unary(),
    "exp2": unary(),
    "expm1": unary(),
    "log": unary(0.3, 3.0),
    "log2": unary(0.3, 3.0),
    "log10": unary(0.3, 3.0),
    "log1p": unary(-0.6, 3.0),
    "sqrt": unary(0.3, 3.0),
    "cbrt": unary(-3.0, 3.0, avoid=(0.0,)),
    "rsqrt": unary(0.3, 3.0),
    "sigmoid": unary(-5.0, 5.0),
    "tanh": unary(),
    "sin": unary(-4.0, 4.0),
    "cos": unary(-4.0, 4.0),
    "tan": unary(-1.2, 1.2),
    "asin": unary(-0.9, 0.9),
    "acos": unary(-0.9, 0.9),
    "atan": unary(-3.0, 3.0),
    "sinh": unary(),
    "cosh": unary(),
    "asinh": unary(-3.0, 3.0),
    "acosh": unary(1.2, 3.0),
    "atanh": unary(-0.9, 0.9),
    "erf": unary(),
    "abs": unary(avoid=(0.0,)),
    "add": binary(),
    "sub": binary(),
    "mul": binary(),
    "div": binary(y_avoid=(0.0,), literal_x=2.0, literal_y=-0.5),
    "pow": binary(x=(0.3, 2.0), literal_x=2.0, literal_y=3.0)
    + [
        # Integer and bool bases and exponents: only the float operand is differentiated.
        ([Arg(values=np.array([1, 2, 0, 3], np.int32)), Arg((4,))], {}),
        ([Arg(values=np.array([True, False])), Arg((2,))], {}),
        ([Arg((3,), 0.3, 2.0), Arg(values=np.array([2, -1, 0], np.int64))], {}),
        ([Arg((3,), 0.3, 2.0), Arg(values=np.array([True, False, True]))], {}),
        ([Arg((3,), 0.3, 2.0), Arg(literal=True, dtype=DType.bool)], {}),
    ]
    + [
        ([Arg((2, 3), -2.0, 2.0), Arg(literal=2.0)], {}),
        ([Arg((4,), 0.3, 2), Arg(literal=-1.5)], {}),
    ],
    "max": binary(),
    "min": binary(),
    "atan2": binary(x_avoid=(0.0,), y_avoid=(0.0,)),
    "rem": binary(x=(-3.0, 3.0), y=(0.7, 2.0)) + [([Arg((5,), -3, 3), Arg((5,), -2, -0.7)], {})],
    "select": [
        ([Arg(values=np.array([True, False, True])), Arg((3,)), Arg((3,))], {}),
        ([Arg(values=np.array([[True], [False]])), Arg((2, 3)), Arg((3,))], {}),
        ([Arg(values=np.array(True)), Arg(()), Arg((4,))], {}),
        ([Arg(values=np.array([True, False])), Arg((2,)), Arg(literal=0.5)], {}),
    ],
    "cast": [
        ([Arg((2, 3))], {"dtype": DType.f64}),
        # Through float32 and back: finite differences need a large step there.
        ([Arg((2, 3))], {"dtype": DType.f32}, {"eps": 1e-2, "rtol": 1e-4}),
    ],
    "stop_gradient": unary(),
    "reduce_sum": reductions(),
    "reduce_prod": reductions(low=0.3) + ZEROS_PROD,
    "reduce_max": reductions(),
    "reduce_min": reductions(),
    "cumsum": [
        ([Arg(shape)], {"axis": axis, "reverse": reverse})
        for shape, axis in [((7,), 0), ((2, 3), 1), ((2, 3, 4), -3)]
        for reverse in (False, True)
    ],
    "reshape": [([Arg((2, 3))], {"shape": (3, 1, 2)}), ([Arg(())], {"shape": (1, 1)})],
    "broadcast_in_dim": [
        ([Arg((3,))], {"shape": (2, 3), "broadcast_dimensions": (1,)}),
        ([Arg((3, 1))], {"shape": (3, 4), "broadcast_dimensions": (0, 1)}),
        ([Arg(())], {"shape": (2, 2), "broadcast_dimensions": ()}),
        ([Arg((1, 1))], {"shape": (2, 1, 3), "broadcast_dimensions": (0, 2)}),
    ],
    "transpose": [([Arg((2, 3, 4))], {"perm": (2, 0, 1)}), ([Arg((2, 3))], {"perm": (1, 0)})],
    "slice": [
        ([Arg((7,))], {"start": (1,), "limit": (6,), "stride": (2,)}),
        ([Arg((4, 5))], {"start": (1, 0), "limit": (4, 5), "stride": (2, 3)}),
        ([Arg((4, 5))], {"start": (3, 2), "limit": (3, 4), "stride": (1, 1)}),
    ],
    "reverse": [([Arg((2, 3))], {"axes": (0, 1)}), ([Arg((4,))], {"axes": (-1,)})],
    "pad": [
        ([Arg((3,)), Arg(())], {"low": (1,), "high": (2,), "interior": (0,)}),
        ([Arg((3,)), Arg(())], {"low": (0,), "high": (0,), "interior": (2,)}),
        ([Arg((2, 3)), Arg(())], {"low": (1, -1), "high": (0, 2), "interior": (0, 1)}),
        ([Arg((4,)), Arg(())], {"low": (-2,), "high": (-1,), "interior": (1,)}),
        ([Arg((3,)), Arg(literal=0.0)], {"low": (2,), "high": (1,), "interior": (1,)}),
    ],
    "concatenate": [
        ([Arg((2, 3)), Arg((2, 1)), Arg((2, 2))], {"axis": 1}),
        ([Arg((2, 3)), Arg((1, 3))], {"axis": -2}),
        ([Arg((4,))], {"axis": 0}),
    ],
    "gather": [
        ([Arg((4, 5)), Arg(values=IDX)], {"axis": 1}),
        ([Arg((5, 2)), Arg(values=IDX)], {"axis": 0}),
        ([Arg((3,)), Arg(values=np.array(1, np.int32))], {"axis": 0}),
    ],
    "scatter_add": [
        ([Arg((4, 5)), Arg(values=IDX), Arg((4, 2, 3))], {"axis": 1}),
        ([Arg((5, 2)), Arg(values=IDX), Arg((2, 3, 2))], {"axis": 0}),
    ],
    "matmul": [
        ([Arg(sa), Arg(sb)], {})
        for sa, sb in [
            ((3,), (3,)),
            ((2, 3), (3,)),
            ((3,), (3, 4)),
            ((2, 3), (3, 4)),
            ((5, 2, 3), (3, 4)),
            ((5, 2, 3), (1, 3, 4)),
            ((2, 1, 2, 3), (5, 3, 1)),
            ((3,), (2, 3, 4)),
            ((2, 2, 3), (3,)),
        ]
    ],  # fmt: skip
    "conv2d": conv_cases(),
    "max_pool2d": pool_cases("max_pool2d"),
    "avg_pool2d": pool_cases("avg_pool2d"),
    "remat": remat_cases(),
    "scan": scan_cases(),
    "cond": cond_cases(),
    "all_reduce": unary(),
    "all_reduce_start": unary(),
    "all_reduce_done": unary() + [([Arg((2, 3)), Arg((3,))], {})],
    "gammaln": unary(0.3, 4.0),
    "digamma": unary(0.3, 4.0),
    "polygamma": [([Arg((2, 3), 0.3, 4.0)], {"n": n}) for n in range(3)],
    **{
        op: [
            ([Arg((2, 3), 0.3, 6.0), Arg((3,), 0.1, 9.0)], {}),
            ([Arg((), literal=2.5), Arg((2, 3), 0.1, 6.0)], {}),
            ([Arg((2, 3), 0.5, 4.0), Arg((), literal=1.5)], {}),
        ]
        for op in ("gammainc", "gammaincc")
    },
    **{
        op: [([Arg((2, 3), 0.3, 6.0), Arg((3,), 0.05, 0.95)], {})]
        for op in ("gammaincinv", "gammainccinv")
    },
    **{
        op: [([Arg((2, 3), 0.5, 6.0), Arg((3,), 0.5, 6.0), Arg((2, 3), 0.05, 0.95)], {})]
        for op in ("betaincinv", "betainccinv")
    },
    "stdtr": [
        ([Arg((2, 3), 0.3, 30.0), Arg((3,), -6.0, 6.0)], {}),
        ([Arg((), literal=4.0), Arg((2, 3), -3.0, 3.0)], {}),
    ],
    "betainc": [
        ([Arg((2, 3), 0.3, 6.0), Arg((3,), 0.3, 6.0), Arg((2, 3), 0.05, 0.95)], {}),
        ([Arg((), literal=1.0), Arg((3,), 0.5, 3.0), Arg((2, 3), 0.05, 0.95)], {}),
    ],
    "erfc": unary(),
    "erfinv": unary(-0.9, 0.9),
    "ndtri": unary(0.05, 0.95),
    "log_ndtr": unary(-8.0, 3.0),
    "i0e": unary(-3.0, 3.0, avoid=(0.0,)),
    "i1e": unary(-3.0, 3.0) + [([Arg(values=np.array([0.0, 1.0]))], {})],
    **_matrix_vjp_cases(),
    "optimization_barrier": unary()
    + [
        ([Arg((2, 3)), Arg((3,))], {}),
    ],
}


@pytest.mark.parametrize("op", sorted(all_ops()))
def test_vjp_rule_against_finite_differences(op: str) -> None:
    opdef = get_op(op)
    if op in NOT_DIFFERENTIABLE:
        assert opdef.vjp is None, f"{op} is not differentiable but has a VJP rule"
        return
    assert opdef.vjp is not None, f"differentiable op '{op}' has no VJP rule"
    if op in REFUSING:
        # The rule refuses with an error (tests/control/test_loops.py,
        # tests/numerics/test_incomplete.py).
        return
    cases = VJP_CASES.get(op)
    assert cases, f"op '{op}' has a VJP rule but no cases in VJP_CASES"
    for k, (args, attrs, *options) in enumerate(cases):
        if op in GRADIENT_STOPPED:
            rng = np.random.default_rng(k)
            graphs = build_vjp_graph(op, [a.draw(rng) for a in args], attrs)
            assert graphs.differentiated == [], f"{op} must stop the gradient"
            continue
        check_vjp(op, args, attrs, seed=k, **(options[0] if options else {}))


def test_vjp_tables_name_registered_ops() -> None:
    registered = set(all_ops())
    assert set(VJP_CASES) <= registered
    assert NOT_DIFFERENTIABLE <= registered
    assert not set(VJP_CASES) & NOT_DIFFERENTIABLE


def test_integer_operands_get_no_cotangent() -> None:
    """Indices and conditions are never differentiated (their cotangent is None)."""
    cases = [
        ("gather", [np.ones((3, 2)), np.array([0, 2])], {"axis": 0}, [1]),
        ("scatter_add", [np.ones((3, 2)), np.array([0, 0]), np.ones((2, 2))], {"axis": 0}, [1]),
        ("select", [np.array([True, False]), np.ones(2), np.zeros(2)], {}, [0]),
        ("optimization_barrier", [np.ones(2), np.array([1, 2])], {}, [1]),
    ]
    for op, operands, attrs, none in cases:
        graphs = build_vjp_graph(op, operands, attrs)
        assert graphs.none == none, (op, graphs.none)


# ---------------------------------------------------------------------------
# Ties and kinks follow JAX: the cotangent is shared equally among tied
# elements, and |x| has subgradient 0 at 0.
# ---------------------------------------------------------------------------


def vjp_values(op: str, operands: list[Any], ct: np.ndarray, **attrs: Any) -> tuple[Any, ...]:
    graphs = build_vjp_graph(op, operands, attrs)
    arrays = [operands[i] for i in graphs.inputs]
    return interpret(graphs.vjp, *arrays, ct)


def test_max_min_share_ties_equally() -> None:
    x = np.array([1.0, 2.0, 3.0, -0.0])
    y = np.array([1.0, 5.0, 0.0, 0.0])
    ct = np.array([2.0, 3.0, 4.0, 8.0])
    dx, dy = vjp_values("max", [x, y], ct)
    np.testing.assert_array_equal(dx, [1.0, 0.0, 4.0, 4.0])
    np.testing.assert_array_equal(dy, [1.0, 3.0, 0.0, 4.0])
    dx, dy = vjp_values("min", [x, y], ct)
    np.testing.assert_array_equal(dx, [1.0, 3.0, 0.0, 4.0])
    np.testing.assert_array_equal(dy, [1.0, 0.0, 4.0, 4.0])


def test_max_with_literal_at_tie() -> None:
    # relu at exactly 0 (either zero): the constant keeps the tie, x gets nothing
    # (relu'(0) = 0 as in PyTorch and jax.nn.relu), so the mask is out > 0 and
    # reads only the result; NaN passes no cotangent, as before.
    x = np.array([-1.0, 0.0, -0.0, 2.0, np.nan])
    ct = np.array([1.0, 1.0, 1.0, 3.0, 1.0])
    (dx,) = vjp_values("max", [x, Literal(0.0, DType.f64)], ct)
    np.testing.assert_array_equal(dx, [0.0, 0.0, 0.0, 3.0, 0.0])
    (dx,) = vjp_values("max", [Literal(0.0, DType.f64), x], ct)
    np.testing.assert_array_equal(dx, [0.0, 0.0, 0.0, 3.0, 0.0])
    (dx,) = vjp_values("min", [x, Literal(0.0, DType.f64)], ct)
    np.testing.assert_array_equal(dx, [1.0, 0.0, 0.0, 0.0, 0.0])


def test_reduce_max_shares_ties_equally() -> None:
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 5.0]])
    ct = np.array([6.0, 9.0, 1.0])
    (dx,) = vjp_values("reduce_max", [x], ct, axes=(1,))
    np.testing.assert_array_equal(dx, [[0, 3, 3], [3, 3, 3], [0, 0, 1]])
    (dx,) = vjp_values("reduce_min", [x], ct, axes=(1,))
    np.testing.assert_array_equal(dx, [[6, 0, 0], [3, 3, 3], [0, 1, 0]])


def test_max_pool_shares_ties_equally() -> None:
    x = np.array([[[[1.0, 1.0], [0.0, 1.0]]]])
    (dx,) = vjp_values("max_pool2d", [x], np.array([[[[3.0]]]]), window=(2, 2))
    np.testing.assert_array_equal(dx, [[[[1.0, 1.0], [0.0, 1.0]]]])


def test_abs_subgradient_is_zero_at_zero() -> None:
    (dx,) = vjp_values("abs", [np.array([-2.0, 0.0, -0.0, 3.0])], np.ones(4))
    np.testing.assert_array_equal(dx, [-1.0, 0.0, 0.0, 1.0])


def test_pow_gradient_at_zero_base_is_finite() -> None:
    dx, dy = vjp_values("pow", [np.array([0.0, 2.0]), np.array([2.0, 3.0])], np.ones(2))
    np.testing.assert_array_equal(dx, [0.0, 12.0])
    np.testing.assert_allclose(dy, [0.0, 8.0 * np.log(2.0)])


def test_cast_to_integer_has_no_gradient() -> None:
    graphs = build_vjp_graph("cast", [np.array([1.5, -2.0])], {"dtype": DType.i32})
    assert graphs.none == [0]


# ---------------------------------------------------------------------------
# float32 rules stay in float32
# ---------------------------------------------------------------------------


# Bodies fix their argument types, so the float32 cases of remat, scan and
# cond live in tests/remat and tests/control.
@pytest.mark.parametrize("op", sorted(set(VJP_CASES) - {"remat", "scan", "cond"}))
def test_float32_cotangents_stay_float32(op: str) -> None:
    """A rule on f32 operands must not promote to f64 (that would double the
    backward pass's memory and time); the cotangents have the operands' dtype."""
    args, attrs, *_ = VJP_CASES[op][0]
    if op == "cast":
        attrs = {"dtype": DType.f32}
    rng = np.random.default_rng(0)
    operands = [
        Literal(a.literal, DType.f32)
        if a.literal is not None
        else (lambda v: v.astype(np.float32) if v.dtype == np.float64 else v)(a.draw(rng))
        for a in args
    ]
    graphs = build_vjp_graph(op, operands, attrs)
    for ty in graphs.raw_types:
        assert ty.dtype is DType.f32, f"{op}: a cotangent is {ty}"


# ---------------------------------------------------------------------------
# Second order: the VJP graph is IR, so it can be differentiated again.
# ---------------------------------------------------------------------------


# Their first derivatives in the shape parameters refuse a derivative of their
# own; second derivatives in x are checked in tests/numerics/test_incomplete.py.
FIRST_ORDER_ONLY = frozenset(
    {"gammainc", "gammaincc", "betainc", "stdtr"}
    | {"gammaincinv", "gammainccinv", "betaincinv", "betainccinv"}
)


@pytest.mark.parametrize("op", sorted(set(VJP_CASES) - GRADIENT_STOPPED - FIRST_ORDER_ONLY))
def test_vjp_of_vjp(op: str) -> None:
    """Every VJP graph, differentiated again with the small driver, agrees
    with finite differences of the VJP graph: the rules are built from ops
    whose own rules are right, so higher-order gradients work."""
    for k, (args, attrs, *options) in enumerate(VJP_CASES[op]):
        rng = np.random.default_rng(k)
        operands: list[Any] = [
            Literal(a.literal, a.dtype) if a.literal is not None else a.draw(rng) for a in args
        ]
        graphs = build_vjp_graph(op, operands, attrs)
        arrays = [operands[i] for i in graphs.inputs]
        cts = [
            rng.standard_normal(t.shape) if t.dtype.is_float else np.zeros(t.shape, t.dtype.np)
            for t in graphs.forward.output_types
        ]
        eps = options[0].get("eps", 1e-6) if options else 1e-6
        rtol = options[0].get("rtol", 1e-5) if options else 1e-5
        check_graph_vjp(graphs.vjp, [*arrays, *cts], seed=k, eps=eps, rtol=rtol)


def test_reverse_graph_of_a_small_model() -> None:
    """The small driver itself: a two-layer network against finite differences."""
    b = GraphBuilder("mlp")
    x = b.input(TensorType((4, 3), DType.f64), "x")
    w = b.input(TensorType((3, 5), DType.f64), "w")
    h = b.max(b.matmul(x, w), 0.0)
    loss = b.reduce_sum(b.mul(b.tanh(h), h), axes=(0, 1))
    g = b.build([loss])
    rng = np.random.default_rng(3)
    check_graph_vjp(g, [rng.standard_normal((4, 3)), rng.standard_normal((3, 5))])
