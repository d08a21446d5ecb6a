"""The W5 char-RNN BPTT step with its time loop as one gc.scan versus unrolled in Python.

For each form: graph sizes (the traced loss+gradient graph and the compiled one, nodes
inside loop bodies counted), the time to trace and differentiate, compile time and step
time of `gc.jit(gc.value_and_grad(loss))` on each backend, and the largest difference
between the two forms' losses and gradients. Run it as

    python -m benchmarks.scan_vs_unrolled [--quick] [--repeat N] [--backends numpy,llvm]

On both backends the scan stays a loop (on LLVM, a native loop around a body compiled
once), so its compile time does not grow with the sequence length; the unrolled form
compiles one copy of the cell per step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import graphc as gc
from graphc.compiler import compile_graph
from graphc.pytree import tree_flatten

from .workloads import w5_char_rnn
from .workloads.w5_char_rnn import loss_scan

FORMS: dict[str, Callable[..., Any]] = {"scan": loss_scan, "unrolled": w5_char_rnn.loss}


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(quick: bool, repeat: int, backends: list[str]) -> dict[str, dict[str, Any]]:
    problem = w5_char_rnn.make_problem(quick)
    params = problem.params
    xs, ys = problem.batches[0]
    results: dict[str, dict[str, Any]] = {}
    for form, loss in FORMS.items():
        row: dict[str, Any] = {}
        step = gc.value_and_grad(loss)
        row["trace+grad s"], joint = min(
            (_timed(lambda step=step: gc.trace(step, params, xs, ys)) for _ in range(3)),
            key=lambda r: r[0],
        )
        row["nodes"] = (len(joint.nodes), joint.num_nodes(recursive=True))
        for backend in backends:
            row[f"{backend} compile s"], compiled = _timed(
                lambda backend=backend, joint=joint: compile_graph(joint, backend=backend)
            )
            row[f"{backend} nodes"] = compiled.graph.num_nodes(recursive=True)
            jitted = gc.jit(step, backend=backend)
            out = jitted(params, xs, ys)
            times = []
            for _ in range(repeat):
                t, out = _timed(lambda jitted=jitted: jitted(params, xs, ys))
                times.append(t)
            row[f"{backend} step ms"] = 1e3 * statistics.median(times)
            row[f"{backend} out"] = out
        results[form] = row
    return results


def report(results: dict[str, dict[str, Any]], backends: list[str]) -> str:
    lines = [f"{'':28s}" + "".join(f"{form:>16s}" for form in results)]

    def row(label: str, fmt: Callable[[Any], str], key: str) -> None:
        lines.append(f"{label:28s}" + "".join(f"{fmt(r[key]):>16s}" for r in results.values()))

    row("traced nodes (top, all)", lambda n: f"{n[0]} / {n[1]}", "nodes")
    row("trace + differentiate", lambda s: f"{1e3 * s:.1f} ms", "trace+grad s")
    for backend in backends:
        row(f"{backend}: compiled nodes", str, f"{backend} nodes")
        row(f"{backend}: compile", lambda s: f"{1e3 * s:.0f} ms", f"{backend} compile s")
        row(f"{backend}: step (median)", lambda ms: f"{ms:.2f} ms", f"{backend} step ms")
        a = tree_flatten(results["scan"][f"{backend} out"])[0]
        b = tree_flatten(results["unrolled"][f"{backend} out"])[0]
        diff = max(float(np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-30)) for x, y in zip(a, b))
        lines.append(f"{backend}: max relative difference scan vs unrolled {diff:.1e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="W5's small quick-check sizes")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--backends", default="numpy,llvm")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    print(report(measure(args.quick, args.repeat, backends), backends))


if __name__ == "__main__":
    main()
