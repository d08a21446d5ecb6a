"""``dtype=`` on reductions and scans follows NumPy exactly: the accumulator,
the result dtype, integer truncation of means and variances, and NumPy's
errors (a NaN-aware mean of floats refuses an integer dtype; ``np.std`` of an
integer dtype cannot take its root in place along an axis)."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import pytest

import graphc as gc

from .helpers import assert_same, run_traced

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

_BASE = np.random.default_rng(3).normal(size=(3, 4)) * 3
INPUTS = {
    "bool": _BASE > 0,
    "int32": np.round(_BASE).astype(np.int32),
    "float64-nan": np.where(_BASE > 2, np.nan, _BASE),
    "float32": _BASE.astype(np.float32),
}
DTYPES = [None, np.bool_, np.int32, np.int64, np.float32, np.float64]
REDUCTIONS = "sum prod mean std var nansum nanprod nanmean nanstd nanvar".split()
SCANS = "cumsum cumprod nancumsum nancumprod".split()


def _outcome(f: Any, x: np.ndarray) -> tuple[Any, Exception | None]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return np.asarray(f(x)), None
        except Exception as exc:  # noqa: BLE001 - NumPy's refusal is the reference
            return None, exc


@pytest.mark.parametrize("name", REDUCTIONS + SCANS)
def test_dtype_argument_matches_numpy(name: str) -> None:
    func = getattr(np, name)
    for (label, x), dtype, axis in itertools.product(INPUTS.items(), DTYPES, [None, 0]):
        kw: dict[str, Any] = {"axis": axis, "dtype": dtype}
        if name in REDUCTIONS:
            kw["keepdims"] = axis == 0
        if name.endswith(("std", "var")):
            kw["ddof"] = 1

        def f(x: Any, kw: dict[str, Any] = kw) -> Any:
            return func(x, **kw)

        want, refused = _outcome(f, x)
        where = f"np.{name}({label}, {kw})"
        if refused is not None:
            with pytest.raises(gc.GraphcError) as info:
                run_traced(f, x)
            assert isinstance(info.value, TypeError), where
            continue
        _, got, _ = run_traced(f, x)
        wide = np.float32 in (x.dtype, dtype)
        assert_same(got[0], want, rtol=2e-5 if wide else 1e-9, signed_zeros=False)


@pytest.mark.parametrize("backend", ["numpy", "llvm", "interpret"])
def test_integer_mean_is_an_integer_on_every_backend(backend: str) -> None:
    x = np.array([[1, 2], [-3, -4], [5, 7]], np.int32)

    def f(x: Any) -> Any:
        return (
            np.mean(x, dtype=np.int64),
            x.mean(axis=0, dtype=np.int32),
            np.var(x, axis=1, dtype=np.int64),
            np.std(x, dtype=np.int64),
        )

    got = gc.jit(f, backend=backend)(x)
    for g, w in zip(got, f(x)):
        assert_same(np.asarray(g), w)
    assert got[0].dtype == np.int64 and int(got[0]) == 1


def test_float_dtype_of_a_mean_is_differentiable() -> None:
    x = np.random.default_rng(0).normal(size=(3, 4))

    def loss(x: Any) -> Any:
        return np.sum(np.std(x, axis=0, dtype=np.float64) + np.var(x, dtype=np.float64))

    gc.check_grads(loss, (x,), order=2)
    for backend in ("numpy", "llvm"):
        np.testing.assert_allclose(
            gc.jit(gc.grad(loss), backend=backend)(x), gc.grad(loss)(x), rtol=1e-10
        )


OTHERS: list[tuple[str, Any]] = [
    ("trace", lambda x, d: np.trace(x, dtype=d)),
    ("einsum", lambda x, d: np.einsum("ij->i", x, dtype=d)),
    ("einsum-same-kind", lambda x, d: np.einsum("ij->j", x, dtype=d, casting="same_kind")),
    ("add.reduce", lambda x, d: np.add.reduce(x, axis=1, dtype=d)),
    ("multiply.accumulate", lambda x, d: np.multiply.accumulate(x, axis=0, dtype=d)),
    ("sum-method", lambda x, d: x.sum(axis=0, dtype=d)),
    ("mean-method", lambda x, d: x.mean(dtype=d)),
]
if hasattr(np, "cumulative_sum"):  # NumPy >= 2.0
    OTHERS.append(("cumulative_sum", lambda x, d: np.cumulative_sum(x, axis=1, dtype=d)))
    OTHERS.append(("linalg.trace", lambda x, d: np.linalg.trace(x[:, :3], dtype=d)))


@pytest.mark.parametrize("name, f", OTHERS, ids=[o[0] for o in OTHERS])
def test_other_dtype_arguments_match_numpy(name: str, f: Any) -> None:
    for (label, x), dtype in itertools.product(INPUTS.items(), DTYPES):

        def g(x: Any, dtype: Any = dtype) -> Any:
            return f(x, dtype)

        want, refused = _outcome(g, x)
        if refused is not None:
            with pytest.raises(gc.GraphcError) as info:
                run_traced(g, x)
            assert isinstance(info.value, TypeError), f"{name}({label}, {dtype})"
            continue
        _, got, _ = run_traced(g, x)
        wide = np.float32 in (x.dtype, dtype)
        assert_same(got[0], want, rtol=2e-5 if wide else 1e-9, signed_zeros=False)
