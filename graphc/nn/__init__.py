"""graphc.nn: initializers, layers, activations and losses as pure NumPy functions.

Everything here is a plain function of arrays (or a small hyperparameter
object with ``init``/``apply``), so a model written with it runs eagerly on
NumPy arrays and traces into IR unchanged under ``gc.trace``, ``gc.grad`` and
``gc.jit``.

>>> import numpy as np
>>> import graphc as gc
>>> mlp = [gc.nn.Linear(4, 8), gc.nn.Linear(8, 3)]
>>> params = [layer.init(seed) for seed, layer in enumerate(mlp)]
>>> def loss(params, x, y):
...     h = gc.nn.relu(mlp[0](params[0], x))
...     return gc.nn.cross_entropy(mlp[1](params[1], h), y)
>>> float(loss(params, np.ones((2, 4), np.float32), np.array([0, 2]))) > 0
True
"""

from . import init
from .activations import (
    elu,
    gelu,
    leaky_relu,
    log_softmax,
    logsumexp,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    swish,
    tanh,
)
from .layers import (
    AvgPool2d,
    Conv2d,
    Dropout,
    Embedding,
    Linear,
    MaxPool2d,
    avg_pool2d,
    conv2d,
    dropout,
    embedding,
    flatten,
    linear,
    max_pool2d,
)
from .losses import (
    accuracy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_penalty,
    l2_penalty,
    mae,
    mse,
)
from .norm import BatchNorm, LayerNorm, batch_norm, layer_norm
from .rnn import GRUCell, LSTMCell, RNNCell, unroll

__all__ = [
    "AvgPool2d",
    "BatchNorm",
    "Conv2d",
    "Dropout",
    "Embedding",
    "GRUCell",
    "LSTMCell",
    "LayerNorm",
    "Linear",
    "MaxPool2d",
    "RNNCell",
    "accuracy",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "cross_entropy",
    "dropout",
    "elu",
    "embedding",
    "flatten",
    "gelu",
    "init",
    "l1_penalty",
    "l2_penalty",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsumexp",
    "mae",
    "max_pool2d",
    "mse",
    "relu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "swish",
    "tanh",
    "unroll",
]
