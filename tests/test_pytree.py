"""Pytrees: flatten/unflatten round trips, and the generated unflattener jit uses."""

from __future__ import annotations

import collections

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import graphc as gc
from graphc.pytree import tree_flatten, tree_paths, tree_unflatten, tree_unflattener

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
        st.dictionaries(st.sampled_from("zyx"), kids, max_size=3).map(collections.OrderedDict),
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


def test_dict_subclasses_come_back_as_themselves() -> None:
    ordered = collections.OrderedDict([("w", np.ones(2)), ("b", np.zeros(1))])
    counts = collections.defaultdict(list, {"b": 2.0, "a": 1.0})
    leaves, treedef = tree_flatten((ordered, counts))
    assert [len(np.atleast_1d(v)) for v in leaves[:2]] == [2, 1]  # insertion order: w, b
    assert tree_paths((ordered, counts)) == [(0, "w"), (0, "b"), (1, "a"), (1, "b")]
    back_ordered, back_counts = tree_unflatten(treedef, leaves)
    assert type(back_ordered) is collections.OrderedDict and list(back_ordered) == ["w", "b"]
    assert type(back_counts) is collections.defaultdict and back_counts.default_factory is list
    assert back_counts == counts
    # A different key order is a different OrderedDict, but the same plain dict.
    swapped = collections.OrderedDict([("b", np.zeros(1)), ("w", np.ones(2))])
    assert tree_flatten(swapped)[1] != tree_flatten(ordered)[1]
    assert tree_flatten(dict(swapped))[1] == tree_flatten(dict(ordered))[1]


def test_gradients_and_jit_keep_an_ordered_dict() -> None:
    params = collections.OrderedDict([("w", np.array([1.0, 2.0])), ("b", np.array([0.5]))])

    def loss(p):  # noqa: ANN001, ANN202
        return np.sum(p["w"] ** 2) + np.sum(p["b"])

    grads = gc.grad(loss)(params)
    assert type(grads) is collections.OrderedDict and list(grads) == ["w", "b"]
    np.testing.assert_allclose(grads["w"], [2.0, 4.0])
    out = gc.jit(lambda p: p, backend="numpy")(params)
    assert type(out) is collections.OrderedDict and list(out) == ["w", "b"]


def test_a_counter_keeps_its_items_and_a_lambda_factory_does_not_recompile() -> None:
    counts = collections.Counter({"a": 1.0, "b": 2.0})
    flat, treedef = tree_flatten(counts)
    for rebuilt in (tree_unflatten(treedef, flat), tree_unflattener(treedef)(flat)):
        assert type(rebuilt) is collections.Counter and dict(rebuilt) == {"a": 1.0, "b": 2.0}
    f = gc.jit(lambda d: d["a"] * 2.0, backend="numpy")
    for _ in range(3):  # a new lambda each call: the same structure
        f(collections.defaultdict(lambda: 0, a=np.ones(2)))
    assert len(f.cache) == 1


def test_a_big_endian_array_is_an_ordinary_argument() -> None:
    x = np.arange(3.0).astype(">f8")
    want = 2 * np.arange(3.0)
    np.testing.assert_array_equal(gc.grad(lambda a: np.sum(a * a))(x), want)
    for backend in ("numpy", "llvm", "interpret"):
        np.testing.assert_array_equal(gc.jit(lambda a: a * 2.0, backend=backend)(x), want)
