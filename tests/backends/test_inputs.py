"""The input policy both backends share (graphc.ir.coerce_input): what a
compiled executable accepts, converts, and rejects, with the same errors."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.backends import llvm as llvm_backend
from graphc.backends import numpy as numpy_backend
from graphc.ir import (
    DType,
    GraphBuilder,
    InputError,
    InputOverflowError,
    coerce_input,
    interpret,
    scalar_fits,
)

f32, f64, i32, i64, b8 = DType.f32, DType.f64, DType.i32, DType.i64, DType.bool
BACKENDS = {"numpy": numpy_backend.compile, "llvm": llvm_backend.compile}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))


def scaled(dtype: DType):  # noqa: ANN201
    """x * s for an array x and a 0-d input s, both of ``dtype``."""
    b = GraphBuilder("scaled")
    x = b.input(dtype[3], "x")
    s = b.input(dtype[()], "s")
    return b.build([b.mul(x, s)])


def numpy_accepts(value: object, dtype: DType) -> bool:
    """Whether NumPy converts the Python scalar to ``dtype`` without error."""
    try:
        np.asarray(value, dtype=dtype.np)
    except OverflowError:
        return False
    return True


@pytest.mark.parametrize(
    "value, dtype, fits",
    [
        (True, b8, True),
        (1, b8, False),
        (True, i64, False),
        (2**31 - 1, i32, True),
        (2**31, i32, False),
        (-(2**31), i32, True),
        (-(2**31) - 1, i32, False),
        (2**63 - 1, i64, True),
        (2**63, i64, False),
        (-(2**63), i64, True),
        (-(2**63) - 1, i64, False),
        (2**200, f64, True),
        (10**400, f64, False),
        (1.5, i64, False),
        (1.5, f32, True),
    ],
)
def test_scalar_fits_keeps_value_and_kind(value, dtype, fits) -> None:  # noqa: ANN001
    assert scalar_fits(value, dtype) is fits
    if isinstance(value, int) and not isinstance(value, bool) and not dtype.is_bool:
        # Where the kinds agree, "fits" is exactly NumPy's own range check.
        assert fits == numpy_accepts(value, dtype)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("dtype, value", [(i64, 2**63), (i64, -(2**63) - 1), (i32, 2**31)])
def test_a_python_int_out_of_range_is_an_overflow_input_error(backend, dtype, value) -> None:  # noqa: ANN001
    exe = BACKENDS[backend](scaled(dtype))
    x = np.arange(3, dtype=dtype.np)
    with pytest.raises(InputOverflowError, match=r"input 1 \(%s\) expects") as info:
        exe(x, value)
    assert isinstance(info.value, OverflowError) and isinstance(info.value, InputError)
    assert str(value) in str(info.value)
    with pytest.raises(OverflowError):  # NumPy agrees
        np.asarray(value, dtype=dtype.np)
    # The largest value that fits goes through and matches NumPy.
    top = int(np.iinfo(dtype.np).max)
    np.testing.assert_array_equal(exe(x, top)[0], x * np.asarray(top, dtype.np))


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_both_backends_accept_and_reject_the_same_arguments(backend) -> None:  # noqa: ANN001
    g = scaled(f64)
    exe = BACKENDS[backend](g)
    x = np.arange(3.0)
    accepted = [
        (x, 2.0),
        (x, 2),  # an int that fits a float input
        (x, np.float64(2.0)),
        (x, np.array(2.0)),
        (x.astype(">f8"), 2.0),  # byte-swapped
        (x, np.array(2.0, dtype=">f8")),
    ]
    for args in accepted:
        np.testing.assert_array_equal(exe(*args)[0], interpret(g, x, np.array(2.0))[0])
    rejected = [
        ((x, True), "Python bool"),
        ((x, np.float32(2.0)), "expects dtype f64"),
        ((x.astype(np.float32), 2.0), "expects dtype f64"),
        ((x[:2], 2.0), r"expects shape \[3\], got \[2\]"),
        ((list(x), 2.0), "expects an array of type f64"),
        ((x, "2"), "expects an array"),
        ((x, None), "expects an array"),
        ((2.0, 2.0), "expects an array of type f64"),
    ]
    for args, message in rejected:
        with pytest.raises(InputError, match=message) as info:
            exe(*args)
        assert "graph scaled: input" in str(info.value)


def test_coerce_input_returns_the_array_itself_when_it_fits() -> None:
    x = np.arange(6.0).reshape(2, 3)
    assert coerce_input(x, f64[2, 3], "x") is x
    view = x.T
    assert coerce_input(view, f64[3, 2], "x") is view  # layout is the backend's business
    swapped = coerce_input(x.astype(">f8"), f64[2, 3], "x")
    assert swapped.dtype == np.float64 and swapped.dtype.isnative
    np.testing.assert_array_equal(swapped, x)


def test_llvm_executable_rejects_strided_arrays_by_name() -> None:
    exe = llvm_backend.compile(scaled(f64))
    for bad in (np.arange(6.0)[::2], np.broadcast_to(np.arange(1.0), (3,))):
        with pytest.raises(InputError, match=r"graph scaled: input 0 \(%x\).*C-contiguous"):
            exe(bad, 2.0)
