"""Derivatives of the regularized incomplete gamma and beta functions in their
shape parameters, which have no closed form.

``gammainc_grad_a(a, x)`` is d/da gammainc(a, x) (d/da gammaincc is its
negative); ``betainc_grad(a, b, x)`` is (d/da, d/db) of betainc(a, b, x).
Both are written as ordinary ops around a ``while`` loop that sums until
every element has converged (:func:`gammainc_grad_a_ops`,
:func:`betainc_grad_ops`); backends rewrite the ops into that form and the
reference interprets it, so all three run the same algorithm natively.

The algorithms differentiate the classical expansions term by term (as in
Moore's and Boik and Robison-Cox's methods):

- gamma, x < 1 or x <= a: the series
  P(a, x) = x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a + 1) ... (a + n));
- gamma, otherwise: Legendre's continued fraction for Q(a, x) = 1 - P(a, x),
  whose numerators and denominators are carried with their a-derivatives;
- beta: the continued fraction for I_x(a, b) where x < (a + 1) / (a + b + 2),
  else the same for I_(1-x)(b, a) = 1 - I_x(a, b).

Each writes the derivative as (the function's value) * (a log-derivative),
with the value from the accurate ``gammainc``/``gammaincc``/``betainc`` ops,
so it keeps relative accuracy where the function is tiny. A loop stops when
each term changes its sums by less than 1e-16 relative, or after
``MAX_TERMS`` terms; elements not converged by then (shape parameters beyond
about 1e8) are NaN rather than an inaccurate number.

>>> import numpy as np
>>> from graphc.ir import GraphBuilder, f64, interpret
>>> b = GraphBuilder("f"); a = b.input(f64[2], "a")
>>> g = b.build([b.gammainc_grad_a(a, 1.0)])   # d/da gammainc(a, 1)
>>> np.round(interpret(g, np.array([1.0, 2.0]))[0], 6)
array([-0.43173 , -0.276196])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.special

from ..builder import GraphBuilder
from ..core import Literal, Operand, TensorType, Value
from ..dtypes import DType
from ..errors import DifferentiationError, format_message
from ..loc import Loc
from .registry import OpDef, register
from .rules import broadcast_shapes, resolve_ufunc

MAX_TERMS = 100_000
_EPS = 1e-16
F64 = DType.f64
_ZERO = Literal(0.0, F64)
_NAN = Literal(float("nan"), F64)

Step = Callable[[GraphBuilder, int, list[Value], list[Value]], tuple[list[Any], list[Any]]]


def _full(b: GraphBuilder, operand: Operand, shape: tuple[int, ...]) -> Value:
    v: Value = (
        b.emit("constant", value=np.asarray(float(operand.value)))
        if isinstance(operand, Literal)
        else operand
    )
    if v.type.dtype != F64:
        v = b.cast(v, dtype=F64)
    if v.type.shape == shape:
        return v
    dims = tuple(range(len(shape) - v.type.ndim, len(shape)))
    out: Value = b.broadcast_in_dim(v, shape=shape, broadcast_dimensions=dims)
    return out


def _converge(
    b: GraphBuilder, init: Sequence[Operand], consts: Sequence[Value], step: Step
) -> list[Value]:
    """Run ``step`` until no element reports a change (or MAX_TERMS steps).

    ``step(b, k, carry, consts)`` (k: the 1-based step number, an f64 scalar
    value) returns the new carry and the bool arrays that are true where an
    element has not converged yet. Returns the final carry, then a bool array
    ``converged``.
    """
    shape = consts[0].type.shape
    if math.prod(shape) == 0:  # nothing to sum (and no "any" over no elements)
        done = b.broadcast_in_dim(np.asarray(True), shape=shape, broadcast_dimensions=())
        return [*(_full(b, v, shape) for v in init), done]
    counter = b.emit("constant", value=np.asarray(0.0))
    running = b.emit("constant", value=np.asarray(True))
    unsettled = b.broadcast_in_dim(np.asarray(True), shape=shape, broadcast_dimensions=())
    carry0 = [counter, running, unsettled, *(_full(b, v, shape) for v in init)]
    types = [v.type for v in carry0] + [c.type for c in consts]

    pred = GraphBuilder("converging")
    args = [pred.input(t) for t in types]
    pred_graph = pred.build([args[1]])

    body = GraphBuilder("term")
    args = [body.input(t) for t in types]
    k = body.add(args[0], 1.0)
    carry, consts_in = args[3 : len(carry0)], args[len(carry0) :]
    new, changing = step(body, k, carry, consts_in)
    moving = changing[0]
    for c in changing[1:]:
        moving = body.emit("or", moving, c)
    # Settling is final and freezes an element: its sums would otherwise keep
    # moving by rounding noise (or underflow) while other elements converge.
    unsettled = args[2]
    moving = body.emit("and", unsettled, moving)
    new = [body.select(unsettled, v, old) for v, old in zip(new, carry, strict=True)]
    axes = tuple(range(len(shape)))
    any_moving = body.reduce_max(moving, axes=axes) if axes else moving
    more = body.emit("and", any_moving, body.lt(k, float(MAX_TERMS)))
    body_graph = body.build([k, more, moving, *new])

    out = b.emit(
        "while", *carry0, *consts, subgraphs=[pred_graph, body_graph], num_carry=len(carry0)
    )
    return [*out[3:], b.emit("not", out[2])]


def _changed(b: GraphBuilder, delta: Any, total: Any) -> Any:
    return b.gt(b.abs(delta), b.mul(b.abs(total), _EPS))


def _gamma_series(b: GraphBuilder, a: Value, x: Value) -> tuple[Value, Value]:
    """The series sum S and its a-derivative: S = sum_n c_n with c_0 = 1,
    c_n = c_(n-1) x / (a + n)."""

    def step(b: GraphBuilder, k: Any, carry: list[Value], consts: list[Value]) -> Any:
        c, dc, s, ds = carry
        a, x = consts
        inv = b.div(1.0, b.add(a, k))
        c = b.mul(c, b.mul(x, inv))
        dc = b.sub(b.mul(dc, b.mul(x, inv)), b.mul(c, inv))
        s, ds = b.add(s, c), b.add(ds, dc)
        return [c, dc, s, ds], [_changed(b, c, s), _changed(b, dc, ds)]

    c, dc, s, ds, done = _converge(b, [Literal(1.0, F64), Literal(0.0, F64)] * 2, [a, x], step)
    return b.select(done, s, np.nan), ds


def _recurrence(b: GraphBuilder, coef: Any, a_prev: Any, a_cur: Any, d_prev: Any, d_cur: Any,
                dcoef: Sequence[Any], bn: Any, dbn: Any) -> tuple[Any, list[Any]]:  # fmt: skip
    """A_n = b_n A_(n-1) + a_n A_(n-2) and its derivatives (one per parameter)."""
    new = b.add(b.mul(bn, a_cur), b.mul(coef, a_prev))
    dnew = []
    for dp, dc, da_n, db_n in zip(d_prev, d_cur, dcoef, dbn, strict=True):
        term = b.add(b.mul(bn, dc), b.mul(coef, dp))
        term = b.add(term, b.mul(da_n, a_prev))
        dnew.append(b.add(term, b.mul(db_n, a_cur)) if db_n is not None else term)
    return new, dnew


def _fraction_step(
    b: GraphBuilder,
    carry: list[Value],
    coef: Any,
    dcoef: Sequence[Any],
    bn: Any,
    dbn: Sequence[Any],
) -> tuple[list[Any], list[Any]]:
    """One step of F = b_0 + a_1 / (b_1 + a_2 / (b_2 + ...)) by the forward
    recurrence, renormalized so that B_n = 1 (so F_n = A_n): the derivatives
    dF = (dA B - A dB) / B^2 are unchanged by a common scale.

    carry: A_(n-2), A_(n-1), B_(n-2), then per parameter dA_(n-2), dA_(n-1),
    dB_(n-2), dB_(n-1) (B_(n-1) = 1 after the previous step).
    """
    p = len(dcoef)
    a0, a1, b0 = carry[:3]
    dA0, dA1, dB0, dB1 = (carry[3 + i * p : 3 + (i + 1) * p] for i in range(4))
    one = Literal(1.0, F64)
    a2, dA2 = _recurrence(b, coef, a0, a1, dA0, dA1, dcoef, bn, dbn)
    b2, dB2 = _recurrence(b, coef, b0, one, dB0, dB1, dcoef, bn, dbn)
    scale = b.div(1.0, b.select(b.eq(b2, 0.0), 1.0, b2))
    new_a1 = b.mul(a2, scale)
    new = [b.mul(a1, scale), new_a1, scale]
    derivs = [b.mul(v, scale) for v in dA1] + [b.mul(v, scale) for v in dA2]
    derivs += [b.mul(v, scale) for v in dB1] + [b.mul(v, scale) for v in dB2]
    changing = [_changed(b, b.sub(new_a1, a1), new_a1)]
    for i in range(p):
        old_d = b.sub(dA1[i], b.mul(a1, dB1[i]))
        new_d = b.sub(derivs[p + i], b.mul(new_a1, derivs[3 * p + i]))
        changing.append(_changed(b, b.sub(new_d, old_d), b.add(b.abs(new_d), b.abs(new_a1))))
    return [*new, *derivs], changing


def _fraction_result(b: GraphBuilder, out: list[Value], p: int) -> tuple[Value, list[Value]]:
    """F and dF/F per parameter from a finished loop (B_n = 1)."""
    f = out[1]
    dA1 = out[3 + p : 3 + 2 * p]
    dB1 = out[3 + 3 * p : 3 + 4 * p]
    return f, [b.div(b.sub(da, b.mul(f, db)), f) for da, db in zip(dA1, dB1, strict=True)]


def _fraction_init(b0: Any, db0: Sequence[Any]) -> list[Any]:
    zero = Literal(0.0, F64)
    p = len(db0)
    # A_(-1) = 1, A_0 = b_0, B_(-1) = 0, B_0 = 1.
    return [Literal(1.0, F64), b0, zero, *([zero] * p), *db0, *([zero] * 2 * p)]


def _gamma_fraction(b: GraphBuilder, a: Value, x: Value) -> tuple[Value, Value]:
    """Legendre's fraction: Q = x^a e^-x / Gamma(a) / F with
    F = (x + 1 - a) + a_1 / ((x + 3 - a) + ...), a_n = n (a - n). Returns
    F and dF/da / F."""

    def step(b: GraphBuilder, k: Any, carry: list[Value], consts: list[Value]) -> Any:
        a, x = consts
        coef = b.mul(k, b.sub(a, k))
        bn = b.sub(b.add(x, b.add(b.mul(k, 2.0), 1.0)), a)
        return _fraction_step(b, carry, coef, [k], bn, [Literal(-1.0, F64)])

    b0 = b.sub(b.add(x, 1.0), a)
    out = _converge(b, _fraction_init(b0, [Literal(-1.0, F64)]), [a, x], step)
    f, (dlog,) = _fraction_result(b, out[:-1], 1)
    return b.select(out[-1], f, np.nan), dlog


def gammainc_grad_a_ops(b: GraphBuilder, a: Operand, x: Operand, dtype: DType) -> Value:
    """d/da gammainc(a, x) in ordinary ops (float64 inside, ``dtype`` out)."""
    shape = broadcast_shapes(a.type.shape, x.type.shape)
    a, x = _full(b, a, shape), _full(b, x, shape)
    valid = b.emit("and", b.gt(a, 0.0), b.gt(x, 0.0))
    valid = b.emit("and", valid, b.lt(x, np.inf))
    series = b.emit("or", b.lt(x, 1.0), b.le(x, a))
    use_series = b.emit("and", valid, series)
    use_fraction = b.emit("and", valid, b.emit("not", series))
    # Elements on the other path get inputs that settle at once.
    s, ds = _gamma_series(b, a, b.select(use_series, x, 0.0))
    safe_x = b.select(use_fraction, x, 3.0)
    _, dlog_f = _gamma_fraction(b, b.select(use_fraction, a, 1.0), safe_x)
    log_x = b.log(b.select(valid, x, 1.0))
    lower = b.mul(b.gammainc(a, x), b.add(b.sub(log_x, b.digamma(b.add(a, 1.0))), b.div(ds, s)))
    upper = b.mul(b.gammaincc(a, x), b.sub(b.sub(log_x, b.digamma(a)), dlog_f))
    out = b.select(use_series, lower, b.neg(upper))
    # At x = 0 and x = inf the function is constant in a; bad inputs are NaN.
    edge = b.emit("or", b.eq(x, 0.0), b.eq(x, np.inf))
    edge = b.emit("and", edge, b.gt(a, 0.0))
    out = b.select(valid, out, b.select(edge, _ZERO, _NAN))
    return out if dtype == F64 else b.cast(out, dtype=dtype)


def _beta_fraction(b: GraphBuilder, a: Value, bb: Value, x: Value) -> tuple[Value, list[Value]]:
    """The fraction I_x(a, b) = x^a (1-x)^b / (a B(a, b)) / F with
    F = 1 + d_1 / (1 + d_2 / (1 + ...)); returns F and (dF/da, dF/db) / F.
    Each loop step takes two terms: d_(2m+1), then d_(2m+2)."""

    def step(b: GraphBuilder, k: Any, carry: list[Value], consts: list[Value]) -> Any:
        a, bb, x = consts
        m = b.sub(k, 1.0)
        one = Literal(1.0, F64)
        a_2m = b.add(a, b.mul(m, 2.0))
        # d_(2m+1) = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
        am, abm, a2m1 = b.add(a, m), b.add(b.add(a, bb), m), b.add(a_2m, 1.0)
        odd = b.neg(b.div(b.mul(b.mul(am, abm), x), b.mul(a_2m, a2m1)))
        r = [b.div(1.0, v) for v in (am, abm, a_2m, a2m1)]
        odd_a = b.mul(odd, b.sub(b.add(r[0], r[1]), b.add(r[2], r[3])))
        odd_b = b.mul(odd, r[1])
        carry, ch1 = _fraction_step(b, carry, odd, [odd_a, odd_b], one, [None, None])
        # d_(2m+2) = (m+1)(b - m - 1) x / ((a + 2m + 1)(a + 2m + 2))
        m1, a2m2 = b.add(m, 1.0), b.add(a_2m, 2.0)
        scale = b.div(b.mul(m1, x), b.mul(a2m1, a2m2))
        even = b.mul(scale, b.sub(bb, m1))
        even_a = b.neg(b.mul(even, b.add(b.div(1.0, a2m1), b.div(1.0, a2m2))))
        carry, ch2 = _fraction_step(b, carry, even, [even_a, scale], one, [None, None])
        return carry, ch1 + ch2

    zero = Literal(0.0, F64)
    out = _converge(b, _fraction_init(Literal(1.0, F64), [zero, zero]), [a, bb, x], step)
    f, dlogs = _fraction_result(b, out[:-1], 2)
    return b.select(out[-1], f, np.nan), dlogs


def betainc_grad_ops(
    b: GraphBuilder, a: Operand, bb: Operand, x: Operand, dtype: DType
) -> tuple[Value, Value]:
    """(d/da, d/db) betainc(a, b, x) in ordinary ops (float64 inside)."""
    shape = broadcast_shapes(a.type.shape, bb.type.shape, x.type.shape)
    a, bb, x = (_full(b, v, shape) for v in (a, bb, x))
    positive = b.emit("and", b.gt(a, 0.0), b.gt(bb, 0.0))
    valid = b.emit("and", positive, b.emit("and", b.gt(x, 0.0), b.lt(x, 1.0)))
    # Swap to I_(1-x)(b, a) where the fraction for I_x(a, b) converges slowly.
    swap = b.gt(x, b.div(b.add(a, 1.0), b.add(b.add(a, bb), 2.0)))
    p, q = b.select(swap, bb, a), b.select(swap, a, bb)
    y = b.select(swap, b.sub(1.0, x), x)
    p, q = b.select(valid, p, 1.0), b.select(valid, q, 1.0)
    y = b.select(valid, y, 0.0)
    _, (dlog_p, dlog_q) = _beta_fraction(b, p, q, y)
    log_y = b.log(b.select(valid, y, 1.0))
    log_1y = b.log1p(b.neg(y))
    psi_pq = b.digamma(b.add(p, q))
    value = b.betainc(p, q, y)
    dp = b.mul(
        value, b.sub(b.add(b.sub(log_y, b.div(1.0, p)), b.sub(psi_pq, b.digamma(p))), dlog_p)
    )
    dq = b.mul(value, b.sub(b.add(log_1y, b.sub(psi_pq, b.digamma(q))), dlog_q))
    da = b.select(swap, b.neg(dq), dp)
    db = b.select(swap, b.neg(dp), dq)
    edge = b.emit("and", positive, b.emit("or", b.eq(x, 0.0), b.eq(x, 1.0)))
    results = []
    for d in (da, db):
        d = b.select(valid, d, b.select(edge, _ZERO, _NAN))
        results.append(d if dtype == F64 else b.cast(d, dtype=dtype))
    return results[0], results[1]


# -- the ops --------------------------------------------------------------------------


def _out_type(*operands: TensorType) -> TensorType:
    # The type of the function being differentiated (float32 stays float32).
    ufunc = scipy.special.gammainc if len(operands) == 2 else scipy.special.betainc
    shape = broadcast_shapes(*(t.shape for t in operands))
    return TensorType(shape, resolve_ufunc(ufunc, [t.dtype for t in operands])[-1])


def _run(build: Callable[..., Any], name: str, arrays: Sequence[np.ndarray], n_out: int) -> Any:
    from ..interpret import interpret

    b = GraphBuilder(name)
    ins = [b.input(TensorType(np.shape(x), DType.from_numpy(np.asarray(x).dtype))) for x in arrays]
    dtype = _out_type(*(v.type for v in ins)).dtype
    out = build(b, *ins, dtype)
    outs = interpret(b.build(list(out) if n_out > 1 else [out]), *arrays)
    return tuple(outs) if n_out > 1 else outs[0]


def _no_second_derivative(fn: str) -> Any:
    def vjp(b: Any, ct: Any, out: Any, *operands: Any) -> Any:
        loc = b.loc
        if loc is not None:
            loc = Loc(loc.file, loc.line, loc.col, loc.function)
        raise DifferentiationError(
            format_message(
                f"{fn}: second derivatives involving the shape parameter(s) are not "
                "supported (the first derivative is a summed series with no derivative "
                "rule of its own)",
                loc=loc,
                hint="differentiate once with respect to a shape parameter, or twice "
                "with respect to x only",
            )
        )

    return vjp


def _two_types(*operands: TensorType) -> tuple[TensorType, TensorType]:
    t = _out_type(*operands)
    return t, t


register(
    OpDef(
        "gammainc_grad_a",
        ("a", "x"),
        (),
        _out_type,
        lambda a, x: _run(gammainc_grad_a_ops, "gammainc_grad_a", (a, x), 1),
        _no_second_derivative("gammainc"),
        frozenset({"pure"}),
        doc="d/da of scipy.special.gammainc(a, x)",
    )
)
register(
    OpDef(
        "betainc_grad",
        ("a", "b", "x"),
        (),
        _two_types,
        lambda a, bb, x: _run(betainc_grad_ops, "betainc_grad", (a, bb, x), 2),
        _no_second_derivative("betainc"),
        frozenset({"pure"}),
        doc="(d/da, d/db) of scipy.special.betainc(a, b, x)",
    )
)


def decompose_gammainc_grad_a(b: GraphBuilder, n: Any, inputs: Sequence[Operand]) -> list[Any]:
    """Backend decomposition of ``gammainc_grad_a`` into its loop."""
    return [gammainc_grad_a_ops(b, inputs[0], inputs[1], n.outputs[0].type.dtype)]


def decompose_betainc_grad(b: GraphBuilder, n: Any, inputs: Sequence[Operand]) -> list[Any]:
    """Backend decomposition of ``betainc_grad`` into its loop."""
    return list(betainc_grad_ops(b, inputs[0], inputs[1], inputs[2], n.outputs[0].type.dtype))


__all__ = ["MAX_TERMS", "betainc_grad_ops", "gammainc_grad_a_ops"]
