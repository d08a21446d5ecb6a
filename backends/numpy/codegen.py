"""Python source for a flat graph: one statement per node.

The generated module defines a factory that binds everything the function
needs (NumPy functions, buffers, constants) as closure variables, then the
function itself::

    def make_loss(env):
        np_matmul = env["np_matmul"]
        b0 = env["b0"]  # f32[128,256] buffer 0
        def loss(x, w1):
            if x.__class__ is not ndarray or x.dtype is not f32 or x.shape != (128, 64):
                x = check_input(0, x)
            ...
            with errstate(all="ignore"):
                # model.py:7  h = np.maximum(x @ w1, 0.0)
                v0 = np_matmul(x, w1, out=b0)
                ...
            return (v8,)
        return loss
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphc.ir import DType, Graph, Literal, Node, Operand, Value, get_op, run_node

from .buffers import BufferPlan
from .decompositions import Decomposed
from .lowerings import Emit, Lowering
from .runtime import take_donations

_RESERVED = {"np", "env", "ndarray", "inf", "nan", "errstate", "check_input", "np_array"}
_RESERVED |= {d.value for d in DType}
# Names the lowerings bind start with these; graph names never do.
_BOUND_PREFIXES = ("np_", "sp_", "rt_", "ref_", "k_", "buf", "arena_", "int")


@dataclass
class Generated:
    """Source text, the objects it binds, and which line runs which node."""

    source: str
    function: str
    env: dict[str, Any] = field(default_factory=dict)
    line_nodes: dict[int, Node] = field(default_factory=dict)


class _Namer:
    def __init__(self) -> None:
        self.used: set[str] = set(_RESERVED)

    def take(self, base: str, *, user: bool = False) -> str:
        """A fresh identifier from ``base``; ``user`` names (graph inputs) must
        also stay clear of the names the generator uses itself."""
        name = re.sub(r"\W", "_", base) or "arg"
        if name[0].isdigit():
            name = "a" + name
        clashes = (
            re.fullmatch(r"v\d.*", name) is not None
            or name.startswith(_BOUND_PREFIXES)
            or name in _RESERVED
        )
        if keyword.iskeyword(name) or (user and clashes):
            name += "_in"
        unique, k = name, 1
        while unique in self.used:
            unique, k = f"{name}_{k}", k + 1
        self.used.add(unique)
        return unique


def value_names(d: Decomposed, original: Graph, namer: _Namer) -> dict[Value, str]:
    """``v12`` for the value printed as ``%12``; ``v12_1``... for values a
    decomposition added on behalf of node ``%12``; inputs keep their names."""
    names: dict[Value, str] = {}
    for v in original.inputs:
        names[v] = namer.take(v.name or "arg", user=True)
    number: dict[Node, str] = {}
    k = 0
    for n in original.nodes:
        number[n] = str(k)
        for v in n.outputs:
            flat = d.values.get(v)
            if isinstance(flat, Value) and flat not in names:
                names[flat] = namer.take(f"v{k}")
            k += 1
    extra: dict[Node, int] = {}
    for n in d.graph.nodes:
        for v in n.outputs:
            if v in names:
                continue
            src = d.origin.get(n, n)
            extra[src] = extra.get(src, 0) + 1
            names[v] = namer.take(f"v{number.get(src, 'x')}_{extra[src]}")
    return names


def lazy_broadcasts(g: Graph) -> tuple[set[Value], set[Value]]:
    """Broadcasts whose consumers broadcast by themselves (rendered as a
    reshape), and the rest that really stretch (rendered with broadcast_to)."""
    users = g.users()
    outputs = set(g.outputs)
    shapes: dict[Value, tuple[int, ...]] = {}
    lazy: set[Value] = set()
    stretched: set[Value] = set()
    for n in g.nodes:
        if n.op != "broadcast_in_dim" or not isinstance(n.inputs[0], Value):
            continue
        (v,) = n.outputs
        expanded = [1] * v.type.ndim
        for i, d in enumerate(n.attrs["broadcast_dimensions"]):
            expanded[d] = n.inputs[0].type.shape[i]
        if tuple(expanded) == v.type.shape:
            continue
        shapes[v] = tuple(expanded)
        if v not in outputs and users[v] and all(_absorbs(u, v, shapes, lazy) for u in users[v]):
            lazy.add(v)
        else:
            stretched.add(v)
    return lazy, stretched


def _absorbs(u: Node, v: Value, shapes: dict[Value, tuple[int, ...]], lazy: set[Value]) -> bool:
    if not get_op(u.op).has("elementwise") or len(u.inputs) < 2:
        return False
    rendered = [
        shapes[x] if isinstance(x, Value) and (x in lazy or x is v) else x.type.shape
        for x in u.inputs
    ]
    return tuple(np.broadcast_shapes(*rendered)) == u.outputs[0].type.shape


def generate(
    d: Decomposed,
    original: Graph,
    lowerings: Mapping[str, Lowering],
    plan: BufferPlan,
    lazy: set[Value],
    key: str,
    check_input: Any,
) -> Generated:
    """The source of a Python function computing ``d.graph``.

    ``check_input(k, array)`` is called for an input that is not an ndarray
    of exactly the expected dtype and shape; it converts it or raises.
    """
    g = d.graph
    namer = _Namer()
    fname = namer.take(g.name, user=True)
    names = value_names(d, original, namer)
    out = Generated("", fname)
    env = out.env
    bound: list[str] = []

    def bind(name: str, obj: Any) -> str:
        if name in env:
            assert _same_object(env[name], obj), f"two objects named {name}"
            return name
        namer.used.add(name)
        env[name] = obj
        bound.append(name)
        return name

    bind("ndarray", np.ndarray)
    bind("errstate", np.errstate)
    bind("np_array", np.array)
    bind("check_input", check_input)

    header: list[str] = []
    body: list[tuple[str, Node | None]] = []
    consts: set[Value] = set()
    for n in g.nodes:
        if not any(isinstance(x, Value) for x in n.inputs):
            for v, value in zip(n.outputs, _compute_consts(n)):
                env[names[v]] = value
                consts.add(v)
                header.append(f"{names[v]} = env[{names[v]!r}]  # constant {v.type}")
    for v, buf in plan.buffers.items():
        name = plan.buffer_names[v]
        if name not in env:
            env[name] = buf
            header.append(f"{name} = env[{name!r}]  # {v.type}")

    last_loc: tuple[str, int] | None = None
    deletions = _deletions(g, plan, consts)
    copied = _transposes_to_copy(g)
    if copied:
        bind("np_ascontiguousarray", np.ascontiguousarray)
    for i, n in enumerate(g.nodes):
        if n.outputs[0] in consts:
            continue
        loc = (n.loc.file, n.loc.line) if n.loc is not None else None
        if loc is not None and loc != last_loc:
            assert n.loc is not None
            text = n.loc.source_line()
            derived = f" ({n.loc.derived})" if n.loc.derived else ""
            body.append((f"# {n.loc.file}:{n.loc.line}{derived}  {text}".rstrip(), None))
        last_loc = loc
        args = [_operand(x, n, names, bind) for x in n.inputs]
        lowering = lowerings[n.op]
        if lowering.tuple_result:
            targets = ", ".join(names[v] for v in n.outputs) + ("," if len(n.outputs) == 1 else "")
            body.append((f"{targets} = {lowering.emit(Emit(n, args, None, bind))}", n))
        else:
            (v,) = n.outputs
            donated = plan.donated_into.get(v)
            buffer = names[donated] if donated is not None else plan.buffer_names.get(v)
            e = Emit(n, args, buffer, bind, lazy_broadcast=v in lazy)
            code = lowering.emit(e)
            if v in copied:
                code = f"np_ascontiguousarray({code})"
            body.append((f"{names[v]} = {code}", n))
        if deletions.get(i):
            body.append((f"del {', '.join(names[w] for w in deletions[i])}", None))

    checks = []
    for k, v in enumerate(g.inputs):
        dt = bind(str(v.type.dtype), v.type.dtype.np)
        name = names[v]
        checks.append(
            f"if {name}.__class__ is not ndarray or {name}.dtype is not {dt}"
            f" or {name}.shape != {tuple(v.type.shape)!r}:"
        )
        checks.append(f"    {name} = check_input({k}, {name})")
    donated_inputs = sorted({g.inputs.index(u) for u in plan.donated_into.values()})
    if donated_inputs:
        # An array that may not be written (read-only, a view, overlapping another
        # argument) is swapped for a private copy, which is then written and returned.
        take = bind("take_donations", take_donations)
        targets = ", ".join(names[g.inputs[k]] for k in donated_inputs)
        everything = ", ".join(names[v] for v in g.inputs)
        checks.append(f"{targets}, = {take}(({everything},), {tuple(donated_inputs)!r})")
    returns = []
    returned: set[Value] = set()
    for v in g.outputs:
        expr = names[v]
        if v.type.shape == ():
            expr = f"np_array({expr})"  # NumPy hands back scalars for 0-d results
        elif plan.storage[v].kind != "fresh" or v in plan.readonly or v in returned:
            # never return an input, a constant, a broadcast view, or one array twice
            expr = f"{expr}.copy()"
        returned.add(v)
        returns.append(expr)

    lines = [f"def make_{fname}(env):"]
    lines += [f"    {name} = env[{name!r}]" for name in sorted(bound)]
    lines += [f"    {h}" for h in header]
    params = ", ".join(names[v] for v in g.inputs)
    lines.append(f"    def {fname}({params}):")
    lines += [f"        {c}" for c in checks]
    lines.append('        with errstate(all="ignore"):')
    if not body:
        lines.append("            pass")
    for text, node in body:
        lines.append(f"            {text}")
        if node is not None:
            out.line_nodes[len(lines)] = node
    ret = ", ".join(returns) + ("," if len(returns) == 1 else "")
    lines.append(f"        return ({ret})")
    lines.append(f"    return {fname}")
    out.source = f"# graphc numpy backend: graph {g.name} ({key})\n" + "\n".join(lines) + "\n"
    # The header line shifts every line number by one.
    out.line_nodes = {k + 1: n for k, n in out.line_nodes.items()}
    return out


# BLAS packs a transposed right operand more slowly on every product (about 35 us more
# for a 256x256 float32 matrix with OpenBLAS, whatever the rows): a matrix that many
# products read transposed (an unrolled recurrence's backward) is copied once instead.
# NumPy allocates that copy per call, outside the memory plan (like the other arrays
# this backend leaves to NumPy's allocator).
SHARED_TRANSPOSE_READERS = 3


def _transposes_to_copy(g: Graph) -> set[Value]:
    """2-d transposes read as the right operand of at least
    ``SHARED_TRANSPOSE_READERS`` products, and by nothing else."""
    readers: dict[Value, list[Node]] = {}
    for n in g.nodes:
        for x in n.value_inputs():
            readers.setdefault(x, []).append(n)
    found = set()
    for n in g.nodes:
        if n.op != "transpose" or len(n.output.type.shape) != 2:
            continue
        uses = readers.get(n.output, [])
        if len(uses) >= SHARED_TRANSPOSE_READERS and all(
            u.op == "matmul" and u.inputs[1] is n.output and u.inputs[0] is not n.output
            for u in uses
        ):
            found.add(n.output)
    return found


def _same_object(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, np.generic) and isinstance(b, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()  # NaN equals itself here
    return bool(type(a) is type(b) and a == b)  # bound methods such as np.add.reduce


def _deletions(g: Graph, plan: BufferPlan, consts: set[Value]) -> dict[int, list[Value]]:
    keep = set(g.outputs) | set(g.inputs) | consts
    found: dict[int, list[Value]] = {}
    for v, i in plan.last_use.items():
        if v not in keep:
            found.setdefault(i, []).append(v)
    order = {v: k for k, v in enumerate(v for n in g.nodes for v in n.outputs)}
    for vs in found.values():
        vs.sort(key=order.__getitem__)
    return found


def _operand(x: Operand, n: Node, names: dict[Value, str], bind: Any) -> str:
    if isinstance(x, Value):
        return names[x]
    # A Python scalar is "weak" in NumPy: it takes the dtype of the array next
    # to it, which is the literal's meaning exactly when some array operand
    # has the literal's dtype. Otherwise bind a NumPy scalar of its dtype.
    if any(isinstance(y, Value) and y.type.dtype == x.dtype for y in n.inputs):
        return _python_literal(x, bind)
    value = x.dtype.np.type(x.value)
    return bind(f"k_{x.dtype}_{_slug(x.text())}", value)  # type: ignore[no-any-return]


def _python_literal(x: Literal, bind: Any) -> str:
    if x.dtype.is_bool:
        return "True" if x.value else "False"
    if x.dtype.is_int:
        return str(int(x.value))
    v = float(x.value)
    if math.isnan(v):
        return bind("nan", math.nan)  # type: ignore[no-any-return]
    if math.isinf(v):
        return ("" if v > 0 else "-") + bind("inf", math.inf)
    return repr(v)


def _slug(text: str) -> str:
    return text.replace("-", "m").replace(".", "_").replace("+", "")


def _compute_consts(n: Node) -> tuple[np.ndarray, ...]:
    """The values of a node without array operands, computed once at build time."""
    if n.op == "broadcast_in_dim":
        lit = n.inputs[0]
        assert isinstance(lit, Literal)
        return (np.broadcast_to(lit.as_array(), n.attrs["shape"]),)
    results = []
    for r in run_node(n, [x.as_array() for x in n.inputs if isinstance(x, Literal)]):
        r = np.array(r)
        r.flags.writeable = False
        results.append(r)
    return tuple(results)
