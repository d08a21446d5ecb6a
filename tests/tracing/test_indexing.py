"""``x[key]`` on traced arrays against NumPy: random keys mixing integers,
slices with any step, None, Ellipsis, integer arrays (constant or traced,
negative, broadcast) and constant boolean masks, on random shapes."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import graphc as gc
from graphc.ir import GraphcError, GraphcIndexError, TracingError

from .helpers import check

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)
bounds = st.one_of(st.none(), st.integers(-6, 6))
steps = st.one_of(st.none(), st.integers(-3, 3).filter(lambda s: s != 0))


@st.composite
def keys(draw: Any, shape: tuple[int, ...]) -> tuple[list[Any], list[np.ndarray]]:
    """A key for ``shape`` as a list of entries; ``("traced", i)`` marks an
    index array passed to the traced function as its argument i."""
    ndim = len(shape)
    kinds = draw(
        st.lists(
            st.sampled_from(["int", "slice", "none", "array", "traced", "mask"]),
            max_size=ndim + 2,
        )
    )
    ellipsis_at = draw(st.one_of(st.none(), st.integers(0, len(kinds))))
    consumes = [0 if k == "none" else 1 for k in kinds]
    if sum(consumes) > ndim:
        # NumPy's answer for too many indices is an IndexError; keep those cases rare
        kinds = kinds[: ndim + draw(st.integers(0, 1))]
        consumes = consumes[: len(kinds)]
    # which axes each entry covers: from the front before an ellipsis, from the back after
    front = kinds if ellipsis_at is None else kinds[:ellipsis_at]
    n_front = sum(consumes[: len(front)])
    back_start = ndim - sum(consumes[len(front) :])
    entries: list[Any] = []
    traced: list[np.ndarray] = []
    array_shape = draw(st.lists(st.integers(1, 3), max_size=2).map(tuple))
    axis = 0
    for i, kind in enumerate(kinds):
        if ellipsis_at == i:
            entries.append(Ellipsis)
        if i == len(front):
            axis = max(back_start, n_front)
        n = shape[axis] if axis < ndim else 1
        if kind == "none":
            entries.append(None)
            continue
        if kind == "int":
            entries.append(draw(st.integers(-n - 1, n)))  # includes out-of-bounds
        elif kind == "slice":
            entries.append(slice(draw(bounds), draw(bounds), draw(steps)))
        elif kind in ("array", "traced"):
            sub = array_shape[draw(st.integers(0, len(array_shape))) :]
            values = (
                draw(
                    st.lists(
                        st.integers(-n, n - 1),
                        min_size=int(np.prod(sub)),
                        max_size=int(np.prod(sub)),
                    )
                )
                if n
                else []
            )
            arr = np.array(values, dtype=np.int64).reshape(sub) if n else np.zeros(0, np.int64)
            if kind == "traced":
                entries.append(("traced", len(traced)))
                traced.append(arr.astype(draw(st.sampled_from([np.int32, np.int64]))))
            else:
                entries.append(arr)
        else:
            # now and then a mask of the wrong length, which NumPy rejects
            m = n + draw(st.sampled_from([0] * 8 + [-1, 1])) if n else n
            entries.append(np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)), bool))
        axis += 1
    if ellipsis_at == len(kinds):
        entries.append(Ellipsis)
    return entries, traced


@st.composite
def indexing_cases(draw: Any) -> tuple[np.ndarray, list[Any], list[np.ndarray]]:
    shape = draw(shapes)
    x = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) * 1.5 - 3
    entries, traced = draw(keys(shape))
    return x, entries, traced


def _build(entries: list[Any], traced: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(traced[e[1]] if isinstance(e, tuple) else e for e in entries)


@settings(max_examples=max(200, settings().max_examples))
@given(indexing_cases())
def test_random_keys_match_numpy(case: tuple[np.ndarray, list[Any], list[np.ndarray]]) -> None:
    x, entries, traced = case

    def f(a: Any, *idx: Any) -> Any:
        return a[_build(entries, idx)]

    try:
        f(x, *traced)
    except IndexError:
        with pytest.raises(IndexError) as info:
            check(f, x, *traced)
        assert isinstance(info.value, GraphcError)
        return
    check(f, x, *traced)


def _x() -> np.ndarray:
    return np.arange(60.0).reshape(3, 4, 5)


@pytest.mark.parametrize(
    "name, key",
    [
        ("int", (1,)),
        ("negative-int", (-1, -2)),
        ("slices", (slice(None, None, -1), slice(1, None, 2), slice(-2, 0, -1))),
        ("none-ellipsis", (None, Ellipsis, None, 2)),
        ("ellipsis-only", (Ellipsis,)),
        ("index-list", ([0, 2, -1],)),
        ("index-2d", (np.array([[0, 1], [2, 0]]),)),
        ("arrays-adjacent", (slice(None), [0, 3], [4, -5])),
        ("arrays-separated", ([0, 2], slice(None), [1, 4])),
        ("array-broadcast", (np.array([[0], [2]]), slice(1, 3), np.array([0, 1, 2]))),
        ("array-with-int", (1, slice(None), [0, 2])),
        ("zero-d-array", (np.array(2),)),
        ("empty-list", ([],)),
        ("mask", (np.array([True, False, True]),)),
        ("mask-2d", (np.arange(12).reshape(3, 4) % 3 == 0,)),
        ("mask-after-slice", (slice(None), np.array([True, False, False, True]))),
        ("mask-with-array", (np.array([True, False, True]), slice(None), [1, 3])),
    ],
)
def test_indexing_forms(name: str, key: tuple[Any, ...]) -> None:
    check(lambda a: a[key], _x())


def test_traced_index_arrays() -> None:
    x = _x()
    rows = np.array([2, -3, 0, 1])
    cols = np.array([[4], [-1]], dtype=np.int32)
    check(lambda a, r: a[r], x, rows)
    check(lambda a, r: a[:, r[:3]], x, rows)
    check(lambda a, r, c: a[r[:2], :, c], x, rows, cols)
    check(lambda a, r, c: a[0, r, c], x, rows, cols)
    check(lambda a, i: a[i, 1], x, np.int64(-1))
    check(lambda a, r: a[r[0], r[1]], x, rows)


def test_cross_entropy_gather() -> None:
    logp = np.log(np.random.default_rng(0).dirichlet(np.ones(5), size=6))
    labels = np.array([0, 4, 2, 2, 1, 3])
    check(lambda p, y: -np.mean(p[np.arange(len(y)), y]), logp, labels)


def test_out_of_bounds_constant_index_is_an_index_error() -> None:
    with pytest.raises(GraphcIndexError, match="out of bounds") as info:
        check(lambda a: a[3], _x())
    assert isinstance(info.value, IndexError)
    assert __file__ in str(info.value)
    with pytest.raises(GraphcIndexError, match="index 7 is out of bounds"):
        check(lambda a: a[:, [0, 7]], _x())


def test_out_of_bounds_traced_index_fails_when_run() -> None:
    with pytest.raises(IndexError):
        check(lambda a, i: a[i], _x(), np.array([0, 3]))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_an_out_of_range_index_among_several_names_its_own_axis_size(backend: str) -> None:
    a = np.arange(20.0).reshape(5, 4)
    f = gc.jit(lambda a, i, j: a[i, j], backend=backend)
    np.testing.assert_array_equal(f(a, np.array([1, -1]), np.array([-4, 3])), a[[1, -1], [-4, 3]])
    with pytest.raises(GraphcIndexError, match="index 5 is out of bounds for axis.* size 4"):
        f(a, np.array([1]), np.array([5]))  # NumPy: index 5 ... axis 1 with size 4
    with pytest.raises(GraphcIndexError, match="index -6 is out of bounds for axis.* size 5"):
        f(a, np.array([-6]), np.array([0]))


def test_bool_powers_follow_numpy() -> None:
    assert (np.array([True]) ** 2).dtype == np.int8  # NumPy's np.square path
    check(lambda p: p**2, np.array([True, False]))
    check(lambda p: p**3, np.array([True, False]))


def test_traced_mask_is_a_tracing_error() -> None:
    with pytest.raises(TracingError, match="np.where") as info:
        check(lambda a: a[a > 10], _x())
    assert __file__ in str(info.value)


def test_traced_slice_bound_is_a_tracing_error() -> None:
    with pytest.raises(TracingError, match="slice bounds must be static") as info:
        check(lambda a, n: a[:n], _x(), np.int64(2))
    assert __file__ in str(info.value)


@pytest.mark.parametrize(
    "key, match",
    [
        ((0, 0, 0, 0), "too many indices"),
        ((1.5,), "only integers"),
        ((Ellipsis, Ellipsis), "single ellipsis"),
        ((np.array([0.5]),), "integer type"),
        ((np.array([True, False]),), "boolean index did not match"),
        ((slice(None), np.array([True, False, True, True, False])), "size of axis is 4"),
        (([0, 1], [0, 1, 2]), "could not be broadcast"),
    ],
)
def test_bad_keys_are_index_errors(key: tuple[Any, ...], match: str) -> None:
    with pytest.raises(IndexError, match=match):
        check(lambda a: a[key], _x())
