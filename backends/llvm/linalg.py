"""matmul through BLAS (with its epilogue fused), and a loop for integer matmul.

A row-major product C = A @ B is the column-major product C^T = B^T A^T, so
each 2-d product is one ``?gemm`` call with the operands swapped. Transposed
or reshaped operands are described by strides; when a view cannot be passed
to BLAS (no unit stride, negative strides, a broadcast matrix dim) it is
first copied to scratch memory. The epilogue (bias add, activation...) then
runs as one loop over the GEMM result, in place when it writes a result of
the same shape and dtype.

A donated result shares its buffer with an input the epilogue still reads
(an SGD update ``w - lr * g`` written over ``w``), so the product never goes
there first. When the epilogue is just ``beta * w + alpha * (A @ B)`` the
GEMM itself accumulates into ``w``'s buffer (BLAS's own alpha and beta), and
there is no epilogue loop at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import llvmlite.ir as ir
import numpy as np

from graphc.ir import DType, Graph, GraphBuilder, Literal, Node, TensorType, Value

from .blas import GEMM_SYMBOLS, register_blas
from .codegen import ModuleBuilder, lowering, node_graph, one_node_graph
from .gemm_kernel import MAX_DEPTH, TILE_ROWS, gemm_kernel, kernel_applies, kernel_columns
from .irutil import (
    I8,
    I64,
    PTR,
    VOID,
    alloca,
    const,
    counted_loop,
    elem_ptr,
    i64,
    load,
    reg_type,
    store,
)
from .loops import combine
from .loopspec import VIEW_OPS, Buf, build_loop_spec, view_op
from .parallel import MAX_CHUNKS
from .scalar import ScalarEmitter
from .views import View, contiguous_strides


@lowering("matmul")
def lower_matmul(mb: ModuleBuilder, n: Node) -> None:
    lower_matmul_group(mb, n, node_graph(n))


def lower_matmul_group(mb: ModuleBuilder, n: Node, body: Graph) -> None:
    env: dict[Value, View | Literal] = {}
    for formal, actual in zip(body.inputs, n.inputs):
        env[formal] = mb.view(actual)
    mm: Node | None = None
    for bn in body.nodes:
        if bn.op in VIEW_OPS and isinstance(env.get(bn.inputs[0]), View):  # type: ignore[arg-type]
            v = view_op(env[bn.inputs[0]], bn)  # type: ignore[index, arg-type]
            if v is not None:
                env[bn.output] = v
        elif bn.op == "matmul" and mm is None:
            mm = bn
    assert mm is not None
    lhs, rhs = (env.get(x) for x in mm.inputs)  # type: ignore[arg-type]
    if not isinstance(lhs, View) or not isinstance(rhs, View):
        mb.lower_body(n, body)
        return
    out_ty = mm.output.type
    epilogue = _epilogue_nodes(body, mm)
    if epilogue and _accumulate_in_place(mb, n, body, mm, lhs, rhs):
        return
    c_buf = _product_buffer(mb, n, body, mm, epilogue)
    emit_matmul(mb, n, lhs, rhs, c_buf, out_ty)
    if epilogue:
        _run_epilogue(mb, n, body, mm, epilogue, c_buf)


def _accumulate_in_place(
    mb: ModuleBuilder, n: Node, body: Graph, mm: Node, lhs: View, rhs: View
) -> bool:
    """Emit ``w = beta * w + alpha * (A @ B)`` as one GEMM into ``w``'s buffer
    when the result is donated ``w`` (elsewhere the epilogue loop is as cheap)."""
    out_ty = mm.output.type
    if len(n.outputs) != 1 or not out_ty.dtype.is_float:
        return False
    acc = _accumulation(body, mm)
    if acc is None:
        return False
    k, alpha, beta = acc
    c_buf, addend = mb.buf(n.outputs[0]), n.inputs[k]
    if not isinstance(addend, Value) or mb.buf(addend) != c_buf:
        return False
    if c_buf in (lhs.source, rhs.source):
        return False
    emit_matmul(mb, n, lhs, rhs, c_buf, out_ty, alpha, beta)
    return True


def _product_buffer(mb: ModuleBuilder, n: Node, body: Graph, mm: Node, epilogue: list[Node]) -> Buf:
    """Where the product goes: its own output, an epilogue result it can be
    overwritten by in place, or scratch. Never an operand's buffer (which a
    donated result shares): the epilogue still has to read the operand."""
    out_ty = mm.output.type
    read = {mb.buf(x) for x in n.inputs if isinstance(x, Value)}
    result_pos = {v: k for k, v in enumerate(body.outputs)}
    if mm.output in result_pos:
        c_buf = mb.buf(n.outputs[result_pos[mm.output]])
        assert c_buf not in read, "the raw product is never written over an operand"
        return c_buf
    for k, v in enumerate(body.outputs):
        if v.type == out_ty and any(v in e.outputs for e in epilogue):
            if mb.buf(n.outputs[k]) not in read:
                return mb.buf(n.outputs[k])
    return mb.scratch(out_ty.nbytes, out_ty.dtype)


def _epilogue_nodes(body: Graph, mm: Node) -> list[Node]:
    """Body nodes after the matmul that some result needs."""
    producers = body.producers()
    needed: set[Node] = set()
    stack = [producers[v] for v in body.outputs if v in producers]
    while stack:
        bn = stack.pop()
        if bn in needed or bn is mm:
            continue
        needed.add(bn)
        stack.extend(producers[x] for x in bn.value_inputs() if x in producers)
    return [bn for bn in body.nodes if bn in needed]


def _accumulation(body: Graph, mm: Node) -> tuple[int, float, float] | None:
    """(k, alpha, beta) when the body's one result is ``alpha * (A @ B) +
    beta * arg_k`` in the product's type, built from add, sub, neg and
    multiplication by literals, with beta = +-1 (so BLAS adds ``arg_k``
    unscaled, as the graph does) and a finite nonzero alpha."""
    out_ty = mm.output.type
    np_type = out_ty.dtype.np.type
    producers = body.producers()
    formals = {v: k for k, v in enumerate(body.inputs)}

    def terms(x: Value | Literal) -> dict[Value, Any] | None:
        if isinstance(x, Literal) or x.type != out_ty:
            return None
        if x is mm.output or x in formals:
            return {x: np_type(1)}
        bn = producers.get(x)
        if bn is None or bn.op not in ("add", "sub", "neg", "mul"):
            return None
        if bn.op == "mul":
            lits = [y for y in bn.inputs if isinstance(y, Literal)]
            vals = [y for y in bn.inputs if not isinstance(y, Literal)]
            if len(lits) != 1 or len(vals) != 1 or lits[0].dtype != out_ty.dtype:
                return None
            inner = terms(vals[0])
            scale = np_type(lits[0].value)
            return None if inner is None else {v: c * scale for v, c in inner.items()}
        parts = [terms(y) for y in bn.inputs]
        if any(p is None for p in parts):
            return None
        signs = {"add": (1, 1), "sub": (1, -1), "neg": (-1,)}[bn.op]
        total: dict[Value, Any] = {}
        for part, sign in zip(parts, signs):
            assert part is not None
            for v, c in part.items():
                total[v] = total.get(v, np_type(0)) + c * np_type(sign)
        return total

    found = terms(body.outputs[0]) if len(body.outputs) == 1 else None
    if found is None or len(found) != 2 or mm.output not in found:
        return None
    ((arg, beta),) = [(v, c) for v, c in found.items() if v is not mm.output]
    alpha = found[mm.output]
    if arg not in formals or beta not in (1, -1) or alpha == 0 or not np.isfinite(alpha):
        return None
    return formals[arg], float(alpha), float(beta)


def _run_epilogue(
    mb: ModuleBuilder, n: Node, body: Graph, mm: Node, nodes: list[Node], c_buf: Buf
) -> None:
    b = GraphBuilder("epilogue")
    env: dict[Value, Value] = {}
    operands: list[View | Literal] = []
    for formal, actual in zip(body.inputs, n.inputs):
        env[formal] = b.input(formal.type)
        operands.append(mb.view(actual))
    env[mm.output] = b.input(mm.output.type)
    operands.append(View.of(c_buf, mm.output.type.shape))
    for bn in nodes:
        new = b.copy_node(bn, [x if isinstance(x, Literal) else env[x] for x in bn.inputs])
        env.update(zip(bn.outputs, new.outputs))
    keep = [k for k, v in enumerate(body.outputs) if v is not mm.output]
    g = b.build([env[body.outputs[k]] for k in keep])
    outputs = [View.of(mb.buf(n.outputs[k]), n.outputs[k].type.shape) for k in keep]
    named = [n.outputs[k] for k in keep]
    if not mb.run_body_loop(n, g, operands, outputs, named):
        raise AssertionError("a fused matmul epilogue does not fit one loop")


# -- the product --------------------------------------------------------------------------


def emit_matmul(
    mb: ModuleBuilder,
    n: Node,
    lhs: View,
    rhs: View,
    c_buf: Buf,
    out_ty: TensorType,
    alpha: float = 1.0,
    beta: float = 0.0,
) -> None:
    """``C = alpha * (lhs @ rhs) + beta * C`` into ``c_buf`` (contiguous);
    alpha and beta other than 1 and 0 only for float products."""
    dtype = out_ty.dtype
    a = _as_matrix(lhs, is_lhs=True)
    bm = _as_matrix(rhs, is_lhs=False)
    batch = _batch_shape(lhs, rhs)
    a = _broadcast_batch(a, batch)
    bm = _broadcast_batch(bm, batch)
    m, k = a.shape[-2:]
    nn = bm.shape[-1]
    if not dtype.is_float:
        assert (alpha, beta) == (1.0, 0.0)
        _emit_loop_matmul(mb, n, a, bm, c_buf, dtype, batch, m, nn, k)
        return
    a = _blas_ready(mb, n, a, dtype, m, k)
    bm = _blas_ready(mb, n, bm, dtype, k, nn)
    _emit_gemm(mb, n, a, bm, c_buf, dtype, batch, m, nn, k, (alpha, beta))


def _batch_shape(lhs: View, rhs: View) -> tuple[int, ...]:
    lb = lhs.shape[:-2] if len(lhs.shape) >= 2 else ()
    rb = rhs.shape[:-2] if len(rhs.shape) >= 2 else ()
    nd = max(len(lb), len(rb))
    lb = (1,) * (nd - len(lb)) + lb
    rb = (1,) * (nd - len(rb)) + rb
    return tuple(y if x == 1 else x for x, y in zip(lb, rb))


def _as_matrix(v: View, is_lhs: bool) -> View:
    """1-d operands become (1, K) on the left and (K, 1) on the right."""
    if len(v.shape) >= 2:
        return v
    (size,) = v.shape
    (stride,) = v.strides
    if is_lhs:
        return View(v.source, (1, size), v.offset, (0, stride))
    return View(v.source, (size, 1), v.offset, (stride, 0))


def _broadcast_batch(v: View, batch: tuple[int, ...]) -> View:
    return v.broadcast_to(batch + v.shape[-2:])


def _blas_operand(rows: int, cols: int, s_r: int, s_c: int) -> tuple[str, int] | None:
    """(op, ld) to pass a row-major-indexed rows x cols view to column-major
    BLAS as its transpose, or None when BLAS cannot read it."""
    if cols <= 1 or s_c == 1:
        ld = s_r if rows > 1 else max(1, cols)
        if ld >= max(1, cols):
            return "N", ld
    if rows <= 1 or s_r == 1:
        ld = s_c if cols > 1 else max(1, rows)
        if ld >= max(1, rows):
            return "T", ld
    return None


def _blas_ready(mb: ModuleBuilder, n: Node, v: View, dtype: DType, rows: int, cols: int) -> View:
    ok = v.source.dtype == dtype and all(s >= 0 for s in v.strides)
    ok = ok and _blas_operand(rows, cols, v.strides[-2], v.strides[-1]) is not None
    if ok:
        return v
    # Copy (and convert) to a contiguous scratch matrix.
    dst = mb.scratch(math.prod(v.shape) * dtype.itemsize, dtype)
    g = one_node_graph("cast", [TensorType(v.shape, v.source.dtype)], dtype=dtype)
    spec = build_loop_spec(g, [v], [View.of(dst, v.shape)], {})
    mb.run_loop_spec(spec, n, ".pack")
    return View.of(dst, v.shape)


# A product is split (rows or columns of C, one GEMM call per chunk on the
# worker pool) from this many multiply-adds on (about 8 us on one core),
# into as many parts as the compile's thread count. The pool's workers poll
# during a step, so a region costs ~1 us, not a ~30 us wake-up: W1's
# 128x256x256 products take 110 instead of 140 us on two threads. More
# parts balance better but cost more: each part packs the operand it does
# not split again (measured single-threaded, 512x1024x1024: 2 parts +3%,
# 4 +9%, 8 +19%). Whole batch entries are split first. A part keeps at
# least GEMM_MIN_SPAN rows or columns.
GEMM_SPLIT = 1 << 20
GEMM_MIN_SPAN = 32


@dataclass(frozen=True)
class GemmSplit:
    """How a (batched) product is cut into chunks: each chunk is ``span`` rows
    (``axis`` "m") or columns ("n") of one batch entry, or, when ``parts`` is
    1, ``per_batch`` whole batch entries."""

    axis: str
    parts: int  # chunks per batch entry
    span: int  # rows or columns per part
    per_batch: int  # batch entries per chunk (parts == 1)
    chunks: int


def gemm_split(batch: int, m: int, nn: int, k: int, parts: int) -> GemmSplit:
    """Chunks for a product of ``batch`` (m x k) @ (k x nn) GEMMs, aiming at
    ``parts`` chunks."""
    macs = batch * m * nn * max(k, 1)
    axis, dim = ("m", m) if m >= nn else ("n", nn)
    if macs < GEMM_SPLIT or parts <= 1:
        return GemmSplit(axis, 1, dim, batch, 1)
    want = min(parts, MAX_CHUNKS)
    if batch >= want:
        per_batch = -(-batch // want)
        return GemmSplit(axis, 1, dim, per_batch, -(-batch // per_batch))
    per_entry = max(1, min(-(-want // batch), dim // GEMM_MIN_SPAN))
    span = -(-dim // per_entry)
    span = -(-span // 16) * 16
    per_entry = -(-dim // span)
    return GemmSplit(axis, per_entry, span, 1, batch * per_entry)


def _emit_gemm(
    mb: ModuleBuilder,
    n: Node,
    a: View,
    bm: View,
    c_buf: Buf,
    dtype: DType,
    batch: tuple[int, ...],
    m: int,
    nn: int,
    k: int,
    scale: tuple[float, float],
) -> None:
    if m == 0 or nn == 0:
        return
    mb.layout.uses_blas = True
    # Operand offsets go into the pointers, so equal products share a kernel.
    args = [mb.ptr_at(a.source, a.offset), mb.ptr_at(bm.source, bm.offset), mb.ptr(c_buf)]
    a = View(a.source, a.shape, 0, a.strides)
    bm = View(bm.source, bm.shape, 0, bm.strides)
    split = gemm_split(math.prod(batch), m, nn, k, mb.options.gemm_parts)
    key = ("gemm", dtype, batch, m, nn, k, a.strides, bm.strides, split, scale)
    fn = mb._custom.get(key)
    if fn is None:
        fn = _gemm_task(mb, n, a, bm, dtype, batch, m, nn, k, split, scale)
        mb._custom[key] = fn
    if split.chunks == 1:
        # Small products: a direct call (the task's range is the whole product).
        ctx = alloca(ir.IRBuilder(mb.alloca_block), PTR, 3)
        for j, p in enumerate(args):
            mb.b.store(p, mb.b.gep(ctx, [i64(j)], source_etype=PTR))
        mb.b.call(fn, [ctx, i64(0), i64(1)])
    else:
        mb.region(fn, args, split.chunks)


def _gemm_task(
    mb: ModuleBuilder,
    n: Node,
    a: View,
    bm: View,
    dtype: DType,
    batch: tuple[int, ...],
    m: int,
    nn: int,
    k: int,
    split: GemmSplit,
    scale: tuple[float, float],
) -> ir.Function:
    """``task(ctx, c0, c1)``: the GEMMs of chunks [c0, c1), ctx = (a, b, c)."""
    blas_int = register_blas().int_type
    mod = mb.module
    name = GEMM_SYMBOLS[str(dtype)]
    gemm = mod.globals.get(name) or ir.Function(mod, ir.FunctionType(VOID, [PTR] * 13), name)
    fn = ir.Function(mod, ir.FunctionType(VOID, [PTR, I64, I64]), mb.kernel_name(n, ".gemm"))
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    ctx, c0, c1 = fn.args
    ctx.name, c0.name, c1.name = "ctx", "c0", "c1"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    pa, pb, pc = (b.load(b.gep(ctx, [i64(j)], source_etype=PTR), typ=PTR) for j in range(3))
    fty = reg_type(dtype)
    op_a, lda = _blas_operand(m, k, a.strides[-2], a.strides[-1])  # type: ignore[misc]
    op_b, ldb = _blas_operand(k, nn, bm.strides[-2], bm.strides[-1])  # type: ignore[misc]

    def slot(ty: ir.Type, value: int | float) -> ir.Value:
        p = alloca(b, ty)
        b.store(ir.Constant(ty, value), p)
        return p

    ta, tb = slot(I8, ord(op_a)), slot(I8, ord(op_b))
    pm, pn, pk = slot(blas_int, m), slot(blas_int, nn), slot(blas_int, max(k, 0))
    plda, pldb, pldc = slot(blas_int, lda), slot(blas_int, ldb), slot(blas_int, nn)
    alpha, beta = slot(fty, scale[0]), slot(fty, scale[1])
    c_strides = contiguous_strides(batch + (m, nn))
    # Element steps of one row (m) or column (n) of A, B and C.
    step = {
        "m": (a.strides[-2], 0, nn),
        "n": (0, bm.strides[-1], 1),
    }[split.axis]
    size_slot = pm if split.axis == "m" else pn
    dim = m if split.axis == "m" else nn
    # Along m, a chunk shorter than a tile calls BLAS (decided per call, below).
    # Columns the kernel would mostly pad go to BLAS: when every call has all
    # nn columns, the kernel takes the whole vectors and BLAS the rest;
    # split along n, a wasteful nn sends the whole product to BLAS.
    all_columns = split.axis == "m" or split.chunks == 1
    main = kernel_columns(dtype, nn)
    if not all_columns and main < nn:
        main = 0
    native = mb.options.native_gemm and kernel_applies(dtype, m, k) and main > 0
    kernel = gemm_kernel(mod, dtype) if native else None
    prest = slot(blas_int, nn - main)

    def call(entry: ir.Value, lo: ir.Value, hi: ir.Value) -> None:
        """The GEMM of batch entry ``entry``, rows/columns [lo, hi)."""
        offs = _batch_offsets(b, entry, batch, (a.strides, bm.strides, c_strides))
        offs = [b.add(o, b.mul(lo, i64(s))) for o, s in zip(offs, step)]
        count = b.sub(hi, lo)
        b.store(count if blas_int.width == 64 else b.trunc(count, blas_int), size_slot)
        xa = elem_ptr(b, pa, dtype, offs[0])
        xb = elem_ptr(b, pb, dtype, offs[1])
        xc = elem_ptr(b, pc, dtype, offs[2])

        def blas_call() -> None:
            b.call(gemm, [tb, ta, pn, pm, pk, alpha, xb, pldb, xa, plda, beta, xc, pldc])

        def rest_call() -> None:
            """BLAS for the columns past ``main`` (calls with all nn columns)."""
            xb_rest = elem_ptr(b, xb, dtype, i64(main * bm.strides[-1]))
            xc_rest = elem_ptr(b, xc, dtype, i64(main))
            # pm holds this call's rows (the chunk's along m, else all m).
            args = [tb, ta, prest, pm, pk, alpha, xb_rest, pldb, xa, plda, beta, xc_rest, pldc]
            b.call(gemm, args)

        def kernel_calls() -> None:
            assert kernel is not None
            if all_columns:
                rows = count if split.axis == "m" else i64(m)
                cols = i64(main)
            else:
                rows, cols = i64(m), count
            strides = [
                i64(s) for s in (a.strides[-2], a.strides[-1], bm.strides[-2], bm.strides[-1])
            ]
            # A product deeper than the kernel's panel is a sum of products
            # over slices of k, each added to C (beta = 1 after the first);
            # a loop, so the code is the same for any depth.
            slices = max(1, -(-k // MAX_DEPTH))
            with counted_loop(b, i64(0), i64(slices), "slice") as sl:
                k0 = b.mul(sl, i64(MAX_DEPTH))
                left = b.sub(i64(k), k0)
                depth = b.select(b.icmp_signed("<", left, i64(MAX_DEPTH)), left, i64(MAX_DEPTH))
                first = b.icmp_signed("==", sl, i64(0))
                slice_beta = b.select(first, ir.Constant(fty, scale[1]), ir.Constant(fty, 1.0))
                xa_k = elem_ptr(b, xa, dtype, b.mul(k0, i64(a.strides[-1])))
                xb_k = elem_ptr(b, xb, dtype, b.mul(k0, i64(bm.strides[-2])))
                args = [xa_k, *strides[:2], xb_k, *strides[2:], xc, i64(nn), rows, cols, depth]
                b.call(kernel, [*args, ir.Constant(fty, scale[0]), slice_beta])
            if main < nn:
                rest_call()

        if kernel is None:
            blas_call()
        elif split.axis == "m":
            # The last chunk of rows can be shorter than a tile of the kernel.
            with b.if_else(b.icmp_signed(">=", count, i64(TILE_ROWS))) as (tiles, short):
                with tiles:
                    kernel_calls()
                with short:
                    blas_call()
        else:
            kernel_calls()

    total = math.prod(batch)
    if split.parts == 1:
        first = b.mul(c0, i64(split.per_batch))
        last = b.mul(c1, i64(split.per_batch))
        last = b.select(b.icmp_signed("<", last, i64(total)), last, i64(total))
        with counted_loop(b, first, last, "batch") as e:
            call(e, i64(0), i64(dim))
    else:
        # One call per chunk, also when one thread runs several: OpenBLAS
        # rounds the edges of a product differently from its interior, so
        # merged chunks would make results depend on the thread count.
        with counted_loop(b, c0, c1, "chunk") as c:
            part = b.srem(c, i64(split.parts))
            lo = b.mul(part, i64(split.span))
            hi = b.add(lo, i64(split.span))
            hi = b.select(b.icmp_signed("<", hi, i64(dim)), hi, i64(dim))
            call(b.sdiv(c, i64(split.parts)), lo, hi)
    b.ret_void()
    return fn


def _batch_offsets(
    b: ir.IRBuilder,
    entry: ir.Value,
    batch: tuple[int, ...],
    strides: tuple[tuple[int, ...], ...],
) -> list[ir.Value]:
    """Element offsets of flat batch entry ``entry`` in each operand."""
    offs: list[ir.Value] = [i64(0) for _ in strides]
    rest = entry
    for d in reversed(range(len(batch))):
        if batch[d] == 1:
            continue
        idx = b.srem(rest, i64(batch[d]))
        rest = b.sdiv(rest, i64(batch[d]))
        offs = [o if s[d] == 0 else b.add(o, b.mul(idx, i64(s[d]))) for o, s in zip(offs, strides)]
    return offs


def _emit_loop_matmul(
    mb: ModuleBuilder,
    n: Node,
    a: View,
    bm: View,
    c_buf: Buf,
    dtype: DType,
    batch: tuple[int, ...],
    m: int,
    nn: int,
    k: int,
) -> None:
    """Integer and bool matmul: a plain triple loop (NumPy does the same)."""
    fn = ir.Function(mb.module, ir.FunctionType(VOID, [PTR, PTR, PTR]), mb.kernel_name(n, ".loop"))
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    e = ScalarEmitter(b, mb.math)
    pa, pb, pc = fn.args
    c_strides = contiguous_strides(batch + (m, nn))
    sa, sb = a.strides, bm.strides
    nb = len(batch)

    def body(offs: tuple[ir.Value, ...]) -> None:
        with counted_loop(b, i64(0), i64(m), "m") as i:
            with counted_loop(b, i64(0), i64(nn), "n") as j:
                acc = alloca(b, reg_type(dtype))
                b.store(const(dtype, 0), acc)
                with counted_loop(b, i64(0), i64(k), "k") as q:
                    oa = b.add(offs[0], b.add(b.mul(i, i64(sa[nb])), b.mul(q, i64(sa[nb + 1]))))
                    ob = b.add(offs[1], b.add(b.mul(q, i64(sb[nb])), b.mul(j, i64(sb[nb + 1]))))
                    x = e.cast(
                        load(b, elem_ptr(b, pa, a.source.dtype, oa), a.source.dtype),
                        a.source.dtype,
                        dtype,
                    )
                    y = e.cast(
                        load(b, elem_ptr(b, pb, bm.source.dtype, ob), bm.source.dtype),
                        bm.source.dtype,
                        dtype,
                    )
                    prod = b.and_(x, y) if dtype.is_bool else b.mul(x, y)
                    old = b.load(acc, typ=reg_type(dtype))
                    b.store(combine(e, "sum", dtype, old, prod), acc)
                oc = b.add(offs[2], b.add(b.mul(i, i64(nn)), j))
                store(b, b.load(acc, typ=reg_type(dtype)), elem_ptr(b, pc, dtype, oc), dtype)

    def loops(d: int, offs: tuple[ir.Value, ...]) -> None:
        if d == nb:
            body(offs)
            return
        with counted_loop(b, i64(0), i64(batch[d]), f"batch{d}") as i:
            loops(
                d + 1,
                tuple(
                    b.add(o, b.mul(i, i64(s))) for o, s in zip(offs, (sa[d], sb[d], c_strides[d]))
                ),
            )

    loops(0, (i64(a.offset), i64(bm.offset), i64(0)))
    b.ret_void()
    mb.b.call(fn, [mb.ptr(a.source), mb.ptr(bm.source), mb.ptr(c_buf)])
