"""The vocabulary shared by workloads, the timer, the memory probe and the report.

A workload is host data (NumPy arrays made from a fixed seed) plus a table of
implementations. An implementation is a plain function `make(problem) -> Runner`; it
raises `Unavailable` when its library or the graphc API it needs does not exist yet, and
the report then prints the reason instead of a number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Unavailable(Exception):
    """An implementation that cannot be built here (library missing, API not written yet)."""


@dataclass
class Runner:
    """One implementation of a workload, ready to run.

    `step()` runs one full step (for training workloads: forward, backward and update) and
    returns the loss in the library's own type; it must not return before the work is done
    (JAX entries block on their outputs). `reset()` puts the parameters, the optimizer
    state and the batch feed back to where they started, so that every timing sample runs
    the same steps of training (loss curves change the arithmetic: a confident softmax
    produces subnormal floats, which are slow). `state()` returns what the step updates
    (or W3's gradient), as NumPy arrays in the workload's canonical layout, for `--check`.
    `prepare()`, where the library can compile ahead of time, compiles the step without
    running it (the memory probe then measures the steps alone, not the compiler).
    """

    step: Callable[[], Any]
    reset: Callable[[], None]
    state: Callable[[], dict[str, np.ndarray]] = field(default=lambda: {})
    note: str = ""
    prepare: Callable[[], None] | None = None


@dataclass
class Problem:
    """Host-side inputs every implementation of a workload starts from."""

    params: dict[str, np.ndarray]
    batches: list[tuple[np.ndarray, ...]]
    hyper: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)

    def param_bytes(self) -> int:
        return sum(p.nbytes for p in self.params.values())


@dataclass
class Workload:
    """A benchmark: what it computes, how to make its inputs, and its implementations."""

    name: str
    title: str
    make_problem: Callable[[bool], Problem]
    impls: dict[str, Callable[[Problem], Runner]]
    default_repeat: int = 15


def to_float(x: Any) -> float:
    """A loss from any library as a Python float (torch tensors, JAX arrays, NumPy scalars)."""
    if hasattr(x, "detach"):
        x = x.detach()
    return float(np.asarray(x))


class cycle:
    """An endless, deterministic batch feed: call i returns batch i % len(batches)."""

    def __init__(self, batches: list[Any]):
        self.batches, self.index = batches, 0

    def __call__(self) -> Any:
        b = self.batches[self.index % len(self.batches)]
        self.index += 1
        return b

    def reset(self) -> None:
        self.index = 0


def restore(params: dict[str, np.ndarray], initial: dict[str, np.ndarray]) -> None:
    """Copy `initial` back into the arrays of `params`, in place."""
    for k, p in params.items():
        np.copyto(p, initial[k])


def numpy_reset(
    params: dict[str, np.ndarray], initial: dict[str, np.ndarray], *parts: Any
) -> Callable[[], None]:
    """A `Runner.reset` for NumPy-held parameters: restore them, then reset each part
    (optimizer, feed)."""

    def reset() -> None:
        restore(params, initial)
        for part in parts:
            part.reset()

    return reset


def require(module: str) -> Any:
    """Import an optional peer or raise `Unavailable` saying it is not installed."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Unavailable(f"{module} not installed ({e})") from None
