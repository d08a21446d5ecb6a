"""Elementwise ops: unary math, binary arithmetic, comparisons, select, cast.

Type rules follow NumPy's ufunc loops exactly (``ufunc.resolve_dtypes``), so
``exp`` of an int32 is float64 and ``add`` of f32 and f64 is f64. Each VJP
returns a cotangent of the *output's* shape; the differentiation pass sums it
down to the operand's shape and casts it to the operand's dtype (the one
shared unbroadcast step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special

from ..core import Literal, TensorType, Value
from ..dtypes import DType
from .registry import Attr, OpDef, register
from .rules import broadcast_shapes, resolve_ufunc, type_error

ELEMENTWISE = frozenset({"elementwise", "pure"})

# ---------------------------------------------------------------------------
# Unary
# ---------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Two branches so neither exp overflows; this is the accurate form.
    x = np.asarray(x)
    # 16-bit floats are computed in float32 and rounded once, as NumPy's
    # float16 loops compute each function (three float16 roundings would be
    # an ulp off where both backends are right).
    wide = x.astype(np.float32) if DType.from_numpy(x.dtype).is_16bit_float else x
    e = np.exp(-np.abs(wide))
    return np.where(wide >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _rsqrt(x: np.ndarray) -> np.ndarray:
    return 1 / np.sqrt(x)


def _unary_rule(like: np.ufunc, keep_int: bool = False) -> Callable[..., TensorType]:
    def rule(x: TensorType) -> TensorType:
        if keep_int and x.dtype.is_int:
            return x
        return TensorType(x.shape, resolve_ufunc(like, [x.dtype])[-1])

    return rule


def define_unary(
    name: str,
    reference: Callable[[np.ndarray], np.ndarray],
    vjp: Callable[..., Any] | None,
    *,
    like: np.ufunc | None = None,
    keep_int: bool = False,
    traits: frozenset[str] = frozenset(),
    doc: str = "",
) -> OpDef:
    """Register a one-operand elementwise op.

    ``like`` is the NumPy ufunc whose dtype rule the op follows (by default
    ``reference`` itself, which must then be a ufunc); ``keep_int`` maps
    integer operands to themselves, as ``np.round`` does. ``vjp(b, ct, out, x)``
    returns the cotangent of ``x``.
    """
    ufunc = like if like is not None else reference
    assert isinstance(ufunc, np.ufunc), name
    rule = _unary_rule(ufunc, keep_int)

    def ref(x: np.ndarray) -> np.ndarray:
        out_dtype = rule(TensorType((), DType.from_numpy(x.dtype))).dtype.np
        return np.asarray(
            reference(x.astype(out_dtype, copy=False) if like else x), dtype=out_dtype
        )

    rule_vjp = None
    if vjp is not None:

        def rule_vjp(b: Any, ct: Any, out: Any, x: Any) -> tuple[Any]:
            return (vjp(b, ct, out, x),)

    return register(OpDef(name, ("x",), (), rule, ref, rule_vjp, ELEMENTWISE | traits, doc=doc))


def _lit(like: Any, value: float) -> Literal:
    return Literal(value, like.type.dtype)


_INV_SQRT_PI_2 = 2 / math.sqrt(math.pi)

# name, reference, vjp(b, ct, out, x) — None means no gradient flows.
define_unary("neg", np.negative, lambda b, ct, out, x: b.neg(ct), traits=frozenset({"linear"}))
define_unary("exp", np.exp, lambda b, ct, out, x: b.mul(ct, out))
define_unary("exp2", np.exp2, lambda b, ct, out, x: b.mul(ct, b.mul(out, math.log(2))))
define_unary("expm1", np.expm1, lambda b, ct, out, x: b.mul(ct, b.add(out, 1.0)))
define_unary("log", np.log, lambda b, ct, out, x: b.div(ct, x))
define_unary("log2", np.log2, lambda b, ct, out, x: b.div(ct, b.mul(x, math.log(2))))
define_unary("log10", np.log10, lambda b, ct, out, x: b.div(ct, b.mul(x, math.log(10))))
define_unary("log1p", np.log1p, lambda b, ct, out, x: b.div(ct, b.add(x, 1.0)))
define_unary("sqrt", np.sqrt, lambda b, ct, out, x: b.div(b.mul(ct, 0.5), out))
define_unary("cbrt", np.cbrt, lambda b, ct, out, x: b.div(ct, b.mul(b.mul(out, out), 3.0)))
define_unary(
    "rsqrt", _rsqrt, lambda b, ct, out, x: b.mul(b.mul(ct, -0.5), b.div(out, x)), like=np.sqrt
)
define_unary(
    "sigmoid",
    _sigmoid,
    lambda b, ct, out, x: b.mul(ct, b.mul(out, b.sub(1.0, out))),
    like=np.exp,
    doc="logistic function 1 / (1 + exp(-x))",
)
define_unary("tanh", np.tanh, lambda b, ct, out, x: b.mul(ct, b.sub(1.0, b.mul(out, out))))
define_unary("sin", np.sin, lambda b, ct, out, x: b.mul(ct, b.cos(x)))
define_unary("cos", np.cos, lambda b, ct, out, x: b.neg(b.mul(ct, b.sin(x))))
define_unary("tan", np.tan, lambda b, ct, out, x: b.mul(ct, b.add(b.mul(out, out), 1.0)))
define_unary("asin", np.arcsin, lambda b, ct, out, x: b.mul(ct, b.rsqrt(b.sub(1.0, b.mul(x, x)))))
define_unary(
    "acos", np.arccos, lambda b, ct, out, x: b.neg(b.mul(ct, b.rsqrt(b.sub(1.0, b.mul(x, x)))))
)
define_unary("atan", np.arctan, lambda b, ct, out, x: b.div(ct, b.add(b.mul(x, x), 1.0)))
define_unary("sinh", np.sinh, lambda b, ct, out, x: b.mul(ct, b.cosh(x)))
define_unary("cosh", np.cosh, lambda b, ct, out, x: b.mul(ct, b.sinh(x)))
define_unary("asinh", np.arcsinh, lambda b, ct, out, x: b.mul(ct, b.rsqrt(b.add(b.mul(x, x), 1.0))))
define_unary("acosh", np.arccosh, lambda b, ct, out, x: b.mul(ct, b.rsqrt(b.sub(b.mul(x, x), 1.0))))
define_unary("atanh", np.arctanh, lambda b, ct, out, x: b.div(ct, b.sub(1.0, b.mul(x, x))))
define_unary(
    "erf",
    scipy.special.erf,
    lambda b, ct, out, x: b.mul(ct, b.mul(b.exp(b.neg(b.mul(x, x))), _INV_SQRT_PI_2)),
    like=np.exp,
)
# |x|' = sign(x), which is 0 at 0 (the subgradient JAX picks).
define_unary("abs", np.absolute, lambda b, ct, out, x: b.mul(ct, b.sign(x)))
define_unary("sign", np.sign, None)
define_unary("floor", np.floor, None)
define_unary("ceil", np.ceil, None)
define_unary(
    "round",
    np.round,
    None,
    like=np.rint,
    keep_int=True,
    doc="round half to even, as np.round with decimals=0 (integers stay integers)",
)
define_unary("not", np.invert, None, doc="logical not of bool, bitwise not of integers")
define_unary("isnan", np.isnan, None)
define_unary("isinf", np.isinf, None)
define_unary("isfinite", np.isfinite, None)

# ---------------------------------------------------------------------------
# Binary
# ---------------------------------------------------------------------------


def _binary_rule(ufunc: np.ufunc) -> Callable[..., TensorType]:
    def rule(x: TensorType, y: TensorType) -> TensorType:
        shape = broadcast_shapes(x.shape, y.shape)
        return TensorType(shape, resolve_ufunc(ufunc, [x.dtype, y.dtype])[-1])

    return rule


def define_binary(
    name: str,
    ufunc: np.ufunc,
    vjp: Callable[..., tuple[Any, Any]] | None,
    *,
    traits: frozenset[str] = frozenset(),
    reference: Callable[[np.ndarray, np.ndarray], Any] | None = None,
) -> OpDef:
    """Register a two-operand broadcasting op that follows NumPy ufunc ``ufunc``
    (its dtype rule; its values too unless ``reference`` replaces them).

    ``vjp(b, ct, out, x, y)`` returns ``(ct_x, ct_y)`` in the output's shape.
    """
    compute = reference if reference is not None else ufunc

    def ref(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(compute(x, y))

    return register(
        OpDef(name, ("x", "y"), (), _binary_rule(ufunc), ref, vjp, ELEMENTWISE | traits)
    )


def _balanced_share(b: Any, x: Any, out: Any, other: Any) -> Any:
    # Where both operands equal the result, each gets half (JAX's rule at ties).
    one, half, zero = _lit(out, 1.0), _lit(out, 0.5), _lit(out, 0.0)
    return b.select(b.eq(x, out), b.select(b.eq(other, out), half, one), zero)


def _pow_vjp(b: Any, ct: Any, out: Any, x: Any, y: Any) -> tuple[Any, Any]:
    ct_x = ct_y = None
    if isinstance(x, Value) and x.type.dtype.is_float:
        if isinstance(y, Literal):
            # Weak scalars: y - 1 need not be a value of y's dtype (a bool y, say).
            y_val = float(y.value)
            # x**0 is constant: 0 * x**-1 would be nan at x = 0 (and its own
            # derivatives with it, so x**1 and x**2 would have nan second
            # derivatives there).
            ct_x = b.mul(ct, b.mul(b.pow(x, y_val - 1), y_val)) if y_val != 0 else None
        else:
            y_num = b.cast(y, dtype=x.type.dtype) if y.type.dtype.is_bool else y
            # y * x**(y - 1) is 0 * inf = nan at x = y = 0, where the derivative
            # is 0. The exponent is made safe there (not the product alone), so
            # no nan reaches the cotangents of the next derivative either.
            corner = b.emit("and", b.eq(x, 0), b.eq(y_num, 0))
            y_safe = b.select(corner, 1, y_num)
            slope = b.mul(b.pow(x, b.sub(y_safe, 1)), y_num)
            ct_x = b.mul(ct, slope)
    if isinstance(y, Value) and y.type.dtype.is_float:
        # log(0) would give nan * 0; use log(1) = 0 there, as JAX does.
        base = x if x.type.dtype.is_float else b.cast(x, dtype=out.type.dtype)
        dtype = base.type.dtype
        safe = b.select(b.eq(base, Literal(0.0, dtype)), Literal(1.0, dtype), base)
        ct_y = b.mul(ct, b.mul(out, b.log(safe)))
    return ct_x, ct_y


def _atan2_vjp(b: Any, ct: Any, out: Any, y: Any, x: Any) -> tuple[Any, Any]:
    denom = b.add(b.mul(x, x), b.mul(y, y))
    return b.div(b.mul(ct, x), denom), b.neg(b.div(b.mul(ct, y), denom))


def _rem_vjp(b: Any, ct: Any, out: Any, x: Any, y: Any) -> tuple[Any, Any]:
    # remainder(x, y) = x - y * floor(x / y)
    return ct, b.neg(b.mul(ct, b.floor(b.div(x, y))))


define_binary("add", np.add, lambda b, ct, out, x, y: (ct, ct), traits=frozenset({"commutative"}))
define_binary("sub", np.subtract, lambda b, ct, out, x, y: (ct, b.neg(ct)))
define_binary(
    "mul",
    np.multiply,
    lambda b, ct, out, x, y: (b.mul(ct, y), b.mul(ct, x)),
    traits=frozenset({"commutative"}),
)
define_binary(
    "div", np.true_divide, lambda b, ct, out, x, y: (b.div(ct, y), b.neg(b.div(b.mul(ct, out), y)))
)
# NumPy 2.3 made np.power(x, 0.5) with a scalar exponent agree with np.sqrt
# (and with ``x ** 0.5``, which always took that path) at -0.0 and -inf; older
# versions give +0.0 and inf there. An array of exponents keeps power's rule.
# graphc's pow follows the newer NumPy under any NumPy.
with np.errstate(invalid="ignore"):
    _LEGACY_HALF_POWER = bool(np.power(np.float64(-np.inf), 0.5) == np.inf)


def _power(x: Any, y: Any, out: np.ndarray | None = None) -> Any:
    r = np.asarray(np.power(x, y))
    if r.dtype.kind == "f" and np.ndim(y) == 0 and y == 0.5:
        r = np.sqrt(np.asarray(x, r.dtype))
    if out is None:
        return r
    np.copyto(out, r)
    return out


#: ``np.power`` with a scalar exponent of 0.5 meaning ``np.sqrt`` on every NumPy
#: (``np.power`` itself where NumPy already does so).
power: Callable[..., Any] = _power if _LEGACY_HALF_POWER else np.power


define_binary("pow", np.power, _pow_vjp, reference=power)


# max and min are not commutative: on a tie of +0.0 and -0.0 NumPy returns
# the second operand, so CSE must not merge max(x, y) with max(y, x).
#
# Ties: between two traced operands each gets half the cotangent (JAX's rule
# for jnp.maximum). Against a constant (a literal: relu is max(x, 0.0), clip is
# max/min with literals) the constant keeps the tie and x gets nothing there,
# as relu's derivative at 0 is 0 in PyTorch and jax.nn.relu. The mask is then
# ``out > c`` (``out < c`` for min): it reads only the result, so a fused
# forward keeps the result alone for the backward instead of the result and
# its input (or a mask beside it). Off exact ties both rules agree.
def _extremum_vjp(greater: bool) -> Callable[..., tuple[Any, Any]]:
    def vjp(b: Any, ct: Any, out: Any, x: Any, y: Any) -> tuple[Any, Any]:
        if isinstance(x, Literal) or isinstance(y, Literal):
            c = x if isinstance(x, Literal) else y
            beyond = b.gt(out, c) if greater else b.lt(out, c)
            share = b.select(beyond, ct, _lit(ct, 0.0))
            return (None, share) if isinstance(x, Literal) else (share, None)
        return (
            b.mul(ct, _balanced_share(b, x, out, y)),
            b.mul(ct, _balanced_share(b, y, out, x)),
        )

    return vjp


define_binary("max", np.maximum, _extremum_vjp(True))
define_binary("min", np.minimum, _extremum_vjp(False))
define_binary("atan2", np.arctan2, _atan2_vjp)
define_binary("rem", np.remainder, _rem_vjp)
define_binary("floordiv", np.floor_divide, None)
define_binary("and", np.bitwise_and, None, traits=frozenset({"commutative"}))
define_binary("or", np.bitwise_or, None, traits=frozenset({"commutative"}))
define_binary("xor", np.bitwise_xor, None, traits=frozenset({"commutative"}))
for _name, _ufunc in [
    ("eq", np.equal),
    ("ne", np.not_equal),
    ("lt", np.less),
    ("le", np.less_equal),
    ("gt", np.greater),
    ("ge", np.greater_equal),
]:
    define_binary(_name, _ufunc, None, traits=frozenset({"comparison"}))

# ---------------------------------------------------------------------------
# select, cast, stop_gradient
# ---------------------------------------------------------------------------


def _select_rule(cond: TensorType, x: TensorType, y: TensorType) -> TensorType:
    if not cond.dtype.is_bool:
        raise type_error(
            f"condition must be bool, got {cond.dtype}", hint="compare first, e.g. x > 0"
        )
    shape = broadcast_shapes(cond.shape, x.shape, y.shape)
    return TensorType(
        shape, resolve_ufunc(np.add, [x.dtype, y.dtype])[-1] if x.dtype != y.dtype else x.dtype
    )


def _select_ref(cond: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.asarray(np.where(cond, x, y))


def _select_vjp(b: Any, ct: Any, out: Any, cond: Any, x: Any, y: Any) -> tuple[Any, Any, Any]:
    zero = _lit(ct, 0.0)
    return None, b.select(cond, ct, zero), b.select(cond, zero, ct)


register(
    OpDef(
        "select",
        ("cond", "x", "y"),
        (),
        _select_rule,
        _select_ref,
        _select_vjp,
        ELEMENTWISE,
        doc="np.where(cond, x, y)",
    )
)


def _cast_rule(x: TensorType, *, dtype: DType) -> TensorType:
    return TensorType(x.shape, dtype)


def _cast_ref(x: np.ndarray, *, dtype: DType) -> np.ndarray:
    return np.asarray(x).astype(dtype.np)


def _cast_vjp(b: Any, ct: Any, out: Any, x: Any, *, dtype: DType) -> tuple[Any]:
    # Only float -> float casts carry a gradient; the cotangent is cast back
    # to the operand's dtype by unbroadcast. Casts to integers or bool are
    # piecewise constant, and integer operands are never differentiated.
    if not (dtype.is_float and x.type.dtype.is_float):
        return (None,)
    return (ct,)


register(
    OpDef(
        "cast",
        ("x",),
        (Attr("dtype", "dtype"),),
        _cast_rule,
        _cast_ref,
        _cast_vjp,
        ELEMENTWISE,
        doc="x.astype(dtype) with NumPy's conversion rules",
    )
)


def _identity_rule(x: TensorType) -> TensorType:
    return x


register(
    OpDef(
        "stop_gradient",
        ("x",),
        (),
        _identity_rule,
        lambda x: np.asarray(x),
        lambda b, ct, out, x: (None,),
        ELEMENTWISE,
        doc="identity whose gradient is zero",
    )
)
