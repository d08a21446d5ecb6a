"""W5: character-level tanh RNN, hidden 256, 64 steps, batch 32, BPTT training step.

Text: the sources of the stdlib `json` and `email` packages. Model (time-major inside):
h_t = tanh(Wxh[x_t] + h_{t-1} Whh + bh), logits_t = h_t Why + by, h_0 = 0, loss = mean
softmax cross-entropy of the next character over all 64×32 positions, plain SGD. The
embedding row lookup Wxh[x_t] is the same as multiplying a one-hot input by Wxh.
graphc and NumPy unroll the 64 steps in Python (until graphc has `scan`).
"""

from __future__ import annotations

import email
import json
import pathlib
from typing import Any

import numpy as np

from ..core import Problem, Runner, Workload, cycle, numpy_reset, require
from ..graphc_entries import training_entries
from ..optim import jax_optimizer, numpy_optimizer, torch_optimizer
from .common import jax_runner, torch_reset

HIDDEN, SEQ, BATCH = 256, 64, 32
QUICK_HIDDEN, QUICK_SEQ, QUICK_BATCH = 32, 8, 4
HYPER = {"lr": 0.1}


def stdlib_text() -> str:
    """The concatenated sources of two stdlib packages, in a fixed order."""
    files: list[pathlib.Path] = []
    for package in (json, email):
        files += sorted(pathlib.Path(package.__file__).parent.glob("*.py"))
    return "".join(f.read_text(encoding="utf-8") for f in files)


def make_problem(quick: bool) -> Problem:
    hidden, seq, batch = (QUICK_HIDDEN, QUICK_SEQ, QUICK_BATCH) if quick else (HIDDEN, SEQ, BATCH)
    text = stdlib_text()
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    codes = np.fromiter((index[c] for c in text), np.int64, len(text))
    rng = np.random.default_rng(5)
    batches = []
    for _ in range(4):
        starts = rng.integers(0, len(codes) - seq - 1, size=batch)
        window = np.stack([codes[s : s + seq + 1] for s in starts])
        batches.append((window[:, :-1].copy(), window[:, 1:].copy()))
    v = len(vocab)
    params = {
        "wxh": (rng.standard_normal((v, hidden)) * 0.1).astype(np.float32),
        "whh": (rng.standard_normal((hidden, hidden)) * (0.9 / np.sqrt(hidden))).astype(np.float32),
        "bh": np.zeros(hidden, np.float32),
        "why": (rng.standard_normal((hidden, v)) * (1.0 / np.sqrt(hidden))).astype(np.float32),
        "by": np.zeros(v, np.float32),
    }
    info = {"text_chars": len(text), "vocab": v}
    return Problem(params=params, batches=batches, hyper=dict(HYPER), info=info)


