"""The compiled train step: forward, backward and optimizer update in one graph.

``gc.train_step(loss_fn, optimizer)`` traces ``loss_fn``, differentiates it,
appends ``optimizer.update`` and compiles all of it with ``gc.jit`` as one
function ``(params, opt_state, model_state, key, *batch) -> (new_params,
new_opt_state, new_model_state, loss, aux)``. Parameters, optimizer state and
model state are donated, so a backend may update them in place.

Everything that changes from step to step is an array input of that graph,
so one compilation serves the whole run:

- the optimizer's step count lives in its state (``opt_state["step"]``), so
  learning-rate schedules are computed inside the graph;
- randomness (dropout) comes from the counter-based RNG keyed by the run's key
  and that same step count, so masks are drawn inside the compiled step and
  are identical across runs and backends;
- model state that is not trained by gradients (BatchNorm running statistics)
  is threaded through as its own pytree.

The loss function's signature says what it needs. It always takes
``(params, *batch)``; if it also accepts a keyword ``rng`` it gets an
:class:`Rng` for the current step; if it accepts ``model_state`` it gets the
current model state and must return the new one last::

    loss_fn(params, *batch)                               -> loss
    loss_fn(params, *batch)                   (has_aux)   -> (loss, aux)
    loss_fn(params, *batch, model_state=ms)               -> (loss, new_ms)
    loss_fn(params, *batch, model_state=ms)   (has_aux)   -> (loss, aux, new_ms)

``rng`` can be added to any of these. ``aux`` is any pytree of arrays, for
example ``{"accuracy": ...}``.

>>> import numpy as np, graphc as gc
>>> def loss(params, x, y):
...     return np.mean((x @ params["w"] - y) ** 2)
>>> step = gc.train_step(loss, gc.optim.SGD(0.5), backend="interpret")
>>> state = step.init({"w": np.zeros((2, 1), np.float32)})
>>> x, y = np.eye(2, dtype=np.float32), np.ones((2, 1), np.float32)
>>> for _ in range(5):
...     state, value = step(state, x, y)
>>> round(float(value), 4), int(state.step)
(0.0039, 5)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .. import random
from ..api import value_and_grad
from ..ir import DType, InputError, format_message
from ..jit import Compiled, default_backend, jit
from ..nn.layers import dropout
from ..pytree import tree_map
from ..tracing.trace import function_name
from .precision import autocast_call, init_scale, precision_dtype, scaled_update

__all__ = ["Rng", "TrainState", "TrainStep", "train_step"]


class TrainState(NamedTuple):
    """Everything a training run carries from one step to the next.

    ``params`` are trained by gradients; ``opt_state`` is the optimizer's state
    (including the step count); ``model_state`` is state the model updates
    itself, such as BatchNorm running statistics (``None`` when there is none);
    ``key`` is the run's RNG key (an int64 scalar; per-step randomness is drawn
    under it and the step count, so it never changes).

    A TrainState is a pytree, so ``gc.checkpoint`` saves and restores it whole.
    """

    params: Any
    opt_state: Any
    model_state: Any
    key: Any

    @property
    def step(self) -> int:
        """The number of updates made so far."""
        return int(self.opt_state["step"])


class Rng:
    """Randomness for one train step, handed to a loss function as ``rng``.

    Each call to :meth:`key` (or a method that draws) gets a fresh stream,
    numbered in call order; all draws are keyed by the run's key and the step
    count, so the same step reproduces the same numbers, eagerly and in every
    backend, and the next step draws new ones.

    >>> rng = Rng(random.key(0), 5)
    >>> a = rng.dropout(np.ones(8, np.float32), 0.5)
    >>> b = Rng(random.key(0), 5).dropout(np.ones(8, np.float32), 0.5)
    >>> bool(np.array_equal(a, b))
    True
    """

    def __init__(self, key: Any, step: Any) -> None:
        self.base = key
        self.step = step
        self._streams = 0

    def key(self) -> Any:
        """A new key, distinct for every call on this object."""
        self._streams += 1
        return random.fold_in(self.base, self._streams)

    def dropout(self, x: Any, rate: float, *, train: bool = True) -> Any:
        """:func:`gc.nn.dropout` with a fresh stream of this step."""
        if not train or rate == 0.0:
            return dropout(x, rate, key=None, step=None, train=False)
        return dropout(x, rate, key=self.key(), step=self.step)

    def uniform(self, shape: Any, dtype: Any = np.float32, **kwargs: Any) -> Any:
        """:func:`gc.random.uniform` with a fresh stream of this step."""
        return random.uniform(self.key(), shape, dtype, counter=self.step, **kwargs)

    def normal(self, shape: Any, dtype: Any = np.float32, **kwargs: Any) -> Any:
        """:func:`gc.random.normal` with a fresh stream of this step."""
        return random.normal(self.key(), shape, dtype, counter=self.step, **kwargs)

    def bernoulli(self, p: Any, shape: Any) -> Any:
        """:func:`gc.random.bernoulli` with a fresh stream of this step."""
        return random.bernoulli(self.key(), p, shape, counter=self.step)


def _accepts(f: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(f).parameters
    except (TypeError, ValueError):
        return False
    p = params.get(name)
    return p is not None and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)


def _copy_tree(tree: Any) -> Any:
    """Fresh arrays, so donating them never clobbers the caller's."""
    return tree_map(lambda x: np.array(x, copy=True), tree)


