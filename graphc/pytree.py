"""Pytrees: nested dicts, lists, tuples and namedtuples of leaves.

``None`` is an empty subtree (it has no leaves), as in JAX. Dict keys are
flattened in sorted order, so the same structure always flattens the same
way. Custom containers can be registered with :func:`register`.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_CUSTOM: dict[type, tuple[Callable[[Any], tuple[Sequence[Any], Hashable]], Callable[..., Any]]] = {}


@dataclass(frozen=True, eq=False)
class TreeDef:
    """The structure of a pytree without its leaves. Hashable, so it can key caches."""

    # "leaf", "none", "tuple", "list", "dict", "mapping" (a dict subclass:
    # aux is (class, keys)), "namedtuple", "custom"
    kind: str
    aux: Hashable = None
    children: tuple[TreeDef, ...] = ()
    # What rebuilding needs but the structure is not (a defaultdict's factory:
    # a new lambda per call must not make a new structure): not compared.
    extra: Any = None

    def _key(self) -> tuple[Any, ...]:
        return (self.kind, self.aux, self.children)

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, TreeDef) and self._key() == other._key())

    def __hash__(self) -> int:
        # jit hashes the argument structure on every call: compute it once
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(self._key())
            object.__setattr__(self, "_hash", cached)
        return cached

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __str__(self) -> str:
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = ", ".join(map(str, self.children))
        if self.kind == "dict":
            assert isinstance(self.aux, tuple)
            inner = ", ".join(f"{k!r}: {c}" for k, c in zip(self.aux, self.children))
            return "{" + inner + "}"
        if self.kind == "mapping":
            assert isinstance(self.aux, tuple)
            cls, keys = self.aux
            inner = ", ".join(f"{k!r}: {c}" for k, c in zip(keys, self.children))
            return f"{cls.__name__}({{{inner}}})"
        if self.kind == "list":
            return f"[{inner}]"
        if self.kind == "tuple":
            return f"({inner},)" if len(self.children) == 1 else f"({inner})"
        name = getattr(self.aux, "__name__", str(self.aux))
        return f"{name}({inner})"


LEAF = TreeDef("leaf")
_NONE = TreeDef("none")


def register(
    cls: type,
    flatten: Callable[[Any], tuple[Sequence[Any], Hashable]],
    unflatten: Callable[[Hashable, Sequence[Any]], Any],
) -> None:
    """Make ``cls`` a container: ``flatten(obj) -> (children, aux)``,
    ``unflatten(aux, children) -> obj``.

    >>> class Pair:
    ...     def __init__(self, a, b): self.a, self.b = a, b
    >>> register(Pair, lambda p: ((p.a, p.b), None), lambda aux, ch: Pair(*ch))
    >>> tree_flatten(Pair(1, 2))[0]
    [1, 2]
    """
    _CUSTOM[cls] = (flatten, unflatten)


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _dict_keys(d: dict[Any, Any]) -> list[Any]:
    """A dict's keys in pytree order: sorted (so ``{"a":..., "b":...}`` and
    ``{"b":..., "a":...}`` are one structure), except an OrderedDict's, whose
    order is part of its value."""
    if isinstance(d, collections.OrderedDict):
        return list(d)
    return _sorted_keys(d)


def _rebuild_mapping(aux: tuple[Any, ...], factory: Any, children: Sequence[Any]) -> Any:
    """A dict subclass with these items. The items go in one by one, not
    through the class's constructor or update, whose meanings vary (Counter
    counts); a class that cannot be built without arguments gives a dict."""
    cls, keys = aux
    try:
        out = cls(factory) if issubclass(cls, collections.defaultdict) else cls()
    except TypeError:
        out = {}
    for k, v in zip(keys, children):
        out[k] = v
    return out


def _sorted_keys(d: dict[Any, Any]) -> list[Any]:
    try:
        return sorted(d)
    except TypeError:
        return sorted(d, key=lambda k: (type(k).__name__, repr(k)))


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Leaves in a canonical order, and the structure.

    >>> leaves, treedef = tree_flatten({"b": 1, "a": (2, None, [3])})
    >>> leaves, str(treedef)
    ([2, 3, 1], "{'a': (*, None, [*]), 'b': *}")
    """
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves)


def _flatten(x: Any, leaves: list[Any]) -> TreeDef:
    kind = type(x)
    if kind is np.ndarray or kind is float or kind is int:  # the common leaves, first
        leaves.append(x)
        return LEAF
    if kind is dict:
        keys = _sorted_keys(x)
        return TreeDef("dict", tuple(keys), tuple(_flatten(x[k], leaves) for k in keys))
    if x is None:
        return _NONE
    custom = _CUSTOM.get(type(x))
    if custom is not None:
        children, aux = custom[0](x)
        return TreeDef("custom", (type(x), aux), tuple(_flatten(c, leaves) for c in children))
    if isinstance(x, dict):
        # A dict subclass (OrderedDict, defaultdict...) comes back as itself.
        keys = _dict_keys(x)
        factory = getattr(x, "default_factory", None)
        children = tuple(_flatten(dict.__getitem__(x, k), leaves) for k in keys)
        return TreeDef("mapping", (type(x), tuple(keys)), children, factory)
    if _is_namedtuple(x):
        return TreeDef("namedtuple", type(x), tuple(_flatten(c, leaves) for c in x))
    if isinstance(x, tuple):
        return TreeDef("tuple", None, tuple(_flatten(c, leaves) for c in x))
    if isinstance(x, list):
        return TreeDef("list", None, tuple(_flatten(c, leaves) for c in x))
    leaves.append(x)
    return LEAF


