"""The training loop: mini-batches, progress, validation, early stopping, checkpoints.

``gc.fit(step, state, train_data, epochs=..., batch_size=...)`` runs a
:class:`~graphc.train.TrainStep` over shuffled mini-batches and returns
``(state, history)``.

Reproducibility and exact resume rest on one rule: nothing random is hidden in
a generator that runs along with the loop. The data order of epoch ``e`` is a
pure function of ``(seed, e)``, and dropout draws are keyed by the step count
inside the compiled step. A checkpoint therefore needs only the
:class:`~graphc.train.TrainState` (parameters, optimizer state with its step
count, model state, RNG key) plus the epoch counter, the seed and the history
so far; training N epochs straight, or k epochs, stopping, and resuming to N,
gives bitwise-equal parameters.

Checkpoints are ``<checkpoint_dir>/checkpoint.npz`` written by
:mod:`graphc.checkpoint` (``.npz``, read with ``allow_pickle=False``, replaced
atomically).

>>> import numpy as np, graphc as gc
>>> def loss(p, x, y):
...     return np.mean((x @ p - y) ** 2)
>>> step = gc.train_step(loss, gc.optim.SGD(0.1), backend="interpret")
>>> x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
>>> y = x @ np.array([1.0, -2.0, 0.5], np.float32)
>>> state, history = gc.fit(step, step.init(np.zeros(3, np.float32)), (x, y),
...                         epochs=20, batch_size=16, progress=False)
>>> bool(history.loss[-1] < 1e-3 * history.loss[0]), state.step
(True, 80)
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import checkpoint
from ..checkpoint import CheckpointError
from ..ir import GraphcError
from ..pytree import tree_map
from .plot import plot_history
from .step import TrainState, TrainStep

__all__ = [
    "CHECKPOINT_NAME",
    "EarlyStopping",
    "FitError",
    "History",
    "epoch_order",
    "fit",
]

CHECKPOINT_NAME = "checkpoint.npz"
_FORMAT = "graphc-fit-1"


class FitError(GraphcError, ValueError):
    """The training loop was given data or settings that do not fit together."""


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs
    in a row (``patience=0`` stops at the first epoch without improvement).

    ``monitor`` names a history metric (``"val_loss"``, ``"loss"``,
    ``"val_accuracy"``...); ``mode`` is ``"min"`` or ``"max"``. With
    ``restore_best`` the returned state is the one from the best epoch.

    >>> EarlyStopping(patience=3).monitor
    'val_loss'
    """

    monitor: str = "val_loss"
    patience: int = 5
    mode: str = "min"
    min_delta: float = 0.0
    restore_best: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise FitError(f"EarlyStopping: mode must be 'min' or 'max', not {self.mode!r}")
        if self.patience < 0 or self.min_delta < 0:
            raise FitError("EarlyStopping: patience and min_delta must be >= 0")

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return not math.isnan(value)
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta


