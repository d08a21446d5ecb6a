"""What a forward-mode derivative costs next to the function itself.

For W1's loss (tangent on the parameters; one batch) and W3's function (tangent on
``x``), compiled with ``gc.jit`` on each backend: the primal ``f``, ``gc.jvp(f)``
(primal and tangent out) and, for scale, ``gc.value_and_grad(f)``. Calls of the
three are interleaved; each time is the median over ``--repeat`` calls, and the
ratios are to the primal's median. Graph sizes are the optimized graphs' node
counts. Run it as

    python -m benchmarks.jvp_cost [--quick] [--repeat N] [--backends numpy,llvm]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import graphc as gc

from .workloads import w1_mlp_digits, w3_elementwise


def _problems(quick: bool) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]:
    """name -> (function of one differentiated argument, its argument and tangent)."""
    w1 = w1_mlp_digits.make_problem(quick)
    x, y = w1.batches[0]
    rng = np.random.default_rng(0)
    params = w1.params
    tangent = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in params.items()}
    (x3,) = w3_elementwise.make_problem(quick).batches[0]
    return {
        "W1 loss": (lambda p: w1_mlp_digits.loss(p, x, y), (params, tangent)),
        "W3": (w3_elementwise.f, (x3, np.ones_like(x3))),
    }


def measure(quick: bool, repeat: int, backends: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name, (f, (primal, tangent)) in _problems(quick).items():
        for backend in backends:
            kinds = {
                "primal": (gc.jit(f, backend=backend), (primal,)),
                "jvp": (
                    gc.jit(lambda p, t, f=f: gc.jvp(f, (p,), (t,)), backend=backend),
                    (primal, tangent),
                ),
                "value_and_grad": (gc.jit(gc.value_and_grad(f), backend=backend), (primal,)),
            }
            times: dict[str, list[float]] = {k: [] for k in kinds}
            for fn, args in kinds.values():
                fn(*args)  # compile and warm up
            for _ in range(repeat):
                for kind, (fn, args) in kinds.items():
                    start = time.perf_counter()
                    fn(*args)
                    times[kind].append(time.perf_counter() - start)
            medians = {k: statistics.median(v) for k, v in times.items()}
            rows.append(
                {
                    "workload": name,
                    "backend": backend,
                    **{f"{k} ms": 1e3 * m for k, m in medians.items()},
                    "jvp / primal": medians["jvp"] / medians["primal"],
                    "vg / primal": medians["value_and_grad"] / medians["primal"],
                    **{
                        f"{k} nodes": fn.lower(*args).optimized_graph.num_nodes(recursive=True)
                        for k, (fn, args) in kinds.items()
                    },
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jvp_cost", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeat", type=int, default=50, help="calls per median")
    parser.add_argument("--backends", default="numpy,llvm")
    args = parser.parse_args(argv)
    rows = measure(args.quick, args.repeat, args.backends.split(","))
    columns = list(rows[0])
    print("  ".join(f"{c:>14}" for c in columns))
    for row in rows:
        cells = [f"{v:>14.3f}" if isinstance(v, float) else f"{v!s:>14}" for v in row.values()]
        print("  ".join(cells))


if __name__ == "__main__":
    main()
