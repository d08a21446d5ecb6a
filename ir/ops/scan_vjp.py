"""The derivative of ``scan``: a forward scan that stacks residuals, then a
reverse scan over the body's VJP.

For the forward recurrence ``c[t+1], y[t] = body(c[t], x[t], k)`` the VJP
runs the steps backwards, and step ``t`` needs the cotangents flowing in
(``ct_c[t+1]`` from the step after it, ``ct_y[t]`` from the stacked ys) and
whatever forward values of step ``t`` the body's derivative reads. The rule
builds it from IR only:

1. The body is differentiated with the driver (``_differentiate``), giving a
   joint graph ``(c, x, k, ct_c', ct_y) -> (c', y, ct_c, ct_x, ct_k)``.
2. Its nodes fall in three kinds: *backward* nodes read a cotangent;
   *per-step* nodes read the carry or the step's xs; *invariant* nodes read
   only constants. Per-step values that backward nodes read are the
   residuals.
3. A forward scan computes the residuals and returns them as extra ys
   (stacked over the steps; the carries entering each step likewise when the
   derivative reads them). Its body is the original body plus those extra
   results, so the pass ``merge_scans`` can fold it into the forward scan the
   graph already has: the forward loop then runs once.
4. A reverse scan runs the backward nodes. Its carries are the carries'
   cotangents and one accumulator per constant (whose cotangent is summed
   over the steps); its xs are the residuals, the forward xs it reads and the
   ys' cotangents; its ys are the xs' cotangents. Invariant values are
   computed once, outside the loop, and passed in as constants.

The result is again ordinary IR (two scans), so it can be differentiated
once more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..builder import GraphBuilder
from ..core import Graph, Literal, Node, Operand, Value, _attr_key
from .vjp_util import zeros

# ``differentiate(g, wrt, seed_outputs, seed="inputs")``: the driver hands it
# to the VJP rules of ops with a body, as the interpreter hands ``_interpret``
# to their references (``ir`` cannot import the driver itself).
Differentiate = Callable[..., Graph]


def scan_vjp(
    b: Any,
    ct: Any,
    out: Any,
    *operands: Any,
    length: int,
    num_carry: int,
    num_xs: int,
    num_consts: int,
    reverse: bool,
    _subgraphs: tuple[Graph, ...],
    _differentiate: Differentiate,
) -> tuple[Any, ...]:
    (body,) = _subgraphs
    nc, nx = num_carry, num_xs
    cts = ct if len(body.outputs) > 1 else (ct,)
    ct_carry, ct_ys = cts[:nc], cts[nc:]

    def is_float(i: int) -> bool:
        return body.inputs[i].type.dtype.is_float

    # Every float carry is differentiated and seeded: a cotangent reaches it
    # from the next step even when its final value has none.
    carries = [i for i in range(nc) if is_float(i)]
    seeded_ys = [
        j for j, c in enumerate(ct_ys) if c is not None and body.outputs[nc + j].type.dtype.is_float
    ]
    if not seeded_ys and all(ct_carry[i] is None for i in carries):
        return (None,) * len(operands)
    xs = [i for i in range(nc, nc + nx) if is_float(i)]
    consts = [
        i for i in range(nc + nx, len(operands)) if is_float(i) and isinstance(operands[i], Value)
    ]
    wrt = carries + xs + consts
    if not wrt:
        return (None,) * len(operands)
    joint = _differentiate(body, wrt, carries + [nc + j for j in seeded_ys], seed="inputs")
    split = _Split(joint, len(body.inputs), nc, nc + nx, len(body.outputs))

    stacked = _stack_residuals(b, body, joint, split, operands, length, nc, nx, reverse)
    hoisted = _hoist_invariants(b, joint, split, operands)

    # The reverse scan's operands and its body's arguments, in the same order.
    bb = GraphBuilder(body.name + "_vjp")
    inside: dict[Value, Operand] = {}
    init: list[Operand] = []
    seeds = iter(joint.inputs[len(body.inputs) :])
    for i in carries:
        v = body.inputs[i]
        inside[next(seeds)] = bb.input(v.type, f"ct_{v.name or i}")
        init.append(ct_carry[i] if ct_carry[i] is not None else zeros(b, v.type))
    accumulators = []
    for i in consts:
        v = body.inputs[i]
        accumulators.append(bb.input(v.type, f"sum_ct_{v.name or i}"))
        init.append(zeros(b, v.type))
    sliced: list[Operand] = []
    for i in range(nc, nc + nx):
        if joint.inputs[i] in split.read:
            inside[joint.inputs[i]] = bb.input(joint.inputs[i].type, joint.inputs[i].name)
            sliced.append(operands[i])
    for v, res in zip(split.residuals, stacked):
        inside[v] = bb.input(v.type, "res")
        sliced.append(res)
    for j in seeded_ys:
        inside[next(seeds)] = bb.input(body.outputs[nc + j].type, f"ct_y{j}")
        sliced.append(ct_ys[j])
    fixed: list[Operand] = []
    for i in range(nc + nx, len(operands)):
        if joint.inputs[i] in split.read:
            inside[joint.inputs[i]] = bb.input(joint.inputs[i].type, joint.inputs[i].name)
            fixed.append(operands[i])
    for v, value in zip(split.invariants, hoisted):
        inside[v] = bb.input(v.type, "inv")
        fixed.append(value)

    for n in split.backward:
        copy = bb.copy_node(n, [inside[x] if isinstance(x, Value) else x for x in n.inputs])
        inside.update(zip(n.outputs, copy.outputs))
    grads = dict(zip(wrt, (inside[g] for g in joint.outputs[len(body.outputs) :])))
    outputs = [grads[i] for i in carries]
    outputs += [bb.add(acc, grads[i]) for acc, i in zip(accumulators, consts)]
    outputs += [grads[i] for i in xs]
    results = b.emit(
        "scan",
        *init,
        *sliced,
        *fixed,
        subgraphs=[bb.build(outputs)],
        length=length,
        num_carry=len(init),
        num_xs=len(sliced),
        num_consts=len(fixed),
        reverse=not reverse,
    )
    results = results if isinstance(results, tuple) else (results,)
    found = dict(zip(carries + consts + xs, results))
    return tuple(found.get(i) for i in range(len(operands)))


class _Split:
    """The joint graph's nodes by kind, and the values that cross between kinds.

    A node is *backward* when it reads a cotangent, *varying* when it reads
    the carry or the step's slices, *invariant* otherwise. ``backward`` holds
    the backward nodes the gradients need (in order); ``residuals`` the
    per-step values they read (varying results and the carries entering the
    step); ``invariants`` the constant-only results they read; ``read`` the
    slices and constants they read directly.
    """

    def __init__(
        self, joint: Graph, n_inputs: int, n_carry: int, n_varying: int, n_forward: int
    ) -> None:
        primal = joint.inputs[:n_inputs]
        varying: set[Value] = set(primal[:n_varying])
        computed: set[Value] = set(joint.inputs[n_inputs:])  # cotangents and backward results
        self.kind: dict[Node, str] = {}
        for n in joint.nodes:
            ins = list(n.value_inputs())
            if any(x in computed for x in ins):
                self.kind[n] = "backward"
                computed.update(n.outputs)
            elif any(x in varying for x in ins):
                self.kind[n] = "varying"
                varying.update(n.outputs)
            else:
                self.kind[n] = "invariant"
        needed: set[Value] = set(joint.outputs[n_forward:])
        backward: list[Node] = []
        for n in reversed(joint.nodes):
            if self.kind[n] == "backward" and any(v in needed for v in n.outputs):
                backward.append(n)
                needed.update(n.value_inputs())
        self.backward = backward[::-1]
        producers = joint.producers()
        order = list(primal) + [v for n in joint.nodes for v in n.outputs]
        crossing = [v for v in order if v in needed and v not in computed]
        carries = set(primal[:n_carry])
        self.residuals = [
            v
            for v in crossing
            if v in carries or (v in producers and self.kind[producers[v]] == "varying")
        ]
        self.invariants = [
            v for v in crossing if v in producers and self.kind[producers[v]] == "invariant"
        ]
        self.read = {v for v in crossing if v in set(primal[n_carry:])}
        self._transpose_in_backward(producers, order, set(primal[n_carry:n_varying]))

    def _transpose_in_backward(
        self, producers: dict[Value, Node], order: list[Value], sliced: set[Value]
    ) -> None:
        """Save ``x`` rather than ``transpose(x)`` and transpose in the backward
        loop: the same bytes, but the weight gradient ``Σ_t x_tᵀ @ g_t`` then
        reads a stack of ``x_t`` (which a hoisted sum multiplies as one
        transposed matrix) instead of a stack of transposes."""
        moved: list[Node] = []
        residuals = set(self.residuals)
        for v in list(self.residuals):
            p = producers.get(v)
            x = p.inputs[0] if p is not None and p.op == "transpose" else None
            if p is None or not isinstance(x, Value):
                continue
            if x in producers and self.kind[producers[x]] != "varying":
                continue
            residuals.discard(v)
            if x in sliced:
                self.read.add(x)
            else:
                residuals.add(x)
            moved.append(p)
        if moved:
            # Their kind stays "varying": a forward value computed from one
            # (another residual) still finds it in the forward loop.
            self.residuals = [v for v in dict.fromkeys(order) if v in residuals]
            self.backward = moved + self.backward


def _stack_residuals(
    b: Any,
    body: Graph,
    joint: Graph,
    split: _Split,
    operands: Sequence[Operand],
    length: int,
    nc: int,
    nx: int,
    reverse: bool,
) -> list[Value]:
    """A forward scan returning the residuals as extra ys; its body is ``body``
    with more results, so ``merge_scans`` can merge it with the forward scan."""
    if not split.residuals:
        return []
    fb = GraphBuilder(body.name)
    args = [fb.input(v.type, v.name) for v in body.inputs]
    env: dict[Value, Operand] = dict(zip(body.inputs, args))
    made: dict[Any, tuple[Value, ...]] = {}
    for n in body.nodes:
        copy = fb.copy_node(n, [env[x] if isinstance(x, Value) else x for x in n.inputs])
        env.update(zip(n.outputs, copy.outputs))
        made.setdefault(_node_key(copy), copy.outputs)
    # The joint graph's forward part repeats the body's nodes; hash-consing
    # maps each repeated node to the body's copy, so only the derivative's own
    # per-step values (a relu mask, say) add nodes.
    inner: dict[Value, Operand] = dict(zip(joint.inputs, args))
    wanted = _closure(joint, set(split.residuals), lambda n: split.kind[n] != "backward")
    for n in joint.nodes:
        if n not in wanted:
            continue
        node_inputs = [inner[x] if isinstance(x, Value) else x for x in n.inputs]
        key = _key_of(n.op, node_inputs, n.attrs, n.subgraphs)
        found = made.get(key)
        if found is None:
            found = fb.copy_node(n, node_inputs).outputs
            made[key] = found
        inner.update(zip(n.outputs, found))
    extra = [inner[v] for v in split.residuals]
    g = fb.build([env[v] for v in body.outputs] + extra)
    results = b.emit(
        "scan",
        *operands,
        subgraphs=[g],
        length=length,
        num_carry=nc,
        num_xs=nx,
        num_consts=len(operands) - nc - nx,
        reverse=reverse,
    )
    return list(results[len(body.outputs) :])


def _hoist_invariants(
    b: Any, joint: Graph, split: _Split, operands: Sequence[Operand]
) -> list[Operand]:
    """The invariant values the backward loop reads, computed once outside it."""
    if not split.invariants:
        return []
    outer: dict[Value, Operand] = dict(zip(joint.inputs, operands))
    wanted = _closure(joint, set(split.invariants), lambda n: split.kind[n] == "invariant")
    for n in joint.nodes:
        if n in wanted:
            copy = b.copy_node(n, [outer[x] if isinstance(x, Value) else x for x in n.inputs])
            outer.update(zip(n.outputs, copy.outputs))
    return [outer[v] for v in split.invariants]


def _closure(joint: Graph, values: set[Value], follow: Callable[[Node], bool]) -> set[Node]:
    """The nodes (accepted by ``follow``) that computing ``values`` needs."""
    needed = set(values)
    found: set[Node] = set()
    for n in reversed(joint.nodes):
        if follow(n) and any(v in needed for v in n.outputs):
            found.add(n)
            needed.update(n.value_inputs())
    return found


def _node_key(n: Node) -> Any:
    return _key_of(n.op, n.inputs, n.attrs, n.subgraphs)


def _key_of(op: str, inputs: Sequence[Operand], attrs: Any, subgraphs: Sequence[Graph]) -> Any:
    refs = tuple(
        ("lit", x.dtype, x.text()) if isinstance(x, Literal) else ("value", id(x)) for x in inputs
    )
    return (
        op,
        refs,
        tuple((k, _attr_key(v)) for k, v in attrs.items()),
        tuple(s.structural_key() for s in subgraphs),
    )
