"""Optimizers as pure functions of (gradients, state, parameters).

``opt.init(params)`` returns the optimizer state, a pytree: a dict with the
step count ``"step"`` (an int64 scalar: the number of updates done) and one
subtree per slot (``"m"``, ``"v"``, ...) mirroring the parameters.
``opt.update(grads, state, params)`` returns ``(new_params, new_state)`` and is
plain NumPy with no branching on array values, so a train step traces it into
the same graph as the forward and backward passes. The learning rate is a
number or a schedule of the step count (see :mod:`graphc.optim.schedules`).

Update rules match PyTorch's ``torch.optim`` classes of the same name.

>>> opt = Adam(lr=0.1)
>>> params = {"w": np.array([1.0, -1.0])}
>>> state = opt.init(params)
>>> params, state = opt.update({"w": np.array([0.5, -2.0])}, state, params)
>>> params["w"].round(3).tolist(), int(state["step"])
([0.9, -0.9], 1)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import GraphcError
from ..pytree import TreeDef, tree_flatten, tree_map, tree_unflatten
from .clip import clip_by_global_norm
from .schedules import Schedule

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "OptimizerError", "RMSprop"]


class OptimizerError(GraphcError, ValueError):
    """An optimizer was configured or called with values that do not fit."""


def _cast(value: Any, like: Any) -> Any:
    """A scalar hyperparameter in the leaf's dtype (Python numbers stay weakly typed)."""
    # np.float64 subclasses float but is not weakly typed, so test for np.generic.
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return value
    return value.astype(like.dtype)


