"""Every corpus function and its gradient, compiled by gc.jit for LLVM, against
the NumPy backend and the un-jitted (interpreted) transform."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.pytree import tree_flatten
from tests.corpus import CORPUS, Case

# Compiled LLVM objects go to a private directory, shared within this module.
pytestmark = pytest.mark.usefixtures("private_llvm_cache")


def _leaves(tree):  # noqa: ANN001, ANN202
    return [np.asarray(x) for x in tree_flatten(tree)[0]]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_corpus_value_and_grad_on_llvm(case: Case, dtype: type) -> None:
    args = case.args(dtype)
    vg = gc.value_and_grad(case.fn, argnums=case.argnums)
    want = _leaves(vg(*args))
    on_llvm = _leaves(gc.jit(vg, backend="llvm")(*args))
    on_numpy = _leaves(gc.jit(vg, backend="numpy")(*args))
    assert len(on_llvm) == len(want) == len(on_numpy)
    rtol, atol = (1e-9, 1e-12) if dtype == np.float64 else (1e-4, 1e-5)
    for k, (a, w, n) in enumerate(zip(on_llvm, want, on_numpy)):
        assert a.shape == w.shape and a.dtype == w.dtype, (k, a.dtype, w.dtype)
        np.testing.assert_allclose(a, w, rtol=rtol, atol=atol, err_msg=f"{case.name} leaf {k}")
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=f"{case.name} leaf {k}")
