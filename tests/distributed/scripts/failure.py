"""A rank that fails mid-run. argv: kill | raise | hang | mismatch | shapes.

The run must end with an error on every rank, never hang: the test gives it
a deadline far shorter than a hang.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from common import data, model, plain_loss

import graphc as gc

mode = sys.argv[1]
comm = gc.distributed.init()
x, y = data()
hidden = 9 if mode == "mismatch" and comm.rank == 1 else 8
b = 6 if mode == "shapes" and comm.rank == 1 else 8
step = gc.train_step(plain_loss, gc.optim.SGD(0.1), backend="llvm", data_parallel=comm)
state = step.init(model(hidden)) if mode != "mismatch" else None
if mode == "mismatch":
    # init's broadcast would already disagree; build the state locally instead.
    params = model(hidden)
    state = gc.TrainState(params, step.optimizer.init(params), None, gc.random.key(0))
for k in range(20):
    if comm.rank == 1 and k == 3:
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "raise":
            raise RuntimeError("rank 1 failed on purpose")
        if mode == "hang":
            time.sleep(600)
    state, loss = step(state, x[:b], y[:b])
print(f"rank {comm.rank} finished, which it must not")
