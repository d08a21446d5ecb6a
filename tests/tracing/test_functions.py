"""Every NumPy function the tracer handles, traced and interpreted against
NumPy (shape, dtype, values, containers), plus the text round trip.

The cases live in ``cases_arrays`` and ``cases_math``; a test here checks that
every entry of the handler table is covered by a case or a refusal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from graphc.ir import GraphcError, OpTypeError, TracingError, UnsupportedError
from graphc.tracing.dispatch import HANDLERS, public_name

from . import cases_arrays, cases_math, cases_numerics  # noqa: F401  (they fill CASES)
from .cases_common import A32, BOOL, CASES, A, Case
from .helpers import check


# NumPy's own warnings for the reference run (an all-NaN slice, a deprecated alias)
@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:`row_stack` alias is deprecated:DeprecationWarning")
@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_function_matches_numpy(c: Case) -> None:
    check(c.fn, *c.args)


def test_constants_made_inside_are_captured() -> None:
    def f(x: np.ndarray) -> Any:
        table = np.linspace(0.0, 1.0, 4)
        return x * table + np.eye(3, 4) + np.arange(4)[None, :] * np.float64(0.5)

    g = check(f, A)
    assert any(n.op == "constant" for n in g.nodes)


# -- refused functions -----------------------------------------------------------------------------
REJECTED: list[tuple[Any, str, Callable[..., Any], type[Exception]]] = [
    (np.allclose, "allclose", lambda a: np.allclose(a, 0), TracingError),
    (np.array_equal, "array_equal", lambda a: np.array_equal(a, a), TracingError),
    (np.array_equiv, "array_equiv", lambda a: np.array_equiv(a, a), TracingError),
    (np.nonzero, "nonzero", lambda a: np.nonzero(a), TracingError),
    (np.argwhere, "argwhere", lambda a: np.argwhere(a), TracingError),
    (np.flatnonzero, "flatnonzero", lambda a: np.flatnonzero(a), TracingError),
    (np.copyto, "copyto", lambda a: np.copyto(a, 1.0), TracingError),
    (np.put, "put", lambda a: np.put(a, [0], 1.0), TracingError),
    (
        np.put_along_axis,
        "put_along_axis",
        lambda a: np.put_along_axis(a, np.zeros((1, 4), int), 0.0, 0),
        TracingError,
    ),
    (np.place, "place", lambda a: np.place(a, BOOL, 0.0), TracingError),
    (np.putmask, "putmask", lambda a: np.putmask(a, BOOL, 0.0), TracingError),
    (np.fill_diagonal, "fill_diagonal", lambda a: np.fill_diagonal(a, 0.0), TracingError),
    (np.lexsort, "lexsort", lambda a: np.lexsort(a), UnsupportedError),
    (np.unique, "unique", lambda a: np.unique(a), UnsupportedError),
    (np.lib.scimath.sqrt, "sqrt", lambda a: np.lib.scimath.sqrt(a), UnsupportedError),
    (np.linalg.eig, "linalg.eig", lambda a: np.linalg.eig(a[:3, :3]), UnsupportedError),
    (np.convolve, "convolve", lambda a: np.convolve(a[0], a[1]), UnsupportedError),
]


@pytest.mark.parametrize("func, name, fn, error", REJECTED, ids=[r[1] for r in REJECTED])
def test_refused_functions_name_themselves(func: Any, name: str, fn: Any, error: type) -> None:
    with pytest.raises(error, match=f"np.{name}") as info:
        check(fn, A)
    assert __file__ in str(info.value)


@pytest.mark.parametrize(
    "name, fn, error",
    [
        ("pad-traced-width", lambda a, w: np.pad(a, w), TracingError),
        ("pad-reflect-too-wide", lambda a, w: np.pad(a, 5, mode="reflect"), UnsupportedError),
        ("pad-linear_ramp", lambda a, w: np.pad(a, 1, mode="linear_ramp"), UnsupportedError),
        ("repeat-traced", lambda a, w: np.repeat(a, w), TracingError),
        ("roll-traced", lambda a, w: np.roll(a, w), TracingError),
        ("split-uneven", lambda a, w: np.split(a, 3, axis=1), OpTypeError),
        ("reshape-bad", lambda a, w: np.reshape(a, (5, -1)), OpTypeError),
        ("einsum-bad-sizes", lambda a, w: np.einsum("ij,ij->i", a, a.T), OpTypeError),
        ("einsum-unknown-output", lambda a, w: np.einsum("ij->k", a), OpTypeError),
        ("tensordot-mismatch", lambda a, w: np.tensordot(a, a, 1), OpTypeError),
        ("cross-2d", lambda a, w: np.cross(a[:, :2], a[:, 2:]), UnsupportedError),
        ("max-empty", lambda a, w: np.max(a[:0]), OpTypeError),
        ("axis-out-of-range", lambda a, w: np.sum(a, axis=2), OpTypeError),
        ("where-one-argument", lambda a, w: np.where(a > 0), TracingError),
        ("sum-out", lambda a, w: np.sum(a, out=np.zeros(())), UnsupportedError),
        ("ndarray-sort", lambda a, w: a.sort(), TracingError),
        ("average-zero-weights", lambda a, w: np.average(a, 1, [1, -1, 0, 0]), ZeroDivisionError),
    ],
)
def test_bad_calls_raise_graphc_errors(name: str, fn: Any, error: type) -> None:
    with pytest.raises(error) as info:
        check(fn, A, 2)
    assert isinstance(info.value, GraphcError)
    assert __file__ in str(info.value), str(info.value)


def test_every_handled_function_has_a_case() -> None:
    covered = {f for c in CASES for f in c.covers} | {r[0] for r in REJECTED}
    missing = sorted(public_name(f) for f in HANDLERS if f not in covered)
    assert not missing, f"no test case for {missing}"


def test_unhandled_function_error_mentions_readme() -> None:
    with pytest.raises(UnsupportedError, match="np.interp is not supported on traced arrays"):
        check(lambda a: np.interp(a, [0.0, 1.0], [1.0, 2.0]), A)


def test_float_formulas_keep_float32() -> None:
    # a float32 model must not silently widen through helper constants
    g = check(lambda a: (np.linalg.norm(a), np.var(a), np.sinc(a), np.round(a, 1)), A32)
    assert all(v.type.dtype.np == np.float32 for v in g.outputs)


def test_math_constants_stay_exact() -> None:
    check(lambda a: a * math.pi + np.e, A)