@dataclass(eq=False)
class History(Mapping[str, list[Any]]):
    """Per-epoch records of a run: ``records[i]`` holds epoch ``i + 1``'s metrics.

    Each record has ``epoch``, ``loss`` (mean training loss), the mean of
    every scalar the loss function reports in ``aux``, each evaluation metric
    (prefixed ``val_``), ``time`` (wall seconds for the epoch, including
    evaluation) and ``samples_per_second``.

    A history is a read-only mapping from metric name to its values over the
    epochs: ``history["val_loss"]``, ``"val_loss" in history``, ``list(history)``
    (the metric names), ``len(history)`` (how many metrics), ``dict(history)``.
    ``history.loss`` is ``history["loss"]``; ``len(history.records)`` counts
    epochs. A run resumed from a checkpoint keeps the earlier epochs' records
    and says so in ``resumed_from`` and :attr:`note`.

    >>> h = History([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}])
    >>> "loss" in h, "val_loss" in h, h["loss"], list(h), len(h)
    (True, False, [0.5, 0.25], ['epoch', 'loss'], 2)
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None
    # Set by fit: the epoch a checkpoint let this run start after (None: from
    # scratch), and how many epochs the run was asked for.
    resumed_from: int | None = None
    total_epochs: int | None = None

    def __getitem__(self, name: str) -> list[Any]:
        if name not in self.metrics:
            raise KeyError(name)
        return [r.get(name, math.nan) for r in self.records]

    def __iter__(self) -> Iterator[str]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    def __contains__(self, name: object) -> bool:
        return any(name in r for r in self.records)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return (self.records, self.stopped_early, self.best_epoch) == (
            other.records,
            other.stopped_early,
            other.best_epoch,
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def note(self) -> str:
        """How this run relates to a checkpoint it resumed from ('' when it did not).

        >>> History([{"epoch": 1}], resumed_from=1, total_epochs=1).note
        'resumed from epoch 1 of 1; nothing left to train'
        """
        if self.resumed_from is None:
            return ""
        text = f"resumed from epoch {self.resumed_from} of {self.total_epochs}"
        if len(self.records) <= self.resumed_from:
            text += "; nothing left to train"
            if self.stopped_early:
                text += " (that run stopped early)"
        return text

    @property
    def loss(self) -> list[float]:
        return self["loss"]

    @property
    def metrics(self) -> list[str]:
        """Every metric name that appears in some record."""
        names: dict[str, None] = {}
        for r in self.records:
            names.update(dict.fromkeys(r))
        return list(names)

    @property
    def wall_time(self) -> float:
        """Total seconds over all epochs."""
        return float(sum(self["time"]))

    def to_json(self) -> dict[str, Any]:
        # JSON has no NaN or infinity, and a diverged run must still checkpoint.
        def encode(x: Any) -> Any:
            return repr(x) if isinstance(x, float) and not math.isfinite(x) else x

        return {
            "records": [{k: encode(v) for k, v in r.items()} for r in self.records],
            "stopped_early": self.stopped_early,
            "best_epoch": self.best_epoch,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> History:
        def decode(x: Any) -> Any:
            return float(x) if x in ("nan", "inf", "-inf") else x

        records = [{k: decode(v) for k, v in r.items()} for r in data["records"]]
        return cls(records, bool(data["stopped_early"]), data["best_epoch"])


# -- batches -------------------------------------------------------------------------


def _as_arrays(data: Any, what: str) -> tuple[np.ndarray, ...]:
    arrays = tuple(data) if isinstance(data, (tuple, list)) else (data,)
    arrays = tuple(np.asarray(a) for a in arrays)
    if not arrays or any(a.ndim == 0 for a in arrays):
        raise FitError(f"fit: {what} must be an array or a tuple of arrays with a batch axis")
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise FitError(
            f"fit: the arrays of {what} have different lengths {[len(a) for a in arrays]}"
        )
    return arrays


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The sample order of ``epoch`` (0-based): a function of ``(seed, epoch)`` only.

    >>> bool(np.array_equal(epoch_order(10, 0, 3), epoch_order(10, 0, 3)))
    True
    """
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


# -- checkpoints ---------------------------------------------------------------------


def _copy_state(state: TrainState) -> TrainState:
    return TrainState(*tree_map(lambda x: np.array(x, copy=True), tuple(state)))


def _save(
    path: str,
    state: TrainState,
    best: TrainState | None,
    epoch: int,
    seed: int,
    batch_size: int,
    history: History,
    tracker: dict[str, Any],
) -> None:
    metadata = {
        "format": _FORMAT,
        "epoch": epoch,
        "step": state.step,
        "seed": seed,
        "batch_size": batch_size,
        "history": history.to_json(),
        "early_stopping": tracker,
    }
    checkpoint.save(path, {"state": state, "best": best}, metadata=metadata)


def _resume_path(checkpoint_dir: str | None, resume: bool | str | os.PathLike[str]) -> str | None:
    if isinstance(resume, (str, os.PathLike)):
        return os.fspath(resume)
    if not resume or checkpoint_dir is None:
        return None
    path = os.path.join(checkpoint_dir, CHECKPOINT_NAME)
    return path if os.path.exists(path) else None


def _restore(
    path: str, like: TrainState, seed: int, batch_size: int
) -> tuple[TrainState, TrainState | None, dict[str, Any]]:
    meta = checkpoint.read_metadata(path)
    if meta.get("format") != _FORMAT:
        raise CheckpointError(f"fit: {path} is a checkpoint, but not one written by gc.fit")
    for name, value in (("seed", seed), ("batch_size", batch_size)):
        if meta.get(name) != value:
            raise CheckpointError(
                f"fit: {path} was written by a run with {name}={meta.get(name)}, this run has "
                f"{name}={value}; resuming would not reproduce the original run (pass the same "
                "settings, or resume=False to start over)"
            )
    has_best = meta["early_stopping"].get("has_best", False)
    tree = checkpoint.restore(path, like={"state": like, "best": like if has_best else None})
    best = None if tree["best"] is None else TrainState(*tree["best"])
    return TrainState(*tree["state"]), best, meta


# -- progress ------------------------------------------------------------------------


