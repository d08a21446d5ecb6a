"""Train an MLP on scikit-learn's handwritten digits through graphc, and show its IR.

    python examples/mlp_digits.py --backend llvm --epochs 30

The model is a plain NumPy function; graphc traces it, differentiates it and
compiles the whole training step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import graphc as gc


def loss_fn(params, x, y):
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    h = np.maximum(h @ params["w2"] + params["b2"], 0.0)
    logits = h @ params["w3"] + params["b3"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(y)), y])


def predict(params, x):
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    h = np.maximum(h @ params["w2"] + params["b2"], 0.0)
    return np.argmax(h @ params["w3"] + params["b3"], axis=1)


def init_params(rng, sizes=(64, 256, 256, 10)):
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        bound = np.sqrt(6.0 / fan_in)  # He uniform, for ReLU
        params[f"w{i}"] = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
        params[f"b{i}"] = np.zeros(fan_out, np.float32)
    return params


def load_digits(seed):
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    data = sk_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)


def adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    def init(params):
        zeros = {k: np.zeros_like(v) for k, v in params.items()}
        return {"m": zeros, "v": {k: np.zeros_like(v) for k, v in params.items()}, "t": 0}

    def update(grads, state, params):
        t = state["t"] + 1
        for k, g in grads.items():
            state["m"][k] = b1 * state["m"][k] + (1 - b1) * g
            state["v"][k] = b2 * state["v"][k] + (1 - b2) * g * g
            m_hat = state["m"][k] / (1 - b1**t)
            v_hat = state["v"][k] / (1 - b2**t)
            params[k] = params[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
        state["t"] = t
        return params, state

    return init, update


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        choices=["numpy", "llvm"],
        default=None,
        help="compiler backend (default: the fastest available)",
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ir", action="store_true", help="don't print the IR")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x_train, x_test, y_train, y_test = load_digits(args.seed)
    params = init_params(rng)

    if not args.no_ir:
        print("== the traced loss function ==")
        print(gc.trace(loss_fn, params, x_train[: args.batch_size], y_train[: args.batch_size]))

    step = gc.jit(gc.value_and_grad(loss_fn), backend=args.backend)
    opt_init, opt_update = adam(args.lr)
    opt_state = opt_init(params)
    start = time.perf_counter()
    n = len(x_train) - len(x_train) % args.batch_size
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))[:n]
        losses = []
        for i in range(0, n, args.batch_size):
            idx = order[i : i + args.batch_size]
            loss, grads = step(params, x_train[idx], y_train[idx])
            params, opt_state = opt_update(grads, opt_state, params)
            losses.append(float(loss))
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            print(f"epoch {epoch + 1:3d}  loss {np.mean(losses):.4f}")
    elapsed = time.perf_counter() - start
    accuracy = float(np.mean(predict(params, x_test) == y_test))
    if not args.no_ir:
        print("== the optimized value-and-grad graph ==")
        print(step.optimized_graph)
    batch = (params, x_train[: args.batch_size], y_train[: args.batch_size])
    print(
        f"backend {step.lower(*batch).backend}  train time {elapsed:.2f}s  "
        f"test accuracy {accuracy:.4f}"
    )
    return accuracy


if __name__ == "__main__":
    main()
