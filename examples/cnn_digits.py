"""Train a small convolutional network on scikit-learn's 8x8 digits through graphc.

    python examples/cnn_digits.py --backend llvm

conv 3x3 (16) -> relu -> max-pool 2 -> conv 3x3 (32) -> relu -> max-pool 2 ->
dropout -> linear (10), written with ``gc.nn`` layers, trained with Adam and
a warmup-cosine schedule. One compiled graph runs forward, backward and the
update; the script prints the test accuracy.
"""

from __future__ import annotations

import os
import sys

import graphc as gc
from graphc import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONV1 = nn.Conv2d(1, 16, 3, padding="same", w_init=nn.init.he_uniform)
CONV2 = nn.Conv2d(16, 32, 3, padding="same", w_init=nn.init.he_uniform)
HEAD = nn.Linear(32 * 2 * 2, 10)


def forward(params, x, rng=None):
    h = nn.max_pool2d(nn.relu(CONV1(params["conv1"], x)), 2)
    h = nn.max_pool2d(nn.relu(CONV2(params["conv2"], h)), 2)
    h = nn.flatten(h)
    if rng is not None:
        h = rng.dropout(h, 0.2)
    return HEAD(params["head"], h)


def loss_fn(params, x, y, rng):
    logits = forward(params, x, rng)
    return nn.cross_entropy(logits, y), {"accuracy": nn.accuracy(logits, y)}


def init_params(seed):
    return {"conv1": CONV1.init(seed), "conv2": CONV2.init(seed + 1), "head": HEAD.init(seed + 2)}


def parse_args(argv):
    parser = common.parser(__doc__)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    common.add_run_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    x_train, x_test, y_train, y_test = common.load_digits(args.seed, images=True)
    steps = args.epochs * (len(x_train) // args.batch_size)
    optimizer = gc.optim.Adam(gc.optim.warmup_cosine(args.lr, min(50, steps // 10), steps))
    step = gc.train_step(
        loss_fn, optimizer, backend=args.backend, mixed_precision=args.precision, has_aux=True
    )
    evaluate = common.digits_accuracy(forward, args.backend)

    state = step.init(init_params(args.seed), seed=args.seed)
    backend = step.lower(state, x_train[: args.batch_size], y_train[: args.batch_size]).backend
    state, history, elapsed = common.fit(
        args, step, state, (x_train, y_train), evaluate, (x_test, y_test), common.digits_log(args)
    )
    accuracy = float(evaluate(state, x_test, y_test)["accuracy"])
    print(f"backend {backend}  train time {elapsed:.2f}s  test accuracy {accuracy:.4f}")
    return {"accuracy": accuracy, "seconds": elapsed, "history": history}


if __name__ == "__main__":
    main()
