"""From a fused group (or one node) to a loop kernel description.

A :class:`LoopSpec` says: loop over ``shape``; load these strided views;
compute these elementwise steps; store these values; accumulate these
reductions over the dims marked in ``reduced``. Building it resolves view ops
(broadcast_in_dim, transpose, slice, reverse, reshape) into strides, so they
cost nothing at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphc.ir import DType, Graph, Literal, Node, Value, get_op

from .views import View, contiguous_strides

VIEW_OPS = ("broadcast_in_dim", "transpose", "slice", "reverse", "reshape")
REDUCE_OPS = {"reduce_sum": "sum", "reduce_prod": "prod", "reduce_max": "max", "reduce_min": "min"}


class NotALoop(Exception):
    """The group does not fit one loop nest (the caller splits it)."""


@dataclass(frozen=True)
class Buf:
    """A kernel buffer: the memory of ``key`` (a graph Value, or a scratch
    name) holding elements of ``dtype``."""

    key: Any
    dtype: DType


@dataclass(frozen=True)
class Access:
    """A strided view of kernel buffer ``source`` over the loop dims."""

    source: Any
    dtype: DType
    offset: int
    strides: tuple[int, ...]


@dataclass
class Step:
    node: Node
    operands: list[Any]  # ("load", k) | ("reg", k) | Literal


@dataclass
class Reduce:
    kind: str  # sum | prod | max | min
    value: Any  # ("load", k) | ("reg", k)
    in_dtype: DType
    out: Access


@dataclass
class LoopSpec:
    shape: tuple[int, ...]
    reduced: tuple[bool, ...]
    loads: list[Access] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    stores: list[tuple[Any, Access]] = field(default_factory=list)  # (ref, access)
    reductions: list[Reduce] = field(default_factory=list)
    reg_dtypes: list[DType] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def cost(self) -> int:
        """Rough work per loop iteration (a transcendental counts 20)."""
        heavy = {"exp", "log", "tanh", "sigmoid", "expm1", "log1p", "pow", "sin", "cos", "erf"}
        heavy |= {"gammaln", "digamma", "erfc", "erfinv", "ndtri", "log_ndtr", "i0e", "i1e"}
        return 1 + len(self.loads) + sum(20 if s.node.op in heavy else 1 for s in self.steps)


def view_op(v: View, n: Node) -> View | None:
    """Apply view op ``n`` to ``v``; None when a reshape needs a copy."""
    a = n.attrs
    out_shape = n.outputs[0].type.shape
    if n.op == "broadcast_in_dim":
        return v.broadcast_in_dim(a["shape"], a["broadcast_dimensions"])
    if n.op == "transpose":
        return v.transpose(a["perm"])
    if n.op == "slice":
        return v.slice(a["start"], a["stride"], out_shape)
    if n.op == "reverse":
        return v.reverse([x % max(len(v.shape), 1) for x in a["axes"]])
    if n.op == "reshape":
        return v.reshape(out_shape)
    raise AssertionError(n.op)


def build_loop_spec(
    body: Graph, operands: list[View | Literal], outputs: list[View], value_names: dict[Value, str]
) -> LoopSpec:
    """Describe ``body`` (applied to ``operands``) as one loop nest writing
    ``outputs`` (contiguous views of the output buffers, one per body output).

    Raises :class:`NotALoop` when the body needs more than one loop.
    """
    env: dict[Value, Any] = {}
    for formal, actual in zip(body.inputs, operands):
        env[formal] = actual
    loads: dict[tuple[Any, ...], int] = {}
    spec = LoopSpec((), ())
    loop_shape: tuple[int, ...] | None = None
    reduced: tuple[bool, ...] | None = None
    reductions: dict[Value, tuple[str, Any, DType, tuple[bool, ...]]] = {}

    def fix_shape(shape: tuple[int, ...]) -> None:
        nonlocal loop_shape
        if loop_shape is None:
            loop_shape = shape
        elif loop_shape != shape:
            raise NotALoop(f"loop shapes {loop_shape} and {shape} differ")

    def ref(x: Any, shape: tuple[int, ...]) -> Any:
        if isinstance(x, Literal):
            return x
        if isinstance(x, View):
            v = x.broadcast_to(shape)
            key = (v.source, v.offset, v.strides)
            if key not in loads:
                loads[key] = len(spec.loads)
                spec.loads.append(Access(v.source, _dtype_of(v), v.offset, v.strides))
            return ("load", loads[key])
        kind, k, shp = x
        if kind == "reduced":
            raise NotALoop("a reduction result is used inside its own loop")
        if shp != shape:
            raise NotALoop("a computed value is broadcast inside the loop")
        return (kind, k)

    for n in body.nodes:
        opdef = get_op(n.op)
        out = n.outputs[0]
        if n.op in VIEW_OPS:
            src = env[n.inputs[0]] if isinstance(n.inputs[0], Value) else n.inputs[0]
            if isinstance(src, Literal):
                env[out] = src  # a view of a scalar is the same scalar, broadcast
                continue
            if not isinstance(src, View):
                raise NotALoop(f"{n.op} of a computed value")
            v = view_op(src, n)
            if v is None:
                raise NotALoop("reshape needs a copy")
            env[out] = v
        elif n.op == "constant":
            value = n.attrs["value"]
            if value.ndim == 0:
                env[out] = Literal(value.item(), out.type.dtype)
            else:
                # Constants are passed to the entry function by pointer.
                env[out] = View.of(Buf(out, out.type.dtype), out.type.shape)
        elif opdef.has("elementwise"):
            shape = out.type.shape
            fix_shape(shape)
            ops = [ref(env[x] if isinstance(x, Value) else x, shape) for x in n.inputs]
            spec.steps.append(Step(n, ops))
            spec.reg_dtypes.append(out.type.dtype)
            spec.names.append(value_names.get(out, ""))
            env[out] = ("reg", len(spec.steps) - 1, shape)
        elif n.op in REDUCE_OPS:
            x = n.inputs[0]
            in_shape = x.type.shape
            fix_shape(in_shape)
            axes = {a % max(len(in_shape), 1) for a in n.attrs["axes"]}
            flags = tuple(d in axes for d in range(len(in_shape)))
            if reduced is not None and reduced != flags:
                raise NotALoop("reductions over different axes")
            reduced = flags
            val = ref(env[x] if isinstance(x, Value) else x, in_shape)
            reductions[out] = (REDUCE_OPS[n.op], val, x.type.dtype, flags)
            env[out] = ("reduced", out, out.type.shape)
        else:
            raise NotALoop(f"{n.op} is not a loop op")
    for v in body.outputs:
        if loop_shape is None and not (isinstance(env[v], tuple) and env[v][0] == "reduced"):
            loop_shape = v.type.shape
    if loop_shape is None:
        raise NotALoop("empty loop")
    spec.shape = loop_shape
    spec.reduced = reduced if reduced is not None else (False,) * len(loop_shape)
    kept = [d for d, r in enumerate(spec.reduced) if not r]
    for v, dest in zip(body.outputs, outputs):
        x = env[v]
        dtype = v.type.dtype
        if isinstance(x, tuple) and x[0] == "reduced":
            kind, val, in_dtype, _ = reductions[v]
            kept_strides = contiguous_strides([loop_shape[d] for d in kept])
            strides = [0] * len(loop_shape)
            for d, s in zip(kept, kept_strides):
                strides[d] = s
            access = Access(dest.source, dtype, dest.offset, tuple(strides))
            spec.reductions.append(Reduce(kind, val, in_dtype, access))
            continue
        if v.type.shape != loop_shape:
            raise NotALoop("outputs of different shapes")
        r = ref(x, loop_shape)
        dense = contiguous_strides(loop_shape)
        spec.stores.append((r, Access(dest.source, dtype, dest.offset, dense)))
    return spec


def _dtype_of(v: View) -> DType:
    assert isinstance(v.source, Buf), v.source
    return v.source.dtype


def spec_buffers(spec: LoopSpec) -> list[Buf]:
    """The kernel's buffer parameters, in order of first access."""
    buffers: list[Buf] = []
    for a in [*spec.loads, *(acc for _, acc in spec.stores), *(r.out for r in spec.reductions)]:
        if a.source not in buffers:
            buffers.append(a.source)
    return buffers


