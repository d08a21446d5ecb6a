"""Random compositions of ops with broadcasting: gradients vs finite differences."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import graphc as gc

# Smooth building blocks, kept in ranges where central differences are accurate.
UNARY = {
    "tanh": np.tanh,
    "sin": np.sin,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "softplus": lambda x: np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))),
    "square": lambda x: x * x * 0.5,
    "log1p_sq": lambda x: np.log1p(x * x),
    "exp_neg_sq": lambda x: np.exp(-x * x),
    "sqrt_1p_sq": lambda x: np.sqrt(1.0 + x * x),
    "atan": np.arctan,
    "transpose": lambda x: x.T,
    "flip": lambda x: x[::-1] if x.ndim else x,
    "cumsum": lambda x: np.cumsum(x, axis=-1) * 0.3 if x.ndim else x,
}
BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": lambda a, b: a / (1.5 + np.sin(b)),
    "max": lambda a, b: np.maximum(a, b + 0.25),
    "pow": lambda a, b: (1.0 + a * a) ** (0.5 + 0.1 * np.tanh(b)),
}
REDUCE = {
    "sum_keep": lambda x: np.sum(x, axis=-1, keepdims=True) * 0.5 if x.ndim else x,
    "mean": lambda x: np.mean(x, axis=0) if x.ndim else x,
    "max_keep": lambda x: np.max(x, axis=-1, keepdims=True) if x.ndim else x,
    "logsumexp": lambda x: np.log(np.sum(np.exp(x), axis=-1, keepdims=True)) if x.ndim else x,
}

SHAPES = [(), (3,), (2, 3), (1, 3), (2, 1), (3, 3)]


@st.composite
def programs(draw):
    depth = draw(st.integers(3, 8))
    steps = []
    for _ in range(depth):
        kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce"]))
        table = {"unary": UNARY, "binary": BINARY, "reduce": REDUCE}[kind]
        steps.append((kind, draw(st.sampled_from(sorted(table))), draw(st.integers(0, 10))))
    shapes = [draw(st.sampled_from(SHAPES)) for _ in range(3)]
    return steps, shapes


def build(steps):
    def f(a, b, c):
        values = [a, b, c]
        for kind, name, pick in steps:
            x = values[pick % len(values)]
            if kind == "unary":
                y = UNARY[name](x)
            elif kind == "reduce":
                y = REDUCE[name](x)
            else:
                other = values[(pick * 7 + 1) % len(values)]
                try:
                    np.broadcast_shapes(np.shape(x), np.shape(other))
                except ValueError:
                    other = np.sum(other)
                y = BINARY[name](x, other)
            values.append(y)
        return np.sum(values[-1]) + 0.1 * np.sum(values[-2])

    return f


@given(programs(), st.integers(0, 2**31 - 1))
def test_random_compositions_match_finite_differences(program, seed):
    steps, shapes = program
    rng = np.random.default_rng(seed)
    args = tuple(rng.uniform(-1.5, 1.5, size=s) for s in shapes)
    # keep clear of max() ties so the function is differentiable at the point
    gc.check_grads(build(steps), args, order=1, rtol=2e-5, seed=seed)


@given(programs(), st.integers(0, 2**31 - 1))
def test_random_compositions_second_order(program, seed):
    steps, shapes = program
    steps = [s for s in steps if s[1] not in ("max", "max_keep")]
    if not steps:
        return
    rng = np.random.default_rng(seed)
    args = tuple(rng.uniform(-1.0, 1.0, size=s) for s in shapes)
    gc.check_grads(build(steps), args, order=2, rtol=1e-4, eps=1e-5, seed=seed)
