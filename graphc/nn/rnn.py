"""Recurrent cells (RNN, LSTM, GRU) and a Python-unrolled loop over time.

A cell's ``apply(params, carry, x) -> (new_carry, output)`` handles one time
step for a batch ``x`` of shape (batch, input_size). ``unroll`` runs a cell over
a sequence with an ordinary Python loop, so a traced sequence of fixed length
becomes a straight-line graph.

Gate weights are stacked along the last axis: ``w_ih`` is (input, gates * hidden),
``w_hh`` is (hidden, gates * hidden); input weights are Glorot-uniform and each
gate's recurrent block is orthogonal.

>>> cell = LSTMCell(3, 5)
>>> params = cell.init(0)
>>> carry = cell.init_carry(2)
>>> carry, y = cell(params, carry, np.ones((2, 3), np.float32))
>>> y.shape, carry[1].shape
((2, 5), (2, 5))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir import OpTypeError
from . import init as initializers
from .activations import sigmoid

__all__ = ["GRUCell", "LSTMCell", "RNNCell", "unroll"]

Initializer = Callable[..., np.ndarray]


def _gate_weights(
    rng: np.random.Generator,
    input_size: int,
    hidden: int,
    gates: int,
    w_init: Initializer,
    u_init: Initializer,
    dtype: Any,
) -> tuple[np.ndarray, np.ndarray]:
    w_ih = np.concatenate([w_init(rng, (input_size, hidden), dtype) for _ in range(gates)], 1)
    w_hh = np.concatenate([u_init(rng, (hidden, hidden), dtype) for _ in range(gates)], 1)
    return w_ih, w_hh


def _gate(z: Any, k: int, hidden: int) -> Any:
    return z[..., k * hidden : (k + 1) * hidden]


@dataclass(frozen=True)
class RNNCell:
    """Elman cell: h' = tanh(x @ w_ih + h @ w_hh + b) (or relu). Carry: h.

    >>> RNNCell(2, 4).init(0)["w_hh"].shape
    (4, 4)
    """

    input_size: int
    hidden_size: int
    nonlinearity: str = "tanh"
    w_init: Initializer = initializers.glorot_uniform
    u_init: Initializer = initializers.orthogonal
    dtype: Any = np.float32

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        w_ih, w_hh = _gate_weights(
            rng, self.input_size, self.hidden_size, 1, self.w_init, self.u_init, self.dtype
        )
        return {"w_ih": w_ih, "w_hh": w_hh, "b": np.zeros(self.hidden_size, self.dtype)}

    def init_carry(self, batch: int) -> np.ndarray:
        return np.zeros((batch, self.hidden_size), self.dtype)

    def apply(self, params: dict[str, Any], carry: Any, x: Any) -> tuple[Any, Any]:
        z = x @ params["w_ih"] + carry @ params["w_hh"] + params["b"]
        if self.nonlinearity == "tanh":
            h = np.tanh(z)
        elif self.nonlinearity == "relu":
            h = np.maximum(z, 0.0)
        else:
            raise OpTypeError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', not {self.nonlinearity!r}"
            )
        return h, h

    __call__ = apply


@dataclass(frozen=True)
class LSTMCell:
    """Long short-term memory cell; gates in the order input, forget, cell, output.

    The forget-gate bias starts at ``forget_bias`` (1.0), so the cell initially
    remembers (Jozefowicz et al., 2015). Carry: (h, c).

    >>> LSTMCell(2, 4).init(0)["b"].reshape(4, 4)[1].tolist()
    [1.0, 1.0, 1.0, 1.0]
    """

    input_size: int
    hidden_size: int
    forget_bias: float = 1.0
    w_init: Initializer = initializers.glorot_uniform
    u_init: Initializer = initializers.orthogonal
    dtype: Any = np.float32

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        hidden = self.hidden_size
        w_ih, w_hh = _gate_weights(
            rng, self.input_size, hidden, 4, self.w_init, self.u_init, self.dtype
        )
        b = np.zeros(4 * hidden, self.dtype)
        b[hidden : 2 * hidden] = self.forget_bias
        return {"w_ih": w_ih, "w_hh": w_hh, "b": b}

    def init_carry(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        zeros = np.zeros((batch, self.hidden_size), self.dtype)
        return zeros, zeros.copy()

    def apply(self, params: dict[str, Any], carry: Any, x: Any) -> tuple[Any, Any]:
        h, c = carry
        hidden = self.hidden_size
        z = x @ params["w_ih"] + h @ params["w_hh"] + params["b"]
        i = sigmoid(_gate(z, 0, hidden))
        f = sigmoid(_gate(z, 1, hidden))
        g = np.tanh(_gate(z, 2, hidden))
        o = sigmoid(_gate(z, 3, hidden))
        c = f * c + i * g
        h = o * np.tanh(c)
        return (h, c), h

    __call__ = apply


@dataclass(frozen=True)
class GRUCell:
    """Gated recurrent unit with gates reset, update, new (PyTorch's formulation):

    r = s(x W_ir + b_ir + h W_hr + b_hr), z = s(x W_iz + b_iz + h W_hz + b_hz),
    n = tanh(x W_in + b_in + r * (h W_hn + b_hn)), h' = (1 - z) * n + z * h.
    Carry: h.

    >>> GRUCell(2, 4).init(0)["w_ih"].shape
    (2, 12)
    """

    input_size: int
    hidden_size: int
    w_init: Initializer = initializers.glorot_uniform
    u_init: Initializer = initializers.orthogonal
    dtype: Any = np.float32

    def init(self, rng: Any = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        hidden = self.hidden_size
        w_ih, w_hh = _gate_weights(
            rng, self.input_size, hidden, 3, self.w_init, self.u_init, self.dtype
        )
        zeros = np.zeros(3 * hidden, self.dtype)
        return {"w_ih": w_ih, "w_hh": w_hh, "b_ih": zeros, "b_hh": zeros.copy()}

    def init_carry(self, batch: int) -> np.ndarray:
        return np.zeros((batch, self.hidden_size), self.dtype)

    def apply(self, params: dict[str, Any], carry: Any, x: Any) -> tuple[Any, Any]:
        hidden = self.hidden_size
        gi = x @ params["w_ih"] + params["b_ih"]
        gh = carry @ params["w_hh"] + params["b_hh"]
        r = sigmoid(_gate(gi, 0, hidden) + _gate(gh, 0, hidden))
        z = sigmoid(_gate(gi, 1, hidden) + _gate(gh, 1, hidden))
        n = np.tanh(_gate(gi, 2, hidden) + r * _gate(gh, 2, hidden))
        h = (1.0 - z) * n + z * carry
        return h, h

    __call__ = apply


def unroll(cell: Any, params: Any, carry: Any, xs: Any, *, time_axis: int = 0) -> tuple[Any, Any]:
    """Run ``cell`` over the sequence ``xs``; returns ``(final_carry, outputs)``.

    ``xs`` has time on ``time_axis`` (0: (time, batch, features); 1: batch
    first); the outputs are stacked on the same axis. The loop is unrolled,
    one copy of the cell per time step.

    >>> cell = RNNCell(3, 4)
    >>> carry, ys = unroll(cell, cell.init(0), cell.init_carry(2), np.ones((5, 2, 3)))
    >>> ys.shape
    (5, 2, 4)
    """
    if time_axis not in (0, 1):
        raise OpTypeError(f"unroll: time_axis must be 0 or 1, not {time_axis}")
    outputs = []
    for t in range(xs.shape[time_axis]):
        x = xs[t] if time_axis == 0 else xs[:, t]
        carry, y = cell.apply(params, carry, x)
        outputs.append(y)
    return carry, np.stack(outputs, axis=time_axis)
