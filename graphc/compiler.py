"""From a traced graph to an executable: the whole compilation pipeline.

``compile_graph`` is what ``gc.jit`` calls. It runs the optimization
pipeline (``graphc.passes``), the backend-specific lowering passes (fusion
for LLVM), memory planning, and the backend's code generator.
"""

from __future__ import annotations

import functools
import gc as garbage_collector
import hashlib
import inspect
import os
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphc.ir import BackendError, Graph, GraphcError, interpret


@dataclass
class CompileResult:
    graph: Graph
    executable: Any
    report: Any
    memory: Any
    # Wall time of each stage ("passes", "memory_plan", "codegen"), for reports.
    seconds: dict[str, float] = field(default_factory=dict)
    plan: Any = None


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
    disabled: Sequence[str] = (),
) -> tuple[Any, ...]:
    """The whole pipeline for ``backend``: see :func:`graphc.passes.pipeline.pipeline`."""
    from graphc.passes.pipeline import pipeline

    return pipeline(backend, donate, memory_budget, disabled)


class _Interpreted:
    """Runs the reference interpreter; used only when no backend is installed."""

    def __init__(self, g: Graph) -> None:
        self.graph = g

    def __call__(self, *args: Any) -> tuple[Any, ...]:
        return interpret(self.graph, *args)


def _check_options(name: str, backend: str, options: dict[str, Any]) -> None:
    """Backend options (``gc.jit`` keywords) the backend does not take are an
    error here, not a TypeError from inside the backend or silently ignored."""
    if backend == "interpret":
        known: list[str] = []
    else:
        params = inspect.signature(backend_module(backend).compile).parameters.values()
        known = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known))
    if unknown:
        from graphc.ir import InputError

        takes = f"its options: {', '.join(known)}" if known else "it takes no options"
        raise InputError(f"{name}: the {backend} backend has no option {unknown[0]!r} ({takes})")


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
    """Optimize ``g`` and compile it for ``backend``.

    With the LLVM backend's disk cache on, what the pipeline makes of ``g``
    (optimized graph, memory plan, report) is cached as well, keyed by ``g``'s
    text with source locations and every argument here, so a warm start in a
    new process skips the passes; ``report.from_cache`` then says so. Dumps and
    ``GRAPHC_VERIFY`` always run the passes.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[3], "x")
    >>> result = compile_graph(b.build([b.mul(x, 1.0)]), backend="interpret")
    >>> print(result.graph)
    graph f(%x: f32[3]) -> (f32[3]) {
      return %x
    }
    """
    options = dict(options or {})
    _check_options(g.name, backend, options)
    store = _pipeline_store(backend, options, dump)
    key = ""
    if store is not None:
        key = _pipeline_key(store[0], g, backend, donate, memory_budget, disable_passes, options)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    found = _load_pipeline(store, key, g)
    storing = _in_background(None)
    fresh: tuple[Any, ...] | None = None  # a pipeline result for the disk cache
    if found is not None:
        optimized, plan, report = found
        seconds["cache_load"] = time.perf_counter() - start
    else:
        from graphc.passes.pipeline import optimize

        optimized, report = optimize(
            g,
            disabled=tuple(disable_passes),
            dump_dir=dump,
            passes=pipeline_for(backend, donate, memory_budget, tuple(disable_passes)),
        )
        seconds["passes"] = time.perf_counter() - start
        plan = None
        if backend != "interpret":
            from graphc.passes.plan_memory import plan_memory

            start = time.perf_counter()
            # NumPy ufuncs write exactly in place (np.add(a, b, out=a)), which saves memory traffic.
            # LLVM reads a reshape in place when its operand's bytes stay put.
            plan = plan_memory(
                optimized, inplace=backend == "numpy", views=backend == "llvm", donated=donate
            )
            seconds["memory_plan"] = time.perf_counter() - start
        if store is not None:
            fresh = (optimized, plan, report)
    if backend == "interpret":
        if memory_budget is not None:
            _warn_if_over_budget(g.name, memory_budget, report, None)
        return CompileResult(optimized, _Interpreted(optimized), report, None, seconds, plan)
    module = backend_module(backend)
    start = time.perf_counter()
    # Encoding the pipeline's cache entry is Python work for another thread while
    # LLVM, which releases the GIL, compiles; started earlier, it would compete
    # with building the LLVM IR instead. It is written before this returns.
    start_compile = getattr(module, "start_compile", None)
    try:
        if start_compile is None:
            storing = _in_background(_store_pipeline, store, key, fresh) if fresh else storing
            executable = module.compile(optimized, plan=plan, **options)
        else:
            generated = start_compile(optimized, plan=plan, **options)
            storing = _in_background(_while_native, store, key, fresh)
            executable = generated.finish()
    finally:
        storing.join()
    seconds["codegen"] = time.perf_counter() - start
    from graphc.memory_report import MemoryReport

    memory = MemoryReport(getattr(executable, "memory", None), optimized, plan, memory_budget)
    if memory_budget is not None:
        _warn_if_over_budget(g.name, memory_budget, report, memory)
    return CompileResult(optimized, executable, report, memory, seconds, plan)


