"""What the example scripts share: their command line, the training run around
``gc.fit``, the digits data and the report of the character-level models.

The scripts put this directory on ``sys.path`` and ``import common``, so each
still runs as ``python examples/<name>.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import stdlib_text

import graphc as gc


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by the first line of ``doc``, with ``--backend``."""
    result = argparse.ArgumentParser(description=doc.splitlines()[0])
    result.add_argument(
        "--backend",
        choices=["numpy", "llvm", "interpret"],
        default=None,
        help="compiler backend (default: the fastest available; interpret is the slow reference)",
    )
    result.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="mixed precision: 16-bit matmuls and activations, float32 weights and reductions",
    )
    return result


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options every script ends with: loss plot, checkpoints, quiet."""
    parser.add_argument("--plot", default=None, help="write the loss curves to this PNG")
    parser.add_argument("--checkpoint-dir", default=None, help="save and resume training here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")


def fit(args, step, state, train, evaluate, held_out, log):
    """``gc.fit`` with the script's options; returns (state, history, seconds)."""
    start = time.perf_counter()
    state, history = gc.fit(
        step,
        state,
        train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        eval_fn=evaluate,
        eval_data=held_out,
        seed=args.seed,
        progress=not args.quiet,
        checkpoint_dir=args.checkpoint_dir,
        plot=args.plot,
        on_epoch=log,
    )
    if history.note and not args.quiet:
        print(history.note)  # a finished run in --checkpoint-dir trains nothing again
    return state, history, time.perf_counter() - start


# -- digits ---------------------------------------------------------------------------------


def load_digits(seed, *, images=False):
    """scikit-learn's 8x8 digits scaled to [0, 1], split 80/20: flat rows, or
    NCHW images with ``images``."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    data = sk_digits()
    if images:
        x = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    else:
        x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)


def digits_accuracy(forward, backend):
    """An ``eval_fn`` for ``gc.fit``: the accuracy of ``forward``'s argmax."""
    predict = gc.jit(lambda p, x: np.argmax(forward(p, x), axis=1), backend=backend)

    def evaluate(state, x, y):
        return {"accuracy": np.mean(predict(state.params, x) == y)}

    return evaluate


def digits_log(args):
    """An ``on_epoch`` callback printing loss and accuracies every fifth epoch."""

    def log(record):
        if not args.quiet and (record["epoch"] % 5 == 0 or record["epoch"] == args.epochs):
            print(
                f"epoch {record['epoch']:3d}  loss {record['loss']:.4f}  "
                f"train acc {record['accuracy']:.4f}  test acc {record['val_accuracy']:.4f}"
            )

    return log


# -- character-level models -----------------------------------------------------------------


def train_text_model(args, step, params, held_out_loss, corpus, sample):
    """Train a character model, reporting bits per character against the
    unigram entropy, then print ``sample(params)`` unless ``--sample 0``.

    ``corpus`` is what :func:`stdlib_text.prepare` returns; ``held_out_loss``
    maps (params, x, y) to the mean cross-entropy in nats.
    """
    vocab, (x_train, y_train), (x_val, y_val), entropy = corpus
    batch = args.batch_size

    def evaluate(state, x, y):
        n = len(x) // batch * batch
        losses = [
            held_out_loss(state.params, x[i : i + batch], y[i : i + batch])
            for i in range(0, n, batch)
        ]
        return {"bits_per_char": stdlib_text.bits(float(np.mean(losses)))}

    def log(record):
        if not args.quiet:
            print(
                f"epoch {record['epoch']:3d}  train {stdlib_text.bits(record['loss']):.3f} "
                f"bits/char  held-out {record['val_bits_per_char']:.3f} bits/char"
            )

    state = step.init(params, seed=args.seed)
    started = time.perf_counter()
    backend = step.lower(state, x_train[:batch], y_train[:batch]).backend
    first_call = time.perf_counter() - started
    print(
        f"corpus: {len(x_train) * args.seq_len} training characters, vocabulary {len(vocab)}, "
        f"unigram entropy {entropy:.3f} bits/char"
    )
    print(f"train step compiled on first call in {first_call:.2f}s")
    state, history, elapsed = fit(
        args, step, state, (x_train, y_train), evaluate, (x_val, y_val), log
    )
    held_out = history["val_bits_per_char"][-1]
    print(
        f"backend {backend}  train time {elapsed:.2f}s  held-out {held_out:.3f} bits/char  "
        f"(unigram entropy {entropy:.3f}, ratio {held_out / entropy:.2f})"
    )
    text = ""
    if args.sample:
        text = sample(state.params)
        print("== sample ==")
        print(text)
    return {
        "bits_per_char": held_out,
        "unigram_bits": entropy,
        "seconds": elapsed,
        "first_call_seconds": first_call,
        "sample": text,
    }
