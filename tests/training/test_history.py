"""gc.fit's History is a mapping of metric names, and a run resumed from a
checkpoint says so, on the progress line and in the history."""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping

import numpy as np
import pytest

import graphc as gc


def _run(**kwargs):  # noqa: ANN003, ANN202
    step = gc.train_step(lambda p, x: np.mean((x - p) ** 2), gc.optim.SGD(0.5), backend="numpy")
    state = step.init(np.zeros(2))
    data = np.linspace(0.0, 1.0, 16).reshape(8, 2)
    evaluate = lambda s, x: {"loss": np.mean((x - s.params) ** 2)}  # noqa: E731
    options = {"epochs": 2, "batch_size": 4, "progress": False, "eval_fn": evaluate}
    options.update(kwargs)
    return gc.fit(step, state, data, eval_data=data, **options)


def test_history_is_a_mapping_of_metric_names() -> None:
    _, history = _run(epochs=3)
    assert isinstance(history, Mapping)
    names = ["epoch", "loss", "val_loss", "time", "samples_per_second"]
    assert list(history) == names and list(history.keys()) == names
    assert len(history) == len(names) and len(history.records) == 3
    assert "val_loss" in history and "val_accuracy" not in history and 0 not in history
    assert history.get("val_accuracy") is None
    with pytest.raises(KeyError, match="val_accuracy"):
        history["val_accuracy"]
    as_dict = dict(history)
    assert as_dict["epoch"] == [1, 2, 3] and as_dict["loss"] == history.loss
    assert [r["val_loss"] for r in history.records] == history["val_loss"]
    assert dict(history.items()) == as_dict and list(history.values()) == list(as_dict.values())
    assert history.note == "" and history.resumed_from is None


def test_a_metric_missing_from_some_epochs_reads_as_nan() -> None:
    history = gc.History([{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5, "extra": 3.0}])
    assert len(history) == 3 and "extra" in history  # len first: the old `in` never returned
    first, second = history["extra"]
    assert np.isnan(first) and second == 3.0


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rerunning_a_finished_run_says_nothing_is_left_to_train(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    state, first = _run(checkpoint_dir=tmp_path)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    again, history = _run(checkpoint_dir=tmp_path, progress=True)
    shown = terminal.getvalue()
    assert "resumed from epoch 2 of 2" in shown and "nothing left to train" in shown
    assert "samples_s=" not in shown  # no throughput: nothing ran
    assert history.note == "resumed from epoch 2 of 2; nothing left to train"
    assert history.resumed_from == 2 and history.records == first.records
    np.testing.assert_array_equal(again.params, state.params)


def test_a_resumed_run_says_where_it_started(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    _run(checkpoint_dir=tmp_path)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _, history = _run(checkpoint_dir=tmp_path, progress=True, epochs=3)
    shown = terminal.getvalue()
    assert "epoch 3/3 (resumed from 2)" in shown and "nothing left" not in shown
    assert history.note == "resumed from epoch 2 of 3" and len(history.records) == 3