def _progress_bar(enabled: bool, total: int, initial: int) -> Any:
    from tqdm import tqdm

    stream = sys.stderr
    visible = enabled and hasattr(stream, "isatty") and stream.isatty()
    return tqdm(
        total=total,
        initial=initial,
        disable=not visible,
        unit="step",
        dynamic_ncols=True,
        leave=True,
        file=stream,
    )


def _aux_scalars(aux: Any) -> dict[str, float]:
    """The scalar entries of a dict ``aux`` (other aux values are not averaged)."""
    if not isinstance(aux, dict):
        return {}
    out = {}
    for k, v in aux.items():
        a = np.asarray(v) if not isinstance(v, (dict, list, tuple)) else None
        if a is not None and a.shape == () and a.dtype.kind in "biuf":
            out[str(k)] = float(a)
    return out


def _evaluate(
    eval_fn: Callable[..., Any], state: TrainState, data: tuple[Any, ...]
) -> dict[str, float]:
    result = eval_fn(state, *data)
    if not isinstance(result, dict):
        result = {"loss": result}
    metrics = {}
    for k, v in result.items():
        name = k if str(k).startswith("val_") else f"val_{k}"
        metrics[name] = float(np.asarray(v))
    return metrics


# -- the loop ------------------------------------------------------------------------


