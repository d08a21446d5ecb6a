"""LOWERINGS: how each op becomes one Python expression over NumPy.

A :class:`Lowering` renders the right-hand side of ``v12 = ...`` from an
:class:`Emit` context (operand expressions, attributes, and the name of a
preallocated output buffer when the planner gave the node one). It also
tells the buffer planner what NumPy will do with memory: ``out`` (the
expression can write into a buffer), ``view`` (the result may share memory
with operand 0, as reshape and transpose do) and ``inplace`` (the buffer may
be one of the operands' own, which elementwise ufuncs allow).

Functions are bound once, as closure variables of the generated code, under
readable names (``np_add``, ``sp_expit``), so a call costs no lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special

from graphc.ir import DType, Literal, Node, TensorType, get_op
from graphc.ir.ops.elementwise import power

from . import runtime


class Emit:
    """What a lowering sees of the node it renders."""

    def __init__(
        self,
        node: Node,
        args: list[str],
        out: str | None,
        bind: Callable[[str, Any], str],
        lazy_broadcast: bool = False,
    ) -> None:
        self.node = node
        self.args = args
        self.attrs = node.attrs
        self.out = out
        self.out_type: TensorType = node.outputs[0].type
        self.lazy_broadcast = lazy_broadcast
        self._bind = bind

    def fn(self, name: str, obj: Any) -> str:
        """Bind ``obj`` under ``name`` in the generated code; returns the name."""
        return self._bind(name, obj)

    def dtype(self, d: DType) -> str:
        return self._bind(str(d), d.np)

    def operand_as(self, i: int, dtype: DType) -> str:
        """Operand ``i`` as an array (or NumPy scalar) of ``dtype``."""
        x = self.node.inputs[i]
        if isinstance(x, Literal):
            value = dtype.np.type(x.as_array().astype(dtype.np))
            return self._bind(f"k_{dtype}_{_slug(Literal(value.item(), dtype).text())}", value)
        if x.type.dtype != dtype:
            return f"{self.args[i]}.astype({self.dtype(dtype)})"
        return self.args[i]

    def call(self, name: str, obj: Any, *args: str, **kwargs: Any) -> str:
        """``name(args..., key=value...)``; keywords whose value is None are left out."""
        parts = list(args)
        parts += [f"{k}={v}" for k, v in kwargs.items() if v is not None]
        return f"{self.fn(name, obj)}({', '.join(parts)})"


@dataclass(frozen=True)
class Lowering:
    """One op's rendering (see the module docstring for the flags).

    ``tuple_result``: the expression evaluates to a tuple of all the node's
    results (ops with several results, such as ``scan``); such results are
    always fresh arrays and never written into planned buffers.
    """

    emit: Callable[[Emit], str]
    out: bool = False
    view: bool = False
    inplace: bool = False
    tuple_result: bool = False


def _slug(text: str) -> str:
    return text.replace("-", "m").replace(".", "_").replace("+", "")


def _ufunc(fn: Callable[..., Any], prefix: str = "np") -> Lowering:
    name = f"{prefix}_{fn.__name__.lstrip('_')}"
    return Lowering(lambda e: e.call(name, fn, *e.args, out=e.out), out=True, inplace=True)


def _scipy_ufunc(fn: Callable[..., Any]) -> Lowering:
    """A SciPy ufunc; it has float32 and float64 loops only, so bool and 16-bit
    operands are computed in float32 and rounded, as NumPy's float16 loops do.
    Integer operands are converted to the result's dtype first: SciPy itself
    would pick its float64 loop for an int16, where the op's rule (NumPy's)
    says float32."""
    name = f"sp_{fn.__name__.lstrip('_')}"

    def lower(e: Emit) -> str:
        dtype = e.out_type.dtype
        if not dtype.is_16bit_float:
            return e.call(name, fn, e.operand_as(0, dtype), out=e.out)
        wide = e.call(name, fn, e.operand_as(0, DType.f32))
        if e.out is not None:
            return e.call("rt_cast_into", runtime.cast_into, wide, e.out)
        return f"{wide}.astype({e.dtype(dtype)})"

    return Lowering(lower, out=True)


def _round(e: Emit) -> str:
    # Integers round to themselves (as np.round keeps them); np.rint would make floats.
    fn = np.positive if e.node.inputs[0].type.dtype.is_int else np.rint
    return e.call(f"np_{fn.__name__}", fn, *e.args, out=e.out)


# Up to this many elements np.where's branches cost less than the blend's extra calls.
SMALL_SELECT = 2048


def _select(e: Emit) -> str:
    dtype = e.out_type.dtype
    cond, x, y = e.node.inputs
    c, a, b = (e.operand_as(0, DType.bool), e.operand_as(1, dtype), e.operand_as(2, dtype))
    if e.out is None and e.out_type.size <= SMALL_SELECT:
        return e.call("np_where", np.where, c, a, b)
    itype = e.fn(f"int{dtype.itemsize * 8}_bits", runtime.INT_OF_SIZE[dtype.itemsize])
    out = e.out or e.call("np_empty", np.empty, _tuple(e.out_type.shape), e.dtype(dtype))
    if _is_zero_bits(y):
        return e.call("rt_select_or_zero", runtime.select_or_zero, c, a, itype, out)
    if _is_zero_bits(x):
        return e.call("rt_zero_or_select", runtime.zero_or_select, c, b, itype, out)
    if isinstance(x, Literal) and isinstance(y, Literal):
        step = _exact_step(x, y, dtype)
        if step is not None:
            k = e.fn(f"k_{dtype}_step_{_slug(Literal(step.item(), dtype).text())}", step)
            return e.call("rt_blend", runtime.blend, c, k, b, out)
    return e.call("rt_select", runtime.select, c, a, b, itype, out)


def _exact_step(x: Literal, y: Literal, dtype: DType) -> np.generic | None:
    """``x - y`` in ``dtype`` if ``y + 1 * (x - y)`` is exactly ``x`` and
    ``y + 0 * (x - y)`` exactly ``y`` (so a multiply-add can select)."""
    if dtype.is_bool:
        return None
    with np.errstate(all="ignore"):
        a = x.as_array().astype(dtype.np)[()]
        b = y.as_array().astype(dtype.np)[()]
        if dtype.is_int:
            step = int(a) - int(b)
            info = np.iinfo(dtype.np)
            return dtype.np.type(step) if info.min <= step <= info.max else None
        step = a - b
        picked = (b + step, b + step * dtype.np.type(0))
    ok = (
        np.isfinite(step)
        and picked[0].tobytes() == a.tobytes()
        and picked[1].tobytes() == b.tobytes()
    )
    return step if ok else None


def _is_zero_bits(x: object) -> bool:
    """A literal whose bits are all zero (0, False, +0.0; not -0.0)."""
    return isinstance(x, Literal) and x.as_array().tobytes() == bytes(x.dtype.itemsize)


def _reduction(fn: np.ufunc, widens: bool) -> Lowering:
    name = f"np_{fn.__name__}_reduce"

    def emit(e: Emit) -> str:
        in_dtype = e.node.inputs[0].type.dtype
        dtype = e.dtype(e.out_type.dtype) if widens and in_dtype != e.out_type.dtype else None
        if widens and in_dtype.is_16bit_float:
            # accumulate in float32 and round once, as the interpreter does
            wide = e.call(
                name,
                fn.reduce,
                e.args[0],
                axis=_tuple(e.attrs["axes"]),
                dtype=e.dtype(DType.f32),
                keepdims="True" if e.attrs["keepdims"] else None,
            )
            if e.out is not None:
                return e.call("rt_cast_into", runtime.cast_into, wide, e.out)
            return f"{wide}.astype({e.dtype(in_dtype)})"
        return e.call(
            name,
            fn.reduce,
            e.args[0],
            axis=_tuple(e.attrs["axes"]),
            dtype=dtype,
            keepdims="True" if e.attrs["keepdims"] else None,
            out=e.out,
        )

    return Lowering(emit, out=True)


def _tuple(values: tuple[Any, ...]) -> str:
    return repr(tuple(values))


def _arg_reduction(method: str) -> Lowering:
    def emit(e: Emit) -> str:
        keep = ", keepdims=True" if e.attrs["keepdims"] else ""
        return f"{e.args[0]}.{method}(axis={e.attrs['axis']}{keep})"

    return Lowering(emit)


def _cumsum(e: Emit) -> str:
    axis = e.attrs["axis"]
    dtype = e.dtype(e.out_type.dtype)
    if e.attrs["reverse"]:
        return e.call("rt_cumsum_reverse", runtime.cumsum_reverse, e.args[0], str(axis), dtype)
    out = f", out={e.out}" if e.out else ""
    return f"{e.args[0]}.cumsum(axis={axis}, dtype={dtype}{out})"


def _cast(e: Emit) -> str:
    if e.out is not None:
        return e.call("rt_cast_into", runtime.cast_into, e.args[0], e.out)
    return f"{e.args[0]}.astype({e.dtype(e.out_type.dtype)})"


def _broadcast(e: Emit) -> str:
    x = e.node.inputs[0]
    shape, dims = e.attrs["shape"], e.attrs["broadcast_dimensions"]
    expanded = [1] * len(shape)
    for i, d in enumerate(dims):
        expanded[d] = x.type.shape[i]
    src = e.args[0]
    if tuple(expanded) != x.type.shape:
        src = f"{src}.reshape({_tuple(tuple(expanded))})"
    if tuple(expanded) == tuple(shape) or e.lazy_broadcast:
        # The consumers broadcast by themselves; size-1 dims are enough.
        return src
    return e.call("np_broadcast_to", np.broadcast_to, src, _tuple(tuple(shape)))


def _index(e: Emit, parts: list[str]) -> str:
    if not parts:
        return f"{e.args[0]}[()]"
    while parts and parts[-1] == ":":
        parts.pop()
    return f"{e.args[0]}[{', '.join(parts) or '...'}]"


def _slice(e: Emit) -> str:
    parts = []
    for n, s, l, st in zip(
        e.node.inputs[0].type.shape, *map(e.attrs.get, ("start", "limit", "stride"))
    ):
        if s == 0 and l == n and st == 1:
            parts.append(":")
        else:
            parts.append(f"{s}:{l}" + (f":{st}" if st != 1 else ""))
    return _index(e, parts)


def _reverse(e: Emit) -> str:
    ndim = e.out_type.ndim
    axes = {a % ndim for a in e.attrs["axes"]} if ndim else set()
    return _index(e, ["::-1" if d in axes else ":" for d in range(ndim)])


def _pad(e: Emit) -> str:
    return e.call(
        "rt_pad",
        runtime.pad,
        *e.args,
        _tuple(e.attrs["low"]),
        _tuple(e.attrs["high"]),
        _tuple(e.attrs["interior"]),
        out=e.out,
    )


def _concatenate(e: Emit) -> str:
    items = ", ".join(e.args) + ("," if len(e.args) == 1 else "")
    return e.call("np_concatenate", np.concatenate, f"({items})", axis=e.attrs["axis"], out=e.out)


def _scatter_add(e: Emit) -> str:
    return e.call("rt_scatter_add", runtime.scatter_add, *e.args, str(e.attrs["axis"]), out=e.out)


def _all_reduce(e: Emit) -> str:
    attrs = e.attrs
    x = e.operand_as(0, e.out_type.dtype)
    return e.call(
        "rt_all_reduce",
        runtime.all_reduce,
        x,
        repr(attrs["reduction"]),
        str(attrs["group"]),
        repr(attrs["compress"]),
        out=e.out,
    )


def _reference(op: str) -> Lowering:
    """The op's NumPy reference itself (for ops with no faster NumPy spelling yet)."""
    fn = get_op(op).reference
    name = f"ref_{op}"

    def emit(e: Emit) -> str:
        kwargs = {k: repr(v) for k, v in e.attrs.items()}
        # A reference types its result from its operands' dtypes, as the
        # interpreter calls it: a literal goes in as a scalar of its own dtype
        # (a bare Python 0 would read as int64 and widen the result).
        args = [
            e.operand_as(i, x.dtype) if isinstance(x, Literal) else e.args[i]
            for i, x in enumerate(e.node.inputs)
        ]
        return e.call(name, fn, *args, **kwargs)

    return Lowering(emit)


