"""From a traced graph to an executable: the whole compilation pipeline.

``compile_graph`` is what ``gc.jit`` calls. It runs the optimization
pipeline (``graphc.passes``), the backend-specific lowering passes (fusion
for LLVM), memory planning, and the backend's code generator.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphc.ir import BackendError, Graph, GraphcError, interpret


@dataclass
class CompileResult:
    graph: Graph
    executable: Any
    report: Any
    memory: Any


def backend_module(name: str) -> Any:
    """The backend package for ``name`` (``"numpy"`` or ``"llvm"``)."""
    from graphc import backends

    getter = getattr(backends, "get_backend", None)
    if getter is None:
        raise BackendError(f"backend {name!r} is not available")
    return getter(name)


def default_backend() -> str:
    """LLVM when it can be loaded, otherwise NumPy."""
    for name in ("llvm", "numpy"):
        try:
            backend_module(name)
            return name
        except GraphcError:
            continue
    return "interpret"


def pipeline_for(
    backend: str,
    donate: Sequence[int] = (),
    memory_budget: int | None = None,
) -> tuple[Any, ...]:
    """The whole pipeline for ``backend``: see :func:`graphc.passes.pipeline.pipeline`."""
    from graphc.passes.pipeline import pipeline

    return pipeline(backend, donate, memory_budget)


class _Interpreted:
    """Runs the reference interpreter; used only when no backend is installed."""

    def __init__(self, g: Graph) -> None:
        self.graph = g

    def __call__(self, *args: Any) -> tuple[Any, ...]:
        return interpret(self.graph, *args)


def compile_graph(
    g: Graph,
    *,
    backend: str,
    dump: str | os.PathLike[str] | None = None,
    disable_passes: Sequence[str] = (),
    memory_budget: int | None = None,
    donate: Sequence[int] = (),
    options: dict[str, Any] | None = None,
) -> CompileResult:
    """Optimize ``g`` and compile it for ``backend``."""
    from graphc.passes.pipeline import optimize

    optimized, report = optimize(
        g,
        disabled=tuple(disable_passes),
        dump_dir=dump,
        passes=pipeline_for(backend, donate, memory_budget),
    )
    if memory_budget is not None:
        _warn_if_over_budget(g.name, memory_budget, report)
    if backend == "interpret":
        return CompileResult(optimized, _Interpreted(optimized), report, None)
    module = backend_module(backend)
    from graphc.passes.plan_memory import plan_memory

    # NumPy ufuncs write exactly in place (np.add(a, b, out=a)), which saves memory traffic.
    plan = plan_memory(optimized, inplace=backend == "numpy", donated=donate)
    executable = module.compile(optimized, plan=plan, **dict(options or {}))
    return CompileResult(optimized, executable, report, getattr(executable, "memory", plan))


def _warn_if_over_budget(name: str, budget: int, report: Any) -> None:
    record = report.record("rematerialize")
    if record is None:
        return  # disabled by the caller
    over = record.counts.get("bytes over budget", 0)
    if over:
        from graphc.passes.remat import MemoryBudgetWarning, describe_budget_miss

        # stacklevel: compile_graph <- Jitted._compile <- Jitted.__call__ <- the user's call
        warnings.warn(MemoryBudgetWarning(describe_budget_miss(name, budget, record)), stacklevel=5)
