"""SIMPLIFY_RULES: the algebraic rewrite table that :func:`simplify` applies.

Each row is ``Rule(name, op, when, then)``. Rules are exact unless their
comment says otherwise: where IEEE arithmetic could differ (NaN, inf, the sign
of a zero), the predicate asks :mod:`graphc.passes.facts` for proof first,
and keeps the node when there is none. Commutative ops are tried in both
operand orders, so ``x * 1`` also matches ``1 * x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from graphc.ir import DType, GraphBuilder, Literal, Operand, Value, all_ops
from graphc.ir.ops.rules import broadcast_shapes

from .facts import is_negative_zero
from .fold import canonical_nan, evaluate_scalar, splat_value
from .simplify import Match, Rule
from .simplify_shape import (
    REDUCTIONS,
    as_dtype,
    broadcast_axes,
    broadcast_is_reshape,
    compose_broadcast,
    compose_cast,
    compose_reverse,
    compose_slice,
    compose_transpose,
    drop_axes,
    filled,
    inner_input,
    lossless_inner_cast,
    reduce_broadcast,
    reduces_unit_axes,
    reverse_is_identity,
    select_by_constant,
    select_negated,
    shape_of_splat_ok,
    slice_is_identity,
    splat_shaped,
)

# ---------------------------------------------------------------------------
# Helpers used by the rules
# ---------------------------------------------------------------------------


def _float(m: Match) -> bool:
    return m.out.dtype.is_float


def _zero_keeps_x(m: Match) -> bool:
    """``x + z == x`` for splat zero ``z``: always for -0.0 and non-floats;
    for +0.0 only if ``x`` is never -0.0 (since -0.0 + 0.0 is +0.0)."""
    z = m.splat(1)
    if z is None or z.value != 0:
        return False
    return not _float(m) or is_negative_zero(z) or not m.facts(m.x).neg_zero


def _minus_zero_keeps_x(m: Match) -> bool:
    """``x - z == x``: always for +0.0 (-0.0 - 0.0 is -0.0); for -0.0 as ``x + 0``."""
    z = m.splat(1)
    if z is None or z.value != 0:
        return False
    return not _float(m) or not is_negative_zero(z) or not m.facts(m.x).neg_zero


def _zero_minus_is_neg(m: Match) -> bool:
    z = m.splat(0)
    if z is None or z.value != 0:
        return False
    return not _float(m) or is_negative_zero(z)


def _mul_zero_ok(m: Match) -> bool:
    """``x * 0 == 0`` needs ``x`` finite (inf * 0 is NaN) and, for floats,
    non-negative (a negative x gives -0.0)."""
    if not m.is_splat(1, 0):
        return False
    if not _float(m):
        return True
    f = m.facts(m.x)
    return f.finite and f.lo >= 0 and not f.neg_zero


def _same_operand(a: Operand, c: Operand) -> bool:
    return a is c or (isinstance(a, Literal) and a == c)


def _power_of_two_reciprocal(m: Match) -> Literal | None:
    """``1 / c`` when ``c`` is a float splat ``±2**k`` whose reciprocal is an
    exact normal number, so ``x / c == x * (1 / c)`` bit for bit."""
    c = m.splat(1)
    if c is None or not c.dtype.is_float or not m.x.type.dtype.is_float:
        return None
    v = float(c.value)
    if v == 0 or not math.isfinite(v) or abs(math.frexp(v)[0]) != 0.5:
        return None
    info = np.finfo(c.dtype.np)
    r = 1.0 / v
    if not float(info.tiny) <= abs(r) <= float(info.max):
        return None
    return Literal(r, c.dtype)


# exp overflows (or loses precision to underflow) outside these bounds.
_EXP_SAFE = {DType.f32: (-87.0, 88.0), DType.f64: (-708.0, 709.0)}


def _log_exp_ok(m: Match) -> bool:
    inner = m.arg_node(0, "exp")
    if inner is None or not inner.inputs[0].type.dtype.is_float:
        return False
    if m.out.dtype not in _EXP_SAFE:
        return False  # 16-bit floats overflow sooner: no bounds known here, no rewrite
    lo, hi = _EXP_SAFE[m.out.dtype]
    f = m.facts(inner.inputs[0])
    return lo <= f.lo and f.hi <= hi and not f.neg_zero


def _exp_log_ok(m: Match) -> bool:
    inner = m.arg_node(0, "log")
    if inner is None:
        return False
    f = m.facts(inner.inputs[0])
    return f.lo >= 0 and not f.neg_zero


# -- negation: moved outwards, where it cancels or joins a literal ------------


def _negated_literal(lit: Literal) -> Literal:
    with np.errstate(all="ignore"):
        return Literal(canonical_nan(np.negative(lit.as_array())).item(), lit.dtype)


def _neg_operand(m: Match, i: int) -> bool:
    """Operand ``i`` is ``neg w`` read only here, so moving the neg out removes it."""
    return m.arg_node(i, "neg") is not None and m.single_use(m.args[i])


def _neg_out_of_div(b: GraphBuilder, m: Match) -> Operand:
    if _neg_operand(m, 0):
        return b.neg(b.div(_neg_input(m, 0), m.y))
    return b.neg(b.div(m.x, _neg_input(m, 1)))


def _literal_product(m: Match) -> tuple[Operand, Literal] | None:
    """``(a, c)`` when the operand is ``a * c`` for a literal ``c``, read only here."""
    n = m.arg_node(0, "mul")
    if n is None or not m.single_use(m.x):
        return None
    if any(x.type.dtype != m.out.dtype for x in n.inputs):
        return None  # see _signed_ok
    a, c = n.inputs
    if isinstance(a, Literal):
        a, c = c, a
    return (a, c) if isinstance(c, Literal) and not isinstance(a, Literal) else None


def _neg_into_literal(b: GraphBuilder, m: Match) -> Operand:
    found = _literal_product(m)
    assert found is not None
    return b.mul(found[0], _negated_literal(found[1]))


def _signed_ok(m: Match) -> bool:
    """Signs may move across this node: every operand already has the result's
    dtype. (When integers are promoted to floats at the node, they move across
    a conversion: -(0 / 1) is -0.0 but (-0) / 1 is +0.0, and -INT_MIN wraps.)"""
    return not m.out.dtype.is_bool and all(x.type.dtype == m.out.dtype for x in m.args)


# -- splats and literals -------------------------------------------------------


def _foldable_splats(m: Match) -> Literal | None:
    lits = [m.splat(i) for i in range(len(m.args))]
    if any(lit is None for lit in lits):
        return None
    return evaluate_scalar(m.node, [lit for lit in lits if lit is not None])


def _fold_splats(b: GraphBuilder, m: Match) -> Operand:
    value = _foldable_splats(m)
    assert value is not None
    return splat_value(b, value, m.out.shape)


def _literal_operands(m: Match) -> tuple[Operand, ...] | None:
    """The operands with splat values replaced by literals, where the output
    shape stays the same; None if nothing can be replaced."""
    args = list(m.args)
    changed = False
    for i, x in enumerate(args):
        if isinstance(x, Literal):
            continue
        lit = m.splat(i)
        if lit is None:
            continue
        trial = args[:i] + [lit] + args[i + 1 :]
        shapes = [a.type.shape for a in trial]
        if broadcast_shapes(*shapes) == m.out.shape:
            args = trial
            changed = True
    return tuple(args) if changed else None


def _with_literals(b: GraphBuilder, m: Match) -> Operand:
    args = _literal_operands(m)
    assert args is not None
    return b.emit_node(m.node.op, args, m.attrs, (), m.node.loc).outputs[0]


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------

_Pred = Callable[[Match], bool]
_Build = Callable[[GraphBuilder, Match], Operand]


def _for_each(ops: tuple[str, ...], name: str, when: _Pred, then: _Build) -> list[Rule]:
    return [Rule(name, op, when, then) for op in ops]


ELEMENTWISE = tuple(
    sorted(n for n, op in all_ops().items() if op.has("elementwise") and not op.num_subgraphs)
)


def _first(op: str, index: int = 0) -> _Pred:
    return lambda m: m.arg_node(index, op) is not None


SIMPLIFY_RULES: list[Rule] = [
    # -- splats: an elementwise op on splats is a splat; splat operands become literals
    *_for_each(ELEMENTWISE, "fold_splats", lambda m: _foldable_splats(m) is not None, _fold_splats),
    *_for_each(
        ELEMENTWISE,
        "splat_operand_to_literal",
        lambda m: _literal_operands(m) is not None,
        _with_literals,
    ),
    # -- additive identities
    Rule("add_zero", "add", _zero_keeps_x, lambda b, m: m.fit(b, m.x)),
    Rule("sub_zero", "sub", _minus_zero_keeps_x, lambda b, m: m.fit(b, m.x)),
    # -0.0 - y is -y exactly; +0.0 - y differs from -y in the sign of a zero.
    Rule("sub_from_zero", "sub", _zero_minus_is_neg, lambda b, m: b.neg(m.fit(b, m.y))),
    Rule(
        "sub_self",
        "sub",
        lambda m: _same_operand(m.x, m.y) and not _float(m),
        lambda b, m: filled(b, m, 0),
    ),
    Rule(
        "add_neg",
        "add",
        lambda m: _first("neg", 1)(m) and _signed_ok(m),
        lambda b, m: b.sub(m.x, _neg_input(m, 1)),
    ),
    Rule(
        "sub_neg",
        "sub",
        lambda m: _first("neg", 1)(m) and _signed_ok(m),
        lambda b, m: b.add(m.x, _neg_input(m, 1)),
    ),
    # -- multiplicative identities
    # Signs move out of products and quotients exactly: (-a) * b == -(a * b).
    Rule(
        "mul_neg_neg",
        "mul",
        lambda m: _first("neg", 0)(m) and _first("neg", 1)(m) and _signed_ok(m),
        lambda b, m: b.mul(_neg_input(m, 0), _neg_input(m, 1)),
    ),
    Rule(
        "mul_neg_literal",
        "mul",
        lambda m: _first("neg", 0)(m) and isinstance(m.y, Literal) and _signed_ok(m),
        lambda b, m: b.mul(_neg_input(m, 0), _negated_literal(m.y)),
    ),
    Rule(
        "neg_out_of_mul",
        "mul",
        lambda m: _neg_operand(m, 0) and _signed_ok(m),
        lambda b, m: b.neg(b.mul(_neg_input(m, 0), m.y)),
    ),
    Rule(
        "div_neg_neg",
        "div",
        lambda m: _first("neg", 0)(m) and _first("neg", 1)(m) and _signed_ok(m),
        lambda b, m: b.div(_neg_input(m, 0), _neg_input(m, 1)),
    ),
    Rule(
        "neg_out_of_div",
        "div",
        lambda m: _neg_operand(m, 0) != _neg_operand(m, 1) and _signed_ok(m),
        _neg_out_of_div,
    ),
    Rule(
        "neg_of_literal_product",
        "neg",
        lambda m: _literal_product(m) is not None,
        _neg_into_literal,
    ),
    Rule("mul_one", "mul", lambda m: m.is_splat(1, 1), lambda b, m: m.fit(b, m.x)),
    Rule(
        "mul_neg_one",
        "mul",
        lambda m: m.is_splat(1, -1) and not m.out.dtype.is_bool,
        lambda b, m: b.neg(m.fit(b, m.x)),
    ),
    Rule("mul_zero", "mul", _mul_zero_ok, lambda b, m: filled(b, m, _splat_of(m, 1))),
    Rule("div_one", "div", lambda m: m.is_splat(1, 1), lambda b, m: m.fit(b, m.x)),
    Rule("div_neg_one", "div", lambda m: m.is_splat(1, -1), lambda b, m: b.neg(m.fit(b, m.x))),
    Rule(
        "div_power_of_two",
        "div",
        lambda m: _power_of_two_reciprocal(m) is not None,
        lambda b, m: m.fit(b, b.mul(m.x, _power_of_two_reciprocal(m))),  # exact: see helper
    ),
    # -- powers (pow(x, 0) is 1 even for NaN and inf, as IEEE and NumPy define it)
    Rule("pow_zero", "pow", lambda m: m.is_splat(1, 0), lambda b, m: filled(b, m, 1)),
    Rule("pow_one", "pow", lambda m: m.is_splat(1, 1), lambda b, m: m.fit(b, m.x)),
    # x * x is correctly rounded; pow(x, 2) from libm is within an ulp of it.
    Rule("pow_two", "pow", lambda m: m.is_splat(1, 2), lambda b, m: m.fit(b, _square(b, m))),
    Rule(
        "pow_neg_one",
        "pow",
        lambda m: m.is_splat(1, -1) and _float(m),
        lambda b, m: m.fit(b, b.div(Literal(1.0, m.out.dtype), as_dtype(b, m.x, m.out.dtype))),
    ),
    # -- involutions and inverses
    Rule("neg_neg", "neg", _first("neg"), lambda b, m: inner_input(m, "neg")),
    # exp(log x) is x (up to rounding) where log is defined: x >= 0, never -0.0.
    Rule("exp_log", "exp", _exp_log_ok, lambda b, m: m.fit(b, inner_input(m, "log"))),
    # log(exp x) is x (up to rounding) where exp neither overflows nor underflows.
    Rule("log_exp", "log", _log_exp_ok, lambda b, m: m.fit(b, inner_input(m, "exp"))),
    Rule("max_self", "max", lambda m: _same_operand(m.x, m.y), lambda b, m: m.fit(b, m.x)),
    Rule("min_self", "min", lambda m: _same_operand(m.x, m.y), lambda b, m: m.fit(b, m.x)),
    Rule("and_self", "and", lambda m: _same_operand(m.x, m.y), lambda b, m: m.fit(b, m.x)),
    Rule("or_self", "or", lambda m: _same_operand(m.x, m.y), lambda b, m: m.fit(b, m.x)),
    # -- shape ops
    *_for_each(
        ("reshape", "transpose", "slice", "reverse", "broadcast_in_dim"),
        "shape_of_splat",
        shape_of_splat_ok,
        splat_shaped,
    ),
    Rule(
        "transpose_identity",
        "transpose",
        lambda m: m.attrs["perm"] == tuple(range(m.out.ndim)),
        lambda b, m: m.x,
    ),
    Rule("transpose_transpose", "transpose", _first("transpose"), compose_transpose),
    Rule(
        "reshape_identity",
        "reshape",
        lambda m: m.out.shape == m.x.type.shape,
        lambda b, m: m.x,
    ),
    Rule(
        "reshape_reshape",
        "reshape",
        _first("reshape"),
        lambda b, m: b.reshape(inner_input(m, "reshape"), shape=m.out.shape),
    ),
    Rule(
        "broadcast_identity",
        "broadcast_in_dim",
        lambda m: m.out.shape == m.x.type.shape and isinstance(m.x, Value),
        lambda b, m: m.x,
    ),
    Rule("broadcast_broadcast", "broadcast_in_dim", _first("broadcast_in_dim"), compose_broadcast),
    # Only inserts size-1 dims: a reshape, which every backend makes a view.
    Rule(
        "broadcast_as_reshape",
        "broadcast_in_dim",
        broadcast_is_reshape,
        lambda b, m: b.reshape(m.x, shape=m.out.shape),
    ),
    Rule("slice_identity", "slice", slice_is_identity, lambda b, m: m.x),
    Rule("slice_slice", "slice", _first("slice"), compose_slice),
    Rule("reverse_identity", "reverse", reverse_is_identity, lambda b, m: m.x),
    Rule("reverse_reverse", "reverse", _first("reverse"), compose_reverse),
    # -- casts and gradient markers
    Rule("cast_identity", "cast", lambda m: m.attrs["dtype"] == m.x.type.dtype, lambda b, m: m.x),
    Rule("cast_cast", "cast", lossless_inner_cast, compose_cast),
    # Differentiation is done once the pipeline runs; the marker is an identity.
    Rule("remove_stop_gradient", "stop_gradient", lambda m: True, lambda b, m: m.x),
    # -- select
    Rule(
        "select_constant_condition",
        "select",
        lambda m: m.splat(0) is not None,
        select_by_constant,
    ),
    Rule(
        "select_same",
        "select",
        lambda m: _same_operand(m.y, m.z),
        lambda b, m: m.fit(b, m.y),
    ),
    Rule("select_not", "select", _first("not"), select_negated),
    # -- reductions
    *_for_each(REDUCTIONS, "reduce_no_axes", lambda m: not m.attrs["axes"], drop_axes),
    *_for_each(REDUCTIONS, "reduce_unit_axes", reduces_unit_axes, drop_axes),
    *_for_each(
        ("reduce_sum", "reduce_max", "reduce_min"),
        "reduce_of_broadcast",
        lambda m: broadcast_axes(m) is not None,
        reduce_broadcast,
    ),
]


def _splat_of(m: Match, i: int) -> Literal:
    lit = m.splat(i)
    assert lit is not None
    return lit


def _neg_input(m: Match, i: int) -> Operand:
    n = m.arg_node(i, "neg")
    assert n is not None
    return n.inputs[0]


def _square(b: GraphBuilder, m: Match) -> Operand:
    x = as_dtype(b, m.x, m.out.dtype)
    return b.mul(x, x)
