"""A corpus of model-like functions written in plain NumPy, shared by the
tracing, autodiff, jit and backend tests.

Each :class:`Case` holds a function, a factory for its arguments in a given
float dtype and the argument positions that can be differentiated (floats
only: labels and token ids are integers). Every function returns a scalar
loss, so ``gc.grad(case.fn, argnums=case.argnums)`` applies to all of them::

    from tests.corpus import CORPUS

    for case in CORPUS:
        args = case.args(np.float64)
        loss = case.fn(*args)

Inputs are random but reproducible: ``case.args(dtype, seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special

from graphc.primitives import bind


@dataclass(frozen=True)
class Case:
    """One corpus entry: ``fn(*make_args(dtype, rng))`` is a scalar loss."""

    name: str
    fn: Callable[..., Any]
    make_args: Callable[[Any, np.random.Generator], tuple[Any, ...]]
    argnums: tuple[int, ...]

    def args(self, dtype: Any = np.float64, seed: int = 0) -> tuple[Any, ...]:
        """Fresh arguments for ``fn``: float arrays in ``dtype``, integer labels as int64."""
        return self.make_args(np.dtype(dtype), np.random.default_rng(seed))


def _normal(rng: np.random.Generator, dtype: Any, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _dense(rng: np.random.Generator, dtype: Any, n_in: int, n_out: int) -> dict[str, np.ndarray]:
    return {
        "w": _normal(rng, dtype, n_in, n_out, scale=1 / math.sqrt(n_in)),
        "b": _normal(rng, dtype, n_out, scale=0.1),
    }


# -- small building blocks, as a user would write them ----------------------------------


def softmax(z: Any, axis: int = -1) -> Any:
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(z: Any, axis: int = -1) -> Any:
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def logsumexp(z: Any, axis: int = -1) -> Any:
    m = np.max(z, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(z - m), axis=axis))


def cross_entropy(logits: Any, labels: Any) -> Any:
    logp = log_softmax(logits)
    return -np.mean(logp[np.arange(len(labels)), labels])


def sigmoid(z: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-z))


# -- the corpus ---------------------------------------------------------------------------


def mlp_relu_mse(params: Any, x: Any, y: Any) -> Any:
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    pred = h @ params["w2"] + params["b2"]
    return np.mean((pred - y) ** 2)


def _mlp_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    l1, l2 = _dense(rng, dtype, 6, 16), _dense(rng, dtype, 16, 2)
    params = {"w1": l1["w"], "b1": l1["b"], "w2": l2["w"], "b2": l2["b"]}
    return params, _normal(rng, dtype, 10, 6), _normal(rng, dtype, 10, 2)


def mlp_tanh_cross_entropy(params: Any, x: Any, labels: Any) -> Any:
    h = x
    for layer in params[:-1]:
        h = np.tanh(h @ layer["w"] + layer["b"])
    logits = h @ params[-1]["w"] + params[-1]["b"]
    return cross_entropy(logits, labels)


def _mlp_xent_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    layers = [_dense(rng, dtype, 5, 12), _dense(rng, dtype, 12, 8), _dense(rng, dtype, 8, 4)]
    return layers, _normal(rng, dtype, 9, 5), rng.integers(0, 4, size=9)


def softmax_weighted(z: Any, w: Any) -> Any:
    return np.sum(softmax(z, axis=1) * w)


def _logits_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    return _normal(rng, dtype, 7, 5, scale=3.0), _normal(rng, dtype, 7, 5)


def log_softmax_weighted(z: Any, w: Any) -> Any:
    return np.sum(log_softmax(z, axis=0) * w)


def logsumexp_loss(z: Any, w: Any) -> Any:
    # a large offset checks that the max-shift keeps exp from overflowing
    return np.sum(logsumexp(z * 40.0 + 500.0, axis=1)) + np.sum(logsumexp(w, axis=0))


def logistic_regression(w: Any, b: Any, x: Any, y: Any) -> Any:
    z = x @ w + b
    # log(1 + exp(-z)) computed stably with logaddexp; labels are 0/1 floats
    nll = np.logaddexp(0.0, -z) * y + np.logaddexp(0.0, z) * (1 - y)
    p = scipy.special.expit(z)
    return np.mean(nll) + 0.01 * np.sum(w * w) + 0.001 * np.sum(p)


def _logistic_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    x = _normal(rng, dtype, 12, 3)
    y = (rng.random(12) > 0.5).astype(dtype)
    return _normal(rng, dtype, 3), dtype.type(0.1), x, y


def layer_norm(x: Any, gamma: Any, beta: Any) -> Any:
    mean = x.mean(axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + 1e-5) * gamma + beta
    return np.sum(y * np.cos(np.arange(y.shape[-1], dtype=x.dtype)))


def _norm_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    return (
        _normal(rng, dtype, 6, 8) * 2 + 1,
        1 + _normal(rng, dtype, 8, scale=0.1),
        _normal(rng, dtype, 8, scale=0.1),
    )


def batch_norm_train(x: Any, gamma: Any, beta: Any) -> Any:
    # training mode: statistics of this batch over N, H, W of NCHW
    mean = np.mean(x, axis=(0, 2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    y = gamma.reshape(1, -1, 1, 1) * (x - mean) / np.sqrt(var + 1e-5) + beta[None, :, None, None]
    return np.mean(np.maximum(y, 0.0) ** 2)


def _bn_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    return (
        _normal(rng, dtype, 4, 3, 5, 5) + 0.5,
        1 + _normal(rng, dtype, 3, scale=0.1),
        _normal(rng, dtype, 3, scale=0.1),
    )


def attention(params: Any, x: Any) -> Any:
    """Causal multi-head self-attention with an output projection and residual.

    Scale factors are Python floats: ``np.sqrt(d)`` would be a float64 NumPy
    scalar, which promotes float32 activations to float64 (NEP 50)."""
    batch, seq, dim = x.shape
    heads = 2
    head_dim = dim // heads

    def split_heads(t: Any) -> Any:
        return t.reshape(batch, seq, heads, head_dim).transpose(0, 2, 1, 3)

    q = split_heads(x @ params["wq"])
    k = split_heads(x @ params["wk"])
    v = split_heads(x @ params["wv"])
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(head_dim)
    future = np.triu(np.ones((seq, seq), dtype=bool), k=1)
    scores = np.where(future, -1e9, scores)
    out = softmax(scores) @ v
    out = out.transpose(0, 2, 1, 3).reshape(batch, seq, dim) @ params["wo"]
    return np.mean((x + out) ** 2)


def _attention_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    dim = 8
    params = {
        n: _normal(rng, dtype, dim, dim, scale=1 / math.sqrt(dim)) for n in ("wq", "wk", "wv", "wo")
    }
    return params, _normal(rng, dtype, 2, 5, dim)


def conv_pool_net(params: Any, images: Any, labels: Any) -> Any:
    h = bind("conv2d", images, params["conv"], stride=(1, 1), padding=((1, 1), (1, 1)))
    h = np.maximum(h + params["conv_b"][None, :, None, None], 0.0)
    h = bind("max_pool2d", h, window=(2, 2), stride=(2, 2))
    h = bind("conv2d", h, params["conv2"], stride=(2, 2))
    features = h.mean(axis=(2, 3))
    logits = features @ params["dense"]
    return cross_entropy(logits, labels)


def _conv_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    params = {
        "conv": _normal(rng, dtype, 4, 1, 3, 3, scale=0.3),
        "conv_b": _normal(rng, dtype, 4, scale=0.1),
        "conv2": _normal(rng, dtype, 6, 4, 2, 2, scale=0.3),
        "dense": _normal(rng, dtype, 6, 3, scale=0.5),
    }
    return params, _normal(rng, dtype, 3, 1, 8, 8), rng.integers(0, 3, size=3)


def gelu_erf(x: Any, w: Any) -> Any:
    h = x @ w
    return np.sum(0.5 * h * (1.0 + scipy.special.erf(h / math.sqrt(2.0))))


def gelu_tanh(x: Any, w: Any) -> Any:
    h = x @ w
    inner = math.sqrt(2.0 / math.pi) * (h + 0.044715 * h**3)
    return np.sum(0.5 * h * (1.0 + np.tanh(inner)))


def _gelu_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    return _normal(rng, dtype, 5, 4), _normal(rng, dtype, 4, 6)


def rnn_unrolled(params: Any, xs: Any, h0: Any) -> Any:
    h = h0
    loss = 0.0
    for t in range(xs.shape[1]):
        h = np.tanh(xs[:, t, :] @ params["wx"] + h @ params["wh"] + params["b"])
        loss = loss + np.sum(h * params["readout"]) / xs.shape[1]
    return loss


def _rnn_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    params = {
        "wx": _normal(rng, dtype, 3, 6, scale=0.5),
        "wh": _normal(rng, dtype, 6, 6, scale=0.3),
        "b": _normal(rng, dtype, 6, scale=0.1),
        "readout": _normal(rng, dtype, 6),
    }
    return params, _normal(rng, dtype, 2, 5, 3), np.zeros((2, 6), dtype)


def lstm_cell(params: Any, x: Any, state: Any) -> Any:
    h, c = state
    for t in range(2):
        gates = x[t] @ params["wx"] + h @ params["wh"] + params["b"]
        i, f, g, o = np.split(gates, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = scipy.special.expit(o) * np.tanh(c)
    return np.sum(h**2) + np.mean(c)


def _lstm_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    hidden = 4
    params = {
        "wx": _normal(rng, dtype, 3, 4 * hidden, scale=0.5),
        "wh": _normal(rng, dtype, hidden, 4 * hidden, scale=0.5),
        "b": _normal(rng, dtype, 4 * hidden, scale=0.1),
    }
    state = (_normal(rng, dtype, 2, hidden), _normal(rng, dtype, 2, hidden))
    return params, _normal(rng, dtype, 2, 2, 3), state


def embedding_mean_pool(params: Any, tokens: Any, labels: Any) -> Any:
    vectors = params["embedding"][tokens]  # (batch, seq, dim)
    pooled = vectors.mean(axis=1)
    logits = pooled @ params["w"]
    return cross_entropy(logits, labels)


def _embedding_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    params = {"embedding": _normal(rng, dtype, 11, 5), "w": _normal(rng, dtype, 5, 3)}
    return params, rng.integers(0, 11, size=(4, 6)), rng.integers(0, 3, size=4)


def indexing_heavy(x: Any, idx: Any) -> Any:
    strided = x[::2, 1::3]
    reversed_rows = x[::-1, :]
    picked = np.take(x, idx, axis=1)  # traced integer indices
    top = np.take_along_axis(x, np.argmax(x, axis=1, keepdims=True), axis=1)
    corners = x[np.array([0, -1])[:, None], np.array([0, -1])]
    window = x[1:-1, -4:-1][:, ::-1]
    mixed = x[..., None][idx[:2], 2:5, 0]
    return (
        np.sum(strided**2)
        + np.sum(reversed_rows[0] * x[0])
        + np.sum(np.sin(picked))
        + np.sum(top)
        + np.sum(corners) * 0.5
        + np.sum(window * np.arange(3.0).astype(x.dtype))
        + np.sum(mixed)
    )


def _indexing_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    return _normal(rng, dtype, 6, 7), np.array([3, -1, 0, 5, 2])


def huber(pred: Any, target: Any) -> Any:
    delta = 1.0
    err = pred - target
    quadratic = 0.5 * err**2
    linear = delta * (np.abs(err) - 0.5 * delta)
    return np.mean(np.where(np.abs(err) <= delta, quadratic, linear))


def _huber_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    return _normal(rng, dtype, 20, scale=2.0), _normal(rng, dtype, 20)


def einsum_bilinear(x: Any, w: Any, y: Any) -> Any:
    scores = np.einsum("bi,ij,bj->b", x, w, y)
    gram = np.einsum("bi,ci->bc", x, x)
    return np.sum(scores**2) / len(scores) + np.trace(gram) * 0.01


def _bilinear_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    return _normal(rng, dtype, 5, 4), _normal(rng, dtype, 4, 3), _normal(rng, dtype, 5, 3)


def gaussian_mixture_nll(params: Any, x: Any) -> Any:
    """Negative log-likelihood of a diagonal Gaussian mixture (logsumexp over components)."""
    log_weights = log_softmax(params["logits"])
    diff = x[:, None, :] - params["means"][None, :, :]  # (n, k, d)
    inv_var = np.exp(-2.0 * params["log_std"])
    log_det = np.sum(params["log_std"], axis=-1)
    quad = np.einsum("nkd,kd->nk", diff**2, inv_var)
    d = x.shape[-1]
    log_prob = -0.5 * quad - log_det - 0.5 * d * math.log(2 * math.pi)
    return -np.mean(logsumexp(log_prob + log_weights, axis=1))


def _gmm_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    params = {
        "logits": _normal(rng, dtype, 3, scale=0.5),
        "means": _normal(rng, dtype, 3, 2),
        "log_std": _normal(rng, dtype, 3, 2, scale=0.2),
    }
    return params, _normal(rng, dtype, 10, 2)


def residual_block(params: Any, x: Any) -> Any:
    """Pre-norm residual MLP block with dropout-free GELU and a padded 1-d smoothing."""
    h = x - x.mean(axis=-1, keepdims=True)
    h = h / np.sqrt(np.mean(h * h, axis=-1, keepdims=True) + 1e-6)
    h = h @ params["w1"]
    h = h * scipy.special.expit(1.702 * h)
    h = h @ params["w2"]
    padded = np.pad(x + h, ((0, 0), (1, 1)), mode="edge")
    smooth = (padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]) / 3
    return np.sum(smooth**2) / x.shape[0]


def _residual_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    params = {
        "w1": _normal(rng, dtype, 6, 12, scale=0.4),
        "w2": _normal(rng, dtype, 12, 6, scale=0.3),
    }
    return params, _normal(rng, dtype, 4, 6)


def contrastive_loss(params: Any, a: Any, b: Any) -> Any:
    """InfoNCE between two views: normalized projections, cosine logits,
    cross-entropy against the diagonal."""
    za = a @ params["proj"]
    zb = b @ params["proj"]
    za = za / np.linalg.norm(za, axis=1, keepdims=True)
    zb = zb / np.linalg.norm(zb, axis=1, keepdims=True)
    logits = za @ zb.T / 0.5
    labels = np.arange(len(a))
    return 0.5 * (cross_entropy(logits, labels) + cross_entropy(logits.T, labels))


def _contrastive_args(dtype: Any, rng: np.random.Generator) -> tuple[Any, ...]:
    base = _normal(rng, dtype, 6, 5)
    return {"proj": _normal(rng, dtype, 5, 4)}, base, base + _normal(rng, dtype, 6, 5, scale=0.3)


CORPUS: list[Case] = [
    Case("mlp_relu_mse", mlp_relu_mse, _mlp_args, (0,)),
    Case("mlp_tanh_cross_entropy", mlp_tanh_cross_entropy, _mlp_xent_args, (0, 1)),
    Case("softmax", softmax_weighted, _logits_args, (0, 1)),
    Case("log_softmax", log_softmax_weighted, _logits_args, (0, 1)),
    Case("logsumexp", logsumexp_loss, _logits_args, (0, 1)),
    Case("logistic_regression", logistic_regression, _logistic_args, (0, 1, 2)),
    Case("layer_norm", layer_norm, _norm_args, (0, 1, 2)),
    Case("batch_norm_train", batch_norm_train, _bn_args, (0, 1, 2)),
    Case("attention", attention, _attention_args, (0, 1)),
    Case("conv_pool_net", conv_pool_net, _conv_args, (0, 1)),
    Case("gelu_erf", gelu_erf, _gelu_args, (0, 1)),
    Case("gelu_tanh", gelu_tanh, _gelu_args, (0, 1)),
    Case("rnn_unrolled", rnn_unrolled, _rnn_args, (0, 1, 2)),
    Case("lstm_cell", lstm_cell, _lstm_args, (0, 1, 2)),
    Case("embedding_mean_pool", embedding_mean_pool, _embedding_args, (0,)),
    Case("indexing_heavy", indexing_heavy, _indexing_args, (0,)),
    Case("huber", huber, _huber_args, (0, 1)),
    Case("einsum_bilinear", einsum_bilinear, _bilinear_args, (0, 1, 2)),
    Case("gaussian_mixture_nll", gaussian_mixture_nll, _gmm_args, (0, 1)),
    Case("residual_block", residual_block, _residual_args, (0, 1)),
    Case("contrastive_loss", contrastive_loss, _contrastive_args, (0, 1, 2)),
]

BY_NAME: dict[str, Case] = {c.name: c for c in CORPUS}
