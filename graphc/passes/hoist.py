"""hoist_loop_sums: sums over the steps of a loop as one operation after it.

The backward of a recurrence accumulates each parameter's gradient step by
step: ``acc = acc + a_tᵀ @ b_t`` (a weight), ``acc = acc + sum(b_t)`` (a
bias), ``acc = acc + scatter_add(0, i_t, b_t)`` (an embedding). Inside the
loop that is T small products and T updates of a full-size accumulator.
Summed after the loop it is one large product over the stacked operands,
``[a_0 … a_T-1] @ [b_0; …; b_T-1]`` (a GEMM of ``(m, T·k) @ (T·k, n)``), one
reduction and one scatter, which is how hand-written BPTT computes it. The
loop only stacks the per-step operands (as extra ``ys``; a sliced input is
already stacked) and the accumulator carry disappears.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphc.ir import Graph, GraphBuilder, Literal, Node, Operand, Value

from .manager import count
from .rewrite import Rebuilder

SUMMABLE = ("matmul", "reduce_sum", "scatter_add")


@dataclass
class _Sum:
    """Carry ``index`` accumulates ``term`` (a node of the body) every step."""

    index: int
    add: Node
    term: Node
    # For ``x_tᵀ @ b_t`` with ``x_t`` a value of the step: ``x_t`` itself, so
    # the loop stacks the rows it already has and the product after it reads
    # the stack transposed (a BLAS flag), instead of a transpose per step and
    # a transposing copy of the whole stack.
    lhs_source: Value | None = None


def hoist_loop_sums(g: Graph) -> Graph:
    """Move accumulations ``acc + f(values of the step)`` out of every scan,
    where ``f`` is a 2-d matmul, a ``reduce_sum`` or a ``scatter_add`` into
    zeros along axis 0; see the module docstring.

    Contract: a valid graph in; the same meaning out up to the order of
    floating-point additions. Cost: one pass over each scan body.

    >>> from graphc.ir import GraphBuilder, f64
    >>> body = GraphBuilder("body")
    >>> acc, a = body.input(f64[3, 3], "acc"), body.input(f64[3, 2], "a")
    >>> b = body.input(f64[2, 3], "b")
    >>> step = body.build([body.add(acc, body.matmul(a, b))])
    >>> g = GraphBuilder("f"); zero = g.input(f64[3, 3], "zero")
    >>> As, Bs = g.input(f64[5, 3, 2], "As"), g.input(f64[5, 2, 3], "Bs")
    >>> out = g.scan(zero, As, Bs, subgraphs=[step], length=5, num_carry=1, num_xs=2, num_consts=0)
    >>> print([n.op for n in hoist_loop_sums(g.build([out])).nodes])
    ['transpose', 'reshape', 'reshape', 'matmul', 'add']
    """
    if not any(n.op == "scan" or n.subgraphs for n in g.nodes):
        return g
    rb = Rebuilder(g)
    for n in g.nodes:
        subgraphs = tuple(hoist_loop_sums(s) for s in n.subgraphs)
        if n.op != "scan":
            rb.keep(n, subgraphs=subgraphs)
            continue
        node = Node(n.op, n.inputs, n.outputs, n.attrs, subgraphs, n.loc)
        sums = _find_sums(node, rb)
        if not sums:
            rb.keep(n, subgraphs=subgraphs)
            continue
        with rb.b.at(n.loc):
            rb.bind(n, _hoist(rb.b, node, rb.operands(n), sums))
        rb.changed = True
        count("loop sums hoisted", len(sums))
    return rb.finish()


def _find_sums(n: Node, rb: Rebuilder) -> list[_Sum]:
    (body,) = n.subgraphs
    nc, nx = n.attrs["num_carry"], n.attrs["num_xs"]
    readers: dict[Value, list[Node]] = {}
    for m in body.nodes:
        for x in m.value_inputs():
            readers.setdefault(x, []).append(m)
    producers = body.producers()
    found = []
    for i in range(nc):
        acc, new = body.inputs[i], body.outputs[i]
        add = producers.get(new)
        if add is None or add.op != "add" or readers.get(acc) != [add]:
            continue
        if acc in body.outputs or list(body.outputs).count(new) != 1:
            continue
        others = [x for x in add.inputs if x is not acc]
        if len(others) != 1 or not isinstance(others[0], Value):
            continue
        term = producers.get(others[0])
        if term is None or term.op not in SUMMABLE or others[0].type != acc.type:
            continue
        stacked = [x for x in term.inputs if isinstance(x, Value)]
        if term.op == "scatter_add":
            zero = term.inputs[0]
            if term.attrs["axis"] != 0 or not _zeros(zero, body, n, nc + nx, rb):
                continue
            stacked = list(term.inputs[1:])
        if term.op == "matmul" and any(x.type.ndim != 2 for x in stacked):
            continue
        source = _transposed_source(term, producers, body, nc + nx)
        if source is not None:
            stacked = [source, stacked[1]]
        # Only per-step values can be stacked: a constant operand would need
        # another rule, and the carries change between steps (a carry is
        # stacked only as the source of a transpose, read at the step's start).
        if any(not _per_step(x, body, nc, nx, x is source) for x in stacked):
            continue
        found.append(_Sum(i, add, term, source))
    return found


def _transposed_source(
    term: Node,
    producers: dict[Value, Node],
    body: Graph,
    first_const: int,
) -> Value | None:
    """``x`` when the term is ``transpose(x) @ b`` with ``x`` a 2-d value of the
    step (the weight gradient of ``x @ W``); a carry counts: its value at the
    start of the step is what the loop stacks."""
    if term.op != "matmul":
        return None
    p = producers.get(term.inputs[0])  # type: ignore[arg-type]
    if p is None or p.op != "transpose" or tuple(p.attrs["perm"]) != (1, 0):
        return None
    (x,) = p.inputs
    if not isinstance(x, Value) or x.type.ndim != 2:
        return None
    if x in body.inputs and body.inputs.index(x) >= first_const:
        return None
    return x


def _per_step(x: Operand, body: Graph, nc: int, nx: int, carries: bool = False) -> bool:
    if not isinstance(x, Value):
        return False
    if x in body.inputs:
        k = body.inputs.index(x)
        return (0 if carries else nc) <= k < nc + nx
    return True


def _zeros(x: Operand, body: Graph, n: Node, first_const: int, rb: Rebuilder) -> bool:
    """Whether ``x`` is all zeros: a zero literal broadcast inside the body or
    a constant operand that is one outside."""
    if isinstance(x, Literal):
        return x.value == 0
    producers = body.producers()
    if x in producers:
        p = producers[x]
        return p.op == "broadcast_in_dim" and _zero_literal(p.inputs[0])
    if x not in body.inputs or body.inputs.index(x) < first_const:
        return False
    outer = rb.producer(rb.operand(n.inputs[body.inputs.index(x)]))
    return outer is not None and outer.op == "broadcast_in_dim" and _zero_literal(outer.inputs[0])


def _zero_literal(x: Operand) -> bool:
    return isinstance(x, Literal) and x.value == 0


def _hoist(
    b: GraphBuilder, n: Node, inputs: tuple[Operand, ...], sums: list[_Sum]
) -> list[Operand]:
    (body,) = n.subgraphs
    nc, nx = n.attrs["num_carry"], n.attrs["num_xs"]
    hoisted = {s.index for s in sums}
    keep = [i for i in range(nc) if i not in hoisted]
    # Values to stack: sliced inputs are stacked already; the rest become ys.
    wanted: list[Value] = []
    for s in sums:
        operands = s.term.inputs[1:] if s.term.op == "scatter_add" else s.term.inputs
        if s.lhs_source is not None:
            operands = (s.lhs_source, s.term.inputs[1])
        for x in operands:
            if isinstance(x, Value) and x not in wanted:
                wanted.append(x)
    xs_of = {body.inputs[k]: inputs[k] for k in range(nc, nc + nx)}
    new_ys = [v for v in wanted if v not in xs_of]
    new_body = Graph(
        body.name,
        tuple(body.inputs[i] for i in keep) + tuple(body.inputs[nc:]),
        tuple(m for m in body.nodes if m not in {s.add for s in sums}),
        tuple(body.outputs[i] for i in keep) + tuple(body.outputs[nc:]) + tuple(new_ys),
    )
    from .dce import eliminate_dead_code

    new_body = eliminate_dead_code(new_body)
    results: dict[int, Operand] = {}
    stacked: dict[Value, Operand] = dict(xs_of)
    ys: list[Operand] = []
    if new_body.outputs:  # else the loop did nothing but the sums
        operands = [inputs[i] for i in keep] + list(inputs[nc:])
        attrs = {**n.attrs, "num_carry": len(keep)}
        loop = b.emit_node("scan", operands, attrs, (new_body,), n.loc)
        results.update(zip(keep, loop.outputs))
        n_ys = len(body.outputs) - nc
        ys = list(loop.outputs[len(keep) : len(keep) + n_ys])
        stacked.update(zip(new_ys, loop.outputs[len(keep) + n_ys :]))
    for s in sums:
        total = _total(b, s, stacked, n.attrs["length"])
        init = inputs[s.index]
        results[s.index] = b.add(init, total)
    return [results[i] for i in range(nc)] + ys


def _total(b: GraphBuilder, s: _Sum, stacked: dict[Value, Operand], length: int) -> Operand:
    """The sum over the steps of ``s.term``, from its operands stacked along a new axis 0."""
    term = s.term
    if term.op == "matmul":
        c = stacked[term.inputs[1]]  # type: ignore[index]  # (T, k, n)
        k, n = c.type.shape[1:]
        if s.lhs_source is not None:
            x = stacked[s.lhs_source]  # (T, k, m): rows, transposed as one matrix
            m = x.type.shape[2]
            wide = b.transpose(b.reshape(x, shape=(length * k, m)), perm=(1, 0))
        else:
            a = stacked[term.inputs[0]]  # type: ignore[index]  # (T, m, k)
            m = a.type.shape[1]
            wide = b.reshape(b.transpose(a, perm=(1, 0, 2)), shape=(m, length * k))
        tall = b.reshape(c, shape=(length * k, n))
        return b.matmul(wide, tall)
    if term.op == "reduce_sum":
        (x,) = term.inputs
        axes = tuple(a % x.type.ndim + 1 for a in term.attrs["axes"])
        keepdims = term.attrs.get("keepdims", False)
        inner = b.reduce_sum(stacked[x], axes=axes, keepdims=keepdims) if axes else stacked[x]
        return b.reduce_sum(inner, axes=(0,))
    zeros, idx, upd = term.inputs  # scatter_add into zeros along axis 0
    if isinstance(zeros, Value) and zeros.type.ndim:
        dtype = zeros.type.dtype
        zero = Literal(0.0 if dtype.is_float else 0, dtype)
        base: Operand = b.broadcast_in_dim(zero, shape=zeros.type.shape, broadcast_dimensions=())
    else:
        base = zeros
    return b.scatter_add(base, stacked[idx], stacked[upd], axis=0)
