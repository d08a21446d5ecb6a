"""One thread budget for every implementation, and a report of what each library uses.

The budget has to be fixed before NumPy, PyTorch or JAX are imported: OpenBLAS, MKL,
OpenMP and XLA size their thread pools from the environment when they load. So
`configure` runs first thing in the CLI and in the memory probe, and `report` runs at the
end, when every library that will be used has been loaded.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "GRAPHC_NUM_THREADS",
)

# XLA:CPU has no flag for "N intra-op threads"; it sizes its pool from the cores it may
# use. Single-threaded is the one setting it has a switch for.
_XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# Before `configure` may pin the process to fewer cores.
_CORES_AT_START = available_cores()


def configure(num_threads: int) -> None:
    """Give every library the same budget of `num_threads` threads.

    Must be called before NumPy, PyTorch or JAX is imported. Below the number of available
    cores, the process is also pinned to `num_threads` cores, which bounds libraries that
    ignore the variables (XLA's pool for 1 < N < cores).
    """
    if "numpy" in sys.modules or "torch" in sys.modules or "jax" in sys.modules:
        raise RuntimeError("benchmarks.threads.configure must run before numpy/torch/jax load")
    for var in _THREAD_VARS:
        os.environ[var] = str(num_threads)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if num_threads < available_cores() and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[:num_threads]
        os.sched_setaffinity(0, cores)
    if num_threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} {_XLA_SINGLE_THREAD}".strip()


def apply_to_loaded_libraries(num_threads: int) -> None:
    """Re-assert the budget on libraries that are loaded now (torch's own setter, BLAS pools)."""
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(num_threads)
        try:
            torch.set_num_interop_threads(num_threads)
        except RuntimeError:
            pass  # only settable before PyTorch's first parallel work; then it is reported
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=num_threads)


def report(num_threads: int) -> dict[str, Any]:
    """The thread settings in force, per library, as a JSON-able dict."""
    out: dict[str, Any] = {
        "budget": num_threads,
        "cores_available": _CORES_AT_START,
        "cores_used": available_cores(),
        "env": {var: os.environ.get(var) for var in (*_THREAD_VARS, "XLA_FLAGS")},
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        out["torch"] = {
            "intra_op": torch.get_num_threads(),
            "inter_op": torch.get_num_interop_threads(),
        }
    if "jax" in sys.modules:
        jax = sys.modules["jax"]
        out["jax"] = {
            "devices": [str(d) for d in jax.devices()],
            "xla_flags": os.environ.get("XLA_FLAGS") or "(unset)",
        }
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        out["pools"] = "threadpoolctl not installed"
    else:
        out["pools"] = [
            {
                "library": info.get("internal_api"),
                "file": os.path.basename(info.get("filepath", "")),
                "threads": info.get("num_threads"),
                "layer": info.get("threading_layer"),
            }
            for info in threadpool_info()
        ]
    return out


def summary_line(rep: dict[str, Any]) -> str:
    """One human line for the report's header."""
    parts = [f"budget {rep['budget']} of {rep['cores_available']} cores"]
    if isinstance(rep.get("pools"), list):
        for pool in rep["pools"]:
            parts.append(f"{pool['library']} ({pool['file']}): {pool['threads']}")
    if "torch" in rep:
        parts.append(
            f"torch intra-op {rep['torch']['intra_op']}, inter-op {rep['torch']['inter_op']}"
        )
    if "jax" in rep:
        parts.append(f"XLA_FLAGS {rep['jax']['xla_flags']}")
    parts.append(f"GRAPHC_NUM_THREADS={rep['env']['GRAPHC_NUM_THREADS']}")
    return "threads: " + " | ".join(parts)
