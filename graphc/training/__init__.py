"""Compiled training: the one-graph train step and the loop around it.

>>> import numpy as np, graphc as gc
>>> step = gc.train_step(lambda p, x: np.mean((x - p) ** 2), gc.optim.Adam(0.1),
...                      backend="interpret")
>>> state, history = gc.fit(step, step.init(np.zeros(2, np.float32)),
...                         np.ones((16, 2), np.float32), epochs=2, batch_size=8,
...                         progress=False)
>>> state.step, len(history.loss)
(4, 2)
"""

from .diagnostics import gradient_alerts, observe
from .loop import CHECKPOINT_NAME, EarlyStopping, FitError, History, epoch_order, fit
from .plot import plot_history
from .step import Rng, TrainState, TrainStep, train_step

__all__ = [
    "CHECKPOINT_NAME",
    "EarlyStopping",
    "FitError",
    "History",
    "Rng",
    "TrainState",
    "TrainStep",
    "epoch_order",
    "fit",
    "gradient_alerts",
    "observe",
    "plot_history",
    "train_step",
]