# -- the pipeline's disk cache ---------------------------------------------------------------


def _pipeline_store(
    backend: str, options: dict[str, Any], dump: str | os.PathLike[str] | None
) -> tuple[Any, Path] | None:
    """The disk cache module and directory for this compile, if it may use one."""
    if backend != "llvm" or not options.get("cache", True):
        return None
    if dump is not None or os.environ.get("GRAPHC_DUMP"):
        return None  # dumps are written by the passes, so they must run
    if os.environ.get("GRAPHC_VERIFY", "") not in ("", "0"):
        return None  # verifying after every pass asks for the passes too
    try:
        from graphc.backends.llvm import cache as disk
    except ImportError:
        return None  # compile_graph raises the backend's own error below
    directory = disk.cache_dir()
    return None if directory is None else (disk, directory)


def _pipeline_key(
    disk: Any,
    g: Graph,
    backend: str,
    donate: Sequence[int],
    memory_budget: int | None,
    disabled: Sequence[str],
    options: dict[str, Any],
) -> str:
    import numpy

    return disk.cache_key(
        "pipeline",
        _passes_digest(),
        f"numpy {numpy.__version__}",  # constant folding computes with it
        backend,
        f"donate {tuple(donate)}",
        f"budget {memory_budget}",
        f"disabled {sorted(set(disabled))}",
        f"options {sorted(options.items())}",
        g.format(locations=True),  # locations end up in error messages
    )


@functools.cache
def _passes_digest() -> str:
    """A digest of the source of the passes, the IR and this module: everything
    that decides what the pipeline makes of a graph."""
    import graphc.ir
    import graphc.passes

    h = hashlib.sha256()
    files = [Path(__file__)]
    files += sorted(Path(graphc.passes.__file__).parent.glob("*.py"))
    files += sorted(Path(graphc.ir.__file__).parent.rglob("*.py"))
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


class _in_background:
    """``fn(*args)`` on a thread of its own; :meth:`join` waits for it and raises
    what it raised, as if it had run on the caller's thread."""

    def __init__(self, fn: Any = None, *args: Any) -> None:
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if fn is not None:
            self._thread = threading.Thread(target=self._run, args=(fn, *args), daemon=True)
            self._thread.start()

    def _run(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to join()
            self._error = exc

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _while_native(store: tuple[Any, Path] | None, key: str, fresh: tuple[Any, ...] | None) -> None:
    """Python work for the time LLVM compiles: the pipeline's cache entry, and
    the cyclic garbage of the passes and of building the LLVM IR (W5's plain
    loop: ~36,000 objects, 12 ms to collect) when the caller paused the
    collector for the compile, which otherwise finds it right after."""
    if fresh is not None:
        _store_pipeline(store, key, fresh)
    if not garbage_collector.isenabled():
        garbage_collector.collect(0)


def _store_pipeline(store: tuple[Any, Path] | None, key: str, result: tuple[Any, ...]) -> None:
    if store is None:
        return
    from . import pipeline_cache

    disk, directory = store
    data = pipeline_cache.encode(*result)
    if data is not None:  # else this graph is simply not cached
        disk.write(directory, f"{key}.gcp", data)


def _load_pipeline(
    store: tuple[Any, Path] | None, key: str, traced: Graph
) -> tuple[Any, ...] | None:
    if store is None:
        return None
    from . import pipeline_cache

    disk, directory = store
    name = f"{key}.gcp"
    payload = disk.read(directory, name)
    if payload is None:
        return None
    try:
        return pipeline_cache.decode(payload, traced)
    except pipeline_cache.DamagedEntry as exc:
        disk.report_unusable(directory / name, exc)
        return None


def _warn_if_over_budget(name: str, budget: int, report: Any, memory: Any) -> None:
    record = report.record("rematerialize")
    if record is None:
        return  # disabled by the caller
    over = record.counts.get("bytes over budget", 0)
    if over:
        from graphc.passes.remat import MemoryBudgetWarning, describe_budget_miss
        from graphc.tracing import user_stacklevel

        largest = memory.live_at_peak(3) if memory is not None else []
        warning = MemoryBudgetWarning(describe_budget_miss(name, budget, record, largest))
        warnings.warn(warning, stacklevel=user_stacklevel())
