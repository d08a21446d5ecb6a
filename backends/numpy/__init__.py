"""The NumPy backend: a graph becomes readable Python source over NumPy.

``compile(g)`` returns a :class:`NumpyExecutable`; calling it runs one
generated statement per node, writing into preallocated buffers where NumPy
allows (``out=``) and freeing every value after its last use::

    exe = compile(g)
    outputs = exe(*arrays)      # a tuple of arrays
    print(exe.source)           # the generated function

Ops are implemented by the :data:`LOWERINGS` table (``scan`` and ``cond``
run a Python loop or branch over their separately compiled bodies, see
``control.py``); the few that are not
(``fusion``, ``rsqrt``) are first rewritten by the :data:`DECOMPOSITIONS`
table. A failure inside generated code is re-raised as a ``GraphcError``
naming the IR node and the user's source line.
"""

from __future__ import annotations

from graphc.ir import BackendError, Graph
from graphc.ir.errors import format_message
from graphc.ir.plan import MemoryPlan

from .buffers import BufferPlan, analyze, assign_slots, use_donations, use_memory_plan
from .codegen import generate, lazy_broadcasts
from .control import LOWERINGS as CONTROL_LOWERINGS
from .decompositions import DECOMPOSITIONS, decompose
from .executable import MemoryReport, NumpyExecutable, new_key
from .lowerings import LOWERINGS, Emit, Lowering

NAME = "numpy"
# scan and cond compile their bodies with this backend's compile(), so their
# lowerings live in control.py and join the table here.
LOWERINGS.update(CONTROL_LOWERINGS)

# Intermediates smaller than this are left to NumPy's allocator: passing
# out= costs more than allocating a few hundred bytes.
MIN_BUFFER_BYTES = 4096


def compile(
    g: Graph, plan: MemoryPlan | None = None, *, min_buffer_bytes: int = MIN_BUFFER_BYTES
) -> NumpyExecutable:
    """Compile ``g`` into a Python function over NumPy.

    Args:
        plan: byte offsets for intermediates in one arena (from
            ``graphc.passes.plan_memory`` on this graph, in this node order).
            Without one, the backend plans its own buffers; either way a
            placement that would overlap a live value (NumPy views extend
            lifetimes) is dropped, never used.
        min_buffer_bytes: smaller intermediates are allocated by NumPy per
            call instead of living in a preallocated buffer.

    Raises:
        BackendError: the graph has an op this backend cannot run.

    >>> import numpy as np
    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> exe = compile(b.build([b.tanh(x)]))
    >>> exe(np.zeros(2, np.float32))[0].dtype
    dtype('float32')
    """
    d = decompose(g)
    flat = d.graph
    for n in flat.nodes:
        if n.op not in LOWERINGS or (len(n.outputs) != 1 and not LOWERINGS[n.op].tuple_result):
            raise BackendError(
                format_message(
                    f"numpy backend: no lowering for op '{n.op}'",
                    details=[", ".join(str(v.type) for v in n.outputs)],
                    loc=n.loc,
                    hint="add it to backends/numpy/lowerings.py or to DECOMPOSITIONS",
                )
            )
    lazy, stretched = lazy_broadcasts(flat)
    buffers = analyze(flat, LOWERINGS, stretched)
    if plan is not None:
        use_memory_plan(flat, buffers, LOWERINGS, plan, min_buffer_bytes)
        use_donations(flat, buffers, LOWERINGS, plan)
    else:
        assign_slots(flat, buffers, LOWERINGS, min_buffer_bytes)
    key = new_key()
    checker: list[NumpyExecutable] = []
    generated = generate(
        d, g, LOWERINGS, buffers, lazy, key, lambda k, a: checker[0].check_input(k, a)
    )
    exe = NumpyExecutable(g, flat, generated, d.origin, memory_report(flat, buffers), key)
    checker.append(exe)
    return exe


def memory_report(g: Graph, buffers: BufferPlan) -> MemoryReport:
    """Count where the values of ``g`` live under ``buffers``."""
    outputs, inputs = set(g.outputs), set(g.inputs)
    made = [v for n in g.nodes for v in n.outputs]
    roots = [v for v in made if buffers.storage[v].root is v]
    intermediates = [v for v in roots if v not in outputs and buffers.storage[v].kind == "fresh"]
    return MemoryReport(
        buffer_bytes=buffers.buffer_bytes,
        buffered_values=sum(1 for v in intermediates if v in buffers.buffers),
        allocated_values=sum(1 for v in intermediates if v not in buffers.buffers),
        view_values=len(made) - len(roots),
        constant_bytes=sum(v.type.nbytes for v in roots if buffers.storage[v].kind == "const"),
        input_bytes=sum(v.type.nbytes for v in inputs),
        output_bytes=sum(v.type.nbytes for v in set(outputs)),
    )


__all__ = [
    "DECOMPOSITIONS",
    "LOWERINGS",
    "MIN_BUFFER_BYTES",
    "MemoryReport",
    "NAME",
    "Emit",
    "Lowering",
    "NumpyExecutable",
    "compile",
]
