"""Signed zeros, infinities and NaNs: the LLVM backend against NumPy itself.

Each case runs a NumPy function eagerly and through ``gc.jit`` on the LLVM
backend (and on the NumPy backend, which must agree as well), then compares
values, NaN positions and the signs of zeros.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc as gc

SPECIAL = [-0.0, 0.0, math.nan, -math.inf, math.inf, 1.0, -1.0, 2.5, -2.5]
PAIRS = np.array(list(itertools.product(SPECIAL, SPECIAL))).T  # every ordered pair


def assert_same(got: Any, want: Any, label: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, label
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{label}: NaNs")
    np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=label)
    both = (got == 0) & (want == 0)
    np.testing.assert_array_equal(
        np.signbit(got[both]), np.signbit(want[both]), err_msg=f"{label}: signs of zeros"
    )


def check(
    f: Callable[..., Any],
    *args: np.ndarray,
    label: str,
    reference: Callable[..., Any] | None = None,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = (reference or f)(*args)
        for backend in ("llvm", "numpy"):
            got = gc.jit(f, backend=backend)(*args)
            assert_same(got, want, f"{label} on {backend}")


DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_sign(dtype: type) -> None:
    check(np.sign, np.array(SPECIAL, dtype), label="sign")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ufunc", [np.maximum, np.minimum])
def test_maximum_minimum_ties_and_nans(dtype: type, ufunc: np.ufunc) -> None:
    a, b = PAIRS.astype(dtype)
    check(ufunc, a, b, label=ufunc.__name__)
    for c in (0.0, -0.0, math.nan):
        check(lambda x, c=c: ufunc(x, c), a, label=f"{ufunc.__name__}(x, {c})")
        check(lambda x, c=c: ufunc(c, x), a, label=f"{ufunc.__name__}({c}, x)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_keeps_x_on_ties(dtype: type) -> None:
    x = np.array(SPECIAL, dtype)
    for lo, hi in [(0.0, 0.0), (-0.0, -0.0), (-0.0, 0.0), (0.0, -0.0), (3.0, 1.0), (-1.0, 1.0)]:
        check(lambda v, lo=lo, hi=hi: np.clip(v, lo, hi), x, label=f"clip({lo}, {hi})")
    check(lambda v: np.clip(v, math.nan, 1.0), x, label="clip(nan, 1)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_square_root_powers(dtype: type) -> None:
    x = np.array(SPECIAL + [4.0, 1e-30], dtype)
    check(lambda v: v**0.5, x, label="x ** 0.5")
    # NumPy < 2.3's np.power(x, 0.5) is +0.0 at -0.0 and inf at -inf; graphc
    # follows the newer NumPy (and ``x ** 0.5`` on any version): sqrt.
    check(lambda v: np.power(v, 0.5), x, label="power(x, 0.5)", reference=np.sqrt)
    for p in (2.0, -0.5, 1.0, 3.0, -1.0):
        check(lambda v, p=p: v**p, x, label=f"x ** {p}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_through_reductions_and_scans(dtype: type) -> None:
    neg = np.full((3, 37), -0.0, dtype)
    pos = np.zeros((3, 37), dtype)
    for x in (neg, pos):
        for f in (np.max, np.min, np.sum, np.cumsum):
            check(lambda v, f=f: f(v, axis=1), x, label=f"{f.__name__} of {x[0, 0]}")
    with_nan = np.array(SPECIAL, dtype)
    for f in (np.max, np.min, np.sum):
        check(f, with_nan, label=f"{f.__name__} with NaN")
    check(np.expm1, np.array(SPECIAL, dtype), label="expm1")