class TrainStep:
    """A compiled train step; see :func:`train_step`.

    ``state = step.init(params)`` makes the initial :class:`TrainState`;
    ``state, loss = step(state, *batch)`` (``state, loss, aux`` with
    ``has_aux``) runs one compiled update; ``step.lower(state, *batch)``
    gives the compiled object (``.graph``, ``.optimized_graph``,
    ``.source``/``.llvm_ir``, ``.report``) without running it.
    """

    def __init__(
        self,
        loss_fn: Callable[..., Any],
        optimizer: Any,
        *,
        backend: str | None,
        has_aux: bool,
        donate: bool,
        jit_options: dict[str, Any],
        mixed_precision: str | None = None,
        loss_scale: float = 2.0**15,
        growth_interval: int = 2000,
    ) -> None:
        self.loss_fn = loss_fn
        self.low = precision_dtype(mixed_precision)
        # float16's exponent range underflows small gradients; bfloat16's is float32's
        self.loss_scaling = self.low is DType.f16
        self.initial_scale = float(loss_scale)
        self.optimizer = optimizer
        self.has_aux = has_aux
        self.donate = donate
        self.uses_rng = _accepts(loss_fn, "rng")
        self.uses_model_state = _accepts(loss_fn, "model_state")
        name = function_name(loss_fn)

        def update(params: Any, opt_state: Any, model_state: Any, key: Any, *batch: Any) -> Any:
            scale = opt_state["loss_scale"] if self.loss_scaling else None

            def objective(*args: Any) -> Any:
                loss, (aux, new_ms) = self._split_outputs(*args)
                scaled = loss if scale is None else loss * scale.astype(loss.dtype)
                return scaled, (loss, aux, new_ms)

            (_, (loss, aux, new_model_state)), grads = value_and_grad(
                objective, argnums=0, has_aux=True
            )(params, model_state, key, opt_state["step"], *batch)
            if scale is None:
                new_params, new_opt_state = optimizer.update(grads, opt_state, params)
            else:
                new_params, new_opt_state = scaled_update(
                    optimizer, grads, opt_state, params, growth_interval
                )
            return new_params, new_opt_state, new_model_state, loss, aux

        update.__name__ = update.__qualname__ = f"{name}_train_step"
        if (backend or default_backend()) == "llvm":
            jit_options = {"flush_denormals": True, **jit_options}
        self.jitted = jit(
            update,
            backend=backend,
            donate_argnums=(0, 1, 2) if donate else (),
            **jit_options,
        )

    def _split_outputs(
        self, params: Any, model_state: Any, key: Any, step: Any, *batch: Any
    ) -> tuple[Any, tuple[Any, Any]]:
        """Call the loss function and bring its results into one shape: (loss, (aux, ms))."""
        kwargs: dict[str, Any] = {}
        if self.uses_rng:
            kwargs["rng"] = Rng(key, step)
        if self.uses_model_state:
            kwargs["model_state"] = model_state
        if self.low is None:
            out = self.loss_fn(params, *batch, **kwargs)
        else:
            out = autocast_call(
                lambda p, *b: self.loss_fn(p, *b, **kwargs), self.low, params, *batch
            )
        expected = 1 + self.has_aux + self.uses_model_state
        if expected == 1:
            return out, (None, model_state)
        if not isinstance(out, (tuple, list)) or len(out) != expected:
            shape = ["loss"] + ["aux"] * self.has_aux + ["new_model_state"] * self.uses_model_state
            raise InputError(
                format_message(
                    f"train_step: {function_name(self.loss_fn)} must return "
                    f"({', '.join(shape)}), got {type(out).__name__}"
                    + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""),
                    hint="has_aux=True adds aux after the loss; a model_state parameter "
                    "means the new model state comes last",
                )
            )
        aux = out[1] if self.has_aux else None
        new_model_state = out[-1] if self.uses_model_state else model_state
        return out[0], (aux, new_model_state)

    def init(self, params: Any, *, model_state: Any = None, seed: int = 0) -> TrainState:
        """The initial state: copies of ``params`` and ``model_state``, fresh optimizer
        state, and the RNG key for ``seed``."""
        if self.uses_model_state and model_state is None:
            raise InputError(
                f"train_step: {function_name(self.loss_fn)} takes model_state; "
                "pass the initial one to init(params, model_state=...)"
            )
        params = _copy_tree(params)
        opt_state = self.optimizer.init(params)
        if self.loss_scaling:
            opt_state = init_scale(opt_state, self.initial_scale)
        return TrainState(
            params=params,
            opt_state=opt_state,
            model_state=_copy_tree(model_state),
            key=random.key(seed),
        )

    def _args(self, state: Any, batch: tuple[Any, ...]) -> tuple[Any, ...]:
        if not isinstance(state, TrainState):
            raise InputError(
                f"train_step: expected the TrainState made by init() (or returned by the "
                f"previous step), got {type(state).__name__}"
            )
        return (state.params, state.opt_state, state.model_state, state.key, *batch)

    def __call__(self, state: TrainState, *batch: Any) -> Any:
        params, opt_state, model_state, loss, aux = self.jitted(*self._args(state, batch))
        new_state = TrainState(params, opt_state, model_state, state.key)
        return (new_state, loss, aux) if self.has_aux else (new_state, loss)

    def lower(self, state: TrainState, *batch: Any) -> Compiled:
        """The compiled step for these argument shapes, compiling it if needed."""
        return self.jitted.lower(*self._args(state, batch))

    def memory(self, state: TrainState, *batch: Any) -> dict[str, int]:
        """Bytes of one step, by kind: ``parameters`` and ``optimizer_state`` (the
        state, updated in place when donated), ``activations`` (forward values
        kept for the backward) and ``workspace`` (the planned arena every step
        reuses, activations included; 0 on the interpreter).

        >>> import numpy as np, graphc as gc
        >>> step = gc.train_step(lambda p, x: ((x @ p["w"]) ** 2).mean(), gc.optim.SGD(0.1),
        ...                      backend="numpy")
        >>> state = step.init({"w": np.ones((4, 2), np.float32)})
        >>> step.memory(state, np.ones((8, 4), np.float32))["parameters"]
        32
        """
        from ..pytree import tree_flatten

        def size(tree: Any) -> int:
            return sum(int(np.asarray(x).nbytes) for x in tree_flatten(tree)[0])

        memory = self.lower(state, *batch).memory
        return {
            "parameters": size(state.params),
            "optimizer_state": size(state.opt_state),
            "activations": memory.saved_bytes if memory is not None else 0,
            "workspace": memory.plan_bytes if memory is not None else 0,
        }

    def trace(self, state: TrainState, *batch: Any) -> Any:
        """The train step's traced graph (forward, backward and update), uncompiled."""
        from ..tracing import trace

        return trace(self.jitted.fn, *self._args(state, batch))

    def apply_eagerly(self, state: TrainState, *batch: Any) -> Any:
        """Run the same step without compiling it: the reference for tests and debugging."""
        params, opt_state, model_state, loss, aux = self.jitted.fn(*self._args(state, batch))
        new_state = TrainState(params, opt_state, model_state, state.key)
        return (new_state, loss, aux) if self.has_aux else (new_state, loss)


