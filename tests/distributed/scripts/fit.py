"""gc.fit on two ranks: sharding, averaged metrics, rank-0 checkpoints, exact resume.

argv: a scratch directory shared by the ranks.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from common import assert_same_on_all_ranks, data, model

import graphc as gc

workdir = sys.argv[1]
comm = gc.distributed.init()
x, y = data(40)
ids = np.arange(40, dtype=np.float32)


def loss(p, x, y, i):  # noqa: ANN001, ANN201
    value = np.mean((np.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] - y) ** 2)
    return value, {"id_sum": i.sum(), "rows": np.float32(len(i))}


def run(epochs: int, directory: str | None, resume: bool = True) -> tuple[gc.TrainState, object]:
    step = gc.train_step(
        loss, gc.optim.SGD(0.05), backend="numpy", has_aux=True, data_parallel=comm
    )
    return gc.fit(
        step,
        step.init(model()),
        (x, y, ids),
        epochs=epochs,
        batch_size=4,
        checkpoint_dir=directory,
        resume=resume,
        progress=True,
        seed=3,
        early_stopping=gc.EarlyStopping("loss", patience=50),
    )


state, history = run(3, None)
# 40 samples, global batch 8: 5 steps per epoch, every sample once.
for record in history.records:
    steps = 5
    assert record["rows"] == 4, record  # per-rank rows, averaged over ranks and steps
    assert record["id_sum"] * steps * comm.size == ids.sum(), record
assert_same_on_all_ranks(comm, state)
assert_same_on_all_ranks(comm, np.array(history.loss))

ckpt = os.path.join(workdir, "ckpt")
run(2, ckpt, resume=False)
comm.barrier()
files = sorted(os.listdir(ckpt))
assert files == ["checkpoint.npz"], files  # rank 0 wrote it, atomically, alone
resumed, resumed_history = run(3, ckpt)
assert len(resumed_history.records) == 3
for name in state.params:
    assert np.array_equal(resumed.params[name], state.params[name]), name
assert resumed_history.loss == history.loss

# One process with the global batch (8) trains on the same global batches.
alone = gc.train_step(loss, gc.optim.SGD(0.05), backend="numpy", has_aux=True)
ref, ref_history = gc.fit(
    alone, alone.init(model()), (x, y, ids), epochs=3, batch_size=8, progress=False, seed=3
)
for name in state.params:
    np.testing.assert_allclose(state.params[name], ref.params[name], rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(history.loss, ref_history.loss, rtol=1e-5)
print(f"rank {comm.rank} ok fit")