def loss(params: dict[str, Any], xs: Any, ys: Any) -> Any:
    """The model as a user writes it for graphc: plain NumPy, the time loop unrolled."""
    batch, seq = xs.shape
    h = np.zeros((batch, params["whh"].shape[0]), np.float32)
    hs = []
    for t in range(seq):
        h = np.tanh(params["wxh"][xs[:, t]] + h @ params["whh"] + params["bh"])
        hs.append(h)
    hidden = np.stack(hs).reshape(seq * batch, -1)
    logits = hidden @ params["why"] + params["by"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    targets = ys.T.reshape(-1)
    return -np.mean(logp[np.arange(seq * batch), targets])


def loss_scan(params: dict[str, Any], xs: Any, ys: Any) -> Any:
    """The same model with the recurrence as one gc.scan over time (time-major xs)."""
    import graphc as gc

    batch, seq = xs.shape

    def cell(h: Any, x_t: Any) -> Any:
        h = np.tanh(params["wxh"][x_t] + h @ params["whh"] + params["bh"])
        return h, h

    h0 = np.zeros((batch, params["whh"].shape[0]), np.float32)
    _, hs = gc.scan(cell, h0, xs.T)
    hidden = hs.reshape(seq * batch, -1)
    logits = hidden @ params["why"] + params["by"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    targets = ys.T.reshape(-1)
    return -np.mean(logp[np.arange(seq * batch), targets])


def numpy_impl(problem: Problem) -> Runner:
    """Hand-written BPTT: time loop for the recurrence only, every other product batched
    over all 64 steps as one GEMM, preallocated buffers, SGD in place."""
    p = {k: v.copy() for k, v in problem.params.items()}
    grads = {k: np.empty_like(v) for k, v in p.items()}
    opt = numpy_optimizer("sgd", p, problem.hyper)
    feed = cycle([(x.T.copy(), y.T.reshape(-1).copy()) for x, y in problem.batches])
    seq, batch = problem.batches[0][0].shape[::-1]
    vocab, hidden = p["wxh"].shape
    n = seq * batch
    f32 = np.float32
    hs = np.zeros((seq + 1, batch, hidden), f32)  # hs[0] is h_0 = 0
    pre, tmp = np.empty((batch, hidden), f32), np.empty((batch, hidden), f32)
    logits = np.empty((n, vocab), f32)
    d_h = np.empty((seq, batch, hidden), f32)
    d_pre = np.empty((seq, batch, hidden), f32)
    d_next = np.empty((batch, hidden), f32)
    onehot = np.empty((n, vocab), f32)
    rows = np.arange(n)

    def step() -> Any:
        xs, targets = feed()  # xs (seq, batch); targets time-major, flat
        for t in range(seq):
            np.take(p["wxh"], xs[t], axis=0, out=pre)
            np.matmul(hs[t], p["whh"], out=tmp)
            np.add(pre, tmp, out=pre)
            np.add(pre, p["bh"], out=pre)
            np.tanh(pre, out=hs[t + 1])
        h_all = hs[1:].reshape(n, hidden)
        np.matmul(h_all, p["why"], out=logits)
        np.add(logits, p["by"], out=logits)
        np.subtract(logits, logits.max(axis=1, keepdims=True), out=logits)
        loss = -logits[rows, targets].mean()
        np.exp(logits, out=logits)
        s = logits.sum(axis=1, keepdims=True)
        loss += np.log(s[:, 0]).mean()
        np.divide(logits, s, out=logits)
        logits[rows, targets] -= 1.0
        np.multiply(logits, 1.0 / n, out=logits)  # d loss / d logits
        np.matmul(h_all.T, logits, out=grads["why"])
        np.sum(logits, axis=0, out=grads["by"])
        np.matmul(logits, p["why"].T, out=d_h.reshape(n, hidden))
        for t in reversed(range(seq)):
            if t < seq - 1:
                d_h[t] += d_next
            np.multiply(hs[t + 1], hs[t + 1], out=d_pre[t])
            np.subtract(1.0, d_pre[t], out=d_pre[t])
            d_pre[t] *= d_h[t]
            if t:
                np.matmul(d_pre[t], p["whh"].T, out=d_next)
        d_flat = d_pre.reshape(n, hidden)
        np.matmul(hs[:-1].reshape(n, hidden).T, d_flat, out=grads["whh"])
        np.sum(d_flat, axis=0, out=grads["bh"])
        onehot.fill(0.0)
        onehot[rows, xs.reshape(-1)] = 1.0
        np.matmul(onehot.T, d_flat, out=grads["wxh"])
        opt.update(p, grads)
        return loss

    return Runner(step=step, reset=numpy_reset(p, problem.params, opt, feed), state=lambda: p)


def torch_impl(problem: Problem) -> Runner:
    """Python time loop with autograd (as the graphc model is written), torch.optim.SGD."""
    torch = require("torch")
    params = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in problem.params.items()}

    def load() -> None:
        with torch.no_grad():
            for k, v in params.items():
                v.copy_(torch.from_numpy(problem.params[k]))

    opt = torch_optimizer("sgd", list(params.values()), problem.hyper)
    feed = cycle(
        [
            (torch.from_numpy(x.T.copy()), torch.from_numpy(y.T.reshape(-1).copy()))
            for x, y in problem.batches
        ]
    )
    cross_entropy = torch.nn.functional.cross_entropy
    wxh, whh, bh, why, by = (params[k] for k in ("wxh", "whh", "bh", "why", "by"))

    def step() -> Any:
        xs, targets = feed()
        opt.zero_grad(set_to_none=True)
        h = torch.zeros(xs.shape[1], whh.shape[0])
        hs = []
        for t in range(xs.shape[0]):
            h = torch.tanh(wxh[xs[t]] + h @ whh + bh)
            hs.append(h)
        logits = torch.stack(hs).reshape(-1, whh.shape[0]) @ why + by
        loss = cross_entropy(logits, targets)
        loss.backward()
        opt.step()
        return loss.detach()

    return Runner(
        step=step,
        reset=torch_reset(load, opt, feed),
        state=lambda: {k: v.detach().numpy() for k, v in params.items()},
    )


def jax_impl(problem: Problem) -> Runner:
    """jax.lax.scan over time inside one jax.jit with the SGD update, parameters donated."""
    jax = require("jax")
    jnp = require("jax.numpy")

    def loss_jax(params: Any, xs: Any, targets: Any) -> Any:
        def cell(h: Any, x_t: Any) -> tuple[Any, Any]:
            h = jnp.tanh(params["wxh"][x_t] + h @ params["whh"] + params["bh"])
            return h, h

        h0 = jnp.zeros((xs.shape[1], params["whh"].shape[0]), jnp.float32)
        _, hs = jax.lax.scan(cell, h0, xs)
        logits = hs.reshape(-1, hs.shape[-1]) @ params["why"] + params["by"]
        logp = jax.nn.log_softmax(logits, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, targets[:, None], axis=1))

    batches = [(x.T.copy(), y.T.reshape(-1).copy()) for x, y in problem.batches]
    return jax_runner(jax, loss_jax, jax_optimizer("sgd", problem.hyper), problem, batches)


WORKLOAD = Workload(
    name="W5",
    title="char tanh RNN, hidden 256, seq 64, batch 32, stdlib text, BPTT (train step)",
    make_problem=make_problem,
    impls={
        "numpy": numpy_impl,
        "torch": torch_impl,
        "jax": jax_impl,
        **training_entries(loss, "sgd"),
        **training_entries(loss_scan, "sgd", "scan"),
    },
    default_repeat=15,
)
