"""graphc's native GEMM against BLAS, on the products the workloads run.

Each shape is compiled twice on the LLVM backend, once with the native kernel
(``GRAPHC_GEMM=native``) and once with ``GRAPHC_GEMM=blas``; calls of the two are
interleaved, one thread each, and each time is the median over ``--repeat``
calls. ``aT``/``bT`` mark an operand stored transposed (a weight gradient's
``x.T``, a backward product's ``w.T``). Run it as

    python -m benchmarks.gemm [--repeat N] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np

from graphc.backends import llvm as llvm_backend
from graphc.ir import DType, GraphBuilder
from graphc.passes.fuse import fuse

# (label, m, n, k, lhs transposed, rhs transposed)
SHAPES = [
    ("W5 step: h @ w_hh", 32, 256, 256, False, False),
    ("W5 hoisted: h @ w_out", 2048, 97, 256, False, False),
    ("W5 hoisted: dlogits @ w_out.T", 2048, 256, 97, False, True),
    ("W5 hoisted: h.T @ da", 256, 256, 2048, True, False),
    ("k = 4096: h.T @ da", 256, 256, 4096, True, False),
    ("W4 forward: x @ w", 512, 1024, 1024, False, False),
    ("W4 weight grad: x.T @ dz", 1024, 1024, 512, True, False),
    ("W4 input grad: dz @ w.T", 512, 1024, 1024, False, True),
    ("W1 forward", 128, 256, 256, False, False),
]


def _product(m: int, n: int, k: int, lhs_t: bool, rhs_t: bool, threads: int) -> Any:
    b = GraphBuilder("mm")
    x = b.input(DType.f32[(k, m) if lhs_t else (m, k)], "x")
    y = b.input(DType.f32[(n, k) if rhs_t else (k, n)], "y")
    lhs = b.transpose(x, perm=(1, 0)) if lhs_t else x
    rhs = b.transpose(y, perm=(1, 0)) if rhs_t else y
    # Fused, as the pipeline does: the transposes become the product's strides.
    g = fuse(b.build([b.matmul(lhs, rhs)]))
    return llvm_backend.compile(g, threads=threads, cache=False)


def measure(repeat: int, threads: int) -> list[tuple[str, float, float]]:
    rows = []
    rng = np.random.default_rng(0)
    for label, m, n, k, lhs_t, rhs_t in SHAPES:
        x = rng.standard_normal((k, m) if lhs_t else (m, k)).astype(np.float32)
        y = rng.standard_normal((n, k) if rhs_t else (k, n)).astype(np.float32)
        saved = os.environ.get("GRAPHC_GEMM")
        try:
            os.environ["GRAPHC_GEMM"] = "native"
            native = _product(m, n, k, lhs_t, rhs_t, threads)
            os.environ["GRAPHC_GEMM"] = "blas"
            blas = _product(m, n, k, lhs_t, rhs_t, threads)
        finally:
            if saved is None:
                del os.environ["GRAPHC_GEMM"]
            else:
                os.environ["GRAPHC_GEMM"] = saved
        calls = max(3, int(2e8 / (m * n * k)))
        times: dict[str, list[float]] = {"native": [], "blas": []}
        for _ in range(repeat):
            for name, exe in (("native", native), ("blas", blas)):
                start = time.perf_counter()
                for _ in range(calls):
                    exe(x, y)
                times[name].append((time.perf_counter() - start) / calls)
        rows.append((label, statistics.median(times["native"]), statistics.median(times["blas"])))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"{'product':28s} {'native':>10s} {'BLAS':>10s} {'native/BLAS':>12s}")
    for label, native, blas in measure(args.repeat, args.threads):
        print(f"{label:28s} {1e6 * native:8.1f}us {1e6 * blas:8.1f}us {native / blas:12.2f}")


if __name__ == "__main__":
    main()
