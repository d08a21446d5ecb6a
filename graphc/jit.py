"""gc.jit: compile a function once per input signature and call the result.

A signature is the pytree structure of the dynamic arguments, each leaf's
shape, dtype and weak-typedness, and the values of the static arguments.
A new signature traces and compiles again; old ones stay cached. Called
inside another trace (``grad(jit(f))``), a jitted function simply inlines its
graph, so transforms compose.
"""

from __future__ import annotations

import contextlib
import functools
import gc as garbage_collector
import inspect
import logging
import os
import time
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphc.ir import (
    Graph,
    InputError,
    UnsupportedError,
    format_message,
)

from .pytree import TreeDef, tree_flatten, tree_unflatten, tree_unflattener
from .signature import Signature, WeakUse, check_weak_ints, fast_key, leaf_key, weak_int_uses
from .tracing import TracedArray, current_trace, evaluate, trace_flat, user_stacklevel
from .tracing.trace import function_name

log = logging.getLogger("graphc.jit")

BACKENDS = ("llvm", "numpy", "interpret")


def default_backend() -> str:
    """The fastest backend available: LLVM when it can be loaded, else NumPy."""
    from .compiler import default_backend as choose

    return choose()


@dataclass
class Compiled:
    """One specialization of a jitted function: graphs, executable, report."""

    signature: Signature
    graph: Graph
    optimized_graph: Graph
    executable: Any
    backend: str
    out_tree: TreeDef
    out_weak: tuple[bool, ...]
    input_names: tuple[str, ...]
    compile_seconds: float
    report: Any = None
    memory: Any = None
    stats: dict[str, Any] = field(default_factory=dict)
    # Python int arguments the graph narrows to int32: (leaf, dtype, where).
    weak_ints: tuple[WeakUse, ...] = ()
    # Positions of the static arguments (for labelling inputs by argument name).
    static_positions: tuple[int, ...] = ()

    @property
    def source(self) -> str:
        """Generated Python source (NumPy backend)."""
        return _artifact(self, "source")

    @property
    def llvm_ir(self) -> str:
        """Generated LLVM IR text (LLVM backend)."""
        return _artifact(self, "llvm_ir")

    @property
    def asm(self) -> str:
        """Generated machine assembly (LLVM backend)."""
        return _artifact(self, "asm")

    def __call__(self, flat: Sequence[Any]) -> Any:
        if self.weak_ints:
            check_weak_ints(self.weak_ints, flat)
        try:
            outs = self.executable(*flat)
        except InputError:
            # A backend may want C-contiguous arrays (LLVM does); NumPy takes
            # transposes, strided slices and broadcasts, so jit does too. The
            # check failed before anything ran, so calling again is safe.
            contiguous = _contiguous(flat)
            if contiguous is None:
                raise
            outs = self.executable(*contiguous)
        if self.out_tree.kind == "leaf":
            return outs[0]
        return self._unflatten(outs)

    @functools.cached_property
    def _unflatten(self) -> Callable[[Sequence[Any]], Any]:
        return tree_unflattener(self.out_tree)


def _contiguous(flat: Sequence[Any]) -> list[Any] | None:
    """``flat`` with every array that is not C-contiguous copied into one that
    is; None when there is none (the error was about something else)."""
    changed = False
    out = list(flat)
    for k, x in enumerate(flat):
        if isinstance(x, np.ndarray) and not x.flags.c_contiguous:
            out[k] = np.ascontiguousarray(x)
            changed = True
    return out if changed else None


def _artifact(c: Compiled, name: str) -> str:
    value = getattr(c.executable, name, None)
    if value is None:
        raise AttributeError(f"the {c.backend} backend has no '{name}' artifact")
    return str(value)


@contextlib.contextmanager
def _collector_paused() -> Any:
    """Pause Python's cyclic garbage collector while compiling.

    Tracing and the passes allocate many small objects, enough to trigger a
    full collection over everything the process holds (tens of milliseconds
    once NumPy, SciPy and friends are imported) when one comes due; a compile
    creates little cyclic garbage, so that work would buy nothing. Whether a
    collection lands in a given compile is luck: a warm start of the W1 train
    step takes about 0.05 s either way when none does.
    """
    was_enabled = garbage_collector.isenabled()
    garbage_collector.disable()
    try:
        yield
    finally:
        if was_enabled:
            garbage_collector.enable()


