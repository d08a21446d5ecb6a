"""Train a small convolutional network on scikit-learn's 8x8 digits through graphc.

    python examples/cnn_digits.py --backend llvm

conv 3x3 (16) -> relu -> max-pool 2 -> conv 3x3 (32) -> relu -> max-pool 2 ->
dropout -> linear (10), written with ``gc.nn`` layers, trained with Adam and
a warmup-cosine schedule. One compiled graph runs forward, backward and the
update; the script prints the test accuracy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import graphc as gc
from graphc import nn

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


def load_digits(seed):
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    data = sk_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None, :, :]  # NCHW
    y = data.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        choices=["numpy", "llvm", "interpret"],
        default=None,
        help="compiler backend (default: the fastest available; interpret is the slow reference)",
    )
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=None, help="write the loss curves to this PNG")
    parser.add_argument("--checkpoint-dir", default=None, help="save and resume training here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    x_train, x_test, y_train, y_test = load_digits(args.seed)
    steps = args.epochs * (len(x_train) // args.batch_size)
    optimizer = gc.optim.Adam(gc.optim.warmup_cosine(args.lr, min(50, steps // 10), steps))
    step = gc.train_step(loss_fn, optimizer, backend=args.backend, has_aux=True)
    predict = gc.jit(lambda p, x: np.argmax(forward(p, x), axis=1), backend=args.backend)

    def evaluate(state, x, y):
        return {"accuracy": np.mean(predict(state.params, x) == y)}

    def log(record):
        if not args.quiet and (record["epoch"] % 5 == 0 or record["epoch"] == args.epochs):
            print(
                f"epoch {record['epoch']:3d}  loss {record['loss']:.4f}  "
                f"train acc {record['accuracy']:.4f}  test acc {record['val_accuracy']:.4f}"
            )

    state = step.init(init_params(args.seed), seed=args.seed)
    backend = step.lower(state, x_train[: args.batch_size], y_train[: args.batch_size]).backend
    start = time.perf_counter()
    state, history = gc.fit(
        step,
        state,
        (x_train, y_train),
        epochs=args.epochs,
        batch_size=args.batch_size,
        eval_fn=evaluate,
        eval_data=(x_test, y_test),
        seed=args.seed,
        progress=not args.quiet,
        checkpoint_dir=args.checkpoint_dir,
        plot=args.plot,
        on_epoch=log,
    )
    elapsed = time.perf_counter() - start
    accuracy = float(evaluate(state, x_test, y_test)["accuracy"])
    print(f"backend {backend}  train time {elapsed:.2f}s  test accuracy {accuracy:.4f}")
    return {"accuracy": accuracy, "seconds": elapsed, "history": history}


if __name__ == "__main__":
    main()
