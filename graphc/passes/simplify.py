"""simplify: algebraic simplification driven by a table of named rewrite rules.

A :class:`Rule` is data: the op it matches, a predicate on the match, and a
function that builds the replacement with a builder. The table lives in
:mod:`graphc.passes.simplify_rules` (``SIMPLIFY_RULES``); the driver here
applies it to a fixed point and counts which rule fired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from graphc.ir import Graph, GraphBuilder, Literal, Node, Operand, TensorType, Value, get_op

from .dce import eliminate_dead_code
from .facts import Facts, facts, splat
from .manager import count
from .rewrite import Rebuilder


@dataclass(frozen=True)
class Rule:
    """One rewrite: when a node of op ``op`` satisfies ``when(m)``, its single
    output is replaced by ``then(b, m)``, built with builder ``b``.

    The replacement must have exactly the node's output type (``m.fit``
    casts or broadcasts an operand to it). For ``commutative`` ops the
    driver tries both operand orders, so a rule is written for one.
    """

    name: str
    op: str
    when: Callable[[Match], bool]
    then: Callable[[GraphBuilder, Match], Operand]


class Match:
    """A node under consideration, seen in the graph being built.

    ``args`` are its (new) operands, possibly swapped for a commutative op;
    ``x``, ``y``, ``z`` name the first three.
    """

    def __init__(self, n: Node, args: tuple[Operand, ...], rb: Rebuilder) -> None:
        self.node = n
        self.args = args
        self.attrs = n.attrs
        self.out: TensorType = n.outputs[0].type
        self._rb = rb

    @property
    def x(self) -> Any:
        return self.args[0]

    @property
    def y(self) -> Any:
        return self.args[1]

    @property
    def z(self) -> Any:
        return self.args[2]

    def producer(self, v: Operand) -> Node | None:
        """The node defining ``v`` in the new graph (None for arguments and literals)."""
        return self._rb.producer(v)

    def arg_node(self, i: int, op: str) -> Node | None:
        """The producer of operand ``i`` if it is an ``op`` node."""
        n = self.producer(self.args[i])
        return n if n is not None and n.op == op else None

    def splat(self, i: int) -> Literal | None:
        """The literal every element of operand ``i`` equals, if known."""
        return splat(self.args[i], self.producer)

    def is_splat(self, i: int, value: float) -> bool:
        lit = self.splat(i)
        return lit is not None and lit.value == value

    def single_use(self, x: Operand) -> bool:
        """Whether ``x`` has one reader (known for values of the graph being
        rewritten; values made in this sweep count as shared)."""
        return isinstance(x, Value) and self._rb.g.use_counts().get(x, 0) == 1

    def facts(self, x: Operand) -> Facts:
        return facts(x, self.producer)

    def fit(self, b: GraphBuilder, x: Operand) -> Operand:
        """``x`` cast and broadcast (NumPy-style, trailing dims) to the output type."""
        return fit(b, x, self.out)


def fit(b: GraphBuilder, x: Operand, ty: TensorType) -> Operand:
    """``x`` made to have type ``ty`` with a cast and a broadcast where needed."""
    if x.type.dtype != ty.dtype:
        if isinstance(x, Literal):
            x = Literal(x.as_array().astype(ty.dtype.np).item(), ty.dtype)
        else:
            x = b.cast(x, dtype=ty.dtype)
    if x.type.shape != ty.shape:
        lead = len(ty.shape) - x.type.ndim
        assert lead >= 0, f"cannot fit {x.type} to {ty}"
        x = b.broadcast_in_dim(
            x, shape=ty.shape, broadcast_dimensions=tuple(range(lead, len(ty.shape)))
        )
    return x


MAX_SWEEPS = 16  # a safety net; real graphs settle in two or three sweeps


def simplify(g: Graph, rules: Sequence[Rule] | None = None) -> Graph:
    """Apply the simplification rules until none fires.

    Contract: any valid graph in; a valid graph out with the same meaning,
    where "same" is exact except where a rule's docstring says otherwise
    (e.g. ``sum`` of a broadcast becomes a multiply, which rounds once
    instead of n times). Rules see the graph being built, so chains such as
    ``neg(neg(neg(neg x)))`` collapse in one sweep; sweeps repeat until
    nothing fires, and dead nodes left behind are removed each sweep.
    Replacements keep the replaced node's source location. Subgraphs are
    simplified too. Each firing is counted under the rule's name. Cost:
    O(nodes x rules per op) per sweep.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> print(simplify(b.build([b.mul(b.neg(b.neg(x)), 1.0)])))
    graph f(%x: f32[2]) -> (f32[2]) {
      return %x
    }
    """
    if rules is None:
        from .simplify_rules import SIMPLIFY_RULES

        rules = SIMPLIFY_RULES
    table = _index(rules)
    fired: Counter[str] = Counter()
    for _ in range(MAX_SWEEPS):
        g, changed = _sweep(g, table, fired)
        if not changed:
            break
        g = eliminate_dead_code(g)
    for name, k in sorted(fired.items()):
        count(name, k)
    return g


def _index(rules: Iterable[Rule]) -> dict[str, list[Rule]]:
    table: dict[str, list[Rule]] = {}
    for r in rules:
        table.setdefault(r.op, []).append(r)
    return table


def _sweep(g: Graph, table: dict[str, list[Rule]], fired: Counter[str]) -> tuple[Graph, bool]:
    rb = Rebuilder(g)
    any_fired = False
    for n in g.nodes:
        inputs = rb.operands(n)
        if n.subgraphs:
            subs = tuple(_simplify_body(s, table, fired) for s in n.subgraphs)
            rb.keep(n, inputs, subs)
            continue
        rules = table.get(n.op)
        if not rules or len(n.outputs) != 1:
            rb.keep(n, inputs)
            continue
        orders = [inputs]
        if len(inputs) == 2 and get_op(n.op).has("commutative"):
            orders.append((inputs[1], inputs[0]))
        replacement = _first_match(rb, n, rules, orders, fired)
        if replacement is None:
            rb.keep(n, inputs)
        else:
            rb.bind(n, [replacement])
            any_fired = True
    return rb.finish(), any_fired


def _first_match(
    rb: Rebuilder,
    n: Node,
    rules: list[Rule],
    orders: list[tuple[Operand, ...]],
    fired: Counter[str],
) -> Operand | None:
    # A Match depends on the node and the operand order only: one per order.
    matches = [Match(n, args, rb) for args in orders]
    for rule in rules:
        for m in matches:
            if not rule.when(m):
                continue
            with rb.b.at(n.loc):
                replacement = rule.then(rb.b, m)
            assert replacement.type == m.out, (
                f"rule {rule.name} replaced {m.out} by {replacement.type}"
            )
            fired[rule.name] += 1
            return replacement
    return None


def _simplify_body(g: Graph, table: dict[str, list[Rule]], fired: Counter[str]) -> Graph:
    for _ in range(MAX_SWEEPS):
        g, changed = _sweep(g, table, fired)
        if not changed:
            break
        g = eliminate_dead_code(g)
    return g