class Jitted:
    """A function compiled per input signature. Call it like the original."""

    def __init__(
        self,
        f: Callable[..., Any],
        *,
        backend: str | None,
        static_argnums: Sequence[int],
        donate_argnums: Sequence[int],
        dump: str | os.PathLike[str] | None,
        explain: bool,
        disable_passes: Sequence[str],
        memory_budget: int | None,
        options: dict[str, Any],
    ) -> None:
        functools.update_wrapper(self, f)
        self.fn = f
        self.backend = backend
        self.static_argnums = tuple(static_argnums)
        self.donate_argnums = tuple(donate_argnums)
        self.dump = dump
        self.explain = explain
        self.disable_passes = tuple(disable_passes)
        self.memory_budget = memory_budget
        self.options = options
        self.cache: dict[Signature, Compiled] = {}
        # Cache hits for the common call (every argument a plain ndarray, none
        # static) skip pytree flattening: keyed by (shape, dtype) per argument.
        self._fast: dict[tuple[Any, ...], Compiled] = {}
        self._static_cache: dict[int, tuple[int, ...]] = {}
        self.retrace_reasons: list[str] = []
        self._last: Compiled | None = None
        # Called with each new compilation before it first runs (a data-parallel
        # step checks there that every rank compiled the same graph).
        self.on_compile: Callable[[Compiled], None] | None = None
        try:
            self._sig = inspect.signature(f)
        except (TypeError, ValueError):
            self._sig = None

    # -- calling -------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            args = self._bind_kwargs(args, kwargs)
        if current_trace() is not None:
            return self._inline(args)
        quick: Any = None
        if not self.static_argnums:
            fast_leaves: list[Any] = []
            quick = fast_key(args, fast_leaves)
            compiled = self._fast.get(quick) if quick is not None else None
            if compiled is not None:
                self._last = compiled
                return compiled(fast_leaves)
        static = self._static(len(args))
        dynamic = [a for i, a in enumerate(args) if i not in static]
        leaves, tree = tree_flatten(dynamic)
        if any(isinstance(x, TracedArray) for x in leaves):
            return self._inline(args)
        sig = Signature(tree, tuple(leaf_key(x) for x in leaves), self._static_key(args))
        compiled = self.cache.get(sig)
        if compiled is None:
            compiled = self._compile(args, sig)
        if quick is not None:
            self._fast[quick] = compiled
        self._last = compiled
        return compiled(leaves)

    def lower(self, *args: Any) -> Compiled:
        """The compiled specialization for these arguments (compiling if needed)."""
        static = self._static(len(args))
        dynamic = [a for i, a in enumerate(args) if i not in static]
        leaves, tree = tree_flatten(dynamic)
        sig = Signature(tree, tuple(leaf_key(x) for x in leaves), self._static_key(args))
        compiled = self.cache.get(sig) or self._compile(args, sig)
        # .graph, .report, .render() then describe it, as the error in _latest promises
        self._last = compiled
        return compiled

    # -- artifacts of the most recent call -------------------------------------
    def _latest(self) -> Compiled:
        if self._last is None:
            raise AttributeError("call the jitted function (or .lower(*args)) first")
        return self._last

    @property
    def graph(self) -> Graph:
        """The traced graph of the most recent signature."""
        return self._latest().graph

    @property
    def optimized_graph(self) -> Graph:
        return self._latest().optimized_graph

    @property
    def source(self) -> str:
        return self._latest().source

    @property
    def llvm_ir(self) -> str:
        return self._latest().llvm_ir

    @property
    def asm(self) -> str:
        return self._latest().asm

    @property
    def report(self) -> Any:
        """The compile report of the most recent compilation: ``str()`` is the
        per-pass table (timings, node counts, rewrites), ``.html(path)`` writes
        the full page (graphs, passes, memory plan, generated code)."""
        from .viz.compiled import Report

        c = self._latest()
        return Report(self.fn, c, c.static_positions)

    def render(
        self, path: str | os.PathLike[str], *, optimized: bool = True, **options: Any
    ) -> Any:
        """Draw the optimized (or, with ``optimized=False``, the traced) graph of the
        most recent call to ``path`` (``.svg``, ``.png``, ``.pdf``, ``.dot``); inputs
        and outputs are labelled by pytree path. Options as ``graphc.viz.render``."""
        from .viz.compiled import render_compiled

        c = self._latest()
        return render_compiled(self.fn, c, c.static_positions, path, optimized=optimized, **options)

    @property
    def memory(self) -> Any:
        """The memory report of the most recent compilation."""
        return self._latest().memory

    # -- internals ---------------------------------------------------------------
    def _bind_kwargs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        if self._sig is None:
            raise InputError(
                f"{function_name(self.fn)}: keyword arguments need an inspectable signature"
            )
        try:
            bound = self._sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise InputError(f"{function_name(self.fn)}: {exc}") from None
        explicit_kwonly = [
            name
            for name, p in self._sig.parameters.items()
            if p.kind is p.KEYWORD_ONLY and name in kwargs
        ]
        if explicit_kwonly:
            raise InputError(
                format_message(
                    f"{function_name(self.fn)}: keyword-only argument(s) "
                    f"{', '.join(explicit_kwonly)} cannot be passed to a jitted function",
                    hint="make them positional (and static_argnums if they are not arrays), "
                    "or bind them first with functools.partial",
                )
            )
        bound.apply_defaults()
        return tuple(bound.args)

    def _static_key(self, args: Sequence[Any]) -> tuple[Hashable, ...]:
        key = []
        for i in self._static(len(args)):
            value = args[i]
            try:
                hash(value)
            except TypeError:
                raise InputError(
                    format_message(
                        f"static argument {i} of type {type(value).__name__} is not hashable",
                        hint="static arguments key the compile cache; use tuples instead of lists",
                    )
                ) from None
            key.append((type(value), value))
        return tuple(key)

    def _static(self, nargs: int) -> tuple[int, ...]:
        found = self._static_cache.get(nargs)
        if found is None:
            found = _positions(self.static_argnums, nargs, "static_argnums")
            self._static_cache[nargs] = found
        return found

    def _check_arity(self, args: Sequence[Any]) -> None:
        if self._sig is None:
            return
        try:
            self._sig.bind(*args)
        except TypeError as exc:
            raise InputError(
                format_message(
                    f"{function_name(self.fn)}{self._sig}: {exc}",
                    hint="call the jitted function with the same arguments as the original",
                )
            ) from None

    def _inline(self, args: Sequence[Any]) -> Any:
        static = self._static(len(args))
        traced = trace_flat(self.fn, args, static_argnums=static)
        dynamic = [a for i, a in enumerate(args) if i not in static]
        flat = tree_flatten(dynamic)[0] + list(traced.captured)
        return tree_unflatten(traced.out_tree, evaluate(traced.graph, flat, traced.out_weak))

    def _compile(self, args: Sequence[Any], sig: Signature) -> Compiled:
        self._check_arity(args)
        with _collector_paused():
            return self._compile_unpaused(args, sig)

    def _compile_unpaused(self, args: Sequence[Any], sig: Signature) -> Compiled:
        start = time.perf_counter()
        backend = self.backend or default_backend()
        from .compiler import backend_module, compile_graph

        if backend != "interpret":
            # e.g. LLVM builds its runtime in the background while tracing runs
            getattr(backend_module(backend), "prepare", lambda: None)()
        trace_start = time.perf_counter()
        traced = trace_flat(self.fn, args, static_argnums=self._static(len(args)))
        trace_seconds = time.perf_counter() - trace_start
        names = tuple(v.name or "" for v in traced.graph.inputs)
        if self.cache:
            self._note_retrace(sig.describe_difference(next(reversed(self.cache)), names))

        donated = self._donated_leaves(args)
        if self.memory_budget is not None:
            _check_budget_covers_inputs(traced.graph, self.memory_budget, donated)
        result = compile_graph(
            traced.graph,
            backend=backend,
            dump=self.dump,
            disable_passes=self.disable_passes,
            memory_budget=self.memory_budget,
            donate=donated,
            options=self.options,
        )
        compiled = Compiled(
            signature=sig,
            graph=traced.graph,
            optimized_graph=result.graph,
            executable=result.executable,
            backend=backend,
            out_tree=traced.out_tree,
            out_weak=traced.out_weak,
            input_names=names,
            compile_seconds=time.perf_counter() - start,
            report=result.report,
            memory=result.memory,
            stats={"seconds": {"trace": trace_seconds, **result.seconds}, "plan": result.plan},
            weak_ints=weak_int_uses(traced.graph, traced.input_weak),
            static_positions=self._static(len(args)),
        )
        if self.on_compile is not None:
            self.on_compile(compiled)
        self.cache[sig] = compiled
        return compiled

    def _note_retrace(self, reason: str) -> None:
        self.retrace_reasons.append(reason)
        message = f"{function_name(self.fn)}: compiling for a new signature ({reason})"
        log.info(message)
        if self.explain:
            warnings.warn(message, stacklevel=user_stacklevel())

    def _donated_leaves(self, args: Sequence[Any]) -> tuple[int, ...]:
        if not self.donate_argnums:
            return ()
        static = self._static(len(args))
        donate = _positions(self.donate_argnums, len(args), "donate_argnums")
        if set(donate) & set(static):
            raise InputError(
                format_message(
                    f"argument(s) {sorted(set(donate) & set(static))} are both static and donated",
                    hint="a static argument is part of the compiled program; it cannot be donated",
                )
            )
        dynamic_positions = [i for i in range(len(args)) if i not in static]
        donated, start = [], 0
        for pos in dynamic_positions:
            n = len(tree_flatten(args[pos])[0])
            if pos in donate:
                donated.extend(range(start, start + n))
            start += n
        return tuple(donated)