def tree_unflatten(treedef: TreeDef, leaves: Iterable[Any]) -> Any:
    """Rebuild a pytree of structure ``treedef`` from ``leaves``."""
    it = iter(leaves)
    out = _unflatten(treedef, it)
    if next(it, _SENTINEL) is not _SENTINEL:
        raise ValueError(f"too many leaves for tree structure {treedef}")
    return out


_SENTINEL = object()


def _unflatten(t: TreeDef, it: Any) -> Any:
    if t.kind == "leaf":
        x = next(it, _SENTINEL)
        if x is _SENTINEL:
            raise ValueError("too few leaves for the tree structure")
        return x
    if t.kind == "none":
        return None
    children = [_unflatten(c, it) for c in t.children]
    if t.kind == "dict":
        assert isinstance(t.aux, tuple)
        return dict(zip(t.aux, children))
    if t.kind == "mapping":
        assert isinstance(t.aux, tuple)
        return _rebuild_mapping(t.aux, t.extra, children)
    if t.kind == "tuple":
        return tuple(children)
    if t.kind == "list":
        return children
    if t.kind == "namedtuple":
        assert isinstance(t.aux, type)
        return t.aux(*children)
    assert isinstance(t.aux, tuple)
    cls, aux = t.aux
    return _CUSTOM[cls][1](aux, children)


def tree_unflattener(treedef: TreeDef) -> Callable[[Sequence[Any]], Any]:
    """A function rebuilding trees of structure ``treedef`` from a sequence of
    exactly ``treedef.num_leaves`` leaves: ``tree_unflatten`` without the walk.

    jit rebuilds every call's outputs with one; the tree becomes a single
    generated expression (``{'a': L[0], ...}`` in spirit), so the cost is that
    of building the containers.

    >>> leaves, treedef = tree_flatten({"b": 1, "a": (2, None, [3])})
    >>> tree_unflattener(treedef)([20, 30, 10])
    {'a': (20, None, [30]), 'b': 10}
    """
    names: dict[str, Any] = {}
    count = iter(range(treedef.num_leaves))

    def bind(obj: Any) -> str:
        name = f"N{len(names)}"
        names[name] = obj
        return name

    def expr(t: TreeDef) -> str:
        if t.kind == "leaf":
            return f"L[{next(count)}]"
        if t.kind == "none":
            return "None"
        inner = "".join(f"{expr(c)}, " for c in t.children)
        if t.kind == "tuple":
            return f"({inner})"
        if t.kind == "list":
            return f"[{inner}]"
        if t.kind == "dict":
            return f"dict(zip({bind(t.aux)}, ({inner})))"
        if t.kind == "mapping":
            return f"{bind(_rebuild_mapping)}({bind(t.aux)}, {bind(t.extra)}, ({inner}))"
        if t.kind == "namedtuple":
            return f"{bind(t.aux)}({inner})"
        assert isinstance(t.aux, tuple)
        cls, aux = t.aux
        return f"{bind(_CUSTOM[cls][1])}({bind(aux)}, [{inner}])"

    try:
        return eval(f"lambda L: {expr(treedef)}", names)  # noqa: S307 - our own expression
    except (RecursionError, SyntaxError, MemoryError):
        # Too deep for one expression: walk the structure instead.
        return lambda leaves: tree_unflatten(treedef, leaves)


def tree_map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``f`` leaf-wise; ``rest`` must have the same structure.

    >>> tree_map(lambda a, b: a + b, {"x": 1, "y": [2]}, {"x": 10, "y": [20]})
    {'x': 11, 'y': [22]}
    """
    leaves, treedef = tree_flatten(tree)
    others = []
    for r in rest:
        r_leaves, r_def = tree_flatten(r)
        if r_def != treedef:
            raise ValueError(f"tree structures differ: {treedef} vs {r_def}")
        others.append(r_leaves)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree`` in canonical order."""
    return tree_flatten(tree)[0]


def tree_paths(tree: Any) -> list[tuple[Any, ...]]:
    """The key path of each leaf (dict keys, sequence indices, field names)."""
    paths: list[tuple[Any, ...]] = []
    _paths(tree, (), paths)
    return paths


def _paths(x: Any, prefix: tuple[Any, ...], out: list[tuple[Any, ...]]) -> None:
    if x is None:
        return
    custom = _CUSTOM.get(type(x))
    if custom is not None:
        for i, c in enumerate(custom[0](x)[0]):
            _paths(c, prefix + (i,), out)
    elif isinstance(x, dict):
        for k in _dict_keys(x):
            _paths(x[k], prefix + (k,), out)
    elif _is_namedtuple(x):
        for name, c in zip(type(x)._fields, x):
            _paths(c, prefix + (name,), out)
    elif isinstance(x, (tuple, list)):
        for i, c in enumerate(x):
            _paths(c, prefix + (i,), out)
    else:
        out.append(prefix)
