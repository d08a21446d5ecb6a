"""Train an MLP on scikit-learn's handwritten digits through graphc, and show its IR.

    python examples/mlp_digits.py --backend llvm --epochs 40
    mpiexec -n 2 python examples/mlp_digits.py --data-parallel


The model is a plain NumPy function. graphc traces it, differentiates it, and
compiles forward, backward and the Adam update into one train step; the script
prints the traced loss, the compiled train step, and the test accuracy.

With ``--data-parallel`` (under ``mpiexec -n N``) every rank trains on its
``batch-size / N`` rows of each global batch, and the gradients are averaged
over the ranks inside the compiled step; only rank 0 prints.
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


def example_inputs():
    """What ``graphc report|render|dump|bench examples/mlp_digits.py`` compiles:
    the loss (default) or ``:forward``, on one batch of random digits-shaped data."""
    rng = np.random.default_rng(0)
    x = rng.random((64, 64), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    params = init_params(0)
    return {"loss_fn": (params, x, y), "forward": (params, x)}


def parse_args(argv):
    parser = common.parser(__doc__)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ir", action="store_true", help="don't print the IR")
    parser.add_argument(
        "--data-parallel",
        action="store_true",
        help="average gradients over the MPI ranks (run under mpiexec); "
        "--batch-size stays the global batch",
    )
    parser.add_argument(
        "--compress",
        choices=["bf16", "f16"],
        default=None,
        help="with --data-parallel: send gradients as 16-bit floats",
    )
    common.add_run_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    comm = gc.distributed.init() if args.data_parallel else None
    global_batch = args.batch_size
    if comm is not None:
        if global_batch % comm.size:
            raise SystemExit(f"--batch-size {global_batch} must divide over {comm.size} ranks")
        args.batch_size = global_batch // comm.size
        if comm.rank != 0:
            args.quiet = args.no_ir = True
    x_train, x_test, y_train, y_test = common.load_digits(args.seed)
    params = init_params(args.seed)
    batch = (x_train[: args.batch_size], y_train[: args.batch_size])

    if not args.no_ir:
        print("== the traced loss function ==")
        print(gc.trace(loss_fn, params, *batch))

    schedule = gc.optim.warmup_cosine(args.lr, 50, args.epochs * (len(x_train) // global_batch))
    parallel = None
    if comm is not None:
        parallel = gc.distributed.DataParallel(comm, compress=args.compress or "")
    step = gc.train_step(
        loss_fn,
        gc.optim.Adam(schedule),
        backend=args.backend,
        mixed_precision=args.precision,
        has_aux=True,
        data_parallel=parallel,
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
    if comm is not None and comm.rank != 0:
        return {"accuracy": accuracy, "seconds": elapsed, "history": history}
    ranks = f"  {comm.size} ranks" if comm is not None else ""
    if args.compress:
        ranks += f" ({args.compress} gradients)"
    print(
        f"backend {compiled.backend}{ranks}  train time {elapsed:.2f}s  "
        f"({history['samples_per_second'][-1]:.0f} samples/s)  final loss "
        f"{history.loss[-1]:.4f}  test accuracy {accuracy:.4f}"
    )
    return {"accuracy": accuracy, "seconds": elapsed, "history": history}


if __name__ == "__main__":
    main()