def _positions(nums: Sequence[int], nargs: int, what: str) -> tuple[int, ...]:
    """Argument indices made non-negative (as in JAX); out of range is an error."""
    out = []
    for i in nums:
        if not -nargs <= i < nargs:
            raise InputError(
                format_message(
                    f"{what} names argument {i}, but the call passes {nargs} argument(s)"
                )
            )
        out.append(i % nargs)
    return tuple(out)


def jit(
    f: Callable[..., Any] | None = None,
    *,
    backend: str | None = None,
    static_argnums: int | Sequence[int] = (),
    donate_argnums: int | Sequence[int] = (),
    dump: str | os.PathLike[str] | None = None,
    explain: bool = False,
    disable_passes: Sequence[str] = (),
    memory_budget: int | None = None,
    debug_nans: bool | None = None,
    debug_infs: bool | None = None,
    **options: Any,
) -> Any:
    """Compile ``f`` for each input signature and run it on a backend.

    Args:
        backend: ``"llvm"`` or ``"numpy"``; default: the fastest available.
        static_argnums: arguments baked into the graph (must be hashable);
            a new value compiles again.
        donate_argnums: arguments the caller gives up: on either backend an
            output of the same type may be computed straight into such an
            argument's array (which is then returned), when no other read of
            the argument comes later. An array that is read-only, a view, not
            C-contiguous, or overlapping another argument (passed twice, or
            with a view of it among the others) is copied first, and the
            copy is written and returned instead. Don't use donated arrays
            afterwards except through the results.
        dump: directory to write the IR after every pass (``NN-pass.gir``);
            the ``GRAPHC_DUMP`` environment variable does the same.
        explain: warn with the reason each time a new signature compiles.
        disable_passes: pass names to skip (to bisect a miscompile).
        memory_budget: bytes of intermediates (the planned arena; inputs and
            outputs belong to the caller) to stay under: cheap values (elementwise
            and view results) that live long are computed again right before their
            late uses, then, if that is not enough, a few layers' products, until
            the arena fits. A budget that cannot be met gives a
            ``MemoryBudgetWarning`` and the lowest plan found; the compile report
            (``.report``) counts the planned bytes before and after. A budget below
            the size of the non-donated arguments is a ``PipelineError``.
        debug_nans: check every result for NaN; one that the arguments did not
            contain re-runs the call op by op and raises ``gc.NaNError`` naming
            the first op that made it, its operands' ranges and the source line
            (see :mod:`graphc.debug`). Default: the ``GRAPHC_DEBUG_NANS``
            environment variable. Off, it costs nothing; on, the generated code
            is the same and each call is checked.
        debug_infs: the same for infinities (``GRAPHC_DEBUG_INFS``).
        options: passed to the backend (e.g. ``num_threads``).

    Arguments are checked as NumPy would: arrays of any layout (transposes,
    strided slices, broadcasts; copied for backends that need contiguous
    memory), and Python ints that must fit the dtype they are used at
    (``int32_array * 2**40`` raises :class:`graphc.ir.InputOverflowError`, an
    ``OverflowError``).

    >>> import numpy as np
    >>> f = jit(lambda x: np.tanh(x) * 2.0, backend="numpy")
    >>> f(np.zeros(3))
    array([0., 0., 0.])
    """
    if f is None:
        return functools.partial(
            jit,
            backend=backend,
            static_argnums=static_argnums,
            donate_argnums=donate_argnums,
            dump=dump,
            explain=explain,
            disable_passes=disable_passes,
            memory_budget=memory_budget,
            debug_nans=debug_nans,
            debug_infs=debug_infs,
            **options,
        )
    if backend is not None and backend not in BACKENDS:
        raise UnsupportedError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend not in (None, "interpret"):
        from .compiler import backend_module

        backend_module(backend)  # an unavailable backend fails here, not at the first call

    if memory_budget is not None:
        _check_budget(memory_budget)
        memory_budget = int(memory_budget)

    def as_tuple(v: int | Sequence[int]) -> tuple[int, ...]:
        return (v,) if isinstance(v, int) else tuple(v)

    settings: dict[str, Any] = {
        "backend": backend,
        "static_argnums": as_tuple(static_argnums),
        "donate_argnums": as_tuple(donate_argnums),
        "dump": dump,
        "explain": explain,
        "disable_passes": disable_passes,
        "memory_budget": memory_budget,
        "options": options,
    }
    from .debug import env_flag

    nans = env_flag("GRAPHC_DEBUG_NANS") if debug_nans is None else bool(debug_nans)
    infs = env_flag("GRAPHC_DEBUG_INFS") if debug_infs is None else bool(debug_infs)
    if nans or infs:
        from .debug import DebugJitted

        return DebugJitted(f, debug_nans=nans, debug_infs=infs, **settings)
    return Jitted(f, **settings)


