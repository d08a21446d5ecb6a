"""Threads inside a native loop: a scan whose body is small (each step far below the
size at which a kernel is split over the worker pool) and one whose body is large, each
on 1 and 2 threads. The small body should gain nothing and lose nothing from a second
thread (no region per step); the large one should use it. Run it as

    python -m benchmarks.scan_threads [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

import graphc as gc

# (hidden, batch, steps): the work per step differs by about 3000x.
SIZES = {"small body": (32, 8, 400), "large body": (512, 256, 12)}


def rnn(w: Any, xs: Any) -> Any:
    def cell(h: Any, x: Any) -> Any:
        h = np.tanh(h @ w + x)
        return h, h * h

    return gc.scan(cell, np.zeros(xs.shape[1:], xs.dtype), xs)


def measure(repeat: int) -> list[tuple[str, int, int, float]]:
    rows = []
    for label, (hidden, batch, steps) in SIZES.items():
        rng = np.random.default_rng(0)
        w = (rng.normal(size=(hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
        xs = rng.normal(size=(steps, batch, hidden)).astype(np.float32)
        for threads in (1, 2):
            step = gc.jit(rnn, backend="llvm", threads=threads)
            step(w, xs)
            exe = step.lower(w, xs).executable
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                step(w, xs)
                times.append(time.perf_counter() - start)
            per_step = statistics.median(times) / steps
            rows.append((label, threads, int(exe._layout["parallel_regions"]), per_step))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"{'':12s} {'threads':>8s} {'regions':>8s} {'per loop step':>14s}")
    for label, threads, regions, seconds in measure(args.repeat):
        print(f"{label:12s} {threads:8d} {regions:8d} {1e6 * seconds:11.1f} us")


if __name__ == "__main__":
    main()
