"""TracedArray: the stand-in for an ndarray while a function is traced.

It records every NumPy operation applied to it as IR, through operators,
methods, indexing, ``__array_ufunc__`` (NEP 13) and ``__array_function__``
(NEP 18). Anything that needs concrete data raises :class:`TracingError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import TracingError, UnsupportedError, Value, format_message

from .context import Trace, user_instruction, user_location


def _concrete_error(what: str, hint: str) -> TracingError:
    doing = user_instruction(3)
    if doing == "STORE_SUBSCR":
        what, hint = "assigning a traced value into a NumPy array (a[i] = v)", _STORE_HINT
    elif doing == "BINARY_SUBSCR" and what.startswith(("converting", "using a traced value")):
        what = "indexing a NumPy array or a list made before tracing with a traced index"
        hint = (
            "NumPy's own indexing cannot record a gather: use np.take(table, idx, axis=0), "
            "or np.asarray(table)[idx] (arrays made by NumPy inside the traced function "
            "accept traced indices)"
        )
    return TracingError(
        format_message(
            f"{what} needs a concrete value, but this is a traced array "
            "(its data only exists when the compiled graph runs)",
            loc=user_location(3),
            hint=hint,
        )
    )


_STORE_HINT = (
    "arrays are not updated in place while tracing: build the result functionally with "
    "np.where(mask, v, a), np.stack/np.concatenate, or gc.scatter_add(a, idx, v)"
)
_BRANCH_HINT = (
    "Python control flow cannot depend on traced data: use np.where(cond, a, b) for "
    "elementwise choices, gc.cond(pred, true_fn, false_fn, *operands) to choose between "
    "two computations, gc.scan(f, init, xs) or gc.fori_loop(lo, hi, f, init) for a loop "
    "whose steps depend on earlier ones, gc.while_loop(cond_fun, body_fun, init) for one "
    "whose length depends on the data, or pass the value as a static argument "
    "(gc.jit(f, static_argnums=...))"
)


class TracedArray:
    """A symbolic array: a Value in the graph a trace is building."""

    __slots__ = ("trace", "value", "weak")
    __array_priority__ = 1000

    def __init__(self, trace: Trace, value: Value, weak: bool = False) -> None:
        self.trace = trace
        self.value = value
        # weak: came from a Python scalar, so it takes its dtype from the other
        # operand (NEP 50), like a Python float would.
        self.weak = weak

    # -- properties ----------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.type.shape

    @property
    def ndim(self) -> int:
        return len(self.value.type.shape)

    @property
    def size(self) -> int:
        return self.value.type.size

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.value.type.dtype.np

    @property
    def itemsize(self) -> int:
        return int(self.dtype.itemsize)

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    @property
    def T(self) -> TracedArray:  # noqa: N802
        return np.transpose(self)  # type: ignore[return-value]

    @property
    def mT(self) -> TracedArray:  # noqa: N802
        return np.swapaxes(self, -1, -2)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"TracedArray({self.value.type}{', weak' if self.weak else ''})"

    # -- NumPy protocols -----------------------------------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        from .ufuncs import apply_ufunc_method

        return apply_ufunc_method(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        from .functions import apply_function

        return apply_function(func, args, kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise _concrete_error(
            "converting to a NumPy array",
            "np.* functions and np.array/np.asarray called from your code take traced "
            "values and lists of them; what cannot: a ufunc given a Python list holding "
            "traced values (write np.exp(np.array([a, b]))), a NumPy function imported by "
            "name before tracing (call np.mean, not mean), and library functions that "
            "convert their input with np.asarray, unless graphc intercepts them (the "
            "README lists the SciPy functions it does): write them with NumPy functions",
        )

    # -- Python protocols that need data ----------------------------------------------
    def __bool__(self) -> bool:
        raise _concrete_error(
            "using a traced value as a Python bool (if/while/and/or)", _BRANCH_HINT
        )

    def __float__(self) -> float:
        raise _concrete_error("float() of a traced value", _BRANCH_HINT)

    def __int__(self) -> int:
        raise _concrete_error("int() of a traced value", _BRANCH_HINT)

    def __complex__(self) -> complex:
        raise _concrete_error("complex() of a traced value", _BRANCH_HINT)

    def __index__(self) -> int:
        raise _concrete_error(
            "using a traced value as a Python index (range, list index, slice bound)",
            "use integer-array indexing (x[idx]) or np.take; shapes and slice bounds "
            "must be static",
        )

    def item(self, *args: Any) -> Any:
        raise _concrete_error(".item() of a traced value", _BRANCH_HINT)

    def tolist(self) -> Any:
        raise _concrete_error(".tolist() of a traced value", _BRANCH_HINT)

    def __len__(self) -> int:
        if not self.shape:
            raise TracingError(
                format_message(
                    "len() of a 0-d traced value",
                    loc=user_location(2),
                    hint="a 0-d array has no length; use .shape",
                )
            )
        return self.shape[0]

    def __iter__(self) -> Any:
        if not self.shape:
            raise TracingError(
                format_message("iteration over a 0-d traced value", loc=user_location(2))
            )
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self) -> int:
        raise TypeError("unhashable type: 'TracedArray'")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TracingError(
            format_message(
                "in-place assignment into a traced array (x[...] = v) is not supported",
                loc=user_location(2),
                hint="build the result functionally: np.where(mask, v, x), np.concatenate, "
                "np.pad, or gc.scatter_add(x, idx, v) for np.add.at-style updates",
            )
        )

    # -- indexing ----------------------------------------------------------------
    def __getitem__(self, key: Any) -> TracedArray:
        from .indexing import getitem

        return getitem(self, key)

    # -- methods -------------------------------------------------------------------
    def reshape(self, *shape: Any, order: str = "C") -> Any:
        if order != "C":
            raise _unsupported_order()
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return np.reshape(self, shape)

    def astype(self, dtype: Any, copy: bool = True, **kwargs: Any) -> Any:
        from .ops import cast

        return cast(self, dtype)

    def transpose(self, *axes: Any) -> Any:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0] or ()
        return np.transpose(self, axes or None)

    def swapaxes(self, a: int, b: int) -> Any:
        return np.swapaxes(self, a, b)

    def squeeze(self, axis: Any = None) -> Any:
        return np.squeeze(self, axis)

    def flatten(self, order: str = "C") -> Any:
        if order != "C":
            raise _unsupported_order()
        return np.reshape(self, (-1,))

    def ravel(self, order: str = "C") -> Any:
        return self.flatten(order)

    def copy(self, order: str = "C") -> TracedArray:
        return self

    def sum(self, axis: Any = None, dtype: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return np.sum(self, axis=axis, dtype=dtype, keepdims=keepdims, **kw)

    def prod(self, axis: Any = None, dtype: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return np.prod(self, axis=axis, dtype=dtype, keepdims=keepdims, **kw)

    def mean(self, axis: Any = None, dtype: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return np.mean(self, axis=axis, dtype=dtype, keepdims=keepdims, **kw)

    def var(
        self, axis: Any = None, dtype: Any = None, ddof: int = 0, keepdims: bool = False, **kw: Any
    ) -> Any:
        return np.var(self, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, **kw)

    def std(
        self, axis: Any = None, dtype: Any = None, ddof: int = 0, keepdims: bool = False, **kw: Any
    ) -> Any:
        return np.std(self, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, **kw)

    def max(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return np.max(self, axis=axis, keepdims=keepdims, **kw)

    def min(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return np.min(self, axis=axis, keepdims=keepdims, **kw)

    def argmax(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return np.argmax(self, axis=axis, keepdims=keepdims, **kw)

    def argmin(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return np.argmin(self, axis=axis, keepdims=keepdims, **kw)

    def all(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return np.all(self, axis=axis, keepdims=keepdims, **kw)

    def any(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return np.any(self, axis=axis, keepdims=keepdims, **kw)

    def argsort(self, axis: Any = -1, kind: Any = None, order: Any = None, **kw: Any) -> Any:
        return np.argsort(self, axis=axis, kind=kind, order=order, **kw)

    def cumsum(self, axis: Any = None, dtype: Any = None, **kw: Any) -> Any:
        return np.cumsum(self, axis=axis, dtype=dtype, **kw)

    def clip(self, min: Any = None, max: Any = None, **kw: Any) -> Any:  # noqa: A002
        return np.clip(self, min, max, **kw)

    def dot(self, other: Any) -> Any:
        return np.dot(self, other)

    def round(self, decimals: int = 0) -> Any:
        return np.round(self, decimals)

    def take(self, indices: Any, axis: Any = None, **kw: Any) -> Any:
        return np.take(self, indices, axis=axis, **kw)

    def repeat(self, repeats: Any, axis: Any = None) -> Any:
        return np.repeat(self, repeats, axis=axis)

    def cumprod(self, axis: Any = None, dtype: Any = None, **kw: Any) -> Any:
        return np.cumprod(self, axis=axis, dtype=dtype, **kw)

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
        return np.diagonal(self, offset, axis1, axis2)

    def nonzero(self) -> Any:
        return np.nonzero(self)

    def conj(self) -> TracedArray:
        return self

    def conjugate(self) -> TracedArray:
        return self

    @property
    def real(self) -> TracedArray:
        return self

    @property
    def imag(self) -> Any:
        return np.imag(self)

    def __getattr__(self, name: str) -> Any:
        # ndarray methods without a traced version: say so instead of a bare AttributeError
        if not name.startswith("_") and hasattr(np.ndarray, name):
            if name in _IN_PLACE_METHODS:
                raise _InPlaceAttribute(
                    format_message(
                        f"ndarray.{name} modifies an array in place, which is not supported "
                        "while tracing",
                        loc=user_location(2),
                        hint="build the result functionally (np.where, np.concatenate, np.pad)",
                    )
                )
            raise _UnsupportedAttribute(
                format_message(
                    f"ndarray.{name} is not supported on traced arrays",
                    loc=user_location(2),
                    hint="see the README's table of supported NumPy API",
                )
            )
        raise AttributeError(f"'TracedArray' object has no attribute '{name}'")


_IN_PLACE_METHODS = frozenset({"fill", "sort", "partition", "put", "resize", "itemset", "setfield"})


# Both are AttributeErrors too, so hasattr() and getattr(x, name, default) keep working.
class _UnsupportedAttribute(UnsupportedError, AttributeError):
    """An ndarray attribute that tracing does not provide."""


class _InPlaceAttribute(TracingError, AttributeError):
    """An ndarray method that would modify the array in place."""


def _unsupported_order() -> Exception:
    return UnsupportedError(
        format_message("only C (row-major) order is supported", loc=user_location(3))
    )


def _install_operators() -> None:
    # Arithmetic dunders route through the ufunc path so promotion is NumPy's.
    table = {
        "add": np.add,
        "sub": np.subtract,
        "mul": np.multiply,
        "truediv": np.true_divide,
        "floordiv": np.floor_divide,
        "mod": np.remainder,
        "pow": np.power,
        "matmul": np.matmul,
        "and": np.bitwise_and,
        "or": np.bitwise_or,
        "xor": np.bitwise_xor,
        "lshift": np.left_shift,
        "rshift": np.right_shift,
        "divmod": np.divmod,
    }
    from .ufuncs import apply_ufunc

    for name, ufunc in table.items():

        def forward(self: Any, other: Any, ufunc: np.ufunc = ufunc) -> Any:
            return apply_ufunc(ufunc, (self, other))

        def reflected(self: Any, other: Any, ufunc: np.ufunc = ufunc) -> Any:
            return apply_ufunc(ufunc, (other, self))

        setattr(TracedArray, f"__{name}__", forward)
        setattr(TracedArray, f"__r{name}__", reflected)

    def power(self: Any, other: Any) -> Any:
        # ndarray ** 2 is np.square, which makes int8 of bool (np.power would
        # give int64)
        if type(other) is int and other == 2 and self.dtype == np.bool_:
            return apply_ufunc(np.square, (self,))
        return apply_ufunc(np.power, (self, other))

    TracedArray.__pow__ = power  # type: ignore[method-assign]
    for name, ufunc in {
        "lt": np.less,
        "le": np.less_equal,
        "gt": np.greater,
        "ge": np.greater_equal,
        "eq": np.equal,
        "ne": np.not_equal,
    }.items():

        def compare(self: Any, other: Any, ufunc: np.ufunc = ufunc) -> Any:
            return apply_ufunc(ufunc, (self, other))

        setattr(TracedArray, f"__{name}__", compare)
    for name, ufunc in {
        "neg": np.negative,
        "pos": np.positive,
        "abs": np.absolute,
        "invert": np.invert,
    }.items():

        def unary(self: Any, ufunc: np.ufunc = ufunc) -> Any:
            return apply_ufunc(ufunc, (self,))

        setattr(TracedArray, f"__{name}__", unary)


_install_operators()
