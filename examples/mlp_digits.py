"""Train an MLP on scikit-learn's handwritten digits through graphc, and show its IR.

    python examples/mlp_digits.py --backend llvm --epochs 40

The model is a plain NumPy function. graphc traces it, differentiates it, and
compiles forward, backward and the Adam update into one train step; the script
prints the traced loss, the compiled train step, and the test accuracy.
"""

from __future__ import annotations

import os
import sys

import numpy as np

import graphc as gc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def forward(params, x, rng=None):
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    if rng is not None:
        h = rng.dropout(h, 0.1)
    h = np.maximum(h @ params["w2"] + params["b2"], 0.0)
    return h @ params["w3"] + params["b3"]


def loss_fn(params, x, y, rng=None):
    logits = forward(params, x, rng)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -np.mean(logp[np.arange(len(y)), y])
    return loss, {"accuracy": np.mean(np.argmax(logits, axis=1) == y)}


def init_params(seed, sizes=(64, 256, 256, 10)):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"w{i}"] = gc.nn.init.he_uniform(rng, (fan_in, fan_out), np.float32)
        params[f"b{i}"] = np.zeros(fan_out, np.float32)
    return params


def parse_args(argv):
    parser = common.parser(__doc__)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ir", action="store_true", help="don't print the IR")
    common.add_run_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    x_train, x_test, y_train, y_test = common.load_digits(args.seed)
    params = init_params(args.seed)
    batch = (x_train[: args.batch_size], y_train[: args.batch_size])

    if not args.no_ir:
        print("== the traced loss function ==")
        print(gc.trace(loss_fn, params, *batch))

    schedule = gc.optim.warmup_cosine(args.lr, 50, args.epochs * (len(x_train) // args.batch_size))
    step = gc.train_step(
        loss_fn,
        gc.optim.Adam(schedule),
        backend=args.backend,
        mixed_precision=args.precision,
        has_aux=True,
    )
    evaluate = common.digits_accuracy(forward, args.backend)

    state = step.init(params, seed=args.seed)
    compiled = step.lower(state, *batch)
    if not args.no_ir:
        print("== the compiled train step: forward, backward and Adam in one graph ==")
        print(compiled.optimized_graph)

    state, history, elapsed = common.fit(
        args, step, state, (x_train, y_train), evaluate, (x_test, y_test), common.digits_log(args)
    )
    accuracy = float(evaluate(state, x_test, y_test)["accuracy"])
    print(
        f"backend {compiled.backend}  train time {elapsed:.2f}s  "
        f"({history['samples_per_second'][-1]:.0f} samples/s)  test accuracy {accuracy:.4f}"
    )
    return {"accuracy": accuracy, "seconds": elapsed, "history": history}


if __name__ == "__main__":
    main()