class Optimizer:
    """Base class. A subclass names its per-parameter ``slots`` and defines
    ``_leaf(p, g, slots, lr, t) -> (new_p, new_slots)`` for one parameter, where
    ``t`` is the 1-based index of the update being made (an int64 scalar).
    """

    slots: tuple[str, ...] = ()

    def __init__(
        self, lr: float | Schedule, weight_decay: float = 0.0, clip_norm: float | None = None
    ) -> None:
        if not callable(lr) and not lr >= 0:
            raise OptimizerError(f"{type(self).__name__}: lr must be >= 0, got {lr}")
        if not weight_decay >= 0:
            raise OptimizerError(f"{type(self).__name__}: weight_decay must be >= 0")
        if clip_norm is not None and not clip_norm > 0:
            raise OptimizerError(f"{type(self).__name__}: clip_norm must be positive")
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm

    def learning_rate(self, step: Any) -> Any:
        """The learning rate used by the update made after ``step`` updates."""
        return self.lr(step) if callable(self.lr) else self.lr

    def _init_slot(self, name: str, p: Any) -> Any:
        return np.zeros_like(p)

    def init(self, params: Any) -> dict[str, Any]:
        """Fresh state for ``params``: step 0 and zeroed slots."""
        state: dict[str, Any] = {"step": np.zeros((), np.int64)}
        for name in self.slots:
            state[name] = tree_map(lambda p, name=name: self._init_slot(name, p), params)
        return state

    def update(self, grads: Any, state: dict[str, Any], params: Any) -> tuple[Any, dict[str, Any]]:
        """One step: returns ``(new_params, new_state)``; nothing is modified in place."""
        if set(state) != {"step", *self.slots}:
            raise OptimizerError(
                f"{type(self).__name__}: state has keys {sorted(state)}, expected "
                f"{sorted({'step', *self.slots})}; make it with this optimizer's init()"
            )
        if self.clip_norm is not None:
            grads, _ = clip_by_global_norm(grads, self.clip_norm)
        step = state["step"]
        lr = self.learning_rate(step)
        t = step + 1
        p_leaves, treedef = tree_flatten(params)
        g_leaves = self._leaves_like(grads, treedef, "gradients")
        slot_leaves = {
            name: self._leaves_like(state[name], treedef, f"state[{name!r}]") for name in self.slots
        }
        new_p: list[Any] = []
        new_slots: dict[str, list[Any]] = {name: [] for name in self.slots}
        for i, (p, g) in enumerate(zip(p_leaves, g_leaves)):
            if g.dtype != p.dtype:
                g = g.astype(p.dtype)
            if self.weight_decay and self._coupled_decay:
                g = g + p * self.weight_decay
            leaf_slots = {name: slot_leaves[name][i] for name in self.slots}
            p_next, s_next = self._leaf(p, g, leaf_slots, _cast(lr, p), t)
            new_p.append(p_next)
            for name in self.slots:
                new_slots[name].append(s_next[name])
        new_state: dict[str, Any] = {"step": t}
        for name in self.slots:
            new_state[name] = tree_unflatten(treedef, new_slots[name])
        return tree_unflatten(treedef, new_p), new_state

    def _leaves_like(self, tree: Any, treedef: TreeDef, what: str) -> list[Any]:
        leaves, found = tree_flatten(tree)
        if found != treedef:
            raise OptimizerError(
                f"{type(self).__name__}.update: {what} have structure {found}, "
                f"the parameters {treedef}"
            )
        return leaves

    # L2 weight decay added to the gradient (torch's weight_decay); AdamW decouples it.
    _coupled_decay = True

    def _leaf(self, p: Any, g: Any, slots: dict[str, Any], lr: Any, t: Any) -> Any:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    ``buf = momentum * buf + g``; the step is ``buf`` (or ``g + momentum * buf``
    with Nesterov); ``p -= lr * step``.

    >>> SGD(0.1, momentum=0.9).init({"w": np.zeros(2)})["momentum"]["w"]
    array([0., 0.])
    """

    def __init__(
        self,
        lr: float | Schedule,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        if not 0 <= momentum < 1:
            raise OptimizerError(f"SGD: momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise OptimizerError("SGD: Nesterov momentum needs momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        self.slots = ("momentum",) if momentum else ()

    def _leaf(self, p: Any, g: Any, slots: dict[str, Any], lr: Any, t: Any) -> Any:
        if not self.momentum:
            return p - lr * g, {}
        buf = slots["momentum"] * self.momentum + g
        direction = g + buf * self.momentum if self.nesterov else buf
        return p - lr * direction, {"momentum": buf}


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with bias correction; ``weight_decay`` is L2 added to g.

    >>> sorted(Adam().init({"w": np.zeros(2)}))
    ['m', 'step', 'v']
    """

    slots = ("m", "v")

    def __init__(
        self,
        lr: float | Schedule = 1e-3,
        b1: float = 0.9,
        b2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise OptimizerError(f"{type(self).__name__}: betas must be in [0, 1), got {b1}, {b2}")
        self.b1, self.b2, self.eps = b1, b2, eps

    def _leaf(self, p: Any, g: Any, slots: dict[str, Any], lr: Any, t: Any) -> Any:
        m = slots["m"] * self.b1 + g * (1.0 - self.b1)
        v = slots["v"] * self.b2 + (g * g) * (1.0 - self.b2)
        m_hat = m / _cast(1.0 - self.b1**t, p)
        v_hat = v / _cast(1.0 - self.b2**t, p)
        return self._decayed(p, lr) - lr * m_hat / (np.sqrt(v_hat) + self.eps), {"m": m, "v": v}

    def _decayed(self, p: Any, lr: Any) -> Any:
        return p


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019):
    ``p *= 1 - lr * weight_decay`` before the Adam step.

    >>> AdamW(weight_decay=0.1).weight_decay
    0.1
    """

    _coupled_decay = False

    def __init__(
        self,
        lr: float | Schedule = 1e-3,
        b1: float = 0.9,
        b2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, b1, b2, eps, weight_decay, clip_norm)

    def _decayed(self, p: Any, lr: Any) -> Any:
        return p - p * (lr * self.weight_decay) if self.weight_decay else p


class RMSprop(Optimizer):
    """RMSprop: divide by a running RMS of gradients, optionally centered and with momentum.

    >>> sorted(RMSprop(centered=True, momentum=0.9).init({"w": np.zeros(1)}))
    ['grad_avg', 'momentum', 'square_avg', 'step']
    """

    def __init__(
        self,
        lr: float | Schedule = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        if not 0 <= alpha < 1 or not 0 <= momentum < 1:
            raise OptimizerError("RMSprop: alpha and momentum must be in [0, 1)")
        self.alpha, self.eps, self.momentum, self.centered = alpha, eps, momentum, centered
        self.slots = (
            ("square_avg",)
            + (("grad_avg",) if centered else ())
            + (("momentum",) if momentum else ())
        )

    def _leaf(self, p: Any, g: Any, slots: dict[str, Any], lr: Any, t: Any) -> Any:
        new = {"square_avg": slots["square_avg"] * self.alpha + (g * g) * (1.0 - self.alpha)}
        mean_square = new["square_avg"]
        if self.centered:
            new["grad_avg"] = slots["grad_avg"] * self.alpha + g * (1.0 - self.alpha)
            mean_square = mean_square - new["grad_avg"] * new["grad_avg"]
        scaled = g / (np.sqrt(mean_square) + self.eps)
        if self.momentum:
            new["momentum"] = slots["momentum"] * self.momentum + scaled
            scaled = new["momentum"]
        return p - lr * scaled, new


class Adagrad(Optimizer):
    """Adagrad: divide by the root of the sum of all squared gradients so far.

    >>> float(Adagrad(initial_accumulator=0.1).init({"w": np.zeros(1)})["sum"]["w"][0])
    0.1
    """

    slots = ("sum",)

    def __init__(
        self,
        lr: float | Schedule = 1e-2,
        eps: float = 1e-10,
        initial_accumulator: float = 0.0,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        if not initial_accumulator >= 0:
            raise OptimizerError("Adagrad: initial_accumulator must be >= 0")
        self.eps, self.initial_accumulator = eps, initial_accumulator

    def _init_slot(self, name: str, p: Any) -> Any:
        return np.full_like(p, self.initial_accumulator)

    def _leaf(self, p: Any, g: Any, slots: dict[str, Any], lr: Any, t: Any) -> Any:
        total = slots["sum"] + g * g
        return p - lr * g / (np.sqrt(total) + self.eps), {"sum": total}
