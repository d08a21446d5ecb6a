"""From a traced graph to an executable: the whole compilation pipeline.

``compile_graph`` is what ``gc.jit`` calls. It runs the optimization
pipeline (``graphc.passes``), the backend-specific lowering passes (fusion
for LLVM), memory planning, and the backend's code generator.
"""

from __future__ import annotations

import os
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


def pipeline_for(backend: str, donate: Sequence[int] = ()) -> tuple[Any, ...]:
    """The optimization pipeline plus the lowering passes ``backend`` wants."""
    from graphc.passes.manager import Pass
    from graphc.passes.pipeline import PIPELINE
    from graphc.passes.schedule import schedule_for_memory

    lowering: tuple[Any, ...] = ()
    if backend == "llvm":
        from graphc.passes.fuse import fuse

        # Fusion needs the simplified graph, and nothing after it may split a group.
        lowering = (Pass("fuse", fuse),)
    # Ordering comes last, on the final set of nodes, right before memory planning.
    schedule = Pass("schedule_for_memory", lambda g: schedule_for_memory(g, donate))
    return PIPELINE + lowering + (schedule,)


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
        passes=pipeline_for(backend, donate),
    )
    if backend == "interpret":
        return CompileResult(optimized, _Interpreted(optimized), report, None)
    module = backend_module(backend)
    from graphc.passes.plan_memory import plan_memory

    # NumPy ufuncs write exactly in place (np.add(a, b, out=a)), which saves memory traffic.
    plan = plan_memory(optimized, inplace=backend == "numpy", donated=donate)
    executable = module.compile(optimized, plan=plan, **dict(options or {}))
    return CompileResult(optimized, executable, report, getattr(executable, "memory", plan))
