"""Per-node time inside the entry function (``compile(..., profile=True)``).

The entry function reads the CPU's cycle counter around each node and adds
the difference to ``graphc_profile[node]``; the last word counts calls. The
counters cost a few nanoseconds per node, so profiled code runs at nearly
full speed and the numbers include everything a node does natively (its
kernels, BLAS calls, parallel regions).

>>> import numpy as np
>>> from graphc.ir import GraphBuilder, f32
>>> from graphc.backends import llvm
>>> b = GraphBuilder("f"); x = b.input(f32[1000], "x")
>>> exe = llvm.compile(b.build([b.tanh(b.exp(x))]), profile=True)
>>> _ = exe(np.zeros(1000, np.float32))
>>> sorted(row.op for row in exe.profile())
['exp', 'tanh']
"""

from __future__ import annotations

import ctypes
import functools
import time
from dataclasses import dataclass

import llvmlite.ir as ir

from graphc.ir import Graph

from .irutil import I64, i64, word_ptr

SYMBOL = "graphc_profile"


@dataclass(frozen=True)
class Row:
    """One node's share of the time spent in native code."""

    index: int  # position in the compiled graph
    op: str  # the op, or "fusion:<kind>"
    shape: str  # the first output's type
    seconds: float  # per call
    share: float  # of the entry function's total


class Counters:
    """Emits the cycle counting into an entry function of ``nodes`` nodes."""

    def __init__(self, module: ir.Module, nodes: int) -> None:
        ty = ir.ArrayType(I64, nodes + 1)
        self.words = ir.GlobalVariable(module, ty, SYMBOL)
        self.words.initializer = ir.Constant(ty, None)
        self.words.align = 8
        self.nodes = nodes
        self.clock = ir.Function(module, ir.FunctionType(I64, []), "llvm.readcyclecounter")

    def start(self, b: ir.IRBuilder) -> ir.Value:
        return b.call(self.clock, [])

    def stop(self, b: ir.IRBuilder, index: int, started: ir.Value) -> None:
        self._add(b, index, b.sub(b.call(self.clock, []), started))

    def count_call(self, b: ir.IRBuilder) -> None:
        self._add(b, self.nodes, i64(1))

    def _add(self, b: ir.IRBuilder, index: int, amount: ir.Value) -> None:
        slot = word_ptr(b, self.words, index)
        b.store(b.add(b.load(slot, typ=I64), amount), slot)


def read(address: int, g: Graph) -> list[Row]:
    """The counters at ``address`` as rows, most expensive first."""
    n = len(g.nodes)
    words = (ctypes.c_int64 * (n + 1)).from_address(address)
    calls = max(int(words[n]), 1)
    total = sum(int(words[k]) for k in range(n)) or 1
    hz = cycles_per_second()
    rows = []
    for k, node in enumerate(g.nodes):
        op = node.op if node.op != "fusion" else f"fusion:{node.attrs.get('kind', '')}"
        shape = str(node.outputs[0].type) if node.outputs else ""
        cycles = int(words[k])
        rows.append(Row(k, op, shape, cycles / calls / hz, cycles / total))
    return sorted(rows, key=lambda r: -r.seconds)


def reset(address: int, g: Graph) -> None:
    ctypes.memset(address, 0, 8 * (len(g.nodes) + 1))


def format_rows(rows: list[Row], limit: int = 30) -> str:
    """A table of the ``limit`` most expensive nodes."""
    lines = [f"{'node':>5s} {'op':26s} {'result':24s} {'us/call':>9s} {'share':>6s}"]
    for r in rows[:limit]:
        lines.append(f"{r.index:5d} {r.op:26s} {r.shape:24s} {r.seconds * 1e6:9.1f} {r.share:6.1%}")
    total = sum(r.seconds for r in rows)
    lines.append(f"{'':5s} {'total':26s} {'':24s} {total * 1e6:9.1f}")
    return "\n".join(lines)


@functools.cache
def cycles_per_second() -> float:
    """The cycle counter's rate, measured against the wall clock."""
    from .pool import pool

    read_clock = pool().cycles
    t0, c0 = time.perf_counter(), read_clock()
    time.sleep(0.02)
    t1, c1 = time.perf_counter(), read_clock()
    return max((c1 - c0) / (t1 - t0), 1.0)
