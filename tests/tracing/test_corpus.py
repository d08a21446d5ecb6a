"""The model corpus: each function traced, printed, parsed back, verified and
interpreted equal to running it directly on NumPy, in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ir import interpret, parse, verify
from graphc.pytree import tree_flatten
from tests.corpus import CORPUS, Case

from .helpers import flat_inputs


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_corpus_case_traces_and_matches_numpy(case: Case, dtype: type) -> None:
    args = case.args(dtype)
    g = gc.trace(case.fn, *args)
    verify(g)
    text = str(g)
    parsed = parse(text)
    assert parsed == g
    assert str(parsed) == text
    (got,) = interpret(parsed, *flat_inputs(args))
    want = np.asarray(case.fn(*args))
    assert got.shape == want.shape == ()
    assert got.dtype == want.dtype == np.dtype(dtype), (got.dtype, want.dtype)
    if dtype == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)
    else:
        # float32: same formulas, different summation orders in matmul and reductions
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_tracing_is_deterministic(case: Case) -> None:
    args = case.args(np.float64)
    first = gc.trace(case.fn, *args).format(locations=True)
    second = gc.trace(case.fn, *case.args(np.float64, seed=0)).format(locations=True)
    assert first == second


def test_every_node_has_a_location_in_the_corpus_file() -> None:
    for case in CORPUS:
        g = gc.trace(case.fn, *case.args(np.float64))
        for n in g.nodes:
            assert n.loc is not None, f"{case.name}: {n.op} has no location"
            assert n.loc.file.endswith("corpus.py"), f"{case.name}: {n.op} at {n.loc}"


def test_corpus_is_large_and_varied() -> None:
    assert len(CORPUS) >= 15
    ops = {n.op for case in CORPUS for n in gc.trace(case.fn, *case.args()).nodes}
    assert {"matmul", "conv2d", "max_pool2d", "gather", "erf", "select", "slice"} <= ops


def test_differentiable_arguments_are_float_pytrees() -> None:
    for case in CORPUS:
        args = case.args(np.float32)
        for i in case.argnums:
            leaves = tree_flatten(args[i])[0]
            assert leaves and all(np.asarray(v).dtype == np.float32 for v in leaves), case.name
