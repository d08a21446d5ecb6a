"""A tiny causal transformer trained on Python's standard-library sources through graphc.

    python examples/transformer_tiny.py --backend llvm

Two pre-norm blocks of causal multi-head self-attention and a GELU MLP over
character embeddings plus learned positions (``--dropout`` adds residual
dropout, drawn inside the compiled step). Forward, backward and the AdamW
update compile into one train step. The script reports held-out bits per
character against the unigram entropy and prints a sample.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

import graphc as gc
from graphc import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import stdlib_text  # noqa: E402


class Transformer:
    def __init__(self, vocab_size, length, width, heads, blocks, dropout):
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.vocab_size, self.length, self.width = vocab_size, length, width
        self.heads, self.blocks, self.dropout = heads, blocks, dropout
        self.embed = nn.Embedding(vocab_size, width, w_init=nn.init.normal)
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.up = nn.Linear(width, 4 * width, w_init=nn.init.he_uniform)
        self.down = nn.Linear(4 * width, width)
        self.head = nn.Linear(width, vocab_size)

    def init(self, seed):
        rng = np.random.default_rng(seed)
        small = 0.02
        blocks = []
        for i in range(self.blocks):
            blocks.append(
                {
                    "norm1": self.norm.init(),
                    "qkv": self.qkv.init(seed + 10 * i + 1),
                    "proj": self.proj.init(seed + 10 * i + 2),
                    "norm2": self.norm.init(),
                    "up": self.up.init(seed + 10 * i + 3),
                    "down": self.down.init(seed + 10 * i + 4),
                }
            )
        embed = self.embed.init(seed)
        embed["weight"] *= small
        positions = (rng.normal(size=(self.length, self.width)) * small).astype(np.float32)
        return {
            "embed": embed,
            "positions": positions,
            "blocks": blocks,
            "norm": self.norm.init(),
            "head": self.head.init(seed + 99),
        }

    def attention(self, p, x):
        batch, length, width = x.shape
        heads, size = self.heads, width // self.heads
        qkv = self.qkv(p["qkv"], x).reshape(batch, length, 3, heads, size)
        qkv = qkv.transpose(2, 0, 3, 1, 4)  # (3, batch, heads, time, size)
        q, k, v = qkv[0], qkv[1], qkv[2]
        # A Python float keeps the scores float32 (a NumPy float64 scalar would promote).
        scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(size))
        causal = np.tril(np.ones((length, length), dtype=bool))
        scores = np.where(causal, scores, -1e9)
        weights = nn.softmax(scores, axis=-1)
        out = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
        return self.proj(p["proj"], out)

    def logits(self, params, ids, rng=None):
        length = ids.shape[1]
        x = self.embed(params["embed"], ids) + params["positions"][:length]
        for p in params["blocks"]:
            h = self.attention(p, self.norm(p["norm1"], x))
            if rng is not None:
                h = rng.dropout(h, self.dropout)
            x = x + h
            h = nn.gelu(self.up(p["up"], self.norm(p["norm2"], x)))
            h = self.down(p["down"], h)
            if rng is not None:
                h = rng.dropout(h, self.dropout)
            x = x + h
        return self.head(params["head"], self.norm(params["norm"], x))


def parse_args(argv):
    parser = common.parser(__doc__)
    parser.add_argument("--chars", type=int, default=300_000, help="corpus size")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=6e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, default=300, help="characters to sample")
    common.add_run_options(parser)
    return parser.parse_args(argv)


def sample(model, params, vocab, backend, length, seed, prompt="def "):
    """Draw ``length`` characters after ``prompt`` at temperature 0.8, one window at a time."""
    run = gc.jit(lambda p, ids: model.logits(p, ids)[:, -1], backend=backend)
    rng = np.random.default_rng(seed)
    text = prompt
    for _ in range(length):
        window = vocab.encode(text[-model.length :])
        # Left-pad with spaces so every call has the compiled window length.
        window = np.concatenate([np.full(model.length - len(window), vocab.index[" "]), window])
        z = run(params, window[None, :])[0].astype(np.float64) / 0.8
        probs = np.exp(z - z.max())
        text += vocab.chars[rng.choice(len(probs), p=probs / probs.sum())]
    return text


def main(argv=None):
    args = parse_args(argv)
    corpus = stdlib_text.prepare(args.chars, args.seq_len)
    vocab, (x_train, _), _, _ = corpus
    model = Transformer(len(vocab), args.seq_len, args.width, args.heads, args.blocks, args.dropout)
    batch = args.batch_size

    def loss_fn(params, x, y, rng):
        return nn.cross_entropy(model.logits(params, x, rng), y)

    steps = args.epochs * (len(x_train) // batch)
    schedule = gc.optim.warmup_cosine(args.lr, min(100, steps // 10), steps)
    optimizer = gc.optim.AdamW(schedule, weight_decay=0.01, clip_norm=1.0)
    step = gc.train_step(loss_fn, optimizer, backend=args.backend, mixed_precision=args.precision)
    held_out_loss = gc.jit(
        lambda p, x, y: nn.cross_entropy(model.logits(p, x), y), backend=args.backend
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
