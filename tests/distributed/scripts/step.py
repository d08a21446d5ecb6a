"""A data-parallel train step against one process with the double batch.

argv: backend. Each rank takes its half of every global batch; the averaged
step must match the single-process step with the whole global batch (float32
tolerance: the sums are split differently), and ranks must agree bitwise.
"""

from __future__ import annotations

import sys

import numpy as np
from common import assert_same_on_all_ranks, data, model, plain_loss

import graphc as gc

backend = sys.argv[1]
comm = gc.distributed.init()
x, y = data()
b, steps = 8, 3
step = gc.train_step(plain_loss, gc.optim.Adam(0.05), backend=backend, data_parallel=comm)
# Rank 1 starts from other parameters: init must replace them by rank 0's.
state = step.init(model(seed=comm.rank))
assert_same_on_all_ranks(comm, state)
for k in range(steps):
    lo = (k * comm.size + comm.rank) * b
    state, loss = step(state, x[lo : lo + b], y[lo : lo + b])
    assert_same_on_all_ranks(comm, state.params)
    assert_same_on_all_ranks(comm, loss)

alone = gc.train_step(plain_loss, gc.optim.Adam(0.05), backend=backend)
ref = alone.init(model(seed=0))
B = b * comm.size
for k in range(steps):
    ref, ref_loss = alone(ref, x[k * B : (k + 1) * B], y[k * B : (k + 1) * B])
for name, value in state.params.items():
    np.testing.assert_allclose(value, ref.params[name], rtol=2e-5, atol=2e-6, err_msg=name)
np.testing.assert_allclose(loss, ref_loss, rtol=2e-5)
assert int(state.step) == steps
# The gradients are summed by all_reduce nodes inside the compiled step.
assert "all_reduce" in {n.op for n in step.lower(state, x[:b], y[:b]).optimized_graph.nodes}
print(f"rank {comm.rank} ok {backend}")

# Gradients sent as bfloat16: ranks still agree bitwise; the parameters stay
# within bfloat16 rounding of the full-precision run.
options = gc.distributed.DataParallel(comm, compress="bf16")
packed = gc.train_step(plain_loss, gc.optim.Adam(0.05), backend=backend, data_parallel=options)
small = packed.init(model(seed=0))
for k in range(steps):
    lo = (k * comm.size + comm.rank) * b
    small, small_loss = packed(small, x[lo : lo + b], y[lo : lo + b])
    assert_same_on_all_ranks(comm, small.params)
for name, value in small.params.items():
    np.testing.assert_allclose(value, state.params[name], rtol=0.05, atol=0.02, err_msg=name)
graph = packed.lower(small, x[:b], y[:b]).optimized_graph
assert any(n.op == "all_reduce" and n.attrs["compress"] == "bf16" for n in graph.nodes)
print(f"rank {comm.rank} ok {backend} bf16")

# Nonblocking buckets (started during the backward, waited for after it) give
# the same bits as blocking ones.
blocking = None
for overlap in (False, True):
    options = gc.distributed.DataParallel(comm, bucket_bytes=64, overlap=overlap)
    stepper = gc.train_step(plain_loss, gc.optim.Adam(0.05), backend=backend, data_parallel=options)
    s = stepper.init(model(seed=0))
    for k in range(steps):
        lo = (k * comm.size + comm.rank) * b
        s, _ = stepper(s, x[lo : lo + b], y[lo : lo + b])
    if blocking is not None:
        for name, value in s.params.items():
            assert np.array_equal(value, blocking.params[name]), name
        ops = [n.op for n in stepper.lower(s, x[:b], y[:b]).optimized_graph.nodes]
        assert ops.count("all_reduce_start") == ops.count("all_reduce_done") == 3, ops
    blocking = s
print(f"rank {comm.rank} ok {backend} overlap")
