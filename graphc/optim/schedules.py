"""Learning-rate schedules: functions of the step count.

A schedule maps ``step`` (the number of updates done so far: a Python int, an
integer array, or a traced integer scalar) to a learning rate. Each is written
with ``np.where``/``np.minimum``/``np.cos`` and no Python branching on the step,
so inside a compiled train step the step is an ordinary input and changing it
never retraces.

>>> sched = join([linear_warmup(0.1, 10), cosine_decay(0.1, 90)], boundaries=[10])
>>> [round(float(sched(s)), 4) for s in (0, 5, 10, 55, 100, 200)]
[0.0, 0.05, 0.1, 0.05, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..ir import OpTypeError

__all__ = [
    "Schedule",
    "constant",
    "cosine_decay",
    "exponential_decay",
    "join",
    "linear",
    "linear_warmup",
    "piecewise_constant",
    "step_decay",
    "warmup_cosine",
]

Schedule = Callable[[Any], Any]


def _positive(value: float, what: str) -> None:
    if not value > 0:
        raise OpTypeError(f"schedule: {what} must be positive, got {value}")


def constant(value: float) -> Schedule:
    """The same rate at every step.

    >>> constant(0.01)(1000)
    0.01
    """
    return lambda step: value


def step_decay(init: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """``init * gamma ** (step // step_size)``: multiply by gamma every step_size steps.

    >>> [float(step_decay(1.0, 10, 0.5)(s)) for s in (0, 9, 10, 25)]
    [1.0, 1.0, 0.5, 0.25]
    """
    _positive(step_size, "step_size")
    return lambda step: init * gamma ** np.floor_divide(step, step_size)


def exponential_decay(
    init: float, decay_rate: float, decay_steps: int = 1, staircase: bool = False
) -> Schedule:
    """``init * decay_rate ** (step / decay_steps)`` (exponent floored with ``staircase``).

    >>> round(float(exponential_decay(1.0, 0.5, 10)(5)), 6)
    0.707107
    """
    _positive(decay_steps, "decay_steps")

    def schedule(step: Any) -> Any:
        exponent = np.floor_divide(step, decay_steps) if staircase else step / decay_steps
        return init * decay_rate**exponent

    return schedule


def cosine_decay(init: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    """Half a cosine from ``init`` down to ``alpha * init`` over decay_steps, then flat.

    >>> [round(float(cosine_decay(1.0, 10)(s)), 4) for s in (0, 5, 10, 20)]
    [1.0, 0.5, 0.0, 0.0]
    """
    _positive(decay_steps, "decay_steps")

    def schedule(step: Any) -> Any:
        progress = np.minimum(step, decay_steps) / decay_steps
        return init * ((1.0 - alpha) * 0.5 * (1.0 + np.cos(np.pi * progress)) + alpha)

    return schedule


def linear(init: float, end: float, steps: int) -> Schedule:
    """A straight line from ``init`` at step 0 to ``end`` at ``steps``, then flat.

    >>> [float(linear(1.0, 0.0, 4)(s)) for s in (0, 1, 4, 9)]
    [1.0, 0.75, 0.0, 0.0]
    """
    _positive(steps, "steps")
    return lambda step: init + (end - init) * (np.minimum(step, steps) / steps)


def linear_warmup(peak: float, warmup_steps: int, init: float = 0.0) -> Schedule:
    """Rise linearly from ``init`` to ``peak`` over warmup_steps, then stay at peak.

    >>> [float(linear_warmup(1.0, 4)(s)) for s in (0, 2, 4, 8)]
    [0.0, 0.5, 1.0, 1.0]
    """
    return linear(init, peak, warmup_steps)


def piecewise_constant(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """``values[i]`` on the i-th interval; a boundary starts its new interval.

    >>> [float(piecewise_constant([10, 20], [1.0, 0.1, 0.01])(s)) for s in (9, 10, 25)]
    [1.0, 0.1, 0.01]
    """
    if len(values) != len(boundaries) + 1:
        raise OpTypeError("piecewise_constant: need exactly one more value than boundaries")
    return join([constant(v) for v in values], boundaries)


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[i]`` from ``boundaries[i-1]`` on, restarted at step 0 there.

    >>> warm_then_decay = join([linear_warmup(1.0, 5), step_decay(1.0, 10)], [5])
    >>> [float(warm_then_decay(s)) for s in (0, 5, 14, 15)]
    [0.0, 1.0, 1.0, 0.1]
    """
    if len(schedules) != len(boundaries) + 1 or not schedules:
        raise OpTypeError("join: need exactly one more schedule than boundaries")
    if list(boundaries) != sorted(boundaries):
        raise OpTypeError(f"join: boundaries must be increasing, got {list(boundaries)}")

    def schedule(step: Any) -> Any:
        rate = schedules[0](step)
        for boundary, later in zip(boundaries, schedules[1:]):
            rate = np.where(step >= boundary, later(step - boundary), rate)
        return rate

    return schedule


def warmup_cosine(
    peak: float, warmup_steps: int, decay_steps: int, init: float = 0.0, end: float = 0.0
) -> Schedule:
    """Linear warmup to ``peak``, then cosine decay to ``end`` over decay_steps.

    >>> [round(float(warmup_cosine(1.0, 2, 4)(s)), 3) for s in (0, 1, 2, 4, 6, 9)]
    [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    alpha = end / peak if peak else 0.0
    return join(
        [linear_warmup(peak, warmup_steps, init), cosine_decay(peak, decay_steps, alpha)],
        [warmup_steps],
    )
