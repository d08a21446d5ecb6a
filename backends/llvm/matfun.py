"""``expm`` as ordinary ops: scaling and squaring with a degree-13 Padé
approximant (Higham 2005), so the backend needs no kernel of its own.

Each matrix is scaled by ``2^-s`` so that its 1-norm is at most
``theta_13``, where the [13/13] Padé approximant's backward error is below
float64's unit roundoff (float32 input is computed in float64 and rounded
once at the end). The approximant costs six products and one solve; a
``while`` loop then squares ``s`` times. ``s`` depends on the data, so it is
computed at run time, per matrix: the loop runs for the largest ``s`` of the
stack and a matrix that needs fewer squarings keeps its value in the later
steps, so every matrix gets exactly its own scaling. Powers of two are
exact, so scaling adds no rounding.

As in SciPy, a diagonal matrix gets the exponentials of its diagonal (exact,
and defined for infinite entries), and a triangular matrix a triangular
exponential. Any other matrix with an infinite or NaN entry gives NaN (but
in the zero triangle of a triangular one), without running the solve on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphc.ir import DType, Graph, GraphBuilder, Literal, Node, Operand, TensorType, Value
from graphc.ir.ops.factor import eye_like, triangle_mask
from graphc.ir.ops.matfun import one_norm

# b_k of the [13/13] Padé approximant to exp and the largest 1-norm it
# handles unscaled (Higham 2005, Table 2.3 and eq. 2.7).
PADE13 = (
    64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
    129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
    40840800.0, 960960.0, 16380.0, 182.0, 1.0,
)  # fmt: skip
THETA13 = 5.371920351148152
# Above any float64 norm's log2: keeps the cast of s defined for an infinite norm.
MAX_SQUARINGS = 2000.0


def expm_decomposition(b: GraphBuilder, n: Node, inputs: Sequence[Operand]) -> Sequence[Operand]:
    """expm(a) in matmul, solve, elementwise ops and one ``while`` loop."""
    with b.at(n.loc):  # the new nodes keep the user's line
        return _expm(b, inputs[0])


def _expm(b: GraphBuilder, a: Operand) -> list[Any]:
    original = a
    if isinstance(a, Literal):
        a = b.materialize(a)
    ty = a.type
    dt = ty.dtype
    size = ty.shape[-1]
    if ty.size == 0:
        return [b.mul(a, Literal(0.0, dt))]
    if size == 1:
        return [b.exp(a)]
    if dt != DType.f64:
        # The approximant's large coefficients cancel in V - U: in float32 that
        # costs several ulps (more than SciPy's float32 path); float64 inside
        # leaves only the final rounding.
        return [b.cast(_expm(b, b.cast(a, dtype=DType.f64))[0], dtype=dt)]
    batch = ty.shape[:-2]
    lead = tuple(range(len(batch)))

    def per_matrix(x: Operand) -> Any:
        return b.broadcast_in_dim(x, shape=ty.shape, broadcast_dimensions=lead)

    eye = eye_like(b, a)
    on_diagonal = b.eq(eye, Literal(1.0, dt))
    finite = _all(b, b.isfinite(a))
    zero = Literal(0.0, dt)
    diagonal = _all(b, b.emit("or", on_diagonal, b.eq(a, zero)))
    # Which triangle of each matrix is zero (before the non-finite ones are cleared).
    outside = [triangle_mask(b, a, not lower, strict=True) for lower in (True, False)]
    triangular = [_all(b, b.emit("or", b.emit("not", m), b.eq(a, zero))) for m in outside]
    a = b.select(per_matrix(finite), a, zero)

    # s = max(0, ceil(log2(|a|_1 / theta))); scaling by 2^-s is exact.
    norm = one_norm(b, a)
    ratio = b.div(norm, Literal(THETA13, DType.f64))
    above = b.gt(ratio, Literal(1.0, DType.f64))
    s_float = b.select(above, b.ceil(b.log2(b.select(above, ratio, Literal(1.0, DType.f64)))),
                       Literal(0.0, DType.f64))  # fmt: skip
    s_float = b.min(s_float, Literal(MAX_SQUARINGS, DType.f64))
    x = b.mul(a, per_matrix(b.exp2(b.neg(s_float))))

    r = _pade13(b, x, eye)
    steps = b.cast(s_float, dtype=DType.i64)
    r = _square_repeatedly(b, r, steps)

    nan = Literal(float("nan"), dt)
    r = b.select(per_matrix(finite), r, nan)
    # The solve's pivoting leaves rounding noise in the zero triangle of a
    # triangular matrix; its exponential is exactly triangular (SciPy's is).
    for mask, is_triangular in zip(outside, triangular):
        r = b.select(b.emit("and", per_matrix(is_triangular), mask), zero, r)
    exp_diagonal = b.select(on_diagonal, b.exp(original), Literal(0.0, dt))
    return [b.select(per_matrix(diagonal), exp_diagonal, r)]


def _all(b: GraphBuilder, mask: Any) -> Any:
    """Per matrix: whether ``mask`` holds everywhere (shape: the batch)."""
    nd = mask.type.ndim
    ones = b.cast(mask, dtype=DType.i32)
    return b.eq(b.reduce_min(ones, axes=(nd - 2, nd - 1)), Literal(1, DType.i32))


def _pade13(b: GraphBuilder, x: Any, eye: Any) -> Any:
    c = PADE13
    dt = x.type.dtype

    def lit(v: float) -> Literal:
        return Literal(v, dt)

    def combo(*terms: tuple[float, Any]) -> Any:
        acc = None
        for coef, m in terms:
            t = b.mul(m, lit(coef))
            acc = t if acc is None else b.add(acc, t)
        return acc

    x2 = b.matmul(x, x)
    x4 = b.matmul(x2, x2)
    x6 = b.matmul(x4, x2)
    u_inner = b.add(
        b.matmul(x6, combo((c[13], x6), (c[11], x4), (c[9], x2))),
        combo((c[7], x6), (c[5], x4), (c[3], x2), (c[1], eye)),
    )
    u = b.matmul(x, u_inner)
    v = b.add(
        b.matmul(x6, combo((c[12], x6), (c[10], x4), (c[8], x2))),
        combo((c[6], x6), (c[4], x4), (c[2], x2), (c[0], eye)),
    )
    # r = q^-1 p with p = v + u, q = v - u; q is well conditioned for |x|_1 <= theta.
    return b.solve(b.sub(v, u), b.add(v, u))


def _square_repeatedly(b: GraphBuilder, r: Any, steps: Any) -> Any:
    """Each matrix of ``r`` squared ``steps[k]`` times, in one ``while`` loop."""
    ty: TensorType = r.type
    counter = TensorType((), DType.i64)
    batch = TensorType(ty.shape[:-2], DType.i64)
    last = b.reduce_max(steps, axes=tuple(range(batch.ndim))) if batch.ndim else steps

    def graph(name: str) -> tuple[GraphBuilder, list[Value]]:
        g = GraphBuilder(name)
        args = [g.input(ty, "r"), g.input(counter, "i"), g.input(batch, "s"),
                g.input(counter, "last")]  # fmt: skip
        return g, args

    pb, (_, i, _, last_p) = graph("expm_more")
    pred = pb.build([pb.lt(i, last_p)])
    bb, (rb, ib, sb, _) = graph("expm_square")
    squared = bb.matmul(rb, rb)
    if batch.ndim:
        # Matrices that need fewer squarings than the largest keep their value.
        more = bb.broadcast_in_dim(bb.lt(ib, sb), shape=ty.shape,
                                   broadcast_dimensions=tuple(range(batch.ndim)))  # fmt: skip
        squared = bb.select(more, squared, rb)
    body: Graph = bb.build([squared, bb.add(ib, Literal(1, DType.i64))])
    start = b.materialize(Literal(0, DType.i64))
    out = b.emit("while", r, start, steps, last, subgraphs=[pred, body], num_carry=2)
    return out[0]
