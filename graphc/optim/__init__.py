"""graphc.optim: optimizers, learning-rate schedules, gradient clipping, regularization.

An optimizer is an object with ``init(params) -> state`` and
``update(grads, state, params) -> (new_params, new_state)``, both pure NumPy
over pytrees, so a compiled train step folds the update into its graph.

>>> import numpy as np
>>> import graphc as gc
>>> opt = gc.optim.SGD(lr=gc.optim.step_decay(0.1, 100), momentum=0.9)
>>> params = {"w": np.ones(3)}
>>> state = opt.init(params)
>>> params, state = opt.update({"w": np.ones(3)}, state, params)
>>> params["w"].tolist()
[0.9, 0.9, 0.9]
"""

from .clip import clip_by_global_norm, global_norm, l1_regularize, l2_regularize
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, OptimizerError, RMSprop
from .schedules import (
    Schedule,
    constant,
    cosine_decay,
    exponential_decay,
    join,
    linear,
    linear_warmup,
    piecewise_constant,
    step_decay,
    warmup_cosine,
)

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "OptimizerError",
    "RMSprop",
    "Schedule",
    "clip_by_global_norm",
    "constant",
    "cosine_decay",
    "exponential_decay",
    "global_norm",
    "join",
    "l1_regularize",
    "l2_regularize",
    "linear",
    "linear_warmup",
    "piecewise_constant",
    "step_decay",
    "warmup_cosine",
]
