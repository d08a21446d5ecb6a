"""Initializers: shapes, dtypes, reproducibility and the statistics each one promises."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc.nn as nn
from graphc import GraphcError
from graphc.nn import init

SHAPE_2D = (400, 300)  # (in, out): fan_in 400, fan_out 300
SHAPE_4D = (64, 32, 3, 3)  # OIHW: fan_in 32 * 9, fan_out 64 * 9


def test_fans_follow_graphc_layouts() -> None:
    assert init.fans((400, 300)) == (400, 300)
    assert init.fans((64, 32, 3, 3)) == (32 * 9, 64 * 9)
    assert init.fans((7,)) == (7, 7)


@pytest.mark.parametrize(
    ("fn", "shape", "kind", "scale"),
    [
        (init.glorot_uniform, SHAPE_2D, "uniform", math.sqrt(6 / 700)),
        (init.glorot_uniform, SHAPE_4D, "uniform", math.sqrt(6 / (32 * 9 + 64 * 9))),
        (init.glorot_normal, SHAPE_2D, "normal", math.sqrt(2 / 700)),
        (init.he_uniform, SHAPE_2D, "uniform", math.sqrt(6 / 400)),
        (init.he_uniform, SHAPE_4D, "uniform", math.sqrt(6 / (32 * 9))),
        (init.he_normal, SHAPE_2D, "normal", math.sqrt(2 / 400)),
        (init.he_normal, SHAPE_4D, "normal", math.sqrt(2 / (32 * 9))),
    ],
)
def test_variance_scaling_statistics(fn, shape, kind, scale) -> None:  # type: ignore[no-untyped-def]
    w = fn(np.random.default_rng(0), shape)
    assert w.shape == shape and w.dtype == np.float32
    n = w.size
    if kind == "uniform":
        # U(-a, a): bounded by a, variance a^2 / 3.
        assert np.abs(w).max() <= scale
        assert np.abs(w).max() > 0.99 * scale
        expected_std = scale / math.sqrt(3)
    else:
        expected_std = scale
    assert abs(w.mean()) < 4 * expected_std / math.sqrt(n)
    # The sample std of n draws is within a few percent for these sizes.
    assert abs(w.std() / expected_std - 1) < 0.03


def test_aliases_and_modes() -> None:
    assert nn.init.xavier_uniform is init.glorot_uniform
    assert nn.init.kaiming_normal is init.he_normal
    w = init.he_normal(0, SHAPE_2D, mode="fan_out")
    assert abs(w.std() / math.sqrt(2 / 300) - 1) < 0.03
    with pytest.raises(GraphcError, match="mode"):
        init.he_uniform(0, SHAPE_2D, mode="fan_avg")


def test_seed_or_generator_is_reproducible() -> None:
    np.testing.assert_array_equal(init.glorot_uniform(5, (3, 4)), init.glorot_uniform(5, (3, 4)))
    np.testing.assert_array_equal(
        init.glorot_uniform(np.random.default_rng(5), (3, 4)), init.glorot_uniform(5, (3, 4))
    )
    assert not np.array_equal(init.glorot_uniform(5, (3, 4)), init.glorot_uniform(6, (3, 4)))
    rng = np.random.default_rng(1)
    # A shared generator advances: two calls give different weights.
    assert not np.array_equal(init.normal(rng, 5), init.normal(rng, 5))


def test_constants_and_dtypes() -> None:
    assert init.zeros(None, (2, 3)).tolist() == [[0.0] * 3] * 2
    assert init.ones(None, 4, np.float64).dtype == np.float64
    assert init.constant(0.25)(None, 3).tolist() == [0.25] * 3
    with pytest.raises(GraphcError, match="float32 or float64"):
        init.zeros(None, 3, np.int32)


def test_normal_and_uniform_statistics() -> None:
    w = init.normal(0, (200_000,), np.float64, std=0.02, mean=1.0)
    assert abs(w.mean() - 1.0) < 1e-3 and abs(w.std() - 0.02) < 5e-4
    u = init.uniform(0, (200_000,), low=-2.0, high=1.0)
    assert u.min() >= -2.0 and u.max() < 1.0
    assert abs(u.mean() + 0.5) < 0.01 and abs(u.std() - 3 / math.sqrt(12)) < 0.01


@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4), (8, 2, 3, 3)])
def test_orthogonal_is_orthonormal(shape: tuple[int, ...]) -> None:
    w = init.orthogonal(0, shape, np.float64, gain=2.0)
    assert w.shape == shape
    m = w.reshape(shape[0], -1) / 2.0
    rows, cols = m.shape
    if rows <= cols:
        np.testing.assert_allclose(m @ m.T, np.eye(rows), atol=1e-12)
    else:
        np.testing.assert_allclose(m.T @ m, np.eye(cols), atol=1e-12)


def test_orthogonal_is_not_biased_toward_a_sign() -> None:
    # The sign correction makes the diagonal of Q symmetric about zero over seeds.
    diagonals = np.array([np.diag(init.orthogonal(s, (3, 3), np.float64)) for s in range(400)])
    assert np.all(np.abs(diagonals.mean(axis=0)) < 0.1)
    with pytest.raises(GraphcError, match="at least 2"):
        init.orthogonal(0, (5,))
