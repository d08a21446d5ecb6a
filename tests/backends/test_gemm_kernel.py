"""The LLVM backend's own float32 GEMM (backends/llvm/gemm_kernel.py) against NumPy.

Its edges are where a hand-written kernel goes wrong: rows past the last
8-row tile, the last panel one or two vectors wide and stored with masks,
k = 0, transposed operands (packed panels), and the switch to BLAS past
MAX_DEPTH.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphc.backends import llvm as llvm_backend
from graphc.backends.llvm import gemm_kernel, linalg, target
from graphc.ir import DType, GraphBuilder

f32, f64 = DType.f32, DType.f64
KERNEL = gemm_kernel.SYMBOLS[DType.f32]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    # The kernel is chosen by default only on AVX-512 hosts; it is correct on
    # any x86-64 host, and tested everywhere.
    monkeypatch.setenv("GRAPHC_GEMM", "native")


def test_the_default_follows_the_host(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("GRAPHC_GEMM")
    avx512 = "+avx512f" in target.host().features.split(",")
    assert gemm_kernel.native_gemm_enabled() == avx512
    monkeypatch.setenv("GRAPHC_GEMM", "blas")
    assert not gemm_kernel.native_gemm_enabled()


def product(dtype, m, n, k, lhs_t=False, rhs_t=False):  # noqa: ANN001, ANN201
    """An executable for x @ y, with x (or y) stored transposed when asked."""
    b = GraphBuilder("mm")
    x = b.input(dtype[(k, m) if lhs_t else (m, k)], "x")
    y = b.input(dtype[(n, k) if rhs_t else (k, n)], "y")
    lhs = b.transpose(x, perm=(1, 0)) if lhs_t else x
    rhs = b.transpose(y, perm=(1, 0)) if rhs_t else y
    return llvm_backend.compile(b.build([b.matmul(lhs, rhs)]), threads=1)


def operands(dtype, m, n, k, lhs_t=False, rhs_t=False, seed=0):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((k, m) if lhs_t else (m, k)).astype(dtype.np)
    y = rng.standard_normal((n, k) if rhs_t else (k, n)).astype(dtype.np)
    return x, y


def reference(x, y, lhs_t, rhs_t):  # noqa: ANN001, ANN201
    a = x.T if lhs_t else x
    bm = y.T if rhs_t else y
    return a.astype(np.float64) @ bm.astype(np.float64)


def check(dtype, m, n, k, lhs_t=False, rhs_t=False) -> None:  # noqa: ANN001
    exe = product(dtype, m, n, k, lhs_t, rhs_t)
    # Fewer rows than a tile, or fewer columns than a vector with much padding,
    # go to BLAS (an empty product emits no call).
    uses = (
        n > 0
        and gemm_kernel.kernel_applies(dtype, m, k)
        and gemm_kernel.kernel_columns(dtype, n) > 0
    )
    assert (KERNEL in exe.llvm_ir) == uses
    x, y = operands(dtype, m, n, k, lhs_t, rhs_t)
    got = exe(x, y)[0]
    tol = 2e-5 * max(k, 1) ** 0.5 if dtype is f32 else 1e-13 * max(k, 1)
    np.testing.assert_allclose(got, reference(x, y, lhs_t, rhs_t), rtol=tol, atol=tol)


@given(
    dtype=st.just(f32),
    m=st.integers(0, 40),
    n=st.integers(0, 80),
    k=st.integers(0, 70),
    lhs_t=st.booleans(),
    rhs_t=st.booleans(),
)
def test_random_products_match_numpy(dtype, m, n, k, lhs_t, rhs_t) -> None:  # noqa: ANN001
    check(dtype, m, n, k, lhs_t, rhs_t)


@pytest.mark.parametrize("dtype", [f32])
@pytest.mark.parametrize(
    "m, n, k",
    [
        (8, 32, 16),  # one full tile, one full float32 panel
        (9, 47, 5),  # a row past the tile, a partial panel one vector wide
        (70, 47, 5),  # the same with B packed
        (8, 15, 3),  # one tile, only a partial panel
        (17, 62, 9),  # a partial panel two vectors wide
        (8, 16, 0),  # k = 0: the product is zeros
        (7, 15, 3),  # fewer rows than a tile: BLAS
        (8, 33, 5),  # one column past a panel: the kernel 32, BLAS the last
        (70, 97, 40),  # the same with B packed, and a vector before the last column
        (8, 5, 3),  # fewer columns than a vector, mostly padding: BLAS
        (65, 64, 20),  # more rows than DIRECT_ROWS: panels are packed
    ],
)
def test_tile_and_panel_edges(dtype, m, n, k) -> None:  # noqa: ANN001
    for lhs_t, rhs_t in [(False, False), (True, False), (False, True), (True, True)]:
        check(dtype, m, n, k, lhs_t, rhs_t)


def test_packed_and_in_place_panels_sum_in_the_same_order() -> None:
    """Rows of a product with more than DIRECT_ROWS rows (B packed) equal the
    same rows computed alone (B read in place), bit for bit."""
    rows = gemm_kernel.DIRECT_ROWS
    x, y = operands(f32, rows + 8, 64, 100)
    many = product(f32, rows + 8, 64, 100)(x, y)[0]
    few = product(f32, rows, 64, 100)(np.ascontiguousarray(x[:rows]), y)[0]
    np.testing.assert_array_equal(many[:rows], few)


def test_deep_products_run_as_slices_of_k_then_go_to_blas() -> None:
    depth = gemm_kernel.MAX_DEPTH
    for k in (depth + 5, 2 * depth):  # two slices, the second added to the first
        for lhs_t in (False, True):
            check(f32, 9, 30, k, lhs_t=lhs_t)
    deepest = depth * gemm_kernel.MAX_SLICES
    assert KERNEL in product(f32, 8, 16, deepest).llvm_ir
    deep = product(f32, 8, 16, deepest + 1)
    assert KERNEL not in deep.llvm_ir
    x, y = operands(f32, 8, 16, deepest + 1)
    np.testing.assert_allclose(deep(x, y)[0], reference(x, y, False, False), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("n", [48, 50])  # 50: the last two columns of every chunk go to BLAS
def test_a_chunk_of_rows_shorter_than_a_tile_calls_blas(monkeypatch, n) -> None:  # noqa: ANN001
    """Split over 4 threads along m, 100 rows are chunks of 32, 32, 32 and 4:
    the last goes to BLAS, the others to the kernel, on any thread count."""
    monkeypatch.setattr(linalg, "GEMM_SPLIT", 1)
    monkeypatch.setattr(linalg, "GEMM_MIN_SPAN", 16)
    b = GraphBuilder("mm")
    x = b.input(f32[100, 24], "x")
    y = b.input(f32[24, n], "y")
    exe = llvm_backend.compile(b.build([b.matmul(x, y)]), threads=4)
    assert KERNEL in exe.llvm_ir and "graphc_sgemm" in exe.llvm_ir
    xs, ys = operands(f32, 100, n, 24)
    want = reference(xs, ys, False, False)
    results = []
    for threads in (1, 2, 4):
        exe.threads = threads
        results.append(exe(xs, ys)[0])
        np.testing.assert_allclose(results[-1], want, rtol=1e-5, atol=1e-5)
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])


def test_float64_products_stay_with_blas() -> None:
    exe = product(f64, 16, 40, 24)
    assert KERNEL not in exe.llvm_ir
    x, y = operands(f64, 16, 40, 24)
    np.testing.assert_allclose(exe(x, y)[0], reference(x, y, False, False), rtol=1e-12)


def test_blas_can_be_chosen_from_the_environment(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("GRAPHC_GEMM", "blas")
    exe = product(f32, 16, 40, 24)
    assert KERNEL not in exe.llvm_ir
    x, y = operands(f32, 16, 40, 24)
    np.testing.assert_allclose(exe(x, y)[0], reference(x, y, False, False), rtol=1e-5, atol=1e-5)


def test_batched_products_use_the_kernel_per_entry() -> None:
    b = GraphBuilder("bmm")
    x = b.input(f32[3, 10, 20], "x")
    y = b.input(f32[3, 20, 32], "y")
    exe = llvm_backend.compile(b.build([b.matmul(x, y)]), threads=1)
    assert KERNEL in exe.llvm_ir
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((3, 10, 20)).astype(np.float32)
    ys = rng.standard_normal((3, 20, 32)).astype(np.float32)
    want = xs.astype(np.float64) @ ys.astype(np.float64)
    np.testing.assert_allclose(exe(xs, ys)[0], want, rtol=1e-5, atol=1e-5)


def _kernel_f32():  # noqa: ANN202
    """The process's float32 kernel as a ctypes function."""
    from graphc.backends.llvm.pool import pool

    i64, ptr, f = ctypes.c_int64, ctypes.c_void_p, ctypes.c_float
    signature = ctypes.CFUNCTYPE(None, ptr, i64, i64, ptr, i64, i64, ptr, i64, i64, i64, i64, f, f)
    return signature(pool().gemm_addresses[KERNEL])


@pytest.mark.parametrize("m, n, k", [(16, 32, 7), (13, 47, 9), (70, 20, 5)])
def test_alpha_and_beta_and_a_c_full_of_nan(m, n, k) -> None:  # noqa: ANN001
    """C = alpha A B + beta C; with beta = 0 C's old contents (NaN here) are
    never read, on whole tiles and on masked edges alike."""
    kernel = _kernel_f32()
    rng = np.random.default_rng(4)
    a = rng.standard_normal((m, k)).astype(np.float32)
    bm = rng.standard_normal((k, n)).astype(np.float32)
    product = a.astype(np.float64) @ bm
    c = np.full((m, n), np.nan, np.float32)
    call = (a.ctypes.data, k, 1, bm.ctypes.data, n, 1, c.ctypes.data, n, m, n, k)
    kernel(*call, -0.5, 0.0)
    np.testing.assert_allclose(c, -0.5 * product, rtol=1e-5, atol=1e-5)
    old = rng.standard_normal((m, n)).astype(np.float32)
    c[...] = old
    kernel(*call, 2.0, -1.0)
    np.testing.assert_allclose(c, 2.0 * product - old, rtol=1e-5, atol=1e-5)
