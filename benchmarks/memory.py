"""Memory of one implementation's training step, measured in a fresh process.

NumPy, PyTorch and XLA each have their own allocator, and only NumPy reports to
tracemalloc, so the one measure all share is the resident memory of the process. Each
(workload, implementation) pair runs in its own child process so that what one library
caches cannot be charged to another. The child (Linux only, it reads /proc/self/status):

1. imports the libraries and runs each once on a tiny problem (thread pools, BLAS
   buffers, compiler start-up), builds the host data, then records `base` (RssAnon);
2. builds the implementation and, where the library compiles ahead of time (JAX's
   `lower().compile()`, graphc's `lower`), compiles its step without running it; runs the
   GC and glibc's `malloc_trim`, and records `before` (RSS just before the first step);
3. resets the high-water mark (writes 5 to /proc/self/clear_refs), runs the first step
   and `steps` more, and reads VmHWM.

Reported, in bytes:
- `step`: VmHWM - before.VmRSS, the step's own memory: peak RSS minus RSS just before
  the first step. Everything the steps allocate counts, whether it is freed after each
  step (activations, gradients, temporaries) or kept for the next (a workspace touched on
  the first call, PyTorch's `.grad` tensors, optimizer state created lazily).
- `state`: before.RssAnon - base.RssAnon, what building and compiling leave resident
  before any step: the implementation's copy of the parameters, eagerly made optimizer
  state, compiled code. Buffers allocated but never touched are not resident yet.
- `peak`: state + step.
- `first_call`: the high-water mark over base while building and compiling (for an
  implementation that cannot compile ahead of time, compiling falls in `step`).
- `traced_step`: tracemalloc's peak over one more step, which sees only NumPy-allocated
  memory: exact for the NumPy and graphc entries, near zero for PyTorch and JAX.

The child runs with glibc's mmap threshold pinned (MALLOC_MMAP_THRESHOLD_), so large
arrays go straight to mmap, their pages are resident only once written, and they return
to the system when freed, for every library alike; the timing process keeps the default
allocator.

Run as `python -m benchmarks.memory W4 torch` to probe one pair by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

_STATUS_KEYS = ("VmHWM", "VmRSS", "RssAnon")
_MMAP_THRESHOLD = str(128 * 1024)


def supported() -> str | None:
    """None when memory can be probed here, else why not."""
    if not os.path.exists("/proc/self/status"):
        return "needs Linux /proc/self/status"
    if not os.path.exists("/proc/self/clear_refs"):
        return "needs /proc/self/clear_refs to reset the high-water mark"
    return None


def probe(workload: str, impl: str, threads: int, quick: bool, steps: int = 3) -> dict[str, Any]:
    """Run the child for one pair and return its measurements (or an `error`)."""
    cmd = [sys.executable, "-m", "benchmarks.memory", workload, impl, "--threads", str(threads)]
    cmd += ["--steps", str(steps)] + (["--quick"] if quick else [])
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=_MMAP_THRESHOLD)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=1800)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"probe exited {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def _status() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in _STATUS_KEYS:
                out[key] = int(rest.split()[0]) * 1024
    return out


def _release_free_memory() -> None:
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_high_water_mark() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _preload(impl: str) -> None:
    # Start each library's runtime (thread pools, BLAS buffers, the autograd engine, XLA's
    # compiler) on a tiny problem before the baseline, so that `state` counts what the
    # workload needs rather than what loading the library costs once per process.
    import numpy as np
    from scipy.linalg import blas

    a = np.ones((256, 256), np.float32)
    (a @ a).sum()
    blas.sgemm(1.0, a, a)
    if impl.startswith("torch"):
        import torch

        w = torch.ones(256, 256, requires_grad=True)
        torch.tanh(torch.from_numpy(a) @ w).sum().backward()
        # The first optimizer built imports torch._dynamo, about 70 MB of modules.
        torch.optim.Adam([w]).step()
    elif impl.startswith("jax"):
        import jax
        import jax.numpy as jnp

        grad = jax.jit(jax.grad(lambda w, x: jnp.tanh(x @ w).sum()))
        grad(jnp.asarray(a), jnp.asarray(a)).block_until_ready()
    elif impl.startswith("graphc"):
        import graphc  # noqa: F401


def measure(workload_name: str, impl: str, quick: bool, steps: int) -> dict[str, Any]:
    """The child's side: see the module docstring for what each number means."""
    import tracemalloc

    from .core import Unavailable
    from .workloads import WORKLOADS

    workload = WORKLOADS[workload_name]
    try:
        _preload(impl)
    except ImportError as e:
        return {"error": f"unavailable: {e}"}
    problem = workload.make_problem(quick)
    _release_free_memory()
    base = _status()
    try:
        runner = workload.impls[impl](problem)
        if runner.prepare is not None:
            runner.prepare()
    except Unavailable as e:
        return {"error": f"unavailable: {e}"}
    first_call = _status()["VmHWM"] - base["VmRSS"]
    _release_free_memory()
    before = _status()
    _reset_high_water_mark()
    for _ in range(1 + steps):
        out = runner.step()
    peak = _status()["VmHWM"]
    tracemalloc.start()
    before_traced, _ = tracemalloc.get_traced_memory()
    out = runner.step()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del out
    state = before["RssAnon"] - base["RssAnon"]
    step = peak - before["VmRSS"]
    return {
        "state": state,
        "step": step,
        "peak": state + step,
        "first_call": first_call,
        "traced_step": traced_peak - before_traced,
        "steps": 1 + steps,
        "ahead_of_time": runner.prepare is not None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload")
    parser.add_argument("impl")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    from . import threads

    num_threads = args.threads or threads.available_cores()
    threads.configure(num_threads)
    threads.apply_to_loaded_libraries(num_threads)
    why_not = supported()
    result = (
        {"error": why_not} if why_not else measure(args.workload, args.impl, args.quick, args.steps)
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