def fit(
    step: TrainStep,
    state: TrainState,
    train_data: Any,
    *,
    epochs: int,
    batch_size: int,
    eval_fn: Callable[..., Any] | None = None,
    eval_data: Any = None,
    early_stopping: EarlyStopping | int | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1,
    resume: bool | str | os.PathLike[str] = True,
    seed: int = 0,
    shuffle: bool = True,
    progress: bool = True,
    plot: str | os.PathLike[str] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[TrainState, History]:
    """Train for ``epochs`` epochs; returns the final ``(state, history)``.

    Args:
        step: a :func:`gc.train_step`.
        state: the initial state (``step.init(params)``); it is consumed, since
            the step may update its arrays in place.
        train_data: an array or a tuple of arrays with equal first dimension;
            each batch is ``step(state, *batch)``. Every batch has exactly
            ``batch_size`` rows (the last partial batch of an epoch is
            dropped, so the compiled step keeps one shape); shuffling differs
            per epoch, so every sample is seen.
        eval_fn: ``eval_fn(state, *eval_data)`` -> a number (recorded as
            ``val_loss``) or a dict of numbers (recorded with a ``val_``
            prefix), called after every epoch.
        early_stopping: an :class:`EarlyStopping`, or an int patience that
            monitors ``val_loss`` (``loss`` without ``eval_fn``).
        checkpoint_dir: write ``checkpoint.npz`` here every
            ``checkpoint_every`` epochs, on early stopping and at the end.
        resume: ``True`` continues from ``checkpoint_dir``'s checkpoint if
            there is one; a path resumes from that file (which must exist);
            ``False`` starts over (overwriting the checkpoint when one is written).
            A damaged checkpoint raises :class:`gc.checkpoint.CheckpointError`
            before anything is trained or written. A resumed run says so on
            the progress line and in ``history.note`` ("resumed from epoch 4
            of 10"); rerunning a finished run trains nothing and says
            "nothing left to train".
        seed: the data-order seed (epoch ``e`` uses the order of ``(seed, e)``).
        progress: show a tqdm bar with the loss and throughput (only on a terminal).
        plot: write a loss-curve PNG to this path at the end (needs matplotlib).
        on_epoch: called with each epoch's record, for logging.

    >>> import numpy as np, graphc as gc
    >>> step = gc.train_step(lambda p, x: np.mean((x - p) ** 2), gc.optim.SGD(0.5),
    ...                      backend="interpret")
    >>> data = np.full((8, 2), 3.0, np.float32)
    >>> state, hist = gc.fit(step, step.init(np.zeros(2, np.float32)), data, epochs=3,
    ...                      batch_size=4, progress=False)
    >>> state.params.tolist(), len(hist.records), hist.note
    ([2.953125, 2.953125], 3, '')
    """
    if not isinstance(step, TrainStep):
        raise FitError(f"fit: step must be made by gc.train_step, got {type(step).__name__}")
    if not isinstance(state, TrainState):
        raise FitError(f"fit: state must be a TrainState (step.init(params)), not {type(state)}")
    if epochs < 0 or batch_size < 1 or checkpoint_every < 1:
        raise FitError("fit: epochs must be >= 0, batch_size and checkpoint_every >= 1")
    data = _as_arrays(train_data, "train_data")
    n = len(data[0])
    steps_per_epoch = n // batch_size
    if steps_per_epoch == 0:
        raise FitError(f"fit: batch_size {batch_size} is larger than the {n} training samples")
    evaluation = _as_arrays(eval_data, "eval_data") if eval_data is not None else ()
    if eval_fn is None and eval_data is not None:
        raise FitError("fit: eval_data was given without an eval_fn")
    if isinstance(early_stopping, int):
        early_stopping = EarlyStopping(
            monitor="val_loss" if eval_fn else "loss", patience=early_stopping
        )
    ckpt_path = None
    if checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
        ckpt_path = os.path.join(os.fspath(checkpoint_dir), CHECKPOINT_NAME)

    history = History()
    tracker: dict[str, Any] = {"best": None, "wait": 0, "has_best": False}
    best_state: TrainState | None = None
    start_epoch = 0
    source = _resume_path(None if checkpoint_dir is None else os.fspath(checkpoint_dir), resume)
    if source is not None:
        state, best_state, meta = _restore(source, state, seed, batch_size)
        start_epoch = int(meta["epoch"])
        history = History.from_json(meta["history"])
        tracker = dict(meta["early_stopping"])

    if source is not None:
        history.resumed_from, history.total_epochs = start_epoch, epochs
    bar = _progress_bar(
        progress, epochs * steps_per_epoch, min(start_epoch, epochs) * steps_per_epoch
    )
    resumed = f" (resumed from {start_epoch})" if source is not None else ""
    epoch = start_epoch
    try:
        if source is not None and (epoch >= epochs or history.stopped_early):
            # Said on the bar, or a rerun of a finished script looks like a
            # run that trained at the old throughput.
            bar.set_description(history.note, refresh=True)
        while epoch < epochs and not history.stopped_early:
            bar.set_description(f"epoch {epoch + 1}/{epochs}{resumed}")
            started = time.perf_counter()
            order = epoch_order(n, seed, epoch, shuffle)
            total = 0.0
            sums: dict[str, float] = {}
            for i in range(steps_per_epoch):
                idx = order[i * batch_size : (i + 1) * batch_size]
                out = step(state, *(a[idx] for a in data))
                state, loss = out[0], float(out[1])
                total += loss
                if step.has_aux:
                    for k, v in _aux_scalars(out[2]).items():
                        sums[k] = sums.get(k, 0.0) + v
                bar.update(1)
                elapsed = time.perf_counter() - started
                bar.set_postfix(
                    loss=f"{total / (i + 1):.4f}",
                    samples_s=f"{(i + 1) * batch_size / max(elapsed, 1e-9):.0f}",
                    refresh=False,
                )
            train_seconds = time.perf_counter() - started
            record: dict[str, Any] = {"epoch": epoch + 1, "loss": total / steps_per_epoch}
            record.update({k: v / steps_per_epoch for k, v in sums.items()})
            if eval_fn is not None:
                record.update(_evaluate(eval_fn, state, evaluation))
            record["time"] = time.perf_counter() - started
            record["samples_per_second"] = steps_per_epoch * batch_size / max(train_seconds, 1e-9)
            history.records.append(record)
            epoch += 1
            if early_stopping is not None:
                best_state = _track(early_stopping, record, tracker, history, state, best_state)
            if on_epoch is not None:
                on_epoch(record)
            if ckpt_path is not None and (
                epoch % checkpoint_every == 0 or epoch == epochs or history.stopped_early
            ):
                _save(ckpt_path, state, best_state, epoch, seed, batch_size, history, tracker)
    finally:
        bar.close()
    if history.stopped_early and best_state is not None and early_stopping is not None:
        if early_stopping.restore_best:
            state = best_state
    if plot is not None:
        plot_history(history, plot)
    return state, history


def _track(
    rule: EarlyStopping,
    record: dict[str, Any],
    tracker: dict[str, Any],
    history: History,
    state: TrainState,
    best_state: TrainState | None,
) -> TrainState | None:
    if rule.monitor not in record:
        raise FitError(
            f"fit: early stopping monitors {rule.monitor!r}, but the epoch records only "
            f"have {sorted(record)}"
        )
    value = float(record[rule.monitor])
    if rule.improved(value, tracker["best"]):
        tracker.update(best=value, wait=0)
        history.best_epoch = record["epoch"]
        if rule.restore_best:
            # Copied: the next step may overwrite the donated arrays in place.
            best_state = _copy_state(state)
            tracker["has_best"] = True
    else:
        tracker["wait"] += 1
        if tracker["wait"] >= rule.patience:
            history.stopped_early = True
    return best_state