def spec_key(spec: LoopSpec, extra: Any = None) -> tuple[Any, ...]:
    """Everything the emitted code depends on, with buffers as parameter
    positions: two specs with equal keys can share one kernel function."""
    index = {buf: k for k, buf in enumerate(spec_buffers(spec))}

    def acc(a: Access) -> tuple[Any, ...]:
        return (index[a.source], a.dtype, a.offset, a.strides)

    def ref(x: Any) -> Any:
        return ("lit", x.dtype, x.text()) if isinstance(x, Literal) else x

    steps = tuple(
        (
            s.node.op,
            tuple((k, str(v)) for k, v in s.node.attrs.items()),
            s.node.outputs[0].type.dtype,
            tuple(ref(x) for x in s.operands),
        )
        for s in spec.steps
    )
    return (
        spec.shape,
        spec.reduced,
        tuple(acc(a) for a in spec.loads),
        steps,
        tuple(spec.reg_dtypes),
        tuple((ref(x), acc(a)) for x, a in spec.stores),
        tuple((r.kind, ref(r.value), r.in_dtype, acc(r.out)) for r in spec.reductions),
        extra,
    )


def can_fail(spec: LoopSpec) -> bool:
    """Whether the kernel reports errors (integer powers), which name a node."""
    return any(s.node.op == "pow" and not s.node.outputs[0].type.dtype.is_float for s in spec.steps)


def normalize_offsets(spec: LoopSpec) -> tuple[LoopSpec, dict[Buf, int]]:
    """Move each buffer's smallest access offset into the pointer the caller
    passes, so loops that differ only in where they start (the steps of an
    unrolled RNN) share one kernel. Returns the new spec and the shifts."""
    shift: dict[Buf, int] = {}
    for a in [*spec.loads, *(acc for _, acc in spec.stores), *(r.out for r in spec.reductions)]:
        shift[a.source] = min(shift.get(a.source, a.offset), a.offset)

    def moved(a: Access) -> Access:
        return Access(a.source, a.dtype, a.offset - shift[a.source], a.strides)

    out = LoopSpec(
        spec.shape,
        spec.reduced,
        [moved(a) for a in spec.loads],
        spec.steps,
        [(x, moved(a)) for x, a in spec.stores],
        [Reduce(r.kind, r.value, r.in_dtype, moved(r.out)) for r in spec.reductions],
        spec.reg_dtypes,
        spec.names,
    )
    return out, shift
