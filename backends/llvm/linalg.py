"""matmul through BLAS (with its epilogue fused), and a loop for integer matmul.

A row-major product C = A @ B is the column-major product C^T = B^T A^T, so
each 2-d product is one ``?gemm`` call with the operands swapped. Transposed
or reshaped operands are described by strides; when a view cannot be passed
to BLAS (no unit stride, negative strides, a broadcast matrix dim) it is
first copied to scratch memory. The epilogue (bias add, activation...) then
runs as one loop over the GEMM result, in place when it writes a result of
the same shape and dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import llvmlite.ir as ir

from graphc.ir import DType, Graph, GraphBuilder, Literal, Node, TensorType, Value

from .blas import GEMM_SYMBOLS, SMALL_GEMM, THREAD_SYMBOLS, blas_thread_control, register_blas
from .codegen import ModuleBuilder, lowering, node_graph, one_node_graph
from .irutil import (
    I8,
    I32,
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
    # Where the product goes: its own output, an epilogue result it can be
    # overwritten by in place, or scratch.
    result_pos = {v: k for k, v in enumerate(body.outputs)}
    if mm.output in result_pos:
        c_buf = mb.buf(n.outputs[result_pos[mm.output]])
    else:
        c_buf = None
        for k, v in enumerate(body.outputs):
            if v.type == out_ty and any(v in e.outputs for e in epilogue):
                c_buf = mb.buf(n.outputs[k])
                break
        if c_buf is None:
            c_buf = mb.scratch(out_ty.nbytes, out_ty.dtype)
    emit_matmul(mb, n, lhs, rhs, c_buf, out_ty)
    if epilogue:
        _run_epilogue(mb, n, body, mm, epilogue, c_buf)


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
    mb: ModuleBuilder, n: Node, lhs: View, rhs: View, c_buf: Buf, out_ty: TensorType
) -> None:
    dtype = out_ty.dtype
    a = _as_matrix(lhs, is_lhs=True)
    bm = _as_matrix(rhs, is_lhs=False)
    batch = _batch_shape(lhs, rhs)
    a = _broadcast_batch(a, batch)
    bm = _broadcast_batch(bm, batch)
    m, k = a.shape[-2:]
    nn = bm.shape[-1]
    if not dtype.is_float:
        _emit_loop_matmul(mb, n, a, bm, c_buf, dtype, batch, m, nn, k)
        return
    a = _blas_ready(mb, n, a, dtype, m, k)
    bm = _blas_ready(mb, n, bm, dtype, k, nn)
    _emit_gemm(mb, n, a, bm, c_buf, dtype, batch, m, nn, k)


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
) -> None:
    if m == 0 or nn == 0:
        return
    # Operand offsets go into the pointers, so equal products share a kernel.
    args = [mb.ptr_at(a.source, a.offset), mb.ptr_at(bm.source, bm.offset), mb.ptr(c_buf)]
    a = View(a.source, a.shape, 0, a.strides)
    bm = View(bm.source, bm.shape, 0, bm.strides)
    key = ("gemm", dtype, batch, m, nn, k, a.strides, bm.strides, mb.options.threads)
    shared = mb._custom.get(key)
    if shared is not None:
        mb.b.call(shared, args)
        return
    register_blas()
    mod = mb.module
    name = GEMM_SYMBOLS[str(dtype)]
    gemm = mod.globals.get(name) or ir.Function(mod, ir.FunctionType(VOID, [PTR] * 13), name)
    fn = ir.Function(mod, ir.FunctionType(VOID, [PTR, PTR, PTR]), mb.kernel_name(n, ".gemm"))
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    for arg, nm in zip(fn.args, ("a", "b", "c")):
        arg.name = nm
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    fty = reg_type(dtype)
    op_a, lda = _blas_operand(m, k, a.strides[-2], a.strides[-1])  # type: ignore[misc]
    op_b, ldb = _blas_operand(k, nn, bm.strides[-2], bm.strides[-1])  # type: ignore[misc]

    def slot(ty: ir.Type, value: int | float) -> ir.Value:
        p = alloca(b, ty)
        b.store(ir.Constant(ty, value), p)
        return p

    ta, tb = slot(I8, ord(op_a)), slot(I8, ord(op_b))
    pm, pn, pk = slot(I32, m), slot(I32, nn), slot(I32, max(k, 0))
    plda, pldb, pldc = slot(I32, lda), slot(I32, ldb), slot(I32, nn)
    alpha, beta = slot(fty, 1.0), slot(fty, 0.0)
    c_strides = contiguous_strides(batch + (m, nn))

    restore = limit_blas_threads(mb, b, m * nn * max(k, 1) * math.prod(batch))

    def one(offsets: tuple[ir.Value, ir.Value, ir.Value]) -> None:
        pa = elem_ptr(b, fn.args[0], dtype, offsets[0])
        pb = elem_ptr(b, fn.args[1], dtype, offsets[1])
        pc = elem_ptr(b, fn.args[2], dtype, offsets[2])
        b.call(gemm, [tb, ta, pn, pm, pk, alpha, pb, pldb, pa, plda, beta, pc, pldc])

    def loops(d: int, offs: tuple[ir.Value, ir.Value, ir.Value]) -> None:
        if d == len(batch):
            one(offs)
            return
        with counted_loop(b, i64(0), i64(batch[d]), f"batch{d}") as i:
            new = tuple(
                b.add(o, b.mul(i, i64(s)))
                for o, s in zip(offs, (a.strides[d], bm.strides[d], c_strides[d]))
            )
            loops(d + 1, new)  # type: ignore[arg-type]

    loops(0, (i64(a.offset), i64(bm.offset), i64(0)))
    restore()
    b.ret_void()
    mb._custom[key] = fn
    mb.b.call(fn, args)


def limit_blas_threads(mb: ModuleBuilder, b: ir.IRBuilder, work: int) -> Callable[[], None]:
    """Set BLAS's thread count for ``work`` multiply-adds (one thread for small
    products, the compile's thread count otherwise); returns the restorer."""
    if not blas_thread_control():
        return lambda: None
    mod = mb.module
    fnty = {"get": ir.FunctionType(I32, []), "set": ir.FunctionType(VOID, [I32])}
    get_name, set_name = THREAD_SYMBOLS
    get = mod.globals.get(get_name) or ir.Function(mod, fnty["get"], get_name)
    set_ = mod.globals.get(set_name) or ir.Function(mod, fnty["set"], set_name)
    want = 1 if work < SMALL_GEMM else mb.options.threads
    previous = b.call(get, [], name="blas_threads")
    b.call(set_, [ir.Constant(I32, want)])
    return lambda: b.call(set_, [previous]) and None


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
