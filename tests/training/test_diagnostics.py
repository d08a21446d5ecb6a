"""train_step(diagnostics=True): norms, ratios and observed statistics computed
inside the step equal the same quantities computed by hand with NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.training.diagnostics import flatten, gradient_alerts

LR = 0.1
RNG = np.random.default_rng(3)
PARAMS = {"w1": RNG.normal(size=(3, 5)), "b1": np.full(5, 0.1), "w2": RNG.normal(size=(5, 2))}
X, Y = RNG.normal(size=(8, 3)), RNG.normal(size=(8, 2))


def loss(p, x, y):
    h = gc.observe(np.maximum(x @ p["w1"] + p["b1"], 0.0), "hidden")
    return np.mean((h @ p["w2"] - y) ** 2)


def by_hand(p, x, y):
    pre = x @ p["w1"] + p["b1"]
    h = np.maximum(pre, 0.0)
    out = h @ p["w2"]
    d_out = 2.0 * (out - y) / out.size
    d_h = (d_out @ p["w2"].T) * (pre > 0)
    grads = {"w1": x.T @ d_h, "b1": d_h.sum(axis=0), "w2": h.T @ d_out}
    norm = np.linalg.norm
    return {
        "grad_norm": {k: norm(g) for k, g in grads.items()},
        "param_norm": {k: norm(p[k]) for k in grads},
        "update_ratio": {k: norm(LR * g) / (norm(p[k]) + 1e-12) for k, g in grads.items()},
        "observed": {
            "hidden": {"mean": h.mean(), "std": h.std(), "zero_fraction": np.mean(h == 0)}
        },
    }


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_diagnostics_match_numpy_by_hand(backend):
    step = gc.train_step(loss, gc.optim.SGD(LR), backend=backend, diagnostics=True)
    state, value, diag = step(step.init(PARAMS), X, Y)
    expected = flatten(by_hand(PARAMS, X, Y))
    got = flatten(diag)
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        assert got[key] == pytest.approx(want, rel=1e-9), key


def test_observe_is_free_without_diagnostics():
    def plain(p, x, y):
        h = np.maximum(x @ p["w1"] + p["b1"], 0.0)
        return np.mean((h @ p["w2"] - y) ** 2)

    assert gc.trace(loss, PARAMS, X, Y) == gc.trace(plain, PARAMS, X, Y)
    step = gc.train_step(loss, gc.optim.SGD(LR), backend="numpy")
    assert len(step(step.init(PARAMS), X, Y)) == 2  # (state, loss): nothing added


def test_repeated_names_are_numbered():
    def looped(p, x, y):
        h = x
        for _ in range(2):
            h = gc.observe(np.tanh(h), "layer")
        return np.mean(h @ p["w1"])

    step = gc.train_step(looped, gc.optim.SGD(LR), backend="numpy", diagnostics=True)
    *_, diag = step(step.init(PARAMS), X, Y)
    assert sorted(diag["observed"]) == ["layer", "layer#2"]
    assert diag["observed"]["layer#2"]["mean"] == pytest.approx(np.tanh(np.tanh(X)).mean())


def test_fit_records_epoch_means_and_plots(tmp_path):
    step = gc.train_step(loss, gc.optim.SGD(LR), backend="numpy", diagnostics=True)
    expected = flatten(step.apply_eagerly(step.init(PARAMS), X, Y)[2])
    path = tmp_path / "run.png"
    _, history = gc.fit(
        step,
        step.init(PARAMS),
        (X, Y),
        epochs=2,
        batch_size=len(X),
        shuffle=False,
        progress=False,
        plot=path,
        grad_thresholds=(1e-6, 1.0),
    )
    first = history.records[0]
    for key, want in expected.items():
        assert first[key] == pytest.approx(want, rel=1e-9), key
    assert path.stat().st_size > 0
    flagged = gradient_alerts(history, vanishing=1e-6, exploding=1.0)
    big = {k for k, v in by_hand(PARAMS, X, Y)["grad_norm"].items() if v > 1.0}
    assert big and big <= set(flagged) and set(flagged.values()) == {"exploding"}
    assert gradient_alerts(history, vanishing=1e-30, exploding=1e30) == {}


def test_observing_inside_a_loop_body_is_a_clear_error():
    def loss(p, xs):
        def cell(h, x_t):
            h = gc.observe(np.tanh(x_t @ p + h), "inside")
            return h, h

        h, _ = gc.scan(cell, np.zeros((2, 3)), xs)
        return np.mean(h**2)

    step = gc.train_step(loss, gc.optim.SGD(0.1), backend="numpy", diagnostics=True)
    with pytest.raises(gc.UnsupportedError, match="observe.*inside a scan"):
        step(step.init(np.eye(3)), np.ones((4, 2, 3)))
