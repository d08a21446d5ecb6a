"""gc.jit takes the arguments NumPy takes: any array layout, Python ints
checked against the dtype they are used at, donated arrays that overlap
other arguments."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ir import InputError, InputOverflowError

BACKENDS = ("llvm", "numpy", "interpret")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))


def layouts() -> list[np.ndarray]:
    x = np.arange(24.0).reshape(4, 6) - 7.5
    return [
        x.T.copy().T,  # a transpose: Fortran order
        x.T[:, ::-1].T,  # negative strides
        np.asfortranarray(x),
        np.broadcast_to(x[:1], x.shape),  # read-only, zero stride
        np.arange(48.0).reshape(4, 12)[:, ::2],
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_array_layout_gives_numpy_results(backend) -> None:  # noqa: ANN001
    def f(a, b):
        return np.tanh(a) @ b.T + a.sum(axis=1, keepdims=True), a * 2.0

    jf = gc.jit(f, backend=backend)
    x = np.arange(24.0).reshape(4, 6) / 10.0
    for a in layouts():
        for b in (x, x.T.copy().T):
            got, want = jf(a, b), f(a, b)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    assert not layouts()[0].flags.c_contiguous  # the cases really are not C-contiguous


def test_llvm_converts_only_at_the_jit_layer() -> None:
    jf = gc.jit(lambda a: a + 1.0, backend="llvm")
    x = np.ones((3, 4))
    jf(x)
    with pytest.raises(InputError, match="C-contiguous"):
        jf.lower(x).executable(np.asfortranarray(x))
    with pytest.raises(InputError, match="expects shape"):  # other errors still surface
        jf.lower(x).executable(x.T)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_python_int_that_does_not_fit_the_array_raises_like_numpy(backend) -> None:  # noqa: ANN001
    def scale(a, n):
        return a * n

    jf = gc.jit(scale, backend=backend)
    a = np.arange(3, dtype=np.int32)
    for n in (7, 2**31 - 1, -(2**31)):
        want = scale(a, n)
        got = jf(a, n)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    for n in (2**40, 2**31, -(2**31) - 1):
        with pytest.raises(OverflowError):
            scale(a, n)  # NumPy's own behaviour
        with pytest.raises(InputOverflowError, match=rf"argument n = {n} .*int32") as info:
            jf(a, n)
        assert "test_jit_inputs.py" in str(info.value)  # the line that uses n
    # Through the fast path of the call too, after a successful call.
    jf(a, 3)
    with pytest.raises(InputOverflowError):
        jf(a, 2**40)
    # An int64 array takes any int64 value; beyond int64 is an error too.
    wide = np.arange(3)
    np.testing.assert_array_equal(jf(wide, 2**40), scale(wide, 2**40))
    with pytest.raises(InputError):
        jf(wide, 2**63)


def test_ints_used_at_int64_or_float_are_not_limited_to_int32() -> None:
    jf = gc.jit(lambda a, n, m: (a + n * 2, np.float32(1.5) * m), backend="llvm")
    a = np.arange(3)
    got = jf(a, 2**40, 2**40)
    np.testing.assert_array_equal(got[0], a + 2**41)
    np.testing.assert_allclose(got[1], np.float32(1.5) * 2**40)


@pytest.mark.parametrize("backend", ("llvm", "numpy"))
def test_a_donated_array_overlapping_another_argument_is_copied_first(backend) -> None:  # noqa: ANN001
    jf = gc.jit(lambda a, b: (a + 1.0, b * 2.0), donate_argnums=0, backend=backend)
    jf(np.zeros(10), np.zeros(9))  # compile
    own = np.arange(10.0)
    want = (own + 1.0, own[1:] * 2.0)
    got = jf(own, own[1:])
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # Partial overlap from the other side, and no overlap at all (in place).
    own = np.arange(10.0)
    other = np.arange(20.0)
    got = jf(own, other[11:])  # disjoint
    np.testing.assert_array_equal(got[1], np.arange(11.0, 20.0) * 2.0)
    assert got[0] is own  # donated in place


@pytest.mark.parametrize("backend", ("llvm", "numpy"))
def test_a_donated_array_that_is_not_contiguous_is_copied(backend) -> None:  # noqa: ANN001
    jf = gc.jit(lambda a: a * 3.0, donate_argnums=0, backend=backend)
    base = np.arange(24.0).reshape(4, 6)
    view = base[:, ::2]
    got = jf(view)
    np.testing.assert_array_equal(got, np.arange(24.0).reshape(4, 6)[:, ::2] * 3.0)
    np.testing.assert_array_equal(base, np.arange(24.0).reshape(4, 6))  # untouched