def train_step(
    loss_fn: Callable[..., Any],
    optimizer: Any,
    *,
    backend: str | None = None,
    has_aux: bool = False,
    donate: bool = True,
    mixed_precision: str | None = None,
    loss_scale: float = 2.0**15,
    growth_interval: int = 2000,
    **jit_options: Any,
) -> TrainStep:
    """Compile forward, backward and the optimizer update of ``loss_fn`` into one step.

    Args:
        loss_fn: ``loss_fn(params, *batch[, rng=...][, model_state=...])``
            returning a float scalar loss (see the module docstring for the
            return shapes with ``has_aux`` and ``model_state``).
        optimizer: a ``gc.optim`` optimizer (``init(params)``,
            ``update(grads, state, params)``).
        backend: ``"llvm"``, ``"numpy"`` or ``"interpret"``; default the fastest.
        has_aux: the loss function returns ``(loss, aux)``; the step then
            returns ``(state, loss, aux)``.
        donate: let the backend update parameters and optimizer state in
            place. The state passed to a step must not be used after the call
            (use the state it returns).
        mixed_precision: ``"bfloat16"`` or ``"float16"`` runs the loss and its
            backward in 16 bits where safe (matmuls, convolutions, elementwise)
            and in float32 where not (reductions, softmax, losses), with
            float32 parameters and optimizer state; ``None`` (default) is
            float32 throughout. bfloat16 needs the ``ml_dtypes`` package.
        loss_scale, growth_interval: float16's dynamic loss scaling: the
            initial scale, and how many finite steps in a row double it (a
            step with a non-finite gradient is skipped and halves it).
        jit_options: passed to ``gc.jit`` (``dump``, ``disable_passes``,
            ``memory_budget``, backend options). On the LLVM backend a train
            step flushes subnormal floats to zero unless
            ``flush_denormals=False`` is passed: as in JAX, optimizer state
            that decays below ~1e-38 (float32) then becomes zero instead of
            slowing every later step (W1: 1.7x slower after 2,000 steps).

    >>> import numpy as np, graphc as gc
    >>> step = gc.train_step(lambda p, x: ((x * p) ** 2).sum(), gc.optim.Adam(0.1),
    ...                      backend="interpret")
    >>> state, loss = step(step.init(np.ones(3)), np.ones(3))
    >>> float(loss), state.params.round(3).tolist()
    (3.0, [0.9, 0.9, 0.9])
    """
    return TrainStep(
        loss_fn,
        optimizer,
        backend=backend,
        has_aux=has_aux,
        donate=donate,
        jit_options=jit_options,
        mixed_precision=mixed_precision,
        loss_scale=loss_scale,
        growth_interval=growth_interval,
    )
