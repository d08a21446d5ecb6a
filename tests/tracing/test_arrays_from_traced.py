"""Arrays built from traced values: ``np.array``/``np.asarray`` of lists holding
traced values, ``np.r_``/``np.c_``, and NumPy functions given a Python list of
traced arrays. Also: NumPy's own functions come back after tracing and other
threads never see the tracing versions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import graphc as gc
from graphc.tracing import intercept

from .backend_checks import check_compiled, check_interpreted

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

RNG = np.random.default_rng(5)
X = RNG.normal(size=3)
Y = RNG.normal(size=3)

BUILT: list[tuple[str, Callable[..., Any]]] = [
    ("array-of-scalars", lambda x, y: np.array([x[0], y[1]])),
    ("asarray-with-constant", lambda x, y: np.asarray([x[0], 0.0])),
    ("nested-2x2", lambda x, y: np.array([[x[0], 1.0], [0.0, x[1]]])),
    ("array-of-vectors", lambda x, y: np.array([x, y, x * y])),
    ("array-tuple", lambda x, y: np.array((x, 2.0 * y))),
    ("array-mixed-constant-row", lambda x, y: np.array([x, [1.0, 2.0, 3.0]])),
    ("array-dtype", lambda x, y: np.array([x[0], 1], dtype=np.float32)),
    ("array-ndmin", lambda x, y: np.array([x[0], x[1]], ndmin=3)),
    ("asarray-of-traced", lambda x, y: np.asarray(x) + np.array(y)),
    ("asanyarray-ascontiguous", lambda x, y: np.asanyarray([x]) + np.ascontiguousarray(y)),
    (
        "rotation",
        lambda x, y: np.array([[np.cos(x[0]), -np.sin(x[0])], [np.sin(x[0]), np.cos(x[0])]]),
    ),
    ("r-vectors-and-scalar", lambda x, y: np.r_[x, 0.5, y[:2]]),
    ("r-with-range", lambda x, y: np.r_[x, 1:3] * 1.0),
    ("r-axis-directive", lambda x, y: np.r_["0,2", x, y]),
    ("r-trans1d-directive", lambda x, y: np.r_["1,2,0", x, y]),
    ("c-vectors", lambda x, y: np.c_[x, y]),
    ("c-with-constant", lambda x, y: np.c_[x, np.ones(3), y * 2]),
    ("mean-of-list", lambda x, y: np.mean([x, y])),
    ("max-of-list-axis", lambda x, y: np.max([x, y], axis=0)),
    ("sum-of-list-of-scalars", lambda x, y: np.sum([x[0], y[0], 1.0])),
    ("std-of-list", lambda x, y: np.std([x, y], axis=1)),
    ("dot-of-lists", lambda x, y: np.dot([x[0], x[1]], [y[0], y[1]])),
    ("concatenate-list-inside", lambda x, y: np.concatenate([[x[0], y[0]], x])),
    ("where-list", lambda x, y: np.where([True, False, True], [x[0], x[1], x[2]], y)),
    ("stack-of-lists", lambda x, y: np.stack([[x[0], y[0]], [x[1], y[1]]])),
    ("index-by-traced-list", lambda x, y: x[[np.argmax(y), 0]]),
    ("einsum-list-operand", lambda x, y: np.einsum("i,i", [x[0], x[1]], y[:2])),
    ("broadcast-arrays-list", lambda x, y: np.broadcast_arrays([x[0], y[0]], x[:1])),
    ("meshgrid-list", lambda x, y: np.meshgrid([x[0], x[1]], y)),
    ("select-lists", lambda x, y: np.select([x > 1, y > 1], [x, [y[0], y[1], y[2]]])),
    ("method-given-list", lambda x, y: x[:2].dot([x[0], y[0]])),
    ("outer-of-lists", lambda x, y: np.outer([x[0], y[0]], [x[1], y[1]])),
    ("vstack-of-lists", lambda x, y: np.vstack([[x[0], y[0]], [x[1], y[1]]])),
    ("clip-list", lambda x, y: np.clip([x[0], y[1]], 0.6, 2.0)),
    ("average-list-weights", lambda x, y: np.average([x[0], y[1]], weights=[1.0, x[2]])),
    ("full-traced-fill", lambda x, y: np.full((2, 3), x[0]) * y),
]


@pytest.mark.parametrize("name, f", BUILT, ids=[b[0] for b in BUILT])
def test_arrays_built_from_traced_values(name: str, f: Any) -> None:
    if name == "array-dtype":  # float32: forward only (finite differences need float64)
        check_interpreted(f, X, Y, rtol=1e-6)
    else:
        check_interpreted(f, X, Y, argnums=(0, 1))


def test_built_arrays_compile_on_both_backends() -> None:
    fs = [f for name, f in BUILT if name != "array-dtype"]
    check_compiled(fs, X, Y, argnums=(0, 1))


def test_dtype_discovery_follows_np_array() -> None:
    # inside a list, Python numbers are float64/int64 (not weakly typed)
    x32 = X.astype(np.float32)
    i32 = np.arange(3, dtype=np.int32)

    def f(x: Any, i: Any, s: Any) -> Any:
        return np.array([x[0], 1.0]), np.array([i[0], 2]), np.array([i[0], True]), np.array([s, 1])

    got = gc.jit(f, backend="numpy")(x32, i32, 2.0)
    for g, w in zip(got, f(x32, i32, 2.0)):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w)


def test_ragged_list_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="inhomogeneous") as info:
        gc.trace(lambda x: np.array([x, x[:2]]), X)
    assert isinstance(info.value, gc.GraphcError)


def test_copy_false_that_must_copy_is_refused() -> None:
    with pytest.raises(ValueError, match="avoid copy") as info:
        gc.trace(lambda x: np.array([x, x], copy=False), X)
    assert isinstance(info.value, gc.GraphcError) and __file__ in str(info.value)
    gc.trace(lambda x: np.asarray(x, copy=False), X)  # no conversion needed: allowed


def test_matrix_directive_is_refused() -> None:
    with pytest.raises(gc.UnsupportedError, match="np.matrix"):
        gc.trace(lambda x: np.r_["r", x, x], X)


def test_numpy_is_restored_after_tracing() -> None:
    originals = (np.array, np.asarray, np.mean, np.take, np.eye, np.r_, np.c_, np.linalg.norm)
    gc.jit(lambda x: np.array([x[0], np.mean([x, x])]), backend="numpy")(X)
    with pytest.raises(KeyError):
        gc.grad(lambda x: np.sum(np.array([x, x])) + {}["missing"])(X)
    assert not intercept.active()
    assert (np.array, np.asarray, np.mean, np.take, np.eye, np.r_, np.c_, np.linalg.norm) == (
        originals
    )
    assert type(np.eye(2)) is np.ndarray


def test_replacement_made_during_a_trace_is_kept() -> None:
    original = np.mean
    mine = lambda *a, **k: "mine"  # noqa: E731

    def f(x: Any) -> Any:
        np.mean = mine
        return x

    try:
        gc.trace(f, X)
        assert np.mean is mine
    finally:
        np.mean = original


def test_other_threads_get_numpy_while_one_traces() -> None:
    started, finished = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def other() -> None:
        started.wait(10)
        try:
            seen["eye"] = type(np.eye(2))
            seen["asarray"] = type(np.asarray([1.0, 2.0]))
            seen["mean"] = np.mean([1.0, 3.0])
            seen["r_"] = np.r_[1.0, 2.0]
        finally:
            finished.set()

    def f(x: Any) -> Any:
        started.set()
        finished.wait(10)
        return np.array([x[0], 1.0])

    worker = threading.Thread(target=other)
    worker.start()
    gc.trace(f, X)
    worker.join()
    assert seen["eye"] is np.ndarray and seen["asarray"] is np.ndarray
    assert seen["mean"] == 2.0
    np.testing.assert_array_equal(seen["r_"], [1.0, 2.0])


def test_arrays_made_while_tracing_behave_as_ndarrays() -> None:
    seen: dict[str, Any] = {}

    def f(x: Any) -> Any:
        e = np.eye(3)
        seen["repr"] = repr(e[:1])
        seen["isinstance"] = isinstance(e, np.ndarray)
        seen["sum"] = float(e.sum())  # constants stay concrete
        return x * e.sum()

    gc.trace(f, X)
    assert seen == {"repr": "array([[1., 0., 0.]])", "isinstance": True, "sum": 3.0}


def test_libraries_keep_numpy_behaviour() -> None:
    import scipy.special

    with pytest.raises(gc.TracingError, match="write them with NumPy functions"):
        gc.trace(lambda x: scipy.special.logsumexp(x), X)


# Elements of a nested list: traced scalars of each dtype (by argument index)
# or constants NumPy types on its own.
_ARGS = (np.float32(1.5), np.float64(-2.25), np.int32(7), np.int64(-3), np.bool_(True))
_CONSTANTS = (0.5, 2, True, np.float32(0.25), np.int32(4))


@given(
    st.lists(
        st.lists(st.tuples(st.booleans(), st.integers(0, 4)), min_size=1, max_size=3),
        min_size=1,
        max_size=3,
    ).filter(lambda rows: len({len(r) for r in rows}) == 1),
    st.booleans(),
)
def test_np_array_of_nested_lists_matches_numpy(rows: list[Any], flat: bool) -> None:
    def build(args: Any) -> Any:
        out = [[args[i] if traced else _CONSTANTS[i] for traced, i in row] for row in rows]
        return np.array(out[0] if flat else out)

    want = build(_ARGS)
    got = gc.jit(lambda *a: build(a), backend="interpret")(*_ARGS)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_overlapping_traces_in_two_threads() -> None:
    original = np.array
    barrier = threading.Barrier(2, timeout=10)
    results: dict[int, Any] = {}

    def f(x: Any) -> Any:
        barrier.wait()  # both traces are active here
        return np.array([x[0], x[1] * 2.0])

    def run(k: int) -> None:
        results[k] = gc.jit(f, backend="numpy")(X + k)

    workers = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for k in range(2):
        np.testing.assert_allclose(results[k], [X[0] + k, (X[1] + k) * 2.0])
    assert np.array is original and not intercept.active()


def test_ufunc_given_a_list_says_what_to_do() -> None:
    # ufuncs are not module functions graphc can wrap: the error says how to write it
    with pytest.raises(gc.TracingError, match=r"np\.exp\(np\.array\(\[a, b\]\)\)") as info:
        gc.trace(lambda x: np.exp([x[0], x[1]]), X)
    assert __file__ in str(info.value)
    check_interpreted(lambda x: np.exp(np.array([x[0], x[1]])), X, argnums=(0,))
