"""flush_denormals: subnormal floats become zero inside the step (on the
caller and on pool workers, BLAS included), and nowhere else."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends import llvm as llvm_backend
from graphc.backends.llvm import fpmode
from graphc.ir import DType, GraphBuilder

pytestmark = [
    pytest.mark.usefixtures("private_llvm_cache"),
    pytest.mark.skipif(not fpmode.supported(), reason="flush-to-zero modes are x86-64 only"),
]
f32, f64 = DType.f32, DType.f64
TINY32 = np.float32(1e-39)  # subnormal in float32
TINY64 = 1e-310  # subnormal in float64
# Small enough that every kernel below is split into chunks for the pool.
SPLIT = {"parallel_work": 1, "chunk_work": 1}


def scale_graph(dtype: DType, n: int):  # noqa: ANN201
    b = GraphBuilder("scale")
    x = b.input(dtype[n], "x")
    return b.build([b.mul(x, 0.5), b.add(x, 0.0)])


@pytest.mark.parametrize(("dtype", "tiny"), [(f32, TINY32), (f64, TINY64)])
def test_subnormal_inputs_and_results_become_zero(dtype: DType, tiny: float) -> None:
    np_dtype = dtype.np
    x = np.array([tiny, 1.0, -tiny, 4 * tiny], np_dtype)
    plain = llvm_backend.compile(scale_graph(dtype, 4))
    flushing = llvm_backend.compile(scale_graph(dtype, 4), flush_denormals=True)
    half, same = plain(x)
    np.testing.assert_array_equal(half, x * np_dtype.type(0.5))  # gradual underflow, as NumPy
    np.testing.assert_array_equal(same, x)
    half, same = flushing(x)
    np.testing.assert_array_equal(half, [0.0, 0.5, 0.0, 0.0])
    np.testing.assert_array_equal(same, [0.0, 1.0, 0.0, 0.0])  # DAZ: inputs read as zero
    # The caller's floating-point mode is restored: NumPy underflows gradually again.
    assert np.float32(TINY32) * np.float32(0.5) != 0.0


@pytest.mark.parametrize("threads", [1, 2])
def test_pool_workers_flush_in_loops_and_products(threads: int) -> None:
    n = 4096
    b = GraphBuilder("both")
    x = b.input(f32[n], "x")
    a = b.input(f32[128, 128], "a")
    out = [b.mul(x, 0.5), b.matmul(a, a)]
    g = b.build(out)
    exe = llvm_backend.compile(g, threads=threads, flush_denormals=True, **SPLIT)
    if threads > 1:  # the loop and the product both run as pool regions
        assert exe.llvm_ir.count('call void @"graphc_parallel"') == 2
    xs = np.full(n, TINY32, np.float32)
    # Products of 1e-20 are 1e-40: subnormal, flushed by BLAS too.
    am = np.full((128, 128), 1e-20, np.float32)
    for _ in range(3):  # later calls run on warm workers
        half, prod = exe(xs, am)
        assert not half.any()
        assert not prod.any()
    exact = llvm_backend.compile(g, threads=threads, **SPLIT)
    np.testing.assert_array_equal(exact(xs, am)[0], xs * np.float32(0.5))


def test_train_steps_flush_by_default_and_can_opt_out() -> None:
    def loss(w, x):  # noqa: ANN001, ANN202
        return ((x @ w) ** 2).mean()

    w = np.ones((3, 2), np.float32)
    x = np.ones((4, 3), np.float32)
    opt = gc.optim.SGD(0.1)
    default = gc.train_step(loss, opt, backend="llvm")
    assert "ldmxcsr" in default.lower(default.init(w), x).llvm_ir
    exact = gc.train_step(loss, opt, backend="llvm", flush_denormals=False)
    assert "ldmxcsr" not in exact.lower(exact.init(w), x).llvm_ir
    plain_jit = gc.jit(loss, backend="llvm")
    assert "ldmxcsr" not in plain_jit.lower(w, x).llvm_ir


def test_pool_workers_start_in_ieee_mode() -> None:
    # A thread inherits its creator's MXCSR; a worker started from inside a
    # flushing step must still run other executables' chunks without flushing.
    import ctypes

    import llvmlite.ir as ir

    from graphc.backends.llvm import pool, target
    from graphc.backends.llvm.irutil import I32

    worker = pool.module_text().split('define internal ptr @"graphc_pool.worker"', 1)[1]
    worker = worker.split("\ndefine ", 1)[0]
    assert "llvm.x86.sse.ldmxcsr" in worker

    # ieee_mode clears exactly FTZ and DAZ, whatever else MXCSR holds.
    m = ir.Module("mode")
    fn = ir.Function(m, ir.FunctionType(I32, []), "mode_after")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    saved = fpmode._enter(m, b, b)  # FTZ and DAZ on, as inside a flushing step
    fpmode.ieee_mode(m, b)
    now = b.alloca(I32)
    b.call(fpmode._intrinsics(m)[0], [now])
    fpmode._leave(m, b, saved)
    b.ret(b.load(now, typ=I32))
    mod = target.parse_and_verify(str(m))
    target.optimize(mod)
    engine = target.load_object(target.emit_object(mod))
    mode_after = ctypes.CFUNCTYPE(ctypes.c_uint32)(engine.get_function_address("mode_after"))
    assert mode_after() & fpmode.FTZ_DAZ == 0
    assert np.float32(TINY32) * np.float32(0.5) != 0.0  # and the caller's mode is back
