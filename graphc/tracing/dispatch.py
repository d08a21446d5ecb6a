"""The ``__array_function__`` table and helpers shared by its handlers.

``HANDLERS`` maps a NumPy function to its traced implementation. The family
modules (``reductions``, ``shape_functions``, ``layout_functions``,
``linalg_functions``, ``elementwise_functions``) register into it with
:func:`implements`; anything missing raises :class:`UnsupportedError`
naming the function and the user's line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.ir import OpTypeError, TracingError, UnsupportedError, format_message

from .array import TracedArray
from .context import user_location
from .ops import lift, trace_of

HANDLERS: dict[Any, Callable[..., Any]] = {}

# Why a well-known function is missing, so the error can say what to do.
_DATA_DEPENDENT = (
    "its result shape depends on the data, and graphs have static shapes; "
    "use a fixed-size formulation (np.where with a mask, a sum over a mask)"
)
_NO_SORT = "the IR has no sorting op; sort outside the traced function"
_NO_DECOMPOSITION = (
    "the IR has no matrix decompositions or solvers; compute this outside the traced "
    "function or use an iterative method written with matmul"
)
MISSING_HINTS: dict[str, str] = {
    **dict.fromkeys(["unique", "compress", "extract", "trim_zeros"], _DATA_DEPENDENT),
    **dict.fromkeys(
        ["sort", "argsort", "partition", "argpartition", "lexsort", "searchsorted", "median"],
        _NO_SORT,
    ),
    **dict.fromkeys(["percentile", "quantile", "nanmedian", "nanpercentile"], _NO_SORT),
    **dict.fromkeys(
        ["inv", "solve", "det", "slogdet", "eig", "eigh", "eigvals", "eigvalsh", "svd", "qr"],
        _NO_DECOMPOSITION,
    ),
    **dict.fromkeys(
        ["cholesky", "lstsq", "pinv", "matrix_rank", "matrix_power"], _NO_DECOMPOSITION
    ),
}


def implements(*funcs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the traced version of ``funcs``."""

    def register(impl: Callable[..., Any]) -> Callable[..., Any]:
        for f in funcs:
            HANDLERS[f] = impl
        return impl

    return register


def public_name(func: Any) -> str:
    """How users spell ``func``: ``np.sort``, ``np.linalg.inv``, ``scipy.special.xlogy``."""
    name = getattr(func, "__name__", None) or str(func)
    for prefix, namespace in (("np.", np), ("np.linalg.", np.linalg), ("np.fft.", np.fft)):
        found = getattr(namespace, name, None)
        # while tracing, the namespace may hold graphc's wrapper of func
        if found is func or getattr(found, "__wrapped__", None) is func:
            return prefix + name
    module = getattr(func, "__module__", None) or ""
    return f"{module}.{name}" if module and not module.startswith("numpy") else f"np.{name}"


def apply_function(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """Entry point of ``TracedArray.__array_function__``."""
    impl = HANDLERS.get(func)
    if impl is None:
        name = public_name(func)
        raise UnsupportedError(
            format_message(
                f"{name} is not supported on traced arrays",
                loc=user_location(3),
                hint=MISSING_HINTS.get(
                    getattr(func, "__name__", ""), "see the README's table of supported NumPy API"
                ),
            )
        )
    if any(isinstance(a, (list, tuple)) for a in args) or kwargs:
        # lists holding traced values, as NumPy's conversion would make them
        from .constructors import convert_lists

        args, kwargs = convert_lists(getattr(func, "__name__", ""), tuple(args), kwargs)
    return impl(*args, **kwargs)


def error(cls: type[Exception], msg: str, hint: str | None = None) -> Exception:
    """A graphc error located at the user's line (helpers are skipped by frame filtering)."""
    return cls(format_message(msg, loc=user_location(3), hint=hint))


def normalize_axis(axis: Any, ndim: int, *, allow_none: bool = True) -> tuple[int, ...]:
    """Axes as a tuple of non-negative ints (``None`` means all of them)."""
    if axis is None:
        if not allow_none:
            raise error(OpTypeError, "axis must not be None here")
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = static_int(a, "axis")
        if not -ndim <= a < ndim:
            raise error(OpTypeError, f"axis {a} is out of bounds for array of dimension {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise error(OpTypeError, f"repeated axis in {axes}")
    return tuple(out)


def static_int(x: Any, what: str) -> int:
    """A Python int from a static argument; a traced one is a :class:`TracingError`."""
    if isinstance(x, TracedArray):
        raise error(
            TracingError,
            f"{what} must be a static integer, but it is a traced value",
            hint="shapes, axes, counts and slice bounds are fixed when tracing; pass the value "
            "as a static argument (gc.jit(f, static_argnums=...))",
        )
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        try:
            return int(x.__index__())
        except (AttributeError, TypeError):
            raise error(OpTypeError, f"{what} must be an integer, got {x!r}") from None
    return int(x)


def static_ints(x: Any, what: str) -> tuple[int, ...]:
    """A tuple of static ints from an int or a sequence of ints."""
    if isinstance(x, TracedArray):
        static_int(x, what)
    if isinstance(x, (tuple, list, np.ndarray)):
        return tuple(static_int(v, what) for v in np.asarray(x, dtype=object).ravel())
    return (static_int(x, what),)


def as_tracer(x: Any, *others: Any) -> TracedArray:
    """``x`` as a tracer of the innermost trace among ``x`` and ``others``."""
    return lift(x, trace_of(x, *others))


def no_out(name: str, out: Any = None, where: Any = None) -> None:
    """Reject ``out=``/``where=`` arguments, which write into existing arrays."""
    if out is not None:
        raise error(
            UnsupportedError,
            f"np.{name}: out= is not supported on traced arrays",
            hint="assign the result instead (y = np.f(x))",
        )
    if where is not None and where is not True:
        raise error(
            UnsupportedError,
            f"np.{name}: where= is not supported on traced arrays",
            hint="mask with np.where first",
        )


def in_place_error(what: str) -> Exception:
    """In-place updates cannot be traced: graphs are functional."""
    return error(
        TracingError,
        f"{what} modifies an array in place, which is not supported while tracing",
        hint="build the result functionally: np.where(mask, v, x), np.concatenate, np.pad, "
        "or gc.scatter_add(x, idx, v) for additive updates",
    )
