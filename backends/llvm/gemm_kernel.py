"""A native GEMM for float32 products of moderate depth.

``C = alpha * (A @ B) + beta * C``, emitted as LLVM IR with explicit
vectors. C is cut into panels of ``2 * lanes`` columns (two vector registers)
and each panel into tiles of ``TILE_ROWS`` rows: a tile keeps its
``2 * TILE_ROWS`` accumulators in registers across the whole ``k`` loop,
reading one row of the panel (two vector loads) and broadcasting one element
of A per row. A needs no particular layout (each element is broadcast on its
own), so a transposed left operand costs nothing. A panel of B is first
copied into a contiguous, zero-padded buffer (any strides, so a transposed
right operand works too), except when it can be read in place: unit column
stride, a full panel, and few rows of A to amortize the copy over.

Why not BLAS: OpenBLAS packs both operands on every call, which the
recurrent workloads' many small products (32 rows by 256 by 256, one per
time step) pay in full. On one core of the AVX-512 machine the benchmarks
run on, against OpenBLAS 0.3.31, the kernel took 0.78-0.87x BLAS's time on
that product and 0.91-0.95x on W4's 1024-wide ones (``benchmarks/gemm.py``).
Each element is summed over ``k`` in order with fused multiply-adds, so a
result does not depend on how the product is split over threads.

Every tile is ``TILE_ROWS`` rows: when ``m`` is not a multiple of it, the
last tile overlaps the one before and stores only its new rows; the last,
partial panel stores with masks (its tiles are one vector wide when that is
enough).

The kernel is compiled once per process, in the background, into the
runtime module that also holds the worker pool (see :mod:`.pool`), and kept
in the disk cache: it is about 0.15 s of LLVM's time, which a compile should
not pay. float64 products stay with BLAS: the kernel gained only 4-8% on
them and would double that time.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager

import llvmlite.ir as ir

from graphc.ir import DType

from . import target
from .irutil import F32, I1, I32, I64, PTR, VOID, alloca, counted_loop, i64

# 8 rows x 2 vectors = 16 accumulators, 2 loads of B and 8 broadcasts per k:
# measured as fast as 4 or 12 rows and faster than 16 on 32x256x256.
TILE_ROWS = 8
# The packed panel (MAX_DEPTH rows of 2 vectors, 128 KiB for float32) lives
# on the stack and stays in the core's L2 while A's tiles stream past it.
MAX_DEPTH = 1024
# Deeper products are cut into slices of k of at most MAX_DEPTH, each added
# to C. Two slices measured 0.90-0.97x BLAS's time (W5's 256x256x2048 weight
# gradient) and four 0.95-0.99x; far deeper ones are BLAS's home ground.
MAX_SLICES = 4
# W5's output layer (97 columns: three panels and one column) measured
# 1.05-1.10x BLAS's time with 15% of its work on padding; now the kernel
# takes 96 of them and BLAS the last.
MAX_WASTE = 0.1
# Up to this many rows of A, a panel B's rows hold contiguously is read in
# place: copying it costs more than the copy saves.
DIRECT_ROWS = 64
_VECTOR_BYTES = 64
_DTYPES = {DType.f32: F32}


def native_gemm_enabled() -> bool:
    """Whether products use this kernel: ``GRAPHC_GEMM=native`` or ``blas``
    decides; by default, on hosts with AVX-512, whose 32 vector registers
    hold a tile's accumulators (with AVX2's 16 they would spill).

    >>> import os; os.environ["GRAPHC_GEMM"] = "blas"
    >>> native_gemm_enabled()
    False
    >>> del os.environ["GRAPHC_GEMM"]
    """
    choice = os.environ.get("GRAPHC_GEMM", "auto")
    if choice in ("native", "blas"):
        return choice == "native"
    return "+avx512f" in target.host().features.split(",")


def kernel_applies(dtype: DType, m: int, k: int) -> bool:
    """Whether an ``m x k`` by ``k x n`` product of ``dtype`` runs on the
    kernel (deeper than ``MAX_DEPTH``, as several calls over slices of k);
    fewer rows than a tile go to BLAS. See :func:`kernel_columns` for ``n``.

    >>> kernel_applies(DType.f32, 32, 256), kernel_applies(DType.f64, 32, 256)
    (True, False)
    >>> kernel_applies(DType.f32, 4, 256), kernel_applies(DType.f32, 32, 8192)
    (False, False)
    """
    return dtype in _DTYPES and m >= TILE_ROWS and k <= MAX_DEPTH * MAX_SLICES


def kernel_columns(dtype: DType, n: int) -> int:
    """How many of a product's ``n`` columns the kernel computes: all of
    them, unless padding the last vector would waste more than ``MAX_WASTE``
    of the work; then the whole vectors, and BLAS the rest.

    >>> kernel_columns(DType.f32, 256), kernel_columns(DType.f32, 97), kernel_columns(DType.f32, 47)
    (256, 96, 47)
    """
    lanes = _VECTOR_BYTES // dtype.itemsize
    if -(-n // lanes) * lanes <= n * (1 + MAX_WASTE):
        return n
    return n - n % lanes


SYMBOLS = {DType.f32: "graphc_gemm_f32"}


def _signature(dtype: DType) -> ir.FunctionType:
    fty = _DTYPES[dtype]
    return ir.FunctionType(VOID, [PTR, I64, I64, PTR, I64, I64, PTR, I64, I64, I64, I64, fty, fty])


def gemm_kernel(module: ir.Module, dtype: DType) -> ir.Function:
    """The kernel for ``dtype`` as an external function of ``module``::

        kernel(a, a_row_stride, a_col_stride, b, b_row_stride, b_col_stride,
               c, ldc, m, n, k, alpha, beta)

    Strides are in elements (any sign or size, zero included); C's columns
    are contiguous. ``m`` is at least ``TILE_ROWS`` and ``k`` at most
    ``MAX_DEPTH``. With ``beta == 0`` C is not read. The kernels are
    compiled once per process, into the runtime module with the worker pool
    (see :func:`define_kernels`), so a compile does not pay for them.

    >>> import llvmlite.ir as ir
    >>> gemm_kernel(ir.Module("m"), DType.f32).name
    'graphc_gemm_f32'
    """
    name = SYMBOLS[dtype]
    found = module.globals.get(name)
    if isinstance(found, ir.Function):
        return found
    return ir.Function(module, _signature(dtype), name)


def define_kernels(module: ir.Module) -> None:
    """Emit every dtype's kernel into ``module``, exported under :data:`SYMBOLS`.

    >>> import llvmlite.ir as ir
    >>> m = ir.Module("runtime"); define_kernels(m)
    >>> m.get_global("graphc_gemm_f32").is_declaration
    False
    """
    for dtype, name in SYMBOLS.items():
        _Emitter(module, dtype, name)


class _Emitter:
    def __init__(self, module: ir.Module, dtype: DType, name: str) -> None:
        self.module = module
        self.fty = _DTYPES[dtype]
        self.elem_bytes = dtype.itemsize
        self.lanes = _VECTOR_BYTES // dtype.itemsize
        self.width = 2 * self.lanes
        self.vty = ir.VectorType(self.fty, self.lanes)
        self.mty = ir.VectorType(I1, self.lanes)
        suffix = f"v{self.lanes}f{dtype.itemsize * 8}"
        self.fma = self._intrinsic(f"llvm.fma.{suffix}", self.vty, [self.vty] * 3)
        self.masked_load = self._intrinsic(
            f"llvm.masked.load.{suffix}.p0", self.vty, [PTR, I32, self.mty, self.vty]
        )
        self.masked_store = self._intrinsic(
            f"llvm.masked.store.{suffix}.p0", VOID, [self.vty, PTR, I32, self.mty]
        )
        fn = ir.Function(module, _signature(dtype), name)
        for j in (0, 3, 6):
            fn.args[j].add_attribute("noalias")
        names = "a sar sac b sbr sbc c ldc m n k alpha beta".split()
        for arg, nm in zip(fn.args, names):
            arg.name = nm
        (self.a, self.sar, self.sac, self.bp, self.sbr, self.sbc) = fn.args[:6]
        (self.c, self.ldc, self.m, self.n, self.k, self.alpha, self.beta) = fn.args[6:]
        self.fn = fn
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.packed = alloca(self.b, self.fty, MAX_DEPTH * self.width, "packed")
        self._emit()

    def _intrinsic(self, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
        found = self.module.globals.get(name)
        if isinstance(found, ir.Function):
            return found
        return ir.Function(self.module, ir.FunctionType(ret, args), name)

    # -- structure ---------------------------------------------------------------------

    def _emit(self) -> None:
        b = self.b
        with self._loop(i64(0), self.n, self.width, "panel") as j0:
            left = b.sub(self.n, j0)
            full = b.icmp_signed(">=", left, i64(self.width))
            self._panel(j0, b.select(full, i64(self.width), left), full)
        b.ret_void()

    def _panel(self, j0: ir.Value, width: ir.Value, full: ir.Value) -> None:
        """Columns [j0, j0 + width) of C."""
        b = self.b
        unit = b.icmp_signed("==", self.sbc, i64(1))
        few_rows = b.icmp_signed("<=", self.m, i64(DIRECT_ROWS))
        direct = b.and_(b.and_(unit, few_rows), full)
        with b.if_else(direct) as (in_place, copied):
            with in_place:
                src_direct = b.gep(self.bp, [j0], source_etype=self.fty)
                block_direct = b.block
            with copied:
                self._pack(j0, width, unit, full)
                block_copied = b.block
        src = b.phi(PTR, "panel")
        src.add_incoming(src_direct, block_direct)
        src.add_incoming(self.packed, block_copied)
        stride = b.phi(I64, "panel.stride")
        stride.add_incoming(self.sbr, block_direct)
        stride.add_incoming(i64(self.width), block_copied)
        masks = self._masks(width)
        # A last panel one vector wide or less runs tiles of one vector.
        with b.if_else(b.icmp_signed(">", width, i64(self.lanes))) as (two, one):
            for vectors, branch in ((2, two), (1, one)):
                with branch:
                    with self._loop(i64(0), self.m, TILE_ROWS, "tile") as i0:
                        self._tile(i0, j0, vectors, src, stride, masks, full)

    def _pack(self, j0: ir.Value, width: ir.Value, unit: ir.Value, full: ir.Value) -> None:
        """Copy the panel's k rows of B into the contiguous buffer, zero past
        ``width`` columns (so tiles never read past B)."""
        b = self.b
        col0 = b.mul(j0, self.sbc)
        with b.if_else(b.and_(unit, full)) as (rows, elements):
            with rows:
                with self._loop(i64(0), self.k, 1, "pack.row") as kk:
                    row = b.gep(self.bp, [b.add(b.mul(kk, self.sbr), col0)], source_etype=self.fty)
                    dst = b.gep(self.packed, [b.mul(kk, i64(self.width))], source_etype=self.fty)
                    for h in (0, 1):
                        off = i64(h * self.lanes)
                        v = b.load(
                            b.gep(row, [off], source_etype=self.fty),
                            typ=self.vty,
                            align=self.elem_bytes,
                        )
                        b.store(v, b.gep(dst, [off], source_etype=self.fty), align=self.elem_bytes)
            with elements:
                with b.if_else(full) as (whole, partial):
                    with whole:
                        self._pack_elements(col0, None)
                    with partial:
                        self._pack_elements(col0, width)

    def _pack_elements(self, col0: ir.Value, width: ir.Value | None) -> None:
        """Pack element by element (columns of B not contiguous, or a partial
        panel of ``width`` columns)."""
        b = self.b
        zero = ir.Constant(self.fty, 0.0)
        # k outer: the panel's columns are read a cache line at a time
        # (a transposed B's rows), and the buffer is written in order.
        with self._loop(i64(0), self.k, 1, "pack.k") as kk:
            row = b.gep(self.bp, [b.add(b.mul(kk, self.sbr), col0)], source_etype=self.fty)
            dst = b.gep(self.packed, [b.mul(kk, i64(self.width))], source_etype=self.fty)
            for jj in range(self.width):
                if width is None:
                    col = b.mul(i64(jj), self.sbc)
                    x = b.load(b.gep(row, [col], source_etype=self.fty), typ=self.fty)
                else:
                    # Columns past the panel read its last one (in bounds) and store 0.
                    inside = b.icmp_signed("<", i64(jj), width)
                    last = b.sub(width, i64(1))
                    col = b.mul(b.select(inside, i64(jj), last), self.sbc)
                    x = b.load(b.gep(row, [col], source_etype=self.fty), typ=self.fty)
                    x = b.select(inside, x, zero)
                b.store(x, b.gep(dst, [i64(jj)], source_etype=self.fty))

    def _masks(self, width: ir.Value) -> tuple[ir.Value, ir.Value]:
        b = self.b
        ity = ir.VectorType(I64, self.lanes)
        lane = ir.Constant(ity, list(range(self.lanes)))
        high = ir.Constant(ity, list(range(self.lanes, 2 * self.lanes)))
        splat = self._splat(width, ity)
        return b.icmp_signed("<", lane, splat), b.icmp_signed("<", high, splat)

    # -- one tile ----------------------------------------------------------------------

    def _tile(
        self,
        i0: ir.Value,
        j0: ir.Value,
        vectors: int,
        src: ir.Value,
        stride: ir.Value,
        masks: tuple[ir.Value, ir.Value],
        full: ir.Value,
    ) -> None:
        b, fty = self.b, self.fty
        rows = TILE_ROWS
        # The last tile, when m is not a multiple of TILE_ROWS, starts at
        # m - TILE_ROWS (m >= TILE_ROWS) and stores only the rows from i0 on.
        # Rows a uniform stride apart keep the k loop's addressing simple.
        start = b.select(
            b.icmp_signed("<=", b.add(i0, i64(rows)), self.m), i0, b.sub(self.m, i64(rows))
        )
        row_index = [b.add(start, i64(r)) for r in range(rows)]
        a_rows = [b.gep(self.a, [b.mul(i, self.sar)], source_etype=fty) for i in row_index]
        pre = b.block
        head = self.fn.append_basic_block("k.head")
        body = self.fn.append_basic_block("k.body")
        done = self.fn.append_basic_block("k.done")
        b.branch(head)
        b.position_at_end(head)
        kk = b.phi(I64, "k")
        kk.add_incoming(i64(0), pre)
        accs = []
        for _ in range(vectors * rows):
            acc = b.phi(self.vty)
            acc.add_incoming(ir.Constant(self.vty, None), pre)
            accs.append(acc)
        b.cbranch(b.icmp_signed("<", kk, self.k), body, done)

        b.position_at_end(body)
        row_b = b.gep(src, [b.mul(kk, stride)], source_etype=fty)
        halves = [
            b.load(
                b.gep(row_b, [i64(h * self.lanes)], source_etype=fty),
                typ=self.vty,
                align=self.elem_bytes,
            )
            for h in range(vectors)
        ]
        col_a = b.mul(kk, self.sac)
        new = []
        for r in range(rows):
            x = self._splat(b.load(b.gep(a_rows[r], [col_a], source_etype=fty), typ=fty), self.vty)
            new += [b.call(self.fma, [x, halves[h], accs[vectors * r + h]]) for h in range(vectors)]
        kk.add_incoming(b.add(kk, i64(1)), body)
        for acc, v in zip(accs, new):
            acc.add_incoming(v, body)
        b.branch(head)

        b.position_at_end(done)
        alphas = self._splat(self.alpha, self.vty)
        betas = self._splat(self.beta, self.vty)
        scaled = [b.fmul(acc, alphas) for acc in accs]
        # With beta == 0, C may hold anything (NaN included): no lane of it is read.
        reads = b.fcmp_unordered("!=", self.beta, ir.Constant(fty, 0.0))
        whole = b.and_(full, b.icmp_signed("==", start, i0))
        with b.if_else(whole) as (plain, masked):
            with plain:  # every lane stored: plain vector stores
                with b.if_else(reads) as (accumulate, overwrite):
                    with accumulate:
                        self._store_tile(i0, j0, vectors, scaled, betas)
                    with overwrite:
                        self._store_tile(i0, j0, vectors, scaled, None)
            with masked:
                no_lanes = ir.Constant(self.mty, None)
                zero = ir.Constant(self.vty, None)
                align = ir.Constant(I32, self.elem_bytes)
                for r in range(rows):
                    valid = b.icmp_signed(">=", row_index[r], i0)
                    row_c = b.gep(
                        self.c, [b.add(b.mul(row_index[r], self.ldc), j0)], source_etype=fty
                    )
                    for h in range(vectors):
                        ptr = b.gep(row_c, [i64(h * self.lanes)], source_etype=fty)
                        mask = b.select(valid, masks[h], no_lanes)
                        read = b.select(reads, mask, no_lanes)
                        old = b.call(self.masked_load, [ptr, align, read, zero])
                        out = b.call(self.fma, [old, betas, scaled[vectors * r + h]])
                        b.call(self.masked_store, [out, ptr, align, mask])

    def _store_tile(
        self,
        i0: ir.Value,
        j0: ir.Value,
        vectors: int,
        scaled: list[ir.Value],
        betas: ir.Value | None,
    ) -> None:
        """C = scaled (+ betas * C) over a whole tile."""
        b, fty = self.b, self.fty
        for r in range(TILE_ROWS):
            row_c = b.gep(self.c, [b.add(b.mul(b.add(i0, i64(r)), self.ldc), j0)], source_etype=fty)
            for h in range(vectors):
                ptr = b.gep(row_c, [i64(h * self.lanes)], source_etype=fty)
                out = scaled[vectors * r + h]
                if betas is not None:
                    old = b.load(ptr, typ=self.vty, align=self.elem_bytes)
                    out = b.call(self.fma, [old, betas, out])
                b.store(out, ptr, align=self.elem_bytes)

    # -- helpers -----------------------------------------------------------------------

    def _splat(self, x: ir.Value, vty: ir.VectorType) -> ir.Value:
        b = self.b
        one = b.insert_element(ir.Constant(vty, ir.Undefined), x, ir.Constant(I32, 0))
        zeros = ir.Constant(ir.VectorType(I32, vty.count), [0] * vty.count)
        return b.shuffle_vector(one, ir.Constant(vty, ir.Undefined), zeros)

    def _loop(
        self, start: ir.Value, stop: ir.Value, step: int, name: str
    ) -> AbstractContextManager[ir.Value]:
        return counted_loop(self.b, start, stop, name, step)
