"""Sorting and order statistics against NumPy on the interpreter and both
backends; gradients through the permutation against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

from .helpers import check_all

pytestmark = pytest.mark.usefixtures("private_llvm_cache")


def _data(dtype: type) -> np.ndarray:
    x = np.random.default_rng(7).normal(size=(3, 5)).astype(dtype)
    x[1, 2] = np.nan
    x[2, 1] = x[2, 3]  # a tie: the stable order keeps 1 before 3
    x[0, 4] = -np.inf
    return x


FUNCTIONS = {
    "sort": lambda a: np.sort(a),
    "sort_axis0": lambda a: np.sort(a, axis=0),
    "sort_none": lambda a: np.sort(a, axis=None),
    "argsort": lambda a: np.argsort(a, kind="stable"),
    "argsort_axis0": lambda a: np.argsort(a, axis=0, kind="stable"),
    "top2": lambda a: np.sort(a, axis=1)[:, -2:],
    "median": lambda a: np.median(a, axis=1),
    "median_all": lambda a: np.median(a[[0, 2]]),
    "median_even": lambda a: np.median(a[:, :4], axis=1, keepdims=True),
    "quantile": lambda a: np.quantile(a, [0.0, 0.1, 0.5, 0.95, 1.0], axis=1),
    "percentile": lambda a: np.percentile(a, 30, axis=0),
    "nanmedian": lambda a: np.nanmedian(a, axis=1),
    "nanmedian_axis0": lambda a: np.nanmedian(a, axis=0),
    "nanquantile": lambda a: np.nanquantile(a, 0.3, axis=1),
    "nanpercentile": lambda a: np.nanpercentile(a, 75, axis=0, keepdims=True),
    "searchsorted": lambda a: np.searchsorted(np.sort(a[0]), a[1:]),
    "searchsorted_right": lambda a: np.searchsorted(np.sort(a[0]), a[1:], side="right"),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_against_numpy(name: str, dtype: type) -> None:
    # float32 data with a float64 q gives float64 results; NumPy rounds its
    # interpolation weights through float32 in places, so compare at float32
    # accuracy there.
    check_all(FUNCTIONS[name], _data(dtype), rtol=None if dtype == np.float64 else 2e-6)


def test_integer_sort_and_partition_contract() -> None:
    x = np.random.default_rng(8).integers(-5, 5, size=(4, 7)).astype(np.int32)
    check_all(lambda a: (np.sort(a, axis=0), np.argsort(a, kind="stable")), x)
    for backend in ("numpy", "llvm"):
        got = gc.jit(lambda a: np.partition(a, 3, axis=1), backend=backend)(x)
        kth = np.partition(x, 3, axis=1)[:, 3]
        np.testing.assert_array_equal(got[:, 3], kth)
        assert np.all(got[:, :3] <= kth[:, None]) and np.all(got[:, 4:] >= kth[:, None])
        idx = gc.jit(lambda a: np.argpartition(a, 2), backend=backend)(x)
        np.testing.assert_array_equal(np.take_along_axis(x, idx, 1)[:, 2], np.sort(x, 1)[:, 2])


def test_gradients_through_the_permutation() -> None:
    x = np.random.default_rng(9).normal(size=(3, 6))
    w = np.arange(6.0)
    gc.check_grads(lambda a: np.sum(np.sort(a, axis=1) * w), (x,))
    gc.check_grads(lambda a: np.sum(np.median(a, axis=0) ** 2), (x,))
    gc.check_grads(lambda a: np.sum(np.quantile(a, [0.2, 0.7], axis=1)), (x,))
    gc.check_grads(lambda a: np.nanmedian(a), (x,))
    gc.check_grads(lambda a: np.sum(np.nanquantile(a, [0.1, 0.6], axis=0)), (x,))
    # A sort's gradient is the cotangent scattered back: sorted position k of
    # row r goes to the element that landed there.
    g = gc.grad(lambda a: np.sum(np.sort(a, axis=1) * w))(x)
    np.testing.assert_array_equal(np.take_along_axis(g, np.argsort(x, axis=1), 1), w + 0 * x)


def test_unsupported_method_is_clear() -> None:
    with pytest.raises(gc.UnsupportedError, match="method='nearest'"):
        gc.jit(lambda a: np.quantile(a, 0.5, method="nearest"))(np.ones(3))
    with pytest.raises(gc.OpTypeError, match="Quantiles must be in the range"):
        gc.jit(lambda a: np.quantile(a, 1.5))(np.ones(3))
