"""Shared by the MPI test scripts: a small model and its data."""

from __future__ import annotations

import hashlib

import numpy as np

import graphc as gc
from graphc.pytree import tree_flatten


def model(hidden: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(size=(5, hidden)).astype(np.float32),
        "b1": np.zeros(hidden, np.float32),
        "w2": rng.normal(size=(hidden, 1)).astype(np.float32),
    }


def data(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    return x, np.sin(x.sum(axis=1, keepdims=True)).astype(np.float32)


def loss(p, x, y, rng):  # noqa: ANN001, ANN201
    h = np.tanh(x @ p["w1"] + p["b1"])
    h = rng.dropout(h, 0.25)
    return np.mean((h @ p["w2"] - y) ** 2)


def plain_loss(p, x, y):  # noqa: ANN001, ANN201
    return np.mean((np.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] - y) ** 2)


def assert_same_on_all_ranks(comm: gc.distributed.Communicator, tree: object) -> None:
    """Every rank holds bitwise the same arrays."""
    digest = hashlib.sha256()
    for leaf in tree_flatten(tree)[0]:
        digest.update(np.ascontiguousarray(leaf).tobytes())
    every = comm.gather_bytes(digest.digest())
    assert all(d == every[0] for d in every), f"rank {comm.rank}: ranks differ"
