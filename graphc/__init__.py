"""graphc: trace plain NumPy model functions into IR, differentiate, optimize, compile.

>>> import numpy as np, graphc as gc
>>> gc.grad(lambda x: (x ** 2).sum())(np.array([1.0, 2.0]))
array([2., 4.])
"""

from . import checkpoint, distributed, ir, nn, optim, random, training, viz
from .api import grad, hvp, jvp, stop_gradient, value_and_grad, vjp
from .check import GradientCheckError, check_grads
from .control import cond, scan
from .debug import NaNError
from .ir import (
    BackendError,
    DifferentiationError,
    GraphcError,
    GraphcIndexError,
    GraphcOverflowError,
    InputError,
    InputOverflowError,
    LinAlgError,
    OpTypeError,
    ParseError,
    TracingError,
    UnsupportedError,
    VerifyError,
)
from .jit import jit
from .loops import fori_loop, while_loop
from .passes.remat import MemoryBudgetWarning
from .primitives import bind
from .remat import checkpoint_name, remat, save_only_these_names
from .scatter import scatter_add, segment_sum
from .tracing import trace
from .training import (
    EarlyStopping,
    FitError,
    History,
    Rng,
    TrainState,
    TrainStep,
    fit,
    observe,
    plot_history,
    train_step,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "DifferentiationError",
    "EarlyStopping",
    "FitError",
    "GradientCheckError",
    "GraphcError",
    "GraphcIndexError",
    "GraphcOverflowError",
    "LinAlgError",
    "History",
    "InputError",
    "InputOverflowError",
    "MemoryBudgetWarning",
    "NaNError",
    "OpTypeError",
    "ParseError",
    "Rng",
    "TracingError",
    "TrainState",
    "TrainStep",
    "UnsupportedError",
    "VerifyError",
    "bind",
    "check_grads",
    "checkpoint",
    "cond",
    "distributed",
    "fit",
    "fori_loop",
    "grad",
    "hvp",
    "ir",
    "jit",
    "jvp",
    "nn",
    "observe",
    "optim",
    "plot_history",
    "random",
    "remat",
    "checkpoint_name",
    "save_only_these_names",
    "scan",
    "scatter_add",
    "segment_sum",
    "stop_gradient",
    "trace",
    "training",
    "train_step",
    "value_and_grad",
    "vjp",
    "viz",
    "while_loop",
]
