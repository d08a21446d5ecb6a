"""Data-parallel scaling: samples/s on 1 and 2 ranks, allreduce latency and bandwidth,
and the ring-allreduce cost model fitted to them (see benchmarks/README.md).

    python -m benchmarks.distributed                 # launches mpiexec -n 1 and -n 2 itself
    python -m benchmarks.distributed --workloads W1 --steps 50
    mpiexec -n 2 python -m benchmarks.distributed --worker   # one measurement, JSON on stdout

Weak scaling, as data-parallel training is used: each rank keeps the
workload's batch, so N ranks train on N times the samples per step. Every
rank runs with ``GRAPHC_NUM_THREADS=1`` so that 2 ranks on 2 cores compare
with 1 rank on 1 core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Typical one-way small-message latencies of the networks the model predicts for.
NETWORKS = {"10 Gb/s Ethernet (TCP)": (10e9, 25e-6), "25 Gb/s Ethernet (RoCE)": (25e9, 5e-6),
            "100 Gb/s InfiniBand": (100e9, 2e-6)}  # fmt: skip
RANKS = (2, 4, 8, 16, 32, 64)
SIZES_BYTES = (4, 1 << 10, 1 << 14, 1 << 18, 1 << 20, 1 << 22, 1 << 24)


def _workload(name: str) -> tuple[Any, dict[str, np.ndarray], tuple[np.ndarray, ...], Any]:
    import graphc as gc

    from .workloads import w1_mlp_digits as w1
    from .workloads import w2_mlp_wide as w2

    if name == "W1":
        problem = w1.make_problem(False)
        return w1.loss, problem.params, problem.batches[0], gc.optim.Adam(1e-3)
    problem = w2.make_problem(False)
    return w2.loss, problem.params, problem.batches[0], gc.optim.SGD(1e-2, momentum=0.9)


def worker(workloads: list[str], steps: int) -> dict[str, Any]:
    """Measure on the ranks of this mpiexec; rank 0 returns the results."""
    import graphc as gc

    comm = gc.distributed.init()
    result: dict[str, Any] = {"ranks": comm.size, "allreduce": [], "steps": {}}
    for nbytes in SIZES_BYTES:
        x = np.ones(max(nbytes // 4, 1), np.float32)
        f = gc.jit(lambda v: gc.distributed.all_reduce(v), backend="llvm")
        result["allreduce"].append({"bytes": x.nbytes, "seconds": _time(comm, f, x)})
    for name in workloads:
        loss, params, batch, opt = _workload(name)
        step = gc.train_step(loss, opt, backend="llvm", data_parallel=comm)
        state = step.init(params)
        seconds = _time(comm, _Stepper(step, state), *batch, repeat=steps)
        grad_bytes = sum(v.nbytes for v in params.values())
        result["steps"][name] = {
            "seconds": seconds,
            "batch_per_rank": len(batch[0]),
            "samples_per_second": comm.size * len(batch[0]) / seconds,
            "gradient_bytes": grad_bytes,
            "allreduce_share": _allreduce_share(comm, loss, params, batch, opt, steps),
        }
        if comm.size > 1:
            # The same step with nonblocking buckets started during the backward.
            options = gc.distributed.DataParallel(comm, overlap=True)
            overlapped = gc.train_step(loss, opt, backend="llvm", data_parallel=options)
            seconds = _time(comm, _Stepper(overlapped, overlapped.init(params)), *batch,
                            repeat=steps)  # fmt: skip
            result["steps"][name]["overlap_samples_per_second"] = (
                comm.size * len(batch[0]) / seconds
            )
    return result


def _allreduce_share(comm: Any, loss: Any, params: Any, batch: Any, opt: Any, steps: int) -> float:
    """The part of a step spent inside all_reduce nodes (per-node cycle counters):
    what overlapping communication with the backward could hide at most."""
    import graphc as gc

    step = gc.train_step(loss, opt, backend="llvm", data_parallel=comm, profile=True)
    stepper = _Stepper(step, step.init(params))
    for _ in range(max(steps, 3)):
        stepper(*batch)
    rows = step.jitted.lower(*step._args(stepper.state, batch)).executable.profile()
    share = sum(r.share for r in rows if r.op == "all_reduce")
    return float(comm.all_reduce(np.array(share), "max"))


class _Stepper:
    """Calls a train step, carrying its state from call to call."""

    def __init__(self, step: Any, state: Any) -> None:
        self.step, self.state = step, state

    def __call__(self, *batch: Any) -> None:
        self.state, _ = self.step(self.state, *batch)


def _time(comm: Any, f: Any, *args: Any, repeat: int = 0) -> float:
    """Median seconds per call over rounds of calls (every rank calls together)."""
    for _ in range(3):
        f(*args)
    if not repeat:
        started = time.perf_counter()
        f(*args)
        once = time.perf_counter() - started
        repeat = int(min(2000, max(5, 0.2 / max(once, 1e-7))))
        # Every rank must make the same number of calls, or the collectives mismatch.
        repeat = int(comm.all_reduce(np.array(repeat), "max"))
    rounds = []
    for _ in range(5):
        comm.barrier()
        started = time.perf_counter()
        for _ in range(repeat):
            f(*args)
        rounds.append((time.perf_counter() - started) / repeat)
    # Every rank reports the slowest rank's time: a step is as slow as its slowest rank.
    return float(comm.all_reduce(np.array(np.median(rounds)), "max"))


def fit_allreduce(points: list[dict[str, float]]) -> tuple[float, float]:
    """(latency alpha, bandwidth B in bytes/s) of the ring model for a 2-rank
    allreduce, ``t = 2 alpha + bytes / B``: alpha from the smallest message,
    B from the largest (a least-squares line over sizes six orders of
    magnitude apart is decided by the largest alone)."""
    small = min(points, key=lambda p: p["bytes"])
    large = max(points, key=lambda p: p["bytes"])
    alpha = small["seconds"] / 2
    return alpha, large["bytes"] / max(large["seconds"] - 2 * alpha, 1e-12)


def ring_seconds(nbytes: float, ranks: int, bandwidth: float, latency: float) -> float:
    """Ring allreduce: 2(N-1)/N * bytes / bandwidth + 2(N-1) * latency."""
    return 2 * (ranks - 1) / ranks * nbytes / bandwidth + 2 * (ranks - 1) * latency


def efficiency(compute: float, comm: float, overlap: bool) -> float:
    """Scaling efficiency: one rank's step over the data-parallel one. With overlap
    the communication hides behind the backward (about 2/3 of the step)."""
    if not overlap:
        return compute / (compute + comm)
    hidden = min(comm, 2 / 3 * compute)
    return compute / (compute + comm - hidden)


def report(one: dict[str, Any], two: dict[str, Any]) -> str:
    lines = ["## Measured (this machine)", ""]
    lines += ["| allreduce bytes | 2 ranks, native call (us) | GB/s |", "|---:|---:|---:|"]
    for p in two["allreduce"]:
        rate = p["bytes"] / p["seconds"] / 1e9
        lines.append(f"| {p['bytes']:,} | {p['seconds'] * 1e6:,.1f} | {rate:.3f} |")
    alpha, bandwidth = fit_allreduce(two["allreduce"])
    lines += ["", f"Fitted: latency alpha = {alpha * 1e6:.1f} us (smallest message), bandwidth "
              f"B = {bandwidth / 1e9:.2f} GB/s (largest), t = 2 alpha + bytes / B for 2 ranks.",
              ""]  # fmt: skip
    lines += [
        "| workload | gradient MB | 1 rank samples/s | 2 ranks samples/s | efficiency |"
        " predicted (model, no overlap) | step time in all_reduce (2 ranks) |"
        " 2 ranks, overlap=True |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s1 in one["steps"].items():
        s2 = two["steps"][name]
        eff = s2["samples_per_second"] / (2 * s1["samples_per_second"])
        model = efficiency(
            s1["seconds"], ring_seconds(s1["gradient_bytes"], 2, bandwidth, alpha), False
        )
        lines.append(
            f"| {name} | {s1['gradient_bytes'] / 1e6:.2f} | {s1['samples_per_second']:,.0f} | "
            f"{s2['samples_per_second']:,.0f} | {eff:.2f} | {model:.2f} | "
            f"{s2.get('allreduce_share', 0.0):.0%} | "
            f"{s2.get('overlap_samples_per_second', float('nan')):,.0f} |"
        )
    lines += ["", "## Predicted efficiency on a cluster (compute per step as measured here)", ""]
    for name, s1 in one["steps"].items():
        lines += [f"{name} ({s1['gradient_bytes'] / 1e6:.1f} MB of gradients, "
                  f"{s1['seconds'] * 1e3:.2f} ms compute per step):", ""]  # fmt: skip
        lines += ["| network | " + " | ".join(f"N={n}" for n in RANKS) + " |"]
        lines += ["|---|" + "---:|" * len(RANKS)]
        for net, (bits, latency) in NETWORKS.items():
            cells = []
            for n in RANKS:
                t = ring_seconds(s1["gradient_bytes"], n, bits / 8, latency)
                cells.append(
                    f"{efficiency(s1['seconds'], t, False):.2f} / "
                    f"{efficiency(s1['seconds'], t, True):.2f}"
                )
            lines.append(f"| {net} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Cells: efficiency without overlap / with the allreduce hidden behind the "
                 "backward (up to 2/3 of the step).")  # fmt: skip
    return "\n".join(lines)


def launch(ranks: int, workloads: list[str], steps: int) -> dict[str, Any]:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = dict(os.environ, GRAPHC_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [str(mpiexec), "-n", str(ranks), sys.executable, "-m", "benchmarks.distributed",
           "--worker", "--workloads", ",".join(workloads), "--steps", str(steps)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help="measure on this mpiexec's ranks")
    parser.add_argument("--workloads", default="W1,W2")
    parser.add_argument("--steps", type=int, default=0, help="steps per round (default: auto)")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    parser.add_argument(
        "--async-progress",
        action="store_true",
        help="MPICH progress thread (MPIR_CVAR_ASYNC_PROGRESS=1): nonblocking reductions "
        "advance while the step computes",
    )
    args = parser.parse_args(argv)
    workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    if args.worker:
        result = worker(workloads, args.steps)
        import graphc as gc

        if gc.distributed.init().rank == 0:
            print(json.dumps(result))
        return
    if args.async_progress:
        os.environ["MPIR_CVAR_ASYNC_PROGRESS"] = "1"
    one, two = launch(1, workloads, args.steps), launch(2, workloads, args.steps)
    if args.json:
        Path(args.json).write_text(json.dumps({"1": one, "2": two}, indent=1))
    print(report(one, two))


if __name__ == "__main__":
    main()
