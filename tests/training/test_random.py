"""The counter-based RNG: Philox known answers, the op's layout, and gc.random."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import graphc as gc
import graphc.random as grandom
from graphc.ir import GraphBuilder, OpTypeError, i32, i64, interpret, parse, verify
from graphc.ir.ops.random import philox4x32

# Known-answer vectors published with Random123 (kat_vectors):
# name, rounds, counter words, key words, expected output words.
PHILOX_KAT = [
    (10, "00000000 00000000 00000000 00000000", "00000000 00000000",
     "6627e8d5 e169c58d bc57ac4c 9b00dbd8"),
    (10, "ffffffff ffffffff ffffffff ffffffff", "ffffffff ffffffff",
     "408f276d 41c83b0e a20bc7c6 6d5451fd"),
    (10, "243f6a88 85a308d3 13198a2e 03707344", "a4093822 299f31d0",
     "d16cfe09 94fdcceb 5001e420 24126ea1"),
    (7, "00000000 00000000 00000000 00000000", "00000000 00000000",
     "5f6fb709 0d893f64 4f121f81 4f730a48"),
    (7, "ffffffff ffffffff ffffffff ffffffff", "ffffffff ffffffff",
     "5207ddc2 45165e59 4d8ee751 8c52f662"),
    (7, "243f6a88 85a308d3 13198a2e 03707344", "a4093822 299f31d0",
     "4dfccaba 190a87f0 c47362ba b6b5242a"),
]  # fmt: skip


def _words(text: str) -> list[int]:
    return [int(w, 16) for w in text.split()]


@pytest.mark.parametrize(("rounds", "counter", "key", "expected"), PHILOX_KAT)
def test_philox_known_answers(rounds: int, counter: str, key: str, expected: str) -> None:
    ctr = [np.array([w], np.uint64) for w in _words(counter)]
    k = [np.array([w], np.uint64) for w in _words(key)]
    out = philox4x32(ctr, k, rounds=rounds)
    assert [int(w[0]) for w in out] == _words(expected)


def _random_bits(key: int, counter: int, shape: tuple[int, ...]) -> np.ndarray:
    b = GraphBuilder("rng")
    k = b.input(i64[()], "key")
    c = b.input(i64[()], "step")
    g = b.build([b.random_bits(k, c, shape=shape)])
    verify(g)
    assert parse(str(g)) == g
    return interpret(g, np.int64(key), np.int64(counter))[0]


def test_random_bits_layout_matches_the_documented_counter_and_key_words() -> None:
    # Element j takes block j // 2 with counter words (j // 2, 0, lo(counter),
    # hi(counter)) and key words (lo(key), hi(key)); even j gets words 0-1.
    key, counter = 0x0123456789ABCDEF, 0x1122334455667788
    out = _random_bits(key, counter, (5,))
    for j in range(5):
        ctr = [j // 2, 0, counter & 0xFFFFFFFF, counter >> 32]
        words = philox4x32(
            [np.array([w], np.uint64) for w in ctr],
            [np.array([key & 0xFFFFFFFF], np.uint64), np.array([key >> 32], np.uint64)],
        )
        lo, hi = (int(words[0][0]), int(words[1][0])) if j % 2 == 0 else (
            int(words[2][0]), int(words[3][0]))  # fmt: skip
        assert int(out[j]) & (2**64 - 1) == lo | (hi << 32)


def test_random_bits_is_deterministic_and_shape_independent() -> None:
    a = _random_bits(7, 3, (4, 5))
    assert a.dtype == np.int64 and a.shape == (4, 5)
    np.testing.assert_array_equal(a, _random_bits(7, 3, (4, 5)))
    # Element j does not depend on the total size: a longer draw extends a shorter one.
    np.testing.assert_array_equal(_random_bits(7, 3, (31,))[:20], a.ravel())
    assert not np.array_equal(a, _random_bits(7, 4, (4, 5)))
    assert not np.array_equal(a, _random_bits(8, 3, (4, 5)))
    assert _random_bits(7, 3, (0, 3)).shape == (0, 3)


def test_negative_keys_and_counters_use_their_twos_complement_bits() -> None:
    np.testing.assert_array_equal(
        _random_bits(-1, -2, (3,)),
        grandom.bits(np.int64(-1), (3,), counter=np.int64(-2)),
    )
    # Python ints wrap into the signed range the same way.
    np.testing.assert_array_equal(
        grandom.bits(2**64 - 1, (3,), counter=2**64 - 2), _random_bits(-1, -2, (3,))
    )


def test_random_bits_type_rule_rejects_non_scalar_or_float_keys() -> None:
    b = GraphBuilder("bad")
    with pytest.raises(OpTypeError, match="key must be an i32 or i64 scalar"):
        b.random_bits(b.input(i64[2], "k"), b.input(i64[()], "c"), shape=(3,))
    with pytest.raises(OpTypeError, match="counter"):
        b.random_bits(b.input(i32[()], "k2"), b.input(gc.ir.f32[()], "c2"), shape=(3,))
    with pytest.raises(OpTypeError, match="negative"):
        b.random_bits(b.input(i64[()], "k3"), b.input(i64[()], "c3"), shape=(-1,))


def test_uniform_is_on_the_mantissa_grid_in_unit_interval() -> None:
    key = grandom.key(123)
    u32 = grandom.uniform(key, (50_000,), np.float32)
    u64 = grandom.uniform(key, (50_000,), np.float64)
    assert u32.dtype == np.float32 and u64.dtype == np.float64
    for u, bits in ((u32, 24), (u64, 53)):
        assert u.min() >= 0.0 and u.max() < 1.0
        scaled = u.astype(np.float64) * 2.0**bits
        np.testing.assert_array_equal(scaled, np.floor(scaled))
    # Both come from the low bits of the same 64-bit draws.
    raw = grandom.bits(key, (50_000,))
    np.testing.assert_array_equal(u32, (raw & 0xFFFFFF) / np.float32(2**24))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_passes_a_chi_square_test(dtype: type) -> None:
    u = grandom.uniform(grandom.key(2024), (200_000,), dtype, counter=5)
    counts, _ = np.histogram(u, bins=50, range=(0.0, 1.0))
    result = stats.chisquare(counts)
    assert result.pvalue > 1e-4, result
    # Consecutive pairs should not be correlated either.
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_uniform_low_high_scaling() -> None:
    u = grandom.uniform(grandom.key(0), (1000,), np.float64, low=-3.0, high=5.0)
    assert u.min() >= -3.0 and u.max() < 5.0
    assert abs(u.mean() - 1.0) < 0.3


def test_normal_moments_and_tails() -> None:
    z = grandom.normal(grandom.key(9), (200_000,), np.float64, counter=1)
    assert z.dtype == np.float64
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1.0) < 0.01
    assert abs(stats.skew(z)) < 0.03 and abs(stats.kurtosis(z)) < 0.05
    assert stats.kstest(z, "norm").pvalue > 1e-4
    z32 = grandom.normal(grandom.key(9), (1000,), np.float32, mean=2.0, std=0.5)
    assert z32.dtype == np.float32 and np.all(np.isfinite(z32))
    assert abs(z32.mean() - 2.0) < 0.1


def test_bernoulli_frequency() -> None:
    draws = grandom.bernoulli(grandom.key(4), 0.3, (100_000,))
    assert draws.dtype == np.bool_
    assert abs(draws.mean() - 0.3) < 0.01
    assert not grandom.bernoulli(grandom.key(4), 0.0, (1000,)).any()
    assert grandom.bernoulli(grandom.key(4), 1.0, (1000,)).all()


def test_split_and_fold_in_give_distinct_reproducible_keys() -> None:
    key = grandom.key(0)
    keys = grandom.split(key, 4)
    assert keys.shape == (4,) and keys.dtype == np.int64
    assert len(set(keys.tolist())) == 4
    np.testing.assert_array_equal(keys, grandom.split(key, 4))
    folded = [int(grandom.fold_in(key, i)) for i in range(4)]
    assert len(set(folded) | set(keys.tolist()) | {int(key)}) == 9
    assert int(grandom.fold_in(key, 2)) == int(grandom.fold_in(key, 2))
    # A derived key does not repeat what its parent hands out.
    parent_draws = grandom.bits(key, (8,), counter=2).tolist()
    assert int(grandom.fold_in(key, 2)) not in parent_draws


def test_streams_under_different_keys_are_uncorrelated() -> None:
    a = grandom.uniform(grandom.fold_in(grandom.key(0), 0), (20_000,), np.float64)
    b = grandom.uniform(grandom.fold_in(grandom.key(0), 1), (20_000,), np.float64)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.03


def test_traced_draws_equal_eager_draws_for_every_step() -> None:
    def draw(key: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            grandom.uniform(key, (3, 4), counter=step),
            grandom.normal(grandom.fold_in(key, 1), (5,), np.float64, counter=step),
        )

    g = gc.trace(draw, grandom.key(5), np.int64(0))
    assert sum(n.op == "random_bits" for n in g.nodes) == 3
    for step in (0, 1, 17):
        traced = interpret(g, grandom.key(5), np.int64(step))
        eager = draw(grandom.key(5), np.int64(step))
        for t, e in zip(traced, eager):
            assert t.dtype == e.dtype
            np.testing.assert_array_equal(t, e)


def test_bad_dtype_and_key_errors() -> None:
    with pytest.raises(gc.GraphcError, match="float32 or float64"):
        grandom.uniform(grandom.key(0), (2,), np.int32)
    with pytest.raises(gc.GraphcError, match="integers"):
        grandom.bits(True, (2,))
