"""What `gc.train_step(..., diagnostics=True)` costs on the W1 train step.

Three steps are timed in interleaved rounds on the same batches: without
diagnostics, with them, and with them plus `gc.observe` on both hidden layers.
Times are CPU seconds of the process per step (steadier than wall time on a
shared machine); pass `--threads 1` (the default) to keep the LLVM backend on
one thread so that CPU time is the step's own work. Run it as

    python -m benchmarks.diagnostics_overhead [--backend llvm] [--rounds 60]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

import graphc as gc

from .workloads.w1_mlp_digits import loss, make_problem


def observed_loss(params: dict[str, Any], x: Any, y: Any) -> Any:
    """W1's loss with both hidden layers named for the diagnostics."""
    h = gc.observe(np.maximum(x @ params["w1"] + params["b1"], 0.0), "h1")
    h = gc.observe(np.maximum(h @ params["w2"] + params["b2"], 0.0), "h2")
    logits = h @ params["w3"] + params["b3"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(y)), y])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="llvm", choices=["llvm", "numpy"])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="LLVM backend threads")
    args = parser.parse_args(argv)
    options: dict[str, Any] = {"backend": args.backend}
    if args.backend == "llvm":
        options["num_threads"] = args.threads
    problem = make_problem(False)
    steps = {
        "off": gc.train_step(loss, gc.optim.Adam(1e-3), **options),
        "diagnostics": gc.train_step(loss, gc.optim.Adam(1e-3), diagnostics=True, **options),
        "diagnostics + observe x2": gc.train_step(
            observed_loss, gc.optim.Adam(1e-3), diagnostics=True, **options
        ),
    }
    states = {name: step.init(problem.params) for name, step in steps.items()}
    for name, step in steps.items():  # compile and warm up
        for _ in range(20):
            states[name] = step(states[name], *problem.batches[0])[0]
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            state = states[name]
            start = time.process_time()
            for batch in problem.batches:
                state = step(state, *batch)[0]
            times[name].append((time.process_time() - start) / len(problem.batches))
            states[name] = state
    base = statistics.median(times["off"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:26s} {median * 1e6:8.1f} us/step CPU  ({(median / base - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
