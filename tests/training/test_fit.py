"""gc.fit: history, reproducible order, exact resume, checkpoint failures, early stopping, plot."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc import nn, optim
from graphc.checkpoint import CheckpointError, CheckpointNotFoundError
from graphc.pytree import tree_leaves
from graphc.training import CHECKPOINT_NAME, epoch_order

from .compiled import BACKENDS

LAYERS = (nn.Linear(5, 12), nn.BatchNorm(12), nn.Linear(12, 3))


def _loss(p: Any, x: Any, y: Any, rng: Any, model_state: Any) -> Any:
    h, bn = LAYERS[1](p["bn"], model_state, LAYERS[0](p["l0"], x), train=True)
    h = rng.dropout(nn.relu(h), 0.2)
    logits = LAYERS[2](p["l2"], h)
    return nn.cross_entropy(logits, y), {"accuracy": nn.accuracy(logits, y)}, bn


def _predict(state: gc.TrainState, x: Any) -> Any:
    p = state.params
    h, _ = LAYERS[1](p["bn"], state.model_state, LAYERS[0](p["l0"], x), train=False)
    return LAYERS[2](p["l2"], nn.relu(h))


def _evaluate(state: gc.TrainState, x: Any, y: Any) -> dict[str, Any]:
    logits = _predict(state, x)
    return {"loss": nn.cross_entropy(logits, y), "accuracy": nn.accuracy(logits, y)}


def _data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return x, y


def _new_run(backend: str = BACKENDS[0]) -> tuple[gc.TrainStep, gc.TrainState]:
    step = gc.train_step(
        _loss, optim.Adam(optim.warmup_cosine(0.05, 3, 30)), backend=backend, has_aux=True
    )
    params = {"l0": LAYERS[0].init(0), "bn": LAYERS[1].init(), "l2": LAYERS[2].init(1)}
    return step, step.init(params, model_state=LAYERS[1].init_state(), seed=11)


def _fit(state: gc.TrainState, step: gc.TrainStep, **kwargs: Any) -> Any:
    x, y = _data()
    options: dict[str, Any] = {"batch_size": 16, "progress": False, "seed": 5}
    options.update(kwargs)
    return gc.fit(step, state, (x, y), **options)


def _assert_bitwise_equal(a: Any, b: Any) -> None:
    la, lb = tree_leaves(a), tree_leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        assert np.asarray(u).dtype == np.asarray(v).dtype
        assert np.array_equal(u, v), (u, v)


# -- history and data order ------------------------------------------------------------------


def test_history_records_losses_aux_and_eval_metrics() -> None:
    step, state = _new_run()
    seen = []
    x_val, y_val = _data(40, seed=1)
    state, history = _fit(
        state,
        step,
        epochs=6,
        eval_fn=_evaluate,
        eval_data=(x_val, y_val),
        on_epoch=seen.append,
    )
    assert len(history.records) == 6 and history["epoch"] == [1, 2, 3, 4, 5, 6]
    assert seen == history.records
    assert state.step == 6 * (60 // 16)
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "time", "samples_per_second"):
        assert all(np.isfinite(history[name])), name
    assert history.loss[-1] < history.loss[0]
    assert min(history["time"]) > 0 and history.wall_time == pytest.approx(sum(history["time"]))
    final = _evaluate(state, x_val, y_val)
    assert history["val_loss"][-1] == pytest.approx(float(final["loss"]))
    assert not history.stopped_early


def test_every_epoch_sees_each_sample_once_in_a_seeded_order() -> None:
    orders = [epoch_order(50, seed=3, epoch=e) for e in range(3)]
    for order in orders:
        assert sorted(order) == list(range(50))
    assert not np.array_equal(orders[0], orders[1])
    assert np.array_equal(orders[2], epoch_order(50, seed=3, epoch=2))
    assert not np.array_equal(orders[0], epoch_order(50, seed=4, epoch=0))
    assert np.array_equal(epoch_order(5, 3, 0, shuffle=False), np.arange(5))


def test_the_same_seed_trains_to_the_same_bits_and_another_does_not() -> None:
    a, _ = _fit(_new_run()[1], _new_run()[0], epochs=2)
    b, _ = _fit(_new_run()[1], _new_run()[0], epochs=2)
    c, _ = _fit(_new_run()[1], _new_run()[0], epochs=2, seed=6)
    _assert_bitwise_equal(a, b)
    assert not np.array_equal(a.params["l0"]["w"], c.params["l0"]["w"])


# -- checkpoints and resume ------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_is_bitwise_exact(tmp_path, backend) -> None:
    straight, straight_history = _fit(_new_run(backend)[1], _new_run(backend)[0], epochs=5)

    step, state = _new_run(backend)
    _, first = _fit(state, step, epochs=2, checkpoint_dir=tmp_path)
    assert len(first.records) == 2 and (tmp_path / CHECKPOINT_NAME).exists()
    # A fresh step object and a throwaway initial state, as in a new process.
    step, template = _new_run(backend)
    resumed, history = _fit(template, step, epochs=5, checkpoint_dir=tmp_path)

    _assert_bitwise_equal(resumed, straight)
    assert resumed.step == straight.step
    assert (
        history.loss == straight_history.loss
        and history["accuracy"] == (straight_history["accuracy"])
    )
    saved = gc.checkpoint.read_metadata(tmp_path / CHECKPOINT_NAME)
    assert saved["epoch"] == 5 and saved["step"] == straight.step


def test_checkpoint_every_and_resume_from_an_explicit_file(tmp_path) -> None:
    step, state = _new_run()
    _fit(state, step, epochs=3, checkpoint_dir=tmp_path, checkpoint_every=2)
    assert gc.checkpoint.read_metadata(tmp_path / CHECKPOINT_NAME)["epoch"] == 3  # the last
    copy = tmp_path / "copy.npz"
    copy.write_bytes((tmp_path / CHECKPOINT_NAME).read_bytes())
    step, template = _new_run()
    resumed, history = _fit(template, step, epochs=3, resume=copy)
    assert len(history.records) == 3 and resumed.step == 3 * (60 // 16)


def test_resume_false_starts_over(tmp_path) -> None:
    step, state = _new_run()
    _fit(state, step, epochs=2, checkpoint_dir=tmp_path)
    step, state = _new_run()
    _, history = _fit(state, step, epochs=1, checkpoint_dir=tmp_path, resume=False)
    assert len(history.records) == 1
    assert gc.checkpoint.read_metadata(tmp_path / CHECKPOINT_NAME)["epoch"] == 1


def _snapshot(directory) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: b"not a zip archive" + data[17:],
        lambda data: b"",
    ],
    ids=["truncated", "bad_magic", "empty"],
)
def test_a_corrupt_checkpoint_raises_and_nothing_is_overwritten(tmp_path, damage) -> None:
    step, state = _new_run()
    _fit(state, step, epochs=1, checkpoint_dir=tmp_path)
    path = tmp_path / CHECKPOINT_NAME
    path.write_bytes(damage(path.read_bytes()))
    before = _snapshot(tmp_path)
    step, state = _new_run()
    with pytest.raises(CheckpointError, match="not a readable graphc checkpoint"):
        _fit(state, step, epochs=3, checkpoint_dir=tmp_path)
    assert _snapshot(tmp_path) == before


def test_a_missing_checkpoint_file_raises(tmp_path) -> None:
    step, state = _new_run()
    with pytest.raises(CheckpointNotFoundError, match="no file at"):
        _fit(state, step, epochs=1, resume=tmp_path / "nowhere.npz", checkpoint_dir=tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_checkpoint_from_another_run_is_refused(tmp_path) -> None:
    step, state = _new_run()
    _fit(state, step, epochs=1, checkpoint_dir=tmp_path)
    before = _snapshot(tmp_path)
    step, state = _new_run()
    with pytest.raises(CheckpointError, match="seed=5, this run has seed=6"):
        _fit(state, step, epochs=2, checkpoint_dir=tmp_path, seed=6)
    other = gc.train_step(lambda p, x, y: np.mean(p * x.sum()), optim.SGD(0.1))
    with pytest.raises(CheckpointError, match="does not match the expected structure"):
        _fit(other.init(np.zeros(5, np.float32)), other, epochs=2, checkpoint_dir=tmp_path)
    gc.checkpoint.save(tmp_path / "plain.npz", {"w": np.zeros(2)})
    with pytest.raises(CheckpointError, match="not one written by gc.fit"):
        _fit(state, step, epochs=2, resume=tmp_path / "plain.npz")
    assert {k: v for k, v in _snapshot(tmp_path).items() if k != "plain.npz"} == before


# -- early stopping ----------------------------------------------------------------------------


def _scripted(values: list[float]) -> Any:
    calls = iter(values)
    return lambda state, x: {"score": next(calls)}


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path) -> None:
    step, state = _new_run()
    rule = gc.EarlyStopping(monitor="val_score", patience=2, mode="max", restore_best=True)
    scores = [0.1, 0.5, 0.4, 0.5, 0.3, 0.9, 0.9]
    x, _ = _data()
    state, history = _fit(
        state,
        step,
        epochs=7,
        eval_fn=_scripted(scores),
        eval_data=x,
        early_stopping=rule,
        checkpoint_dir=tmp_path,
    )
    assert history.stopped_early and len(history.records) == 4 and history.best_epoch == 2
    # restore_best returns the state after epoch 2, bit for bit.
    best, _ = _fit(_new_run()[1], _new_run()[0], epochs=2)
    _assert_bitwise_equal(state, best)
    # A stopped run resumes as stopped: nothing more is trained.
    step, template = _new_run()
    again, resumed = _fit(template, step, epochs=7, checkpoint_dir=tmp_path, early_stopping=rule)
    assert len(resumed.records) == 4 and resumed.stopped_early
    _assert_bitwise_equal(again.params, state.params)


def test_early_stopping_with_an_int_patience_watches_the_training_loss() -> None:
    step = gc.train_step(lambda p, x: np.mean(p * x), optim.SGD(0.0))
    _, history = gc.fit(
        step,
        step.init(np.ones(2, np.float32)),
        np.ones((4, 2), np.float32),
        epochs=10,
        batch_size=2,
        early_stopping=0,
        progress=False,
    )
    assert history.stopped_early and len(history.records) == 2


def test_early_stopping_names_a_missing_metric() -> None:
    step, state = _new_run()
    with pytest.raises(gc.FitError, match="monitors 'val_loss'.*'accuracy'"):
        _fit(state, step, epochs=2, early_stopping=gc.EarlyStopping())


# -- progress, plot, errors -------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(monkeypatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    step, state = _new_run()
    _fit(state, step, epochs=2, progress=True)
    shown = terminal.getvalue()
    assert "epoch 2/2" in shown and "loss=" in shown and "samples_s=" in shown

    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    step, state = _new_run()
    _fit(state, step, epochs=1, progress=True)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    step, state = _new_run()
    _fit(state, step, epochs=1, progress=False)
    assert piped.getvalue() == "" and terminal.getvalue() == ""


def test_loss_curve_png(tmp_path) -> None:
    step, state = _new_run()
    x_val, y_val = _data(30, seed=2)
    path = tmp_path / "loss.png"
    _fit(state, step, epochs=3, eval_fn=_evaluate, eval_data=(x_val, y_val), plot=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


def test_matplotlib_is_imported_only_to_plot() -> None:
    code = "import sys, graphc; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "data, kwargs, message",
    [
        ((np.zeros((8, 5)), np.zeros(7)), {}, "different lengths"),
        ((np.zeros((8, 5)), np.zeros(8)), {"batch_size": 9}, "larger than the 8"),
        ((np.zeros((8, 5)), np.zeros(8)), {"eval_data": np.zeros(3)}, "without an eval_fn"),
        (np.float32(1.0), {}, "batch axis"),
    ],
)
def test_bad_loop_arguments(data, kwargs, message) -> None:
    step, state = _new_run()
    options = {"epochs": 1, "batch_size": 4, "progress": False, **kwargs}
    with pytest.raises(gc.FitError, match=message):
        gc.fit(step, state, data, **options)
