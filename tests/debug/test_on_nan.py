"""gc.fit(on_nan=...): a diverging run never trains on silently."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


def loss(p, x):
    return np.mean(np.log(x @ p))  # NaN when a row of x @ p is negative


DATA = np.ones((8, 2))
DATA[5] = -1.0  # the third batch of two (no shuffling)
LR = 0.1


def run(on_nan, epochs=2):
    step = gc.train_step(loss, gc.optim.SGD(LR), backend="numpy")
    return gc.fit(
        step,
        step.init(np.ones(2)),
        DATA,
        epochs=epochs,
        batch_size=2,
        progress=False,
        shuffle=False,
        on_nan=on_nan,
    )


def by_hand(batches):
    """SGD on loss by hand, one update per batch."""
    p = np.ones(2)
    for x in batches:
        z = x @ p
        p = p - LR * (x / z[:, None]).mean(axis=0)
    return p


def test_raise_names_epoch_and_step():
    with pytest.raises(gc.NaNError, match=r"epoch 1, step 3 of 4 \(step 3 of the run\)"):
        run("raise")


def test_skip_step_undoes_the_bad_step():
    state, history = run("skip_step")
    good = [DATA[i : i + 2] for i in (0, 2, 6)]
    np.testing.assert_allclose(state.params, by_hand(good * 2), rtol=1e-12)
    assert history["skipped_steps"] == [1, 1]
    assert all(np.isfinite(history.loss))


def test_stop_returns_the_last_whole_epoch():
    state, history = run("stop")
    assert history.stopped_on_nan and len(history.records) == 0
    np.testing.assert_array_equal(state.params, np.ones(2))
    assert gc.History.from_json(history.to_json()).stopped_on_nan


def test_unknown_mode_is_an_error():
    with pytest.raises(gc.FitError, match="on_nan must be one of"):
        run("ignore")
