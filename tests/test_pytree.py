"""Pytrees: flatten/unflatten round trips, and the generated unflattener jit uses."""

from __future__ import annotations

import collections

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from graphc.pytree import tree_flatten, tree_unflatten, tree_unflattener

Point = collections.namedtuple("Point", "x y")

leaves = st.one_of(st.integers(-5, 5), st.floats(-1, 1), st.just(np.zeros(2)))
trees = st.recursive(
    st.one_of(leaves, st.none()),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.lists(kids, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from("abcd"), kids, max_size=3),
        st.dictionaries(st.integers(0, 3), kids, max_size=2),
        st.tuples(kids, kids).map(lambda p: Point(*p)),
    ),
    max_leaves=12,
)


def _same(a, b) -> bool:  # noqa: ANN001
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    return a is b


@given(trees)
def test_the_generated_unflattener_rebuilds_what_tree_unflatten_does(tree) -> None:  # noqa: ANN001
    flat, treedef = tree_flatten(tree)
    fresh = [object() for _ in flat]  # identity tells the leaves apart
    assert _same(tree_unflattener(treedef)(fresh), tree_unflatten(treedef, fresh))


def test_a_tree_too_deep_for_one_expression_still_unflattens() -> None:
    tree: object = 1.0
    for _ in range(250):
        tree = [tree]
    flat, treedef = tree_flatten(tree)
    rebuilt = tree_unflattener(treedef)([2.0])
    for _ in range(250):
        assert isinstance(rebuilt, list) and len(rebuilt) == 1
        rebuilt = rebuilt[0]
    assert rebuilt == 2.0
