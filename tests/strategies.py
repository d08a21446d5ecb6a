"""Hypothesis strategies for random, well-typed graphs and their inputs.

Shared by the IR tests and the backend differential tests::

    from tests.strategies import graphs_with_inputs, ops_with_trait

    @given(graphs_with_inputs(ops=ops_with_trait("elementwise"), special=False))
    def test_backend_agrees(case):
        g, arrays = case
        ...

Every op in the registry has an entry in :data:`OP_MAKERS` (a test checks
this), so a newly registered op shows up in random graphs at once (the few
in :data:`PIPELINE_ONLY` only when asked for by name). A maker
draws operands and attributes for its op from the values built so far, or
adds a fresh graph input when nothing fits. Makers may pick operands that the
type rule rejects; :func:`graphs` then simply draws another op, so the
strategies never need to duplicate the type rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

from graphc.ir import (
    DType,
    Graph,
    GraphBuilder,
    Literal,
    Loc,
    OpTypeError,
    TensorType,
    Value,
    all_ops,
    get_op,
)

# Random graphs draw from the dtypes whose every op is exact against NumPy
# (16-bit floats have their own tests: their transcendental functions may
# round differently by one unit in the last place).
DTYPES = (
    DType.bool, DType.i8, DType.i16, DType.i32, DType.i64,
    DType.u8, DType.u16, DType.u32, DType.u64, DType.f32, DType.f64,
)  # fmt: skip
FLOAT_DTYPES = (DType.f32, DType.f64)
INT_DTYPES = (DType.i32, DType.i64)
MAX_SIZE = 256  # elements per value; keeps interpretation of random graphs fast
MAX_INPUTS = 6

SPECIAL_FLOATS = (0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -1.0, 0.5)


class Skip(Exception):
    """A maker found nothing it can use; the graph strategy draws another op."""


# ---------------------------------------------------------------------------
# Small strategies
# ---------------------------------------------------------------------------


def dtypes(allow: Sequence[DType] = DTYPES) -> st.SearchStrategy[DType]:
    """One of ``allow``."""
    return st.sampled_from(tuple(allow))


def shapes(*, min_dims: int = 0, max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy[Any]:
    """Small shapes, including ``()``, size-1 and empty dimensions."""
    return st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def names() -> st.SearchStrategy[str]:
    """Identifiers the text form accepts, biased towards ones that could clash
    with printed value names (``t0``, ``a``, ``arg0``)."""
    tricky = st.sampled_from(["x", "a", "b", "t0", "u1", "arg0", "arg1", "x.y", "_", "w_1"])
    plain = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,6}", fullmatch=True)
    return tricky | plain


def scalars(dtype: DType, *, special: bool = True) -> st.SearchStrategy[Any]:
    """Python scalars exactly representable in ``dtype``."""
    if dtype.is_bool:
        return st.booleans()
    if dtype.is_int:
        info = np.iinfo(dtype.np)
        if dtype.is_unsigned:
            return st.integers(0, 9) | st.sampled_from([int(info.max), 0, 1])
        edges = st.sampled_from([int(info.min), int(info.max), 0, -1])
        return st.integers(-9, 9) | edges
    width = 32 if dtype is DType.f32 else 64
    finite = st.floats(-1e3, 1e3, width=width) | st.floats(
        allow_nan=False, allow_infinity=False, width=width
    )
    if not special:
        return finite
    return finite | st.sampled_from(SPECIAL_FLOATS)


def literals(dtype: DType | None = None, *, special: bool = True) -> st.SearchStrategy[Literal]:
    """Strongly typed literals (printed with a dtype suffix unless it matches)."""
    dts = st.just(dtype) if dtype is not None else dtypes()
    return dts.flatmap(lambda d: scalars(d, special=special).map(lambda v: Literal(v, d)))


def arrays(
    ty: TensorType, *, special: bool = False, int_range: tuple[int, int] = (-8, 8)
) -> st.SearchStrategy[np.ndarray]:
    """Arrays of type ``ty``; floats are finite and moderate unless ``special``."""
    if ty.dtype.is_bool:
        elements: st.SearchStrategy[Any] = st.booleans()
    elif ty.dtype.is_int:
        lo, hi = int_range
        elements = st.integers(max(lo, 0) if ty.dtype.is_unsigned else lo, hi)
    else:
        width = 32 if ty.dtype is DType.f32 else 64
        elements = st.floats(-4, 4, width=width)
        if special:
            elements = elements | st.sampled_from(SPECIAL_FLOATS)
    return hnp.arrays(ty.dtype.np, ty.shape, elements=elements)


def locations() -> st.SearchStrategy[Loc]:
    """Source locations, with file names that need escaping in the text form."""
    files = st.sampled_from(["model.py", "examples/mlp.py", 'we"ird\\path.py']) | st.text(
        max_size=12
    )
    return st.builds(Loc, files, st.integers(0, 10_000), st.none() | st.integers(0, 200))


# ---------------------------------------------------------------------------
# Graph construction
# ---------------------------------------------------------------------------


def _small(shape: Sequence[int]) -> bool:
    return math.prod(shape) <= MAX_SIZE and len(shape) <= 5


def _broadcastable(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(x == y or x == 1 or y == 1 for x, y in zip(a[::-1], b[::-1]))


@dataclass
class _Ctx:
    """What a maker sees: the draw function, the builder, the values so far."""

    draw: Callable[..., Any]
    b: GraphBuilder
    pool: list[Value]
    special: bool
    allow_dtypes: tuple[DType, ...]
    depth: int
    options: dict[str, Any] = field(default_factory=dict)
    fresh_inputs: bool = True

    def pick(self, pred: Callable[[Value], bool] = lambda v: True) -> Value:
        """A value from the pool satisfying ``pred``."""
        found = [v for v in self.pool if pred(v)]
        if not found:
            raise Skip
        return self.draw(st.sampled_from(found))

    def pick_or_fresh(self, pred: Callable[[Value], bool], ty: Callable[[], TensorType]) -> Value:
        """A pool value satisfying ``pred``, or a new graph input of type ``ty()``."""
        found = [v for v in self.pool if pred(v)]
        if found and self.draw(st.integers(0, 3)):
            return self.draw(st.sampled_from(found))
        return self.fresh(ty())

    def fresh(self, ty: TensorType) -> Value:
        """A new graph input (only at the top level, only a few, only of the
        allowed dtypes)."""
        if not self.fresh_inputs or len(self.b.inputs) >= MAX_INPUTS or not _small(ty.shape):
            raise Skip
        if ty.dtype not in self.allow_dtypes:
            raise Skip
        v = self.b.input(ty, self.draw(names()))
        self.pool.append(v)
        return v

    def dtype(self, allow: Sequence[DType] | None = None) -> DType:
        choices = [d for d in (allow or self.allow_dtypes) if d in self.allow_dtypes]
        if not choices:
            raise Skip
        return self.draw(st.sampled_from(choices))

    def weak(self, dtype: DType) -> Any:
        """A Python scalar that the builder turns into a literal of ``dtype``."""
        return self.draw(scalars(dtype, special=self.special))

    def operand_like(self, x: Value) -> Any:
        """A second operand for an elementwise op with ``x``: a value whose shape
        broadcasts with it, a weak Python scalar or a strongly typed literal."""
        kind = self.draw(st.sampled_from(["value", "value", "weak", "literal"]))
        if kind == "value":
            return self.pick(lambda v: _broadcastable(v.type.shape, x.type.shape))
        if kind == "weak":
            return self.weak(x.type.dtype)
        return self.draw(literals(self.dtype(), special=self.special))

    def axes(self, ndim: int) -> tuple[int, ...]:
        chosen = self.draw(st.lists(st.integers(0, max(ndim - 1, 0)), unique=True, max_size=ndim))
        if ndim == 0:
            return ()
        return tuple(a - ndim if self.draw(st.booleans()) else a for a in chosen)

    def constant(self, array: np.ndarray) -> Value:
        return self.b.constant(value=array)


Maker = Callable[[_Ctx], Any]


def _unary(op: str) -> Maker:
    return lambda c: c.b.emit(op, c.pick())


def _binary(op: str) -> Maker:
    def make(c: _Ctx) -> Any:
        x = c.pick()
        y = c.operand_like(x)
        return c.b.emit(op, *((y, x) if c.draw(st.booleans()) else (x, y)))

    return make


def _ternary(op: str) -> Maker:
    def make(c: _Ctx) -> Any:
        x = c.pick()
        return c.b.emit(op, x, c.operand_like(x), c.operand_like(x))

    return make


def _select(c: _Ctx) -> Any:
    cond = c.pick_or_fresh(
        lambda v: v.type.dtype.is_bool, lambda: TensorType(c.draw(shapes()), DType.bool)
    )
    x = c.pick(lambda v: _broadcastable(v.type.shape, cond.type.shape))
    return c.b.select(cond, x, c.operand_like(x))


def _cast(c: _Ctx) -> Any:
    return c.b.cast(c.pick(), dtype=c.dtype())


def _reduction(op: str) -> Maker:
    def make(c: _Ctx) -> Any:
        x = c.pick()
        return c.b.emit(op, x, axes=c.axes(x.type.ndim), keepdims=c.draw(st.booleans()))

    return make


def _argreduce(op: str) -> Maker:
    def make(c: _Ctx) -> Any:
        x = c.pick(lambda v: v.type.ndim >= 1)
        n = x.type.ndim
        return c.b.emit(op, x, axis=c.draw(st.integers(-n, n - 1)), keepdims=c.draw(st.booleans()))

    return make


def _cumsum(c: _Ctx) -> Any:
    x = c.pick(lambda v: v.type.ndim >= 1)
    n = x.type.ndim
    return c.b.cumsum(x, axis=c.draw(st.integers(-n, n - 1)), reverse=c.draw(st.booleans()))


def _argsort(c: _Ctx) -> Any:
    return c.b.argsort(c.pick(lambda v: v.type.ndim >= 1 and not v.type.dtype.is_bool))


def _polygamma(c: _Ctx) -> Any:
    return c.b.polygamma(c.pick(), n=c.draw(st.integers(0, 3)))


_SPD = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
_SYM = np.array([[0.3, -0.2, 0.1], [-0.2, 0.1, 0.25], [0.1, 0.25, -0.3]])


def _linalg(op: str) -> Maker:
    # Factorizations fail on data (singular, indefinite, NaN), and random
    # graphs hold anything, specials included: the operand is a fixed
    # well-conditioned matrix moved by a bounded, finite amount that depends
    # on a picked value, so the op is always defined.
    def make(c: _Ctx) -> Any:
        x = c.pick(lambda v: v.type.dtype.is_float)
        dtype = x.type.dtype
        s = c.b.reduce_sum(x, axes=tuple(range(x.type.ndim)))
        t = c.b.select(c.b.isfinite(s), c.b.tanh(s), Literal(0.0, dtype))
        a = c.b.add(
            c.b.constant(value=_SPD.astype(dtype.np)),
            c.b.mul(c.b.constant(value=_SYM.astype(dtype.np)), t),
        )
        if op in ("solve", "triangular_solve"):
            rhs = c.b.mul(c.b.constant(value=np.arange(6.0).reshape(3, 2).astype(dtype.np)), t)
            attrs = {}
            if op == "triangular_solve":
                attrs = {
                    k: c.draw(st.booleans()) for k in ("lower", "transpose_a", "unit_diagonal")
                }
            return c.b.emit(op, a, rhs, **attrs)
        if op == "svd":
            u, s, vt = c.b.svd(a, full_matrices=c.draw(st.booleans()))
            # Singular vectors are defined up to sign: keep only what is not.
            return s, c.b.mul(u, u), c.b.mul(vt, vt)
        if op == "eigh":
            w, v = c.b.eigh(a)
            return w, c.b.mul(v, v)
        return c.b.emit(op, a)

    return make


def _reshape(c: _Ctx) -> Any:
    x = c.pick()
    shape, size = x.type.shape, x.type.size
    options = [(size,), shape + (1,), (1,) + shape, shape[::-1]]
    if size == 1:
        options.append(())
    if len(shape) >= 2:
        options.append((shape[0] * shape[1],) + shape[2:])
    return c.b.reshape(x, shape=c.draw(st.sampled_from(options)))


def _broadcast_in_dim(c: _Ctx) -> Any:
    x = c.pick()
    out: list[int] = []
    dims: list[int] = []
    for d in x.type.shape:
        while c.draw(st.integers(0, 4)) == 0:
            out.append(c.draw(st.integers(1, 3)))
        dims.append(len(out))
        out.append(c.draw(st.integers(1, 3)) if d == 1 else d)
    if c.draw(st.booleans()):
        out.append(c.draw(st.integers(1, 3)))
    if not _small(out):
        raise Skip
    return c.b.broadcast_in_dim(x, shape=tuple(out), broadcast_dimensions=tuple(dims))


def _transpose(c: _Ctx) -> Any:
    x = c.pick()
    perm = c.draw(st.permutations(range(x.type.ndim)))
    return c.b.transpose(x, perm=tuple(perm))


def _slice(c: _Ctx) -> Any:
    x = c.pick()
    start, limit, stride = [], [], []
    for n in x.type.shape:
        s = c.draw(st.integers(0, n))
        start.append(s)
        limit.append(c.draw(st.integers(s, n)))
        stride.append(c.draw(st.integers(1, 3)))
    return c.b.slice(x, start=tuple(start), limit=tuple(limit), stride=tuple(stride))


def _reverse(c: _Ctx) -> Any:
    x = c.pick()
    return c.b.reverse(x, axes=c.axes(x.type.ndim))


def _pad(c: _Ctx) -> Any:
    x = c.pick()
    low, high, interior = [], [], []
    for n in x.type.shape:
        it = c.draw(st.integers(0, 2))
        grown = n + max(n - 1, 0) * it
        lo = c.draw(st.integers(-min(grown, 2), 2))
        hi = c.draw(st.integers(-min(grown + lo, 2), 2))
        low.append(lo)
        high.append(hi)
        interior.append(it)
    if not _small(
        [
            lo + hi + n + max(n - 1, 0) * it
            for n, lo, hi, it in zip(x.type.shape, low, high, interior)
        ]
    ):
        raise Skip
    dtype = x.type.dtype
    if c.draw(st.booleans()):
        value: Any = c.weak(dtype)
    else:
        value = c.pick_or_fresh(lambda v: v.type == TensorType((), dtype), lambda: dtype[()])
    return c.b.pad(x, value, low=tuple(low), high=tuple(high), interior=tuple(interior))


def _concatenate(c: _Ctx) -> Any:
    x = c.pick(lambda v: v.type.ndim >= 1)
    axis = c.draw(st.integers(-x.type.ndim, x.type.ndim - 1))
    a = axis % x.type.ndim
    parts = [x]
    for _ in range(c.draw(st.integers(0, 2))):
        shape = list(x.type.shape)
        shape[a] = c.draw(st.integers(0, 3))
        ty = TensorType(tuple(shape), x.type.dtype)
        parts.append(c.pick_or_fresh(lambda v, ty=ty: v.type == ty, lambda ty=ty: ty))
    if not _small(
        (sum(p.type.shape[a] for p in parts),) + x.type.shape[:a] + x.type.shape[a + 1 :]
    ):
        raise Skip
    return c.b.concatenate(*parts, axis=axis)


def _indices(c: _Ctx, n: int) -> Value:
    shape = c.draw(shapes(max_dims=2, max_side=3))
    dtype = c.draw(st.sampled_from(INT_DTYPES))
    values = c.draw(hnp.arrays(dtype.np, shape, elements=st.integers(-n, n - 1)))
    return c.constant(values)


def _gather(c: _Ctx) -> Any:
    x = c.pick(lambda v: v.type.ndim >= 1 and 0 not in v.type.shape)
    axis = c.draw(st.integers(-x.type.ndim, x.type.ndim - 1))
    idx = _indices(c, x.type.shape[axis])
    return c.b.gather(x, idx, axis=axis)


def _scatter_add(c: _Ctx) -> Any:
    x = c.pick(lambda v: v.type.ndim >= 1 and 0 not in v.type.shape)
    axis = c.draw(st.integers(-x.type.ndim, x.type.ndim - 1))
    a = axis % x.type.ndim
    idx = _indices(c, x.type.shape[a])
    want = TensorType(x.type.shape[:a] + idx.type.shape + x.type.shape[a + 1 :], x.type.dtype)
    if not _small(want.shape):
        raise Skip
    if c.draw(st.booleans()):
        updates = c.pick_or_fresh(lambda v: v.type == want, lambda: want)
    else:
        updates = c.b.broadcast_in_dim(
            Literal(c.weak(x.type.dtype), x.type.dtype), shape=want.shape, broadcast_dimensions=()
        )
    return c.b.scatter_add(x, idx, updates, axis=axis)


def _matmul(c: _Ctx) -> Any:
    x = c.pick(lambda v: v.type.ndim >= 1)
    k = x.type.shape[-1]
    kind = c.draw(st.sampled_from(["vector", "matrix", "batched"]))
    m = c.draw(st.integers(1, 3))
    shape = {"vector": (k,), "matrix": (k, m), "batched": (c.draw(st.integers(1, 2)), k, m)}[kind]
    y = c.pick_or_fresh(lambda v: v.type.shape == shape, lambda: TensorType(shape, c.dtype()))
    return c.b.matmul(*((y, x) if kind == "vector" and c.draw(st.booleans()) else (x, y)))


def _nchw(c: _Ctx) -> Value:
    def new() -> TensorType:
        dims = (c.draw(st.integers(1, 2)), c.draw(st.integers(1, 4)), 4, c.draw(st.integers(3, 5)))
        return TensorType(dims, c.dtype(FLOAT_DTYPES))

    return c.pick_or_fresh(lambda v: v.type.ndim == 4 and v.type.dtype.is_float, new)


def _conv2d(c: _Ctx) -> Any:
    x = _nchw(c)
    channels = x.type.shape[1]
    groups = c.draw(st.sampled_from([g for g in (1, 2, 4) if channels % g == 0]))
    out = groups * c.draw(st.integers(1, 2))
    kh, kw = c.draw(st.integers(1, 3)), c.draw(st.integers(1, 3))
    w = c.fresh(TensorType((out, channels // groups, kh, kw), c.dtype(FLOAT_DTYPES)))
    pads = tuple(tuple(c.draw(st.integers(0, 1)) for _ in range(2)) for _ in range(2))
    return c.b.conv2d(
        x,
        w,
        stride=(c.draw(st.integers(1, 2)), c.draw(st.integers(1, 2))),
        padding=pads,
        dilation=(c.draw(st.integers(1, 2)), 1),
        groups=groups,
    )


def _pool(op: str) -> Maker:
    def make(c: _Ctx) -> Any:
        x = _nchw(c)
        window = (c.draw(st.integers(1, 3)), c.draw(st.integers(1, 3)))
        pads = tuple((c.draw(st.integers(0, k - 1)), c.draw(st.integers(0, k - 1))) for k in window)
        attrs: dict[str, Any] = {
            "window": window,
            "stride": (c.draw(st.integers(1, 2)), c.draw(st.integers(1, 2))),
            "padding": pads,
        }
        if op == "avg_pool2d":
            attrs["count_include_pad"] = c.draw(st.booleans())
        return c.b.emit(op, x, **attrs)

    return make


def _iota(c: _Ctx) -> Any:
    shape = c.draw(shapes(min_dims=1))
    dim = c.draw(st.integers(0, len(shape) - 1))
    return c.b.iota(
        shape=shape, dimension=dim, dtype=c.dtype((DType.i32, DType.i64, *FLOAT_DTYPES))
    )


def _constant(c: _Ctx) -> Any:
    ty = TensorType(c.draw(shapes()), c.dtype())
    return c.constant(c.draw(arrays(ty, special=c.special)))


def _random_bits(c: _Ctx) -> Any:
    def scalar() -> Any:
        if c.draw(st.booleans()):
            return c.draw(st.integers(-(2**63), 2**63 - 1))
        return c.pick_or_fresh(
            lambda v: v.type.shape == () and v.type.dtype in INT_DTYPES,
            lambda: TensorType((), c.draw(st.sampled_from(INT_DTYPES))),
        )

    return c.b.random_bits(scalar(), scalar(), shape=c.draw(shapes()))


def _fusion(c: _Ctx) -> Any:
    if c.depth >= c.options.get("max_depth", 2):
        raise Skip
    count = c.draw(st.integers(1, 3))
    operands = [c.pick() for _ in range(count)]
    body = _body(c, [v.type for v in operands])
    kind = c.draw(st.sampled_from(["elementwise", "elementwise", "reduction", "matmul+epilogue"]))
    return c.b.fusion(*operands, subgraphs=[body], kind=kind)


def _remat(c: _Ctx) -> Any:
    if c.depth >= c.options.get("max_depth", 2):
        raise Skip
    operands = [c.pick() for _ in range(c.draw(st.integers(1, 3)))]
    body = _body(c, [v.type for v in operands])
    # The last `saved` results are kept for the backward (a remat policy's residuals).
    saved = c.draw(st.integers(0, len(body.outputs)))
    return c.b.remat(*operands, subgraphs=[body], recompute=c.draw(st.booleans()), saved=saved)


def _body(c: _Ctx, input_types: Sequence[TensorType]) -> Graph:
    """A random graph over ``input_types``, as the body of a node."""
    return c.draw(  # type: ignore[no-any-return]
        _graph(
            input_types=input_types,
            max_nodes=4,
            max_outputs=3,
            depth=c.depth + 1,
            ops=c.options.get("body_ops"),
            allow_dtypes=c.allow_dtypes,
            special=c.special,
            locations=c.options.get("locations", False),
            max_depth=c.options.get("max_depth", 2),
        )
    )


def _value_of_type(c: _Ctx, g: Graph, ty: TensorType) -> Value | None:
    """A value of ``g`` (argument or result of a node) of exactly type ``ty``."""
    found = [v for v in g.inputs if v.type == ty]
    found += [v for n in g.nodes for v in n.outputs if v.type == ty]
    return c.draw(st.sampled_from(found)) if found else None


def _scan(c: _Ctx) -> Any:
    if c.depth >= c.options.get("max_depth", 2):
        raise Skip
    carries = [c.pick() for _ in range(c.draw(st.integers(0, 2)))]
    xs: list[Value] = []
    length = c.draw(st.integers(0, 3))
    for _ in range(c.draw(st.integers(0, 2))):
        if not xs:
            xs.append(c.pick(lambda v: v.type.ndim >= 1))
            length = xs[0].type.shape[0]
        else:
            xs.append(c.pick(lambda v, n=length: v.type.ndim >= 1 and v.type.shape[0] == n))
    consts = [c.pick() for _ in range(c.draw(st.integers(0, 2)))]
    if not carries + xs + consts:
        raise Skip
    steps = [TensorType(x.type.shape[1:], x.type.dtype) for x in xs]
    body = _body(c, [v.type for v in carries] + steps + [v.type for v in consts])
    # The body's first results are its carries: any of its values of their types.
    new_carries = [_value_of_type(c, body, v.type) for v in carries]
    body = body.replace(outputs=tuple(new_carries) + body.outputs)
    return c.b.scan(
        *carries,
        *xs,
        *consts,
        subgraphs=[body],
        length=length,
        num_carry=len(carries),
        num_xs=len(xs),
        num_consts=len(consts),
        reverse=c.draw(st.booleans()),
    )


def _while(c: _Ctx) -> Any:
    if c.depth >= c.options.get("max_depth", 2):
        raise Skip
    # A step counter as the first carry bounds the loop at 0-3 steps.
    counter = TensorType((), DType.i64)
    carries = [c.pick() for _ in range(c.draw(st.integers(0, 2)))]
    consts = [c.pick() for _ in range(c.draw(st.integers(0, 2)))]
    types = [counter] + [v.type for v in carries + consts]
    inner = _body(c, types)
    chosen = [_value_of_type(c, inner, v.type) for v in carries]
    inner = inner.replace(outputs=tuple(chosen))
    wrap = GraphBuilder("body")
    args = [wrap.input(t) for t in types]
    new = list(wrap.call(inner, *args)) if chosen else []
    body = wrap.build([wrap.add(args[0], 1), *new])
    test = GraphBuilder("pred")
    args = [test.input(t) for t in types]
    pred = test.build([test.lt(args[0], c.draw(st.integers(0, 3)))])
    return c.b.emit(
        "while",
        Literal(0, DType.i64),
        *carries,
        *consts,
        subgraphs=[pred, body],
        num_carry=1 + len(carries),
    )


def _cond(c: _Ctx) -> Any:
    if c.depth >= c.options.get("max_depth", 2):
        raise Skip
    found = [v for v in c.pool if v.type.shape == () and v.type.dtype.is_bool]
    if found and c.draw(st.booleans()):
        pred = c.draw(st.sampled_from(found))
    else:
        v = c.pick()
        pred = c.b.ne(c.b.reduce_sum(v, axes=tuple(range(v.type.ndim))), 0)
    operands = [c.pick() for _ in range(c.draw(st.integers(1, 3)))]
    types = [v.type for v in operands]
    if_true, if_false = _body(c, types), _body(c, types)
    chosen = [_value_of_type(c, if_false, t) for t in if_true.output_types]
    if any(v is None for v in chosen):
        if_false = if_true  # no value of a result's type: both branches alike
    else:
        if_false = if_false.replace(outputs=tuple(v for v in chosen if v is not None))
    return c.b.cond(pred, *operands, subgraphs=[if_true, if_false])


def _all_reduce(c: _Ctx) -> Any:
    # A single-process world: the op is the identity, but it is a node no pass may drop.
    x = c.pick_or_fresh(
        lambda v: not v.type.dtype.is_bool,
        lambda: TensorType(c.draw(shapes()), c.dtype(FLOAT_DTYPES)),
    )
    return c.b.all_reduce(x, reduction=c.draw(st.sampled_from(("sum", "max", "min"))))


def _all_reduce_start(c: _Ctx) -> Any:
    x = c.pick_or_fresh(
        lambda v: not v.type.dtype.is_bool,
        lambda: TensorType(c.draw(shapes()), c.dtype(FLOAT_DTYPES)),
    )
    return c.b.all_reduce_start(x, reduction=c.draw(st.sampled_from(("sum", "max", "min"))))


def _all_reduce_done(c: _Ctx) -> Any:
    # A done reads its own start's result; ordering operands may be anything.
    started = _all_reduce_start(c)
    return c.b.all_reduce_done(started, *[c.pick() for _ in range(c.draw(st.integers(0, 2)))])


def _optimization_barrier(c: _Ctx) -> Any:
    return c.b.optimization_barrier(*[c.pick() for _ in range(c.draw(st.integers(1, 3)))])


OP_MAKERS: dict[str, Maker] = {
    "select": _select,
    "cast": _cast,
    "argmax": _argreduce("argmax"),
    "argmin": _argreduce("argmin"),
    "cumsum": _cumsum,
    "reshape": _reshape,
    "broadcast_in_dim": _broadcast_in_dim,
    "transpose": _transpose,
    "slice": _slice,
    "reverse": _reverse,
    "pad": _pad,
    "concatenate": _concatenate,
    "gather": _gather,
    "scatter_add": _scatter_add,
    "matmul": _matmul,
    "argsort": _argsort,
    "polygamma": _polygamma,
    "betainc": _ternary("betainc"),
    "betaincinv": _ternary("betaincinv"),
    "betainccinv": _ternary("betainccinv"),
    "gammainc_grad_a": _binary("gammainc_grad_a"),
    "betainc_grad": _ternary("betainc_grad"),
    **{op: _linalg(op) for op in ("cholesky", "solve", "triangular_solve", "slogdet", "eigh")},
    "svd": _linalg("svd"),
    "qr": _linalg("qr"),
    "lu": _linalg("lu"),
    "expm": _linalg("expm"),
    "conv2d": _conv2d,
    "max_pool2d": _pool("max_pool2d"),
    "avg_pool2d": _pool("avg_pool2d"),
    "iota": _iota,
    "constant": _constant,
    "random_bits": _random_bits,
    "fusion": _fusion,
    "remat": _remat,
    "optimization_barrier": _optimization_barrier,
    "all_reduce": _all_reduce,
    "all_reduce_start": _all_reduce_start,
    "all_reduce_done": _all_reduce_done,
    "scan": _scan,
    "cond": _cond,
    "while": _while,
}
# Ops drawn only when ``ops`` names them: remat and optimization_barrier are
# removed by the compile pipeline (inline_remat, remove_barriers) before a
# backend sees them; the loops and branches (scan, cond, while) have bodies of
# their own and are exercised by the control-flow tests.
PIPELINE_ONLY = frozenset({"remat", "optimization_barrier", "scan", "cond", "while"})
# Attribute-free elementwise ops share two generic makers.
for _name, _op in all_ops().items():
    if _name in OP_MAKERS:
        continue
    if _op.has("reduction"):
        OP_MAKERS[_name] = _reduction(_name)
    elif _op.has("elementwise") and not _op.attrs and len(_op.operands) == 1:
        OP_MAKERS[_name] = _unary(_name)
    elif _op.has("elementwise") and not _op.attrs and len(_op.operands) == 2:
        OP_MAKERS[_name] = _binary(_name)


def ops_with_trait(trait: str) -> list[str]:
    """Registered ops carrying ``trait`` (``elementwise``, ``reduction``, ``shape``...)."""
    return sorted(name for name, op in all_ops().items() if op.has(trait))


def _outputs_small(result: Any) -> bool:
    values = result if isinstance(result, tuple) else (result,)
    return all(_small(v.type.shape) for v in values)


@st.composite
def _graph(
    draw: Callable[..., Any],
    *,
    input_types: Sequence[TensorType] | None = None,
    max_inputs: int = 3,
    min_nodes: int = 1,
    max_nodes: int = 8,
    max_outputs: int = 3,
    depth: int = 0,
    ops: Sequence[str] | None = None,
    allow_dtypes: Sequence[DType] = DTYPES,
    special: bool = True,
    locations: bool = False,
    max_depth: int = 2,
    body_ops: Sequence[str] | None = None,
) -> Graph:
    b = GraphBuilder(draw(names()) if depth == 0 else "body")
    pool: list[Value] = []
    if input_types is None:
        for _ in range(draw(st.integers(1, max_inputs))):
            ty = TensorType(draw(shapes()), draw(dtypes(allow_dtypes)))
            pool.append(b.input(ty, draw(names())))
    else:
        for ty in input_types:
            name = draw(st.none() | names())
            pool.append(b.input(ty, name))
    ctx = _Ctx(
        draw,
        b,
        pool,
        special,
        tuple(allow_dtypes),
        depth,
        {"max_depth": max_depth, "locations": locations, "body_ops": body_ops or ops},
        fresh_inputs=depth == 0,
    )
    op_names = sorted(ops if ops is not None else set(OP_MAKERS) - PIPELINE_ONLY)
    target = draw(st.integers(min(min_nodes, max_nodes), max_nodes))
    made = attempts = 0
    last: list[Value] = []
    while made < target and attempts < 6 * target:
        attempts += 1
        op = draw(st.sampled_from(op_names))
        loc = draw(st.none() | _locs()) if locations else None
        before = len(b.nodes)
        try:
            with b.at(loc):
                result = OP_MAKERS[op](ctx)
        except (Skip, OpTypeError):
            continue
        if not _outputs_small(result):
            del b.nodes[before:]
            continue
        values = list(result) if isinstance(result, tuple) else [result]
        pool.extend(values)
        last = values
        made += 1
    # Outputs: the last node's results plus a few others (graph inputs included).
    extra = draw(st.lists(st.sampled_from(pool), max_size=max_outputs - 1)) if pool else []
    outs = (last + extra)[:max_outputs] or [pool[0]]
    return b.build(outs)


def _locs() -> st.SearchStrategy[Loc]:
    return locations()


def graphs(
    *,
    max_inputs: int = 3,
    min_nodes: int = 3,
    max_nodes: int = 8,
    max_outputs: int = 3,
    ops: Sequence[str] | None = None,
    dtypes: Sequence[DType] = DTYPES,
    special: bool = True,
    locations: bool = False,
    fusion_depth: int = 2,
) -> st.SearchStrategy[Graph]:
    """Random well-typed graphs.

    Args:
        min_nodes, max_nodes: how many nodes to aim for (an op that does not
            fit the values at hand is skipped, so a graph can come out smaller).
        ops: op names to draw from (default: every registered op except
            :data:`PIPELINE_ONLY`; fusion and remat bodies use the same set).
            Graph inputs are the only free values, so any subset works, e.g.
            ``["add", "mul", "exp"]``.
        dtypes: dtypes of graph inputs (ops may still produce others: ``eq``
            gives bool, ``argmax`` i64).
        special: literals and constants may hold inf, nan and -0.0.
        locations: attach random source locations to nodes.
        fusion_depth: how deeply fusion bodies may nest.
    """
    for op in ops or ():
        get_op(op)
        assert op in OP_MAKERS, f"no maker for op {op}"
    return _graph(
        max_inputs=max_inputs,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        max_outputs=max_outputs,
        ops=ops,
        allow_dtypes=tuple(dtypes),
        special=special,
        locations=locations,
        max_depth=fusion_depth,
    )


@st.composite
def graphs_with_inputs(
    draw: Callable[..., Any], *, special_inputs: bool = False, **kwargs: Any
) -> tuple[Graph, tuple[np.ndarray, ...]]:
    """A random graph (see :func:`graphs`) and arrays for its inputs."""
    g = draw(graphs(**kwargs))
    values = tuple(draw(arrays(v.type, special=special_inputs)) for v in g.inputs)
    return g, values
