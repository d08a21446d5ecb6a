"""Errors users meet while tracing: each names the user's file and line (this
file's, here) and says what to do instead. Every error class is also the
built-in exception NumPy code would expect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.special

import graphc as gc
from graphc.ir import GraphcError, GraphcIndexError

X = np.arange(12.0).reshape(3, 4)
TABLE = np.eye(4)


def line_of(marker: str) -> int:
    """The line of this file holding ``marker`` (a comment at the line that fails)."""
    with open(__file__) as source:
        hits = [i for i, text in enumerate(source, 1) if text.rstrip().endswith(marker)]
    assert len(hits) == 1, marker
    return hits[0]


def raises_at(
    error: type[Exception], f: Callable[..., Any], marker: str, *args: Any
) -> GraphcError:
    with pytest.raises(error) as info:
        gc.trace(f, *(args or (X,)))
    message = str(info.value)
    assert f"{__file__}:{line_of(marker)}" in message, message
    assert isinstance(info.value, GraphcError)
    return info.value  # type: ignore[return-value]


def branch_on_sum(x: Any) -> Any:
    if x.sum() > 0:  # err:if
        return x
    return -x


def python_float(x: Any) -> Any:
    return x * float(x[0, 0])  # err:float


def python_int(x: Any) -> Any:
    return x[: int(x[0, 1])]  # err:int


def while_loop(x: Any) -> Any:
    while x.max() < 100:  # err:while
        x = x * 2
    return x


def len_of_scalar(x: Any) -> Any:
    return len(x.sum())  # err:len


def item(x: Any) -> Any:
    return x * x[0, 0].item()  # err:item


def store_into_numpy(x: Any) -> Any:
    out = np.zeros(4)
    out[0] = x[0, 0]  # err:store
    return out


def index_numpy_table(x: Any) -> Any:
    return TABLE[np.argmax(x, axis=1)]  # err:table


def set_item(x: Any) -> Any:
    x[0] = 1.0  # err:setitem
    return x


def traced_mask(x: Any) -> Any:
    return x[x > 3].sum()  # err:mask


def traced_bound(x: Any) -> Any:
    return x[: x.shape[0] - np.argmax(x[0])]  # err:slice


def range_of_traced(x: Any) -> Any:
    return [x[i] for i in range(np.argmax(x[0]))]  # err:range


def and_of_traced(x: Any) -> Any:
    return x if (x > 0).all() and True else -x  # err:and


@pytest.mark.parametrize(
    "f, marker, hint",
    [
        (branch_on_sum, "# err:if", "np.where"),
        (python_float, "# err:float", "static_argnums"),
        (python_int, "# err:int", "static_argnums"),
        (while_loop, "# err:while", "np.where"),
        (len_of_scalar, "# err:len", ".shape"),
        (item, "# err:item", "static_argnums"),
        (store_into_numpy, "# err:store", "np.where(mask, v, a)"),
        (index_numpy_table, "# err:table", "np.take(table, idx, axis=0)"),
        (set_item, "# err:setitem", "np.where"),
        (traced_mask, "# err:mask", "np.where"),
        (traced_bound, "# err:slice", "np.take"),
        (range_of_traced, "# err:range", "static"),
        (and_of_traced, "# err:and", "np.where"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_concrete_value_needed(f: Any, marker: str, hint: str) -> None:
    error = raises_at(gc.TracingError, f, marker)
    assert isinstance(error, TypeError)
    assert "hint:" in str(error) and hint in str(error), str(error)


def unsupported(x: Any) -> Any:
    return np.sort(x, axis=1)  # err:sort


def unsupported_linalg(x: Any) -> Any:
    return np.linalg.det(x[:, :3])  # err:det


def test_unsupported_function_names_itself() -> None:
    error = raises_at(gc.UnsupportedError, unsupported, "# err:sort")
    assert "np.sort is not supported on traced arrays" in str(error)
    assert isinstance(error, TypeError)
    error = raises_at(gc.UnsupportedError, unsupported_linalg, "# err:det")
    assert "np.linalg.det is not supported" in str(error)


def shape_mismatch(x: Any) -> Any:
    return x + x.T  # err:add


def matmul_mismatch(x: Any) -> Any:
    return x @ x  # err:matmul


def test_shape_mismatch_names_op_types_and_line() -> None:
    error = raises_at(gc.OpTypeError, shape_mismatch, "# err:add")
    text = str(error)
    assert text.startswith("add:") and "f64[3,4]" in text and "f64[4,3]" in text, text
    assert isinstance(error, ValueError) and isinstance(error, TypeError)
    text = str(raises_at(gc.OpTypeError, matmul_mismatch, "# err:matmul"))
    assert text.startswith("matmul:") and "f64[3,4]" in text, text


def index_out_of_bounds(x: Any) -> Any:
    return x[:, 4]  # err:index


def test_out_of_bounds_index() -> None:
    error = raises_at(GraphcIndexError, index_out_of_bounds, "# err:index")
    assert isinstance(error, IndexError)
    assert "index 4 is out of bounds for axis 1 with size 4" in str(error)


def complex_constant(x: Any) -> Any:
    return x * 1j  # err:complex


def test_complex_numbers_are_unsupported() -> None:
    raises_at(gc.UnsupportedError, complex_constant, "# err:complex")


def test_errors_inside_grad_point_at_the_user_line() -> None:
    with pytest.raises(gc.TracingError) as info:
        gc.grad(branch_on_sum)(X)
    assert f"{__file__}:{line_of('# err:if')}" in str(info.value)


def scipy_logsumexp(x: Any) -> Any:
    return scipy.special.logsumexp(x)  # err:scipy-logsumexp


def scipy_gammaln(x: Any) -> Any:
    return scipy.special.gammaln(x)  # err:scipy-gammaln


def test_scipy_functions_point_at_the_user_line() -> None:
    error = raises_at(gc.TracingError, scipy_logsumexp, "# err:scipy-logsumexp")
    assert "write them with NumPy functions" in str(error)
    error = raises_at(gc.UnsupportedError, scipy_gammaln, "# err:scipy-gammaln")
    assert "scipy.special.gammaln is not supported" in str(error)
