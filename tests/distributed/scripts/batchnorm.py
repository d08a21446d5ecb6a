"""BatchNorm in a data-parallel step: sync=True matches one process with the
global batch; local statistics are averaged so replicas stay identical."""

from __future__ import annotations

import numpy as np
from common import assert_same_on_all_ranks

import graphc as gc
from graphc.pytree import tree_flatten

comm = gc.distributed.init()
rng = np.random.default_rng(0)
x = rng.normal(size=(16, 3)).astype(np.float32) * np.array([1.0, 5.0, 0.1], np.float32)
y = rng.normal(size=(16, 1)).astype(np.float32)
w = rng.normal(size=(3, 1)).astype(np.float32)


def make(sync: bool):  # noqa: ANN202
    bn = gc.nn.BatchNorm(3, sync=sync)

    def loss(p, x, y, model_state):  # noqa: ANN001, ANN202
        h, new_state = bn(p["bn"], model_state, x, train=True)
        return np.mean((h @ p["w"] - y) ** 2), new_state

    return bn, loss


for sync in (True, False):
    bn, loss = make(sync)
    params = {"bn": bn.init(), "w": w}
    step = gc.train_step(loss, gc.optim.SGD(0.1), backend="llvm", data_parallel=comm)
    state = step.init(params, model_state=bn.init_state())
    half = 8
    for _ in range(2):
        part = slice(comm.rank * half, (comm.rank + 1) * half)
        state, value = step(state, x[part], y[part])
        assert_same_on_all_ranks(comm, state)
    if sync:
        _, alone_loss = make(False)  # one process: its batch is the global batch
        ref_step = gc.train_step(alone_loss, gc.optim.SGD(0.1), backend="llvm")
        ref = ref_step.init(params, model_state=bn.init_state())
        for _ in range(2):
            ref, ref_value = ref_step(ref, x, y)
        for a, b in zip(tree_flatten(state.params)[0], tree_flatten(ref.params)[0]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state.model_state["mean"], ref.model_state["mean"], rtol=1e-5)
        np.testing.assert_allclose(value, ref_value, rtol=1e-5)
print(f"rank {comm.rank} ok bn")
