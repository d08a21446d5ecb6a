"""Layers against loop-level NumPy references, traced against eager, and differentiated."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import graphc as gc
import graphc.nn as nn
import graphc.random as grandom

from .helpers import assert_traces_like_eager, numeric_grad

RNG = np.random.default_rng(42)


def test_linear() -> None:
    layer = nn.Linear(4, 3)
    params = layer.init(0)
    assert params["w"].shape == (4, 3) and params["b"].shape == (3,)
    assert params["w"].dtype == np.float32 and not params["b"].any()
    params["b"] = RNG.normal(size=3).astype(np.float32)
    x = RNG.normal(size=(5, 4)).astype(np.float32)
    want = np.array(
        [[sum(x[n, i] * params["w"][i, o] for i in range(4)) + params["b"][o] for o in range(3)]
         for n in range(5)]
    )  # fmt: skip
    np.testing.assert_allclose(layer(params, x), want, rtol=1e-5)
    assert set(nn.Linear(4, 3, bias=False).init(0)) == {"w"}
    assert_traces_like_eager(layer.apply, params, x)


def _conv_reference(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: tuple[int, int], dil: int,
    groups: int,
) -> np.ndarray:  # fmt: skip
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * pad[0], wd + 2 * pad[1]))
    xp[:, :, pad[0] : pad[0] + h, pad[1] : pad[1] + wd] = x
    ho = (h + 2 * pad[0] - dil * (kh - 1) - 1) // stride + 1
    wo = (wd + 2 * pad[1] - dil * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(ho):
            for j in range(wo):
                total = b[oc]
                for ci in range(cg):
                    for a in range(kh):
                        for bb in range(kw):
                            total = total + (
                                xp[:, g * cg + ci, i * stride + a * dil, j * stride + bb * dil]
                                * w[oc, ci, a, bb]
                            )
                out[:, oc, i, j] = total
    return out


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 0, 1, 1), (2, 1, 1, 1), (1, (2, 1), 2, 1), (1, 1, 1, 2)],
)
def test_conv2d_against_loops(stride: int, padding: Any, dilation: int, groups: int) -> None:
    layer = nn.Conv2d(4, 6, (3, 2), stride=stride, padding=padding, dilation=dilation,
                      groups=groups, dtype=np.float64)  # fmt: skip
    params = layer.init(1)
    assert params["w"].shape == (6, 4 // groups, 3, 2)
    params["b"] = RNG.normal(size=6)
    x = RNG.normal(size=(2, 4, 7, 6))
    pad = (padding, padding) if isinstance(padding, int) else padding
    want = _conv_reference(x, params["w"], params["b"], stride, pad, dilation, groups)
    np.testing.assert_allclose(layer(params, x), want, rtol=1e-12, atol=1e-12)


def test_conv2d_same_padding_keeps_size_and_traces() -> None:
    layer = nn.Conv2d(3, 5, 4, padding="same")
    params = layer.init(0)
    x = RNG.normal(size=(2, 3, 9, 8)).astype(np.float32)
    y = layer(params, x)
    assert y.shape == (2, 5, 9, 8) and y.dtype == np.float32
    # An even kernel puts the extra padding row and column at the end.
    explicit = nn.conv2d(x, params["w"], params["b"], padding=((1, 2), (1, 2)))
    np.testing.assert_array_equal(y, explicit)
    assert_traces_like_eager(layer.apply, params, x)


def test_conv2d_gradient_matches_finite_differences() -> None:
    w = RNG.normal(size=(2, 3, 2, 2))
    x = RNG.normal(size=(1, 3, 4, 4))
    weights = RNG.normal(size=(1, 2, 3, 3))

    def f(w: Any) -> Any:
        return (nn.conv2d(x, w, stride=2, padding=1) * weights).sum()

    np.testing.assert_allclose(gc.grad(f)(w), numeric_grad(f, w), rtol=1e-6, atol=1e-9)


def _pool_reference(x: np.ndarray, k: int, s: int, pad: int, mode: str) -> np.ndarray:
    n, c, h, w = x.shape
    fill = -np.inf if mode == "max" else 0.0
    xp = np.full((n, c, h + 2 * pad, w + 2 * pad), fill)
    xp[:, :, pad : pad + h, pad : pad + w] = x
    ho, wo = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * s : i * s + k, j * s : j * s + k]
            out[:, :, i, j] = window.max(axis=(2, 3)) if mode == "max" else window.mean(axis=(2, 3))
    return out


@pytest.mark.parametrize(("k", "s", "pad"), [(2, 2, 0), (3, 1, 1), (3, 2, 1)])
def test_pooling_against_loops(k: int, s: int, pad: int) -> None:
    x = RNG.normal(size=(2, 3, 7, 6))
    np.testing.assert_allclose(
        nn.MaxPool2d(k, s, pad)({}, x), _pool_reference(x, k, s, pad, "max"), rtol=1e-12
    )
    np.testing.assert_allclose(
        nn.AvgPool2d(k, s, pad)({}, x), _pool_reference(x, k, s, pad, "avg"), rtol=1e-12
    )
    assert nn.MaxPool2d(k).init(0) == {}


def test_pooling_traces_and_flatten() -> None:
    x = RNG.normal(size=(2, 3, 8, 8)).astype(np.float32)
    assert_traces_like_eager(lambda x: nn.flatten(nn.max_pool2d(nn.avg_pool2d(x, 2), 2)), x)
    assert nn.flatten(x).shape == (2, 192)


# -- dropout -----------------------------------------------------------------------


def test_dropout_mask_is_determined_by_key_and_step() -> None:
    x = np.ones((64, 64), np.float32)
    key = grandom.key(11)
    a = nn.dropout(x, 0.25, key=key, step=3)
    np.testing.assert_array_equal(a, nn.dropout(x, 0.25, key=key, step=3))
    assert not np.array_equal(a, nn.dropout(x, 0.25, key=key, step=4))
    assert not np.array_equal(a, nn.dropout(x, 0.25, key=grandom.fold_in(key, 1), step=3))
    assert a.dtype == np.float32
    assert set(np.unique(a).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert abs((a == 0).mean() - 0.25) < 0.02
    # The mask is exactly the documented Bernoulli draw under (key, step).
    keep = grandom.bernoulli(key, 0.75, x.shape, counter=3)
    np.testing.assert_array_equal(a != 0, keep)


def test_dropout_eval_and_rate_zero_are_identity() -> None:
    x = RNG.normal(size=(3, 4))
    assert nn.dropout(x, 0.5, key=grandom.key(0), step=0, train=False) is x
    assert nn.Dropout(0.0)({}, x, key=grandom.key(0), step=0, train=True) is x
    with pytest.raises(gc.GraphcError, match="rate"):
        nn.dropout(x, 1.0, key=grandom.key(0), step=0)


def test_dropout_preserves_the_mean() -> None:
    x = np.full((200_000,), 3.0)
    y = nn.dropout(x, 0.4, key=grandom.key(2), step=0)
    assert abs(y.mean() - 3.0) < 0.03


def test_traced_dropout_matches_eager_for_each_step_without_retracing() -> None:
    x = RNG.normal(size=(8, 16)).astype(np.float32)

    def f(x: Any, key: Any, step: Any) -> Any:
        return nn.dropout(x, 0.5, key=key, step=step)

    g = gc.trace(f, x, grandom.key(7), np.int64(0))
    masks = []
    for step in range(4):
        out = gc.ir.interpret(g, x, grandom.key(7), np.int64(step))[0]
        np.testing.assert_array_equal(out, f(x, grandom.key(7), np.int64(step)))
        masks.append(out != 0)
    assert len({m.tobytes() for m in masks}) == 4
    # Gradient flows only through kept units, scaled by 1 / (1 - rate).
    grads = gc.grad(lambda x: f(x, grandom.key(7), np.int64(1)).sum())(x)
    np.testing.assert_array_equal(grads, masks[1] * np.float32(2.0))


# -- normalization -----------------------------------------------------------------


def test_batch_norm_training_statistics_and_running_update() -> None:
    bn = nn.BatchNorm(3, momentum=0.2, eps=1e-3, dtype=np.float64)
    params = {"scale": np.array([1.0, 2.0, 0.5]), "bias": np.array([0.0, -1.0, 3.0])}
    state = {"mean": np.array([0.1, 0.2, 0.3]), "var": np.array([1.0, 2.0, 3.0])}
    x = RNG.normal(size=(4, 3, 2, 5)) * 3 + 1
    y, new_state = bn(params, state, x, train=True)
    for c in range(3):
        values = x[:, c].ravel()
        mu = sum(values) / len(values)
        var = sum((v - mu) ** 2 for v in values) / len(values)
        want = (x[:, c] - mu) / np.sqrt(var + 1e-3) * params["scale"][c] + params["bias"][c]
        np.testing.assert_allclose(y[:, c], want, rtol=1e-10, atol=1e-12)
        unbiased = var * len(values) / (len(values) - 1)
        assert new_state["mean"][c] == pytest.approx(0.8 * state["mean"][c] + 0.2 * mu)
        assert new_state["var"][c] == pytest.approx(0.8 * state["var"][c] + 0.2 * unbiased)


def test_batch_norm_eval_uses_running_statistics() -> None:
    bn = nn.BatchNorm(2, dtype=np.float64)
    params = bn.init()
    state = {"mean": np.array([1.0, -1.0]), "var": np.array([4.0, 0.25])}
    x = RNG.normal(size=(5, 2))
    y, same = bn(params, state, x, train=False)
    np.testing.assert_allclose(y, (x - state["mean"]) / np.sqrt(state["var"] + 1e-5))
    assert same["mean"] is state["mean"] and same["var"] is state["var"]


def test_batch_norm_traces_and_differentiates() -> None:
    bn = nn.BatchNorm(3)
    x = RNG.normal(size=(6, 3, 2, 2)).astype(np.float32)
    for train in (True, False):
        assert_traces_like_eager(
            lambda p, s, x, train=train: bn(p, s, x, train=train), bn.init(), bn.init_state(), x
        )
    weights = RNG.normal(size=(6, 3))
    x64 = RNG.normal(size=(6, 3))

    def f(x: Any) -> Any:
        y, _, _ = nn.batch_norm(x, None, None, np.zeros(3), np.ones(3), train=True)
        return (y * weights).sum()

    np.testing.assert_allclose(gc.grad(f)(x64), numeric_grad(f, x64), rtol=1e-5, atol=1e-8)


def test_layer_norm() -> None:
    ln = nn.LayerNorm((2, 3), eps=1e-4, dtype=np.float64)
    params = {"scale": RNG.normal(size=(2, 3)), "bias": RNG.normal(size=(2, 3))}
    x = RNG.normal(size=(4, 2, 3))
    y = ln(params, x)
    for n in range(4):
        values = x[n].ravel()
        mu = values.mean()
        sd = np.sqrt(((values - mu) ** 2).mean() + 1e-4)
        np.testing.assert_allclose(y[n], (x[n] - mu) / sd * params["scale"] + params["bias"])
    with pytest.raises(gc.GraphcError, match="does not end with"):
        ln(params, RNG.normal(size=(4, 3, 2)))
    weights = RNG.normal(size=(4, 2, 3))

    def f(x: Any) -> Any:
        return (ln(params, x) * weights).sum()

    np.testing.assert_allclose(gc.grad(f)(x), numeric_grad(f, x), rtol=1e-5, atol=1e-8)
    assert_traces_like_eager(ln.apply, ln.init(), x.astype(np.float32))


def test_embedding_lookup_and_gradient_accumulation() -> None:
    emb = nn.Embedding(5, 3)
    params = emb.init(0)
    ids = np.array([[4, 1], [1, 1]])
    out = emb(params, ids)
    assert out.shape == (2, 2, 3)
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(out[i, j], params["weight"][ids[i, j]])
    g = gc.grad(lambda p: emb(p, ids).sum())(params)["weight"]
    np.testing.assert_array_equal(g[:, 0], [0.0, 3.0, 0.0, 0.0, 1.0])
    assert_traces_like_eager(emb.apply, params, ids)


# -- recurrent cells ---------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def test_rnn_cell() -> None:
    cell = nn.RNNCell(3, 4, dtype=np.float64)
    params = cell.init(0)
    w_hh = params["w_hh"]
    np.testing.assert_allclose(w_hh.T @ w_hh, np.eye(4), atol=1e-12)
    x, h = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 4))
    new_h, out = cell(params, h, x)
    np.testing.assert_allclose(new_h, np.tanh(x @ params["w_ih"] + h @ w_hh + params["b"]))
    assert out is new_h
    relu_cell = nn.RNNCell(3, 4, nonlinearity="relu", dtype=np.float64)
    assert np.all(relu_cell(params, h, x)[0] >= 0)


def test_lstm_cell_against_per_gate_reference() -> None:
    hidden = 4
    cell = nn.LSTMCell(3, hidden, dtype=np.float64)
    params = cell.init(0)
    np.testing.assert_array_equal(params["b"][hidden : 2 * hidden], 1.0)
    params["b"] = RNG.normal(size=4 * hidden)
    x, h, c = RNG.normal(size=(2, 3)), RNG.normal(size=(2, hidden)), RNG.normal(size=(2, hidden))
    gates = {}
    for k, name in enumerate("ifgo"):
        cols = slice(k * hidden, (k + 1) * hidden)
        gates[name] = x @ params["w_ih"][:, cols] + h @ params["w_hh"][:, cols] + params["b"][cols]
    want_c = _sigmoid(gates["f"]) * c + _sigmoid(gates["i"]) * np.tanh(gates["g"])
    want_h = _sigmoid(gates["o"]) * np.tanh(want_c)
    (new_h, new_c), out = cell(params, (h, c), x)
    np.testing.assert_allclose(new_c, want_c, rtol=1e-12)
    np.testing.assert_allclose(new_h, want_h, rtol=1e-12)
    np.testing.assert_array_equal(out, new_h)


def test_gru_cell_against_per_gate_reference() -> None:
    hidden = 3
    cell = nn.GRUCell(2, hidden, dtype=np.float64)
    params = cell.init(0)
    params["b_ih"] = RNG.normal(size=3 * hidden)
    params["b_hh"] = RNG.normal(size=3 * hidden)
    x, h = RNG.normal(size=(4, 2)), RNG.normal(size=(4, hidden))

    def part(name: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        cols = slice(k * hidden, (k + 1) * hidden)
        return (
            x @ params["w_ih"][:, cols] + params["b_ih"][cols],
            h @ params["w_hh"][:, cols] + params["b_hh"][cols],
        )

    (xr, hr), (xz, hz), (xn, hn) = part("r", 0), part("z", 1), part("n", 2)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    new_h, _ = cell(params, h, x)
    np.testing.assert_allclose(new_h, (1 - z) * n + z * h, rtol=1e-12)


@pytest.mark.parametrize("cell_type", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_unroll_time_major_and_batch_first(cell_type: Any) -> None:
    cell = cell_type(3, 4, dtype=np.float64)
    params = cell.init(0)
    xs = RNG.normal(size=(5, 2, 3))
    carry = cell.init_carry(2)
    expected = []
    for t in range(5):
        carry, y = cell(params, carry, xs[t])
        expected.append(y)
    final, ys = nn.unroll(cell, params, cell.init_carry(2), xs)
    np.testing.assert_allclose(ys, np.stack(expected))
    _, ys_bf = nn.unroll(cell, params, cell.init_carry(2), xs.transpose(1, 0, 2), time_axis=1)
    np.testing.assert_allclose(ys_bf, np.stack(expected, axis=1))
    assert_traces_like_eager(
        lambda p, c, s: nn.unroll(cell, p, c, s), params, cell.init_carry(2), xs, rtol=1e-12
    )


def test_lstm_gradient_through_time_matches_finite_differences() -> None:
    cell = nn.LSTMCell(2, 3, dtype=np.float64)
    params = cell.init(0)
    xs = RNG.normal(size=(4, 2, 2))
    weights = RNG.normal(size=(4, 2, 3))

    def f(w_hh: Any) -> Any:
        p = dict(params, w_hh=w_hh)
        _, ys = nn.unroll(cell, p, cell.init_carry(2), xs)
        return (ys * weights).sum()

    w = params["w_hh"]
    np.testing.assert_allclose(gc.grad(f)(w), numeric_grad(f, w), rtol=1e-6, atol=1e-9)