def _check_budget_covers_inputs(g: Graph, budget: int, donated: Sequence[int] = ()) -> None:
    """A budget smaller than the data fed to each call is taken for a mistake (a
    budget meant for the whole process rather than for the intermediates).

    Donated arguments are left out of the comparison: they are the state a call
    updates in place (a training step's parameters and optimizer state), which can be
    far larger than the step's activations; a budget for those is a real budget.
    """
    from .passes.manager import PipelineError

    fed = [v for i, v in enumerate(g.inputs) if i not in set(donated)]
    total = sum(v.type.nbytes for v in fed)
    if budget >= total:
        return
    largest = sorted(fed, key=lambda v: -v.type.nbytes)[:3]
    raise PipelineError(
        format_message(
            f"{g.name}: memory_budget={budget:,} bytes is smaller than the function's "
            f"inputs alone ({total:,} bytes, {total - budget:,} more than the budget; "
            "donated arguments not counted)",
            details=[f"largest inputs: {', '.join(f'%{v.name}: {v.type}' for v in largest)}"],
            hint="memory_budget bounds the intermediate values planned on top of the inputs; "
            "a budget below the size of the (non-donated) inputs is taken for a mistake: "
            f"give at least {total:,}",
        )
    )


def _check_budget(budget: Any) -> None:
    from .passes.manager import PipelineError

    if isinstance(budget, (bool, np.bool_)) or not isinstance(budget, (int, np.integer)):
        raise PipelineError(
            format_message(
                f"memory_budget must be a number of bytes (an int), got {budget!r}",
                hint="for example memory_budget=64 * 2**20 for 64 MiB",
            )
        )
    if budget < 0:
        raise PipelineError(f"memory_budget must be at least 0 bytes, got {budget}")
