"""Training diagnostics computed inside the compiled step.

``gc.train_step(..., diagnostics=True)`` adds, after the optimizer update and
in the same graph, per parameter leaf (keyed by its path, ``"blocks/0/qkv/w"``):

- ``grad_norm``: the L2 norm of the gradient,
- ``param_norm``: the L2 norm of the parameter before the update,
- ``update_ratio``: ``||new - old|| / (||old|| + 1e-12)``, the relative size of
  the step (around 1e-3 is the usual healthy range for SGD-like training),

and, for each value the loss function names with :func:`observe`, its mean,
standard deviation and fraction of exact zeros (dead ReLUs). They are a few
reductions each, fused with the rest of the step. With ``diagnostics=False``
(the default) :func:`observe` returns its argument and adds nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..pytree import tree_leaves, tree_paths

KINDS = ("grad_norm", "param_norm", "update_ratio")
RATIO_EPS = 1e-12


class _Observer:
    def __init__(self) -> None:
        self.stats: dict[str, dict[str, Any]] = {}
        from ..tracing import current_trace

        self.trace = current_trace()

    def add(self, name: str, x: Any) -> None:
        from ..ir import UnsupportedError
        from ..tracing import current_trace

        if current_trace() is not self.trace:
            # statistics computed inside a scan, cond, while or remat body would
            # be values of that body, which cannot leave it
            raise UnsupportedError(
                f"gc.observe({name!r}): observing a value inside a scan, cond, while_loop "
                "or remat body is not supported; observe a value the body returns "
                "(a scan's stacked outputs, a cond's result) instead"
            )
        key, k = name, 1
        while key in self.stats:  # the same name observed again (a loop): number it
            k += 1
            key = f"{name}#{k}"
        x = np.asarray(x) if not hasattr(x, "dtype") else x
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        self.stats[key] = {
            "mean": np.mean(x).astype(dtype),
            "std": np.std(x).astype(dtype),
            "zero_fraction": np.mean((x == 0).astype(dtype)),
        }


_OBSERVER: contextvars.ContextVar[_Observer | None] = contextvars.ContextVar(
    "graphc_observer", default=None
)


def observe(x: Any, name: str) -> Any:
    """Name an intermediate value for training diagnostics; returns ``x`` unchanged.

    Inside a ``gc.train_step(..., diagnostics=True)`` loss function, the step
    also returns the mean, standard deviation and fraction of zeros of ``x``
    under ``diagnostics["observed"][name]``. Anywhere else it does nothing.

    >>> import numpy as np, graphc as gc
    >>> def loss(p, x):
    ...     h = gc.observe(np.maximum(x @ p, 0.0), "hidden")
    ...     return np.mean(h ** 2)
    >>> step = gc.train_step(loss, gc.optim.SGD(0.1), backend="numpy", diagnostics=True)
    >>> state, value, diag = step(step.init(np.ones((2, 3))), np.array([[1.0, -2.0]]))
    >>> float(diag["observed"]["hidden"]["zero_fraction"])
    1.0
    """
    observer = _OBSERVER.get()
    if observer is not None:
        observer.add(str(name), x)
    return x


@contextlib.contextmanager
def observing(active: bool) -> Iterator[_Observer | None]:
    """Collect :func:`observe` calls made inside (when ``active``)."""
    if not active:
        yield None
        return
    observer = _Observer()
    token = _OBSERVER.set(observer)
    try:
        yield observer
    finally:
        _OBSERVER.reset(token)


def leaf_name(path: tuple[Any, ...]) -> str:
    """``("blocks", 0, "w")`` -> ``"blocks/0/w"`` (``"params"`` for a bare array).

    >>> leaf_name(("blocks", 0, "w")), leaf_name(())
    ('blocks/0/w', 'params')
    """
    return "/".join(map(str, path)) or "params"


def step_diagnostics(params: Any, grads: Any, new_params: Any, observed: Any) -> dict[str, Any]:
    """The per-leaf norms and ratios of one update (traced or eager), plus ``observed``.

    >>> d = step_diagnostics({"w": np.array([3.0, 4.0])}, {"w": np.array([0.0, 1.0])},
    ...                      {"w": np.array([3.0, 3.9])}, None)
    >>> [round(float(d[k]["w"]), 3) for k in ("grad_norm", "param_norm", "update_ratio")]
    [1.0, 5.0, 0.02]
    """
    out: dict[str, Any] = {kind: {} for kind in KINDS}
    paths = tree_paths(params)
    for path, p, g, q in zip(
        paths, tree_leaves(params), tree_leaves(grads), tree_leaves(new_params)
    ):
        if not np.issubdtype(np.dtype(p.dtype), np.floating):
            continue
        name = leaf_name(path)
        param_norm = np.sqrt(np.sum(p * p))
        update_norm = np.sqrt(np.sum((q - p) * (q - p)))
        out["grad_norm"][name] = np.sqrt(np.sum(g * g))
        out["param_norm"][name] = param_norm
        out["update_ratio"][name] = update_norm / (param_norm + RATIO_EPS)
    out["observed"] = observed or {}
    return out


def flatten(diagnostics: dict[str, Any]) -> dict[str, float]:
    """One step's diagnostics as flat ``"grad_norm/w1"``, ``"observed/h/mean"`` numbers.

    >>> flatten({"grad_norm": {"w": np.float32(2.0)}, "observed": {"h": {"mean": 0.5}}})
    {'grad_norm/w': 2.0, 'observed/h/mean': 0.5}
    """
    flat: dict[str, float] = {}
    for kind, table in diagnostics.items():
        for name, value in table.items():
            if isinstance(value, dict):
                for stat, v in value.items():
                    flat[f"{kind}/{name}/{stat}"] = float(v)
            else:
                flat[f"{kind}/{name}"] = float(value)
    return flat


def gradient_alerts(
    history: Any, *, vanishing: float = 1e-6, exploding: float = 1e2
) -> dict[str, str]:
    """Layers whose gradient norm left ``[vanishing, exploding]`` in some epoch.

    Returns ``{leaf: "vanishing" | "exploding"}`` from a :class:`History`
    recorded with ``diagnostics=True`` (the last epoch out of range decides).

    >>> from graphc.training import History
    >>> h = History([{"grad_norm/w1": 1e-9, "grad_norm/w2": 0.3}])
    >>> gradient_alerts(h)
    {'w1': 'vanishing'}
    """
    alerts: dict[str, str] = {}
    for key in history.metrics:
        if not key.startswith("grad_norm/"):
            continue
        for value in history[key]:
            if not isinstance(value, float) or math.isnan(value):
                continue
            if value < vanishing:
                alerts[key.split("/", 1)[1]] = "vanishing"
            elif value > exploding:
                alerts[key.split("/", 1)[1]] = "exploding"
    return alerts
