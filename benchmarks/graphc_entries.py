"""graphc implementations of the workloads, written against the public API (DESIGN §1).

Every workload gives graphc the same plain-NumPy loss function a user would write. Two
ways to run a training step exist, and each is its own entry so both stay visible:

- `graphc-<backend>`: `gc.jit(gc.value_and_grad(loss), backend=...)` computes loss and
  gradients in one compiled call; the optimizer update is the hand-written NumPy one that
  the `numpy` entry uses, applied in place around it.
- `graphc-<backend>-ts`: `gc.train_step` with a `gc.optim` optimizer, forward, backward and
  update folded into one compiled graph (issue 6).

An entry whose API is not there yet raises `Unavailable` naming what is missing; the
report shows that reason in place of a timing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from .core import Problem, Runner, Unavailable, cycle, numpy_reset
from .optim import numpy_optimizer

BACKENDS = ("numpy", "llvm")
# The reference interpreter: far too slow to time, but `--check --impls graphc-interpret`
# validates the workloads' graphc models before a compiling backend exists.
OPT_IN_BACKENDS = ("interpret",)


def require_graphc(*names: str) -> Any:
    """Import graphc and check that the public names an entry needs exist."""
    try:
        import graphc as gc
    except ImportError as e:
        raise Unavailable(f"graphc not importable ({e})") from None
    missing = [name for name in names if not _has_path(gc, name)]
    if missing:
        raise Unavailable("graphc API not there yet: " + ", ".join(f"gc.{m}" for m in missing))
    return gc


def _has_path(obj: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def memory_note(memory: Any, activation_bytes: int | None = None) -> str:
    """The planned arena and its ratio to the lower bound (and to the activations the
    backward needs, when the workload says how many bytes that is)."""
    if memory is None or not hasattr(memory, "lower_bound_bytes"):
        return ""
    note = f"arena {memory.plan_bytes / 2**20:.1f} MiB, plan/bound {memory.plan_to_bound:.3f}"
    if activation_bytes:
        note += f", arena/activations {memory.plan_bytes / activation_bytes:.3f}"
    return note


def value_and_grad_entry(
    loss_fn: Callable[..., Any],
    optimizer: str,
    problem: Problem,
    *,
    backend: str,
    memory_budget: int | None = None,
) -> Runner:
    """Compiled loss+gradients, NumPy optimizer update in place around the call."""
    gc = require_graphc("jit", "value_and_grad")
    compiled = gc.jit(gc.value_and_grad(loss_fn), backend=backend, memory_budget=memory_budget)
    params = {k: v.copy() for k, v in problem.params.items()}
    opt = numpy_optimizer(optimizer, params, problem.hyper)
    feed = cycle(problem.batches)
    label = "value_and_grad + NumPy update"
    if memory_budget is not None:
        label += f", budget {memory_budget / 2**20:.0f} MiB"

    def step() -> Any:
        loss, grads = compiled(params, *feed())
        opt.update(params, grads)
        if runner.note == label and backend != "interpret":  # once compiled
            extra = memory_note(compiled.memory, problem.info.get("activation_bytes"))
            runner.note = f"{label}; {extra}" if extra else label + " "
        return loss

    def prepare() -> None:
        compiled.lower(params, *problem.batches[0])

    runner = Runner(
        step=step,
        reset=numpy_reset(params, problem.params, opt, feed),
        state=lambda: params,
        note=label,
        prepare=prepare if backend != "interpret" else None,
    )
    return runner


def _graphc_optimizer(gc: Any, optimizer: str, hyper: dict[str, float]) -> Any:
    if optimizer == "adam":
        return gc.optim.Adam(hyper["lr"], b1=hyper["b1"], b2=hyper["b2"], eps=hyper["eps"])
    return gc.optim.SGD(hyper["lr"], momentum=hyper.get("momentum", 0.0))


def train_step_entry(
    loss_fn: Callable[..., Any],
    optimizer: str,
    problem: Problem,
    *,
    backend: str,
    mixed_precision: str | None = None,
    budgeted: bool = False,
) -> Runner:
    """One compiled graph for forward, backward and update (`gc.train_step`); with
    ``budgeted``, compiled under the workload's ``info["memory_budget"]``."""
    gc = require_graphc("train_step", "optim")
    compiled = gc.train_step(
        loss_fn,
        _graphc_optimizer(gc, optimizer, problem.hyper),
        backend=backend,
        mixed_precision=mixed_precision,
        memory_budget=problem.info["memory_budget"] if budgeted else None,
    )
    live = [compiled.init(problem.params)]
    feed = cycle(problem.batches)

    def step() -> Any:
        # The state is donated: parameters and optimizer state are updated in place.
        live[0], loss = compiled(live[0], *feed())
        if runner.note == "gc.train_step" and backend != "interpret":  # once compiled
            extra = memory_note(compiled.jitted.memory, problem.info.get("activation_bytes"))
            parts = compiled.memory(live[0], *problem.batches[0])
            extra += "; " if extra else ""
            extra += ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in parts.items())
            runner.note += f"; {extra}"
        return loss

    def reset() -> None:
        live[0] = compiled.init(problem.params)
        feed.reset()

    def prepare() -> None:
        compiled.lower(live[0], *problem.batches[0])

    runner = Runner(
        step=step,
        reset=reset,
        state=lambda: live[0].params,
        note="gc.train_step",
        prepare=prepare if backend != "interpret" else None,
    )
    return runner


def training_entries(
    loss_fn: Callable[..., Any], optimizer: str, variant: str = ""
) -> dict[str, Any]:
    """The four graphc entries of a training workload (``graphc-<backend>[-variant][-ts]``,
    for a second way of writing the same loss)."""
    entries: dict[str, Any] = {}
    tag = f"-{variant}" if variant else ""
    for backend in BACKENDS + OPT_IN_BACKENDS:
        entries[f"graphc-{backend}{tag}"] = partial(
            value_and_grad_entry, loss_fn, optimizer, backend=backend
        )
    for backend in BACKENDS + OPT_IN_BACKENDS:
        entries[f"graphc-{backend}{tag}-ts"] = partial(
            train_step_entry, loss_fn, optimizer, backend=backend
        )
    # mixed precision: 16-bit matmuls and activations, float32 master weights
    entries["graphc-llvm-ts-bf16"] = partial(
        train_step_entry, loss_fn, optimizer, backend="llvm", mixed_precision="bfloat16"
    )
    return entries


def jit_entries(make: Callable[..., Runner]) -> dict[str, Any]:
    """The graphc entries of a workload without training: `make(problem, backend=...)`."""
    return {f"graphc-{b}": partial(make, backend=b) for b in BACKENDS + OPT_IN_BACKENDS}


def is_opt_in(name: str) -> bool:
    """Entries run only when asked for by name (see OPT_IN_BACKENDS)."""
    return any(f"-{backend}" in name for backend in OPT_IN_BACKENDS)


def is_graphc_error(exc: BaseException) -> bool:
    """True for graphc's own 'cannot compile this' errors (reported as unavailable)."""
    try:
        import graphc as gc
    except ImportError:
        return False
    return isinstance(exc, gc.GraphcError)
