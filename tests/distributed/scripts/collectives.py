"""all_reduce on every rank: eager, jitted on both backends, and its gradient."""

from __future__ import annotations

import numpy as np

import graphc as gc

comm = gc.distributed.init()
assert comm.size == 2, comm
r = comm.rank
for dtype in (np.float32, np.float64, np.int32, np.int64):
    x = (np.arange(6, dtype=dtype).reshape(2, 3) + 1) * (r + 1)
    every = [(np.arange(6, dtype=dtype).reshape(2, 3) + 1) * (k + 1) for k in range(2)]
    want = {"sum": every[0] + every[1], "max": np.maximum(*every), "min": np.minimum(*every)}
    for reduction, expected in want.items():
        got = gc.distributed.all_reduce(x, reduction)
        assert got.dtype == dtype and np.array_equal(got, expected), (reduction, got)
        for backend in ("numpy", "llvm"):

            def twice(x, red=reduction):  # noqa: ANN001, ANN202
                return gc.distributed.all_reduce(x * 2, red)

            got = gc.jit(twice, backend=backend)(x)
            assert got.dtype == dtype and np.array_equal(got, 2 * expected), (backend, got)

# The gradient of sum(all_reduce(x)**2) on each rank is all_reduce(2 * all_reduce(x)).
x = np.linspace(-1.0, 1.0, 5) * (r + 1)
total = x / (r + 1) * 3
for backend in ("numpy", "llvm"):
    g = gc.jit(gc.grad(lambda x: (gc.distributed.all_reduce(x) ** 2).sum()), backend=backend)
    np.testing.assert_allclose(g(x), 2 * 2 * total, rtol=1e-12)

# Compressed sums: 16 bits per element on the wire, float32 sums in rank order,
# the same bits on both backends and every rank.
from graphc.ir.ops.collective import round_to_16  # noqa: E402

base = np.array([1 + 2**-8, 0.1, -3.0, 1e-3, 6e4, np.nan], np.float32)
contributions = [base * (k + 1) for k in range(2)]
for compress in ("bf16", "f16"):
    want = np.float32(0) + round_to_16(contributions[0], compress)
    want = want + round_to_16(contributions[1], compress)
    for backend in ("numpy", "llvm"):
        f = gc.jit(lambda v, c=compress: gc.distributed.all_reduce(v, compress=c), backend=backend)
        got = f(contributions[r])
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))

# A donated input whose buffer the result takes: MPI must see IN_PLACE.
f = gc.jit(lambda x: gc.distributed.all_reduce(x), backend="llvm", donate_argnums=0)
np.testing.assert_array_equal(f(np.full(4, r + 1.0)), np.full(4, 3.0))
print(f"rank {r} ok")
