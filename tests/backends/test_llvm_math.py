"""Accuracy of the vectorized float32 functions, in ulp, against float64 NumPy.

The LLVM backend computes exp, expm1, exp2, log, log1p, log2, log10, tanh and
sigmoid in float32 with its own range reduction and polynomials (so the loops
vectorize); they must stay within a few ulp of the correctly rounded result
over the whole float range, and get NaN, infinities, zeros and subnormals
right.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

from graphc.backends import llvm as llvm_backend
from graphc.ir import GraphBuilder, TensorType, f32

REFERENCE = {
    "exp": np.exp,
    "expm1": np.expm1,
    "exp2": np.exp2,
    "log": np.log,
    "log1p": np.log1p,
    "log2": np.log2,
    "log10": np.log10,
    "tanh": np.tanh,
    "sigmoid": scipy.special.expit,
}
MAX_ULP = 4


# Compiled LLVM objects go to a private directory, shared within this module.
pytestmark = pytest.mark.usefixtures("private_llvm_cache")


def sample() -> np.ndarray:
    """Every binade of float32 from subnormals to the largest finite value,
    both signs, plus special values."""
    rng = np.random.default_rng(7)
    mags = 2.0 ** rng.uniform(-149, 128, 1 << 18)
    dense = rng.uniform(-5, 5, 1 << 16)
    near_one = 1 + rng.uniform(-1e-3, 1e-3, 1 << 12)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-45, -1e-45, 88.72, 89.0, -104.0]
    values = np.concatenate([mags, -mags, dense, near_one, special])
    return values.astype(np.float32)


@pytest.fixture(scope="module")
def executable():  # noqa: ANN201
    b = GraphBuilder("math")
    x = b.input(TensorType((sample().size,), f32), "x")
    return llvm_backend.compile(b.build([b.emit(op, x) for op in REFERENCE]))


def ulp_error(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in units of the float32 spacing at the exact result."""
    rounded = exact.astype(np.float32)
    spacing = np.spacing(np.abs(rounded)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        return np.abs(got.astype(np.float64) - exact) / spacing


@pytest.mark.parametrize("k, op", list(enumerate(REFERENCE)))
def test_float32_function_within_a_few_ulp(executable, k: int, op: str) -> None:  # noqa: ANN001
    x = sample()
    got = executable(x)[k]
    with np.errstate(all="ignore"):
        exact = REFERENCE[op](x.astype(np.float64))
        rounded = exact.astype(np.float32)
    # Same NaNs, same infinities (with sign), same zeros.
    np.testing.assert_array_equal(np.isnan(got), np.isnan(rounded), err_msg=f"{op}: NaN")
    finite = np.isfinite(rounded) & np.isfinite(got)
    np.testing.assert_array_equal(got[~finite], rounded[~finite], err_msg=f"{op}: inf")
    # Results below the normal range have absolute, not relative, accuracy.
    normal = finite & (np.abs(rounded) >= np.finfo(np.float32).tiny)
    errors = ulp_error(got[normal], exact[normal])
    worst = int(np.argmax(errors))
    assert errors[worst] <= MAX_ULP, (
        f"{op}({x[normal][worst]!r}) = {got[normal][worst]!r}, exact {exact[normal][worst]!r}: "
        f"{errors[worst]:.2f} ulp"
    )
    tiny = finite & ~normal
    assert np.all(np.abs(got[tiny] - exact[tiny]) <= 2 * 1.5e-45 + 1e-38 * 1e-6)
