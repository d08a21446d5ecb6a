"""A character-level LSTM trained on Python's own standard-library sources through graphc.

    python examples/char_rnn.py --backend llvm

The LSTM runs over each window of characters as one ``gc.scan`` (the cell is
traced once; backpropagation through time is a reverse scan, and on LLVM
both are native loops, so compile time does not grow with the window);
forward, backward and the Adam update compile into one train step. The
script reports the first call's compile time, the held-out loss in bits per
character against the unigram entropy (the best a model without context can
do) and prints a sample.
"""

from __future__ import annotations

import os
import sys

import numpy as np

import graphc as gc
from graphc import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import stdlib_text  # noqa: E402


class Model:
    """Embedding -> LSTM -> linear read-out over the vocabulary."""

    def __init__(self, vocab_size: int, embed: int, hidden: int) -> None:
        self.embedding = nn.Embedding(vocab_size, embed, w_init=nn.init.glorot_uniform)
        self.cell = nn.LSTMCell(embed, hidden)
        self.head = nn.Linear(hidden, vocab_size)
        self.hidden = hidden

    def init(self, seed):
        return {
            "embed": self.embedding.init(seed),
            "lstm": self.cell.init(seed + 1),
            "head": self.head.init(seed + 2),
        }

    def cell_step(self, p, carry, xw):
        """One time step; ``xw`` is the input already multiplied by the input weights."""
        h, c = carry
        z = xw + h @ p["w_hh"]
        n = self.hidden
        i, f = nn.sigmoid(z[:, :n]), nn.sigmoid(z[:, n : 2 * n])
        g, o = np.tanh(z[:, 2 * n : 3 * n]), nn.sigmoid(z[:, 3 * n :])
        c = f * c + i * g
        return o * np.tanh(c), c

    def logits(self, params, ids, carry, rng=None):
        """Logits (batch, time, vocab) for ids (batch, time), and the final carry."""
        p = params["lstm"]
        x = self.embedding(params["embed"], ids.T)  # (time, batch, embed)
        # The input projection of every step is one matmul; only h @ w_hh is sequential.
        xw = x @ p["w_ih"] + p["b"]

        def step(carry, xw_t):
            carry = self.cell_step(p, carry, xw_t)
            return carry, carry[0]

        carry, hs = gc.scan(step, carry, xw)  # hs: (time, batch, hidden)
        h = hs.transpose(1, 0, 2)
        if rng is not None:
            h = rng.dropout(h, 0.1)
        return self.head(params["head"], h), carry

    def zeros(self, batch):
        return self.cell.init_carry(batch)


def parse_args(argv):
    parser = common.parser(__doc__)
    parser.add_argument("--chars", type=int, default=300_000, help="corpus size")
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--embed", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, default=300, help="characters to sample")
    common.add_run_options(parser)
    return parser.parse_args(argv)


def sample(model, params, vocab, backend, length, seed, prompt="def "):
    """Draw ``length`` characters after ``prompt`` at temperature 0.8."""
    run = gc.jit(lambda p, carry, ids: model.logits(p, ids, carry), backend=backend)
    rng = np.random.default_rng(seed)
    carry = model.zeros(1)
    ids = vocab.encode(prompt)
    if len(ids) > 1:
        _, carry = run(params, carry, ids[None, :-1])
    out, current = list(prompt), ids[-1]
    for _ in range(length):
        logits, carry = run(params, carry, np.array([[current]], np.int64))
        z = logits[0, -1].astype(np.float64) / 0.8
        probs = np.exp(z - z.max())
        current = rng.choice(len(probs), p=probs / probs.sum())
        out.append(vocab.chars[current])
    return "".join(out)


def main(argv=None):
    args = parse_args(argv)
    corpus = stdlib_text.prepare(args.chars, args.seq_len)
    vocab, (x_train, _), _, _ = corpus
    model = Model(len(vocab), args.embed, args.hidden)
    batch = args.batch_size

    def loss_fn(params, x, y, rng):
        logits, _ = model.logits(params, x, model.zeros(x.shape[0]), rng)
        return nn.cross_entropy(logits, y)

    steps = args.epochs * (len(x_train) // batch)
    schedule = gc.optim.warmup_cosine(args.lr, min(100, steps // 10), steps)
    optimizer = gc.optim.Adam(schedule, clip_norm=1.0)
    step = gc.train_step(loss_fn, optimizer, backend=args.backend, mixed_precision=args.precision)
    held_out_loss = gc.jit(
        lambda p, x, y: nn.cross_entropy(model.logits(p, x, model.zeros(x.shape[0]))[0], y),
        backend=args.backend,
    )

    return common.train_text_model(
        args,
        step,
        model.init(args.seed),
        held_out_loss,
        corpus,
        lambda params: sample(model, params, vocab, args.backend, args.sample, args.seed),
    )


if __name__ == "__main__":
    main()
