"""Random einsum contractions against NumPy: one to three operands, shared,
summed, repeated (diagonal) and broadcast (size-1) labels, implicit and
explicit outputs, ellipses."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings

from .helpers import check

LETTERS = "abcde"


@st.composite
def contractions(draw: Any) -> tuple[str, list[np.ndarray]]:
    sizes = {c: draw(st.integers(1, 3)) for c in LETTERS}
    n_operands = draw(st.integers(1, 3))
    ellipsis = draw(st.lists(st.integers(1, 2), max_size=2)) if draw(st.booleans()) else None
    terms, arrays = [], []
    for i in range(n_operands):
        labels = draw(st.lists(st.sampled_from(LETTERS), min_size=0, max_size=3))
        shape = []
        for c in labels:
            # a size-1 axis broadcasts against the same label elsewhere, as in NumPy
            shape.append(1 if draw(st.integers(0, 5)) == 0 else sizes[c])
        for j, c in enumerate(labels):
            if labels.index(c) != j:
                shape[j] = shape[labels.index(c)]  # repeated labels take a diagonal
        term = "".join(labels)
        if ellipsis is not None and draw(st.booleans()):
            extra = ellipsis[draw(st.integers(0, len(ellipsis))) :]
            term = "..." + term
            shape = list(extra) + shape
        terms.append(term)
        arrays.append(np.random.default_rng(i).normal(size=shape))
    spec = ",".join(terms)
    if draw(st.booleans()):
        used = sorted({c for t in terms for c in t if c.isalpha()})
        out = draw(
            st.permutations(used).flatmap(lambda p: st.integers(0, len(p)).map(lambda k: p[:k]))
        )
        has_ellipsis = any("..." in t for t in terms)
        spec += "->" + ("..." if has_ellipsis else "") + "".join(out)
    return spec, arrays


@settings(max_examples=max(100, settings().max_examples))
@given(contractions())
def test_random_einsum_matches_numpy(case: tuple[str, list[np.ndarray]]) -> None:
    spec, arrays = case
    check(lambda *xs: np.einsum(spec, *xs), *arrays, rtol=1e-12)


@given(contractions())
def test_tensordot_of_random_operands(case: tuple[str, list[np.ndarray]]) -> None:
    _, arrays = case
    a = arrays[0]
    # contract a's last k axes with a transposed copy of themselves
    k = np.random.default_rng(a.ndim).integers(0, a.ndim + 1)
    b = np.moveaxis(a, list(range(a.ndim - k, a.ndim)), list(range(k)))
    check(lambda x, y: np.tensordot(x, y, k), a, b, rtol=1e-12)
