"""gc.distributed in a process of its own (no launcher): a world of one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import graphc as gc
from graphc.distributed.data_parallel import DataParallel
from graphc.distributed.sharding import shard, steps_per_epoch
from graphc.ir import GraphBuilder, UnsupportedError, f32, parse
from graphc.ir.ops import collective


def loss(p, x, y, rng):  # noqa: ANN001, ANN201
    h = rng.dropout(np.tanh(x @ p["w"] + p["b"]), 0.3)
    return np.mean((h.sum(axis=1) - y) ** 2)


def params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"w": rng.normal(size=(3, 4)).astype(np.float32), "b": np.zeros(4, np.float32)}


def test_init_without_launcher_is_a_world_of_one() -> None:
    comm = gc.distributed.init()
    assert (comm.rank, comm.size, comm.native()) == (0, 1, None)
    x = np.arange(4.0)
    np.testing.assert_array_equal(comm.all_reduce(x, "max"), x)
    assert comm.broadcast({"a": x})["a"] is not x


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_one_rank_equals_the_plain_step_exactly(backend: str) -> None:
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    y = np.ones(6, np.float32)
    plain = gc.train_step(loss, gc.optim.Adam(0.1), backend=backend)
    parallel = gc.train_step(
        loss, gc.optim.Adam(0.1), backend=backend, data_parallel=gc.distributed.init()
    )
    a, b = plain.init(params()), parallel.init(params())
    for _ in range(3):
        a, la = plain(a, x, y)
        b, lb = parallel(b, x, y)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    np.testing.assert_array_equal(la, lb)


def test_buckets_become_all_reduce_nodes() -> None:
    x, y = np.ones((2, 3), np.float32), np.ones(2, np.float32)

    def count(bucket_bytes: int) -> int:
        step = gc.train_step(
            loss, gc.optim.SGD(0.1), backend="numpy", data_parallel=DataParallel(None, bucket_bytes)
        )
        g = step.trace(step.init(params()), x, y)
        return sum(n.op == "all_reduce" for n in g.nodes)

    assert count(1 << 20) == 1  # w, b and the loss in one f32 bucket
    assert count(0) == 3  # one message each


def test_all_reduce_text_and_gradient() -> None:
    b = GraphBuilder("f")
    x = b.input(f32[3], "x")
    g = b.build([b.emit("all_reduce", x, reduction="max", group=2)])
    assert 'all_reduce %x {reduction="max", group=2}' in str(g)
    assert parse(str(g)) == g
    with pytest.raises(UnsupportedError, match="max reduction has no gradient"):
        gc.grad(lambda x: gc.distributed.all_reduce(x, "max").sum())(np.ones(3))
    with pytest.raises(gc.OpTypeError, match="unknown reduction"):
        gc.distributed.all_reduce(np.ones(3), "mean")


def test_launched_process_must_init(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.delitem(collective._GROUPS, 0, raising=False)
    b = GraphBuilder("f")
    g = b.build([b.emit("all_reduce", b.input(f32[2], "x"))])
    with pytest.raises(UnsupportedError, match="call gc.distributed.init"):
        gc.ir.interpret(g, np.ones(2, np.float32))


def test_bad_data_parallel_argument() -> None:
    with pytest.raises(gc.InputError, match="data_parallel must be a Communicator"):
        gc.train_step(loss, gc.optim.SGD(0.1), data_parallel="world")


@given(
    n=st.integers(1, 60),
    batch=st.integers(1, 8),
    size=st.integers(1, 4),
    seed=st.integers(0, 3),
)
def test_shards_cover_each_global_batch_once(n: int, batch: int, size: int, seed: int) -> None:
    order = gc.training.epoch_order(n, seed, 0)
    steps = steps_per_epoch(n, batch, size)
    seen = [shard(order, i, batch, r, size).tolist() for i in range(steps) for r in range(size)]
    flat = [k for part in seen for k in part]
    assert all(len(part) == batch for part in seen)
    # Rank-major within each global batch: exactly one process's batch of size*batch.
    assert flat == order[: steps * size * batch].tolist()
    assert len(set(flat)) == len(flat)