_UFUNCS: dict[str, np.ufunc] = {
    "neg": np.negative,
    "exp": np.exp,
    "exp2": np.exp2,
    "expm1": np.expm1,
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "cbrt": np.cbrt,
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "abs": np.absolute,
    "sign": np.sign,
    "floor": np.floor,
    "ceil": np.ceil,
    "not": np.invert,
    "isnan": np.isnan,
    "isinf": np.isinf,
    "isfinite": np.isfinite,
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.true_divide,
    "max": np.maximum,
    "min": np.minimum,
    "atan2": np.arctan2,
    "rem": np.remainder,
    "floordiv": np.floor_divide,
    "and": np.bitwise_and,
    "or": np.bitwise_or,
    "xor": np.bitwise_xor,
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}

LOWERINGS: dict[str, Lowering] = {
    **{op: _ufunc(fn) for op, fn in _UFUNCS.items()},
    # np.power itself on current NumPy; older ones need 0.5 to mean sqrt.
    "pow": _ufunc(power) if power is np.power else _ufunc(power, prefix="ir"),
    # scipy's expit is the same two-branch formula as the reference, as a ufunc.
    "sigmoid": _scipy_ufunc(scipy.special.expit),
    "erf": _scipy_ufunc(scipy.special.erf),
    "round": Lowering(_round, out=True, inplace=True),
    "select": Lowering(_select, out=True),
    "cast": Lowering(_cast, out=True),
    "stop_gradient": Lowering(lambda e: e.args[0], view=True),
    "reduce_sum": _reduction(np.add, widens=True),
    "reduce_prod": _reduction(np.multiply, widens=True),
    "reduce_max": _reduction(np.maximum, widens=False),
    "reduce_min": _reduction(np.minimum, widens=False),
    "argmax": _arg_reduction("argmax"),
    "argmin": _arg_reduction("argmin"),
    "cumsum": Lowering(_cumsum, out=True),
    "reshape": Lowering(lambda e: f"{e.args[0]}.reshape({_tuple(e.attrs['shape'])})", view=True),
    "transpose": Lowering(lambda e: f"{e.args[0]}.transpose({_tuple(e.attrs['perm'])})", view=True),
    "broadcast_in_dim": Lowering(_broadcast, view=True),
    "slice": Lowering(_slice, view=True),
    "reverse": Lowering(_reverse, view=True),
    "pad": Lowering(_pad, out=True),
    "concatenate": Lowering(_concatenate, out=True),
    "gather": Lowering(lambda e: e.call("np_take", np.take, *e.args, axis=e.attrs["axis"])),
    "scatter_add": Lowering(_scatter_add, out=True),
    "matmul": Lowering(lambda e: e.call("np_matmul", np.matmul, *e.args, out=e.out), out=True),
    "conv2d": _reference("conv2d"),
    # Sorting, special functions and linear algebra: the references call
    # NumPy/SciPy directly (LAPACK for the factorizations).
    **{
        op: _reference(op)
        for op in (
            "argsort",
            "gammaln",
            "digamma",
            "polygamma",
            "erfc",
            "erfinv",
            "ndtri",
            "log_ndtr",
            "i0e",
            "i1e",
            "gammainc",
            "gammaincc",
            "betainc",
            "stdtr",
            "gammaincinv",
            "gammainccinv",
            "betaincinv",
            "betainccinv",
            "cholesky",
            "solve",
            "triangular_solve",
        )
    },
    "slogdet": Lowering(_reference("slogdet").emit, tuple_result=True),
    "eigh": Lowering(_reference("eigh").emit, tuple_result=True),
    "svd": Lowering(_reference("svd").emit, tuple_result=True),
    "qr": Lowering(_reference("qr").emit, tuple_result=True),
    "lu": Lowering(_reference("lu").emit, tuple_result=True),
    "expm": _reference("expm"),
    "max_pool2d": _reference("max_pool2d"),
    "avg_pool2d": _reference("avg_pool2d"),
    "random_bits": _reference("random_bits"),
    "all_reduce": Lowering(_all_reduce, out=True),
    "all_reduce_start": Lowering(
        lambda e: e.call(
            "rt_all_reduce_start",
            runtime.all_reduce_start,
            e.operand_as(0, e.out_type.dtype),
            repr(e.attrs["reduction"]),
            str(e.attrs["group"]),
        )
    ),
    "all_reduce_done": Lowering(
        lambda e: e.call("rt_all_reduce_done", runtime.all_reduce_done, *e.args)
    ),
    # Values known at compile time; the code generator computes them once.
    "iota": _reference("iota"),
    "constant": Lowering(lambda e: "<constant>"),
}
