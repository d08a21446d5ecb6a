"""Flushing subnormal floats to zero (``compile(..., flush_denormals=True)``).

Arithmetic on subnormal numbers (magnitudes below ~1.2e-38 in float32) takes
a slow microcode path on x86: an Adam step whose second-moment estimates
decay into that range measured 1.7x slower after 2,000 steps (W1), the
update kernel alone 17x. JAX and TensorFlow run with the CPU's
flush-to-zero (FTZ: subnormal results become zero) and denormals-are-zero
(DAZ: subnormal inputs read as zero) modes on; NumPy and PyTorch do not.

The mode is per thread, in the MXCSR register: the entry function sets both
bits and restores the caller's register on return (before anything else on
the way out), and every task handed to the worker pool does the same on the
worker. BLAS products, which graphc runs on its own threads with BLAS held
at one thread, flush too; a BLAS whose thread count cannot be controlled
(see :mod:`.blas`) may run parts on its own threads, which do not. On
targets other than x86-64 the option does nothing.

>>> import numpy as np
>>> from graphc.ir import GraphBuilder, f32
>>> from graphc.backends import llvm
>>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
>>> exe = llvm.compile(b.build([b.mul(x, 0.5)]), flush_denormals=True)
>>> exe(np.array([1e-39, 1.0], np.float32))[0].tolist()
[0.0, 0.5]
"""

from __future__ import annotations

import llvmlite.ir as ir

from . import target
from .irutil import I32, PTR, VOID

FTZ_DAZ = (1 << 15) | (1 << 6)


def supported() -> bool:
    """Whether the host has the MXCSR modes (x86-64)."""
    return target.host().triple.startswith("x86_64")


def _intrinsics(module: ir.Module) -> tuple[ir.Function, ir.Function]:
    fnty = ir.FunctionType(VOID, [PTR])
    return tuple(  # type: ignore[return-value]
        module.globals.get(name) or ir.Function(module, fnty, name)
        for name in ("llvm.x86.sse.stmxcsr", "llvm.x86.sse.ldmxcsr")
    )


def _enter(module: ir.Module, b: ir.IRBuilder, slots: ir.IRBuilder) -> ir.Value:
    """Save MXCSR into a stack slot (made with ``slots``), set FTZ and DAZ;
    returns the slot holding the caller's value."""
    store, load = _intrinsics(module)
    saved = slots.alloca(I32, name="mxcsr_saved")
    flushing = slots.alloca(I32, name="mxcsr_flush")
    b.call(store, [saved])
    b.store(b.or_(b.load(saved, typ=I32), ir.Constant(I32, FTZ_DAZ)), flushing)
    b.call(load, [flushing])
    return saved


def _leave(module: ir.Module, b: ir.IRBuilder, saved: ir.Value) -> None:
    b.call(_intrinsics(module)[1], [saved])


def flush_in_entry(
    module: ir.Module, entry: ir.IRBuilder, exit_block: ir.Block, slots: ir.IRBuilder
) -> None:
    """Run the entry function between ``entry`` and ``exit_block`` in FTZ/DAZ mode."""
    saved = _enter(module, entry, slots)
    # First thing on the way out: what runs after (BLAS and pool bookkeeping)
    # may start threads, which would inherit the mode.
    b = ir.IRBuilder()
    b.position_at_start(exit_block)
    _leave(module, b, saved)


def ieee_mode(module: ir.Module, b: ir.IRBuilder) -> None:
    """Clear FTZ and DAZ on the current thread."""
    store, load = _intrinsics(module)
    slot = b.alloca(I32, name="mxcsr")
    b.call(store, [slot])
    b.store(b.and_(b.load(slot, typ=I32), ir.Constant(I32, ~FTZ_DAZ)), slot)
    b.call(load, [slot])


def flushing_task(module: ir.Module, task: ir.Function) -> ir.Function:
    """A wrapper of pool task ``task`` that runs it in FTZ/DAZ mode (on
    whichever thread claims the chunks)."""
    name = task.name + ".ftz"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    fn = ir.Function(module, task.function_type, name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    saved = _enter(module, b, b)
    b.call(task, list(fn.args))
    _leave(module, b, saved)
    b.ret_void()
    return fn
