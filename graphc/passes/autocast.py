"""autocast: a float32 graph rewritten to compute in 16 bits where that is safe.

The policy of mixed-precision training (PyTorch's autocast, JAX's precision
policies), applied to IR:

- matmuls and convolutions take 16-bit operands (float32 operands are cast
  down) and give 16-bit results;
- ops whose accuracy suffers in 16 bits compute in float32 — reductions
  (sums, means, norms' statistics, softmax denominators), ``exp``, ``log``,
  ``pow``, ``div``, square roots, ``erf`` — and their results are *precise*;
- every other op follows its operands: anything touching a precise value
  computes in float32 (so log-softmax and losses stay float32), otherwise a
  16-bit operand pulls float32 operands such as biases down to 16 bits (so
  ``tanh(x @ w + b)`` is 16-bit throughout and its saved activations take
  half the memory).

Graph inputs and outputs keep their types: the result of an autocast graph
is a drop-in replacement for the original.
"""

from __future__ import annotations

from graphc.ir import DType, Graph, Literal, Node, Operand, Value

from .manager import count
from .rewrite import Rebuilder

LOW_OPS = frozenset({"matmul", "conv2d"})
FLOAT32_OPS = frozenset(
    {
        "reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "cumsum",
        "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "pow", "div",
        "sqrt", "rsqrt", "erf", "atan2", "avg_pool2d",
    }
)  # fmt: skip


def autocast(g: Graph, low: DType) -> Graph:
    """``g`` with float32 arithmetic moved to ``low`` (f16 or bf16) where safe.

    Contract: a valid graph in; the same computation out, in mixed
    precision, with the same input and output types. Bodies of scan, cond,
    while and remat nodes are rewritten alike (each keeps its interface, so
    carries and results crossing a body boundary stay float32). Cost:
    O(nodes).

    >>> from graphc.ir import GraphBuilder, f32, bf16
    >>> b = GraphBuilder("f"); x = b.input(f32[2, 3], "x"); w = b.input(f32[3, 4], "w")
    >>> print(autocast(b.build([b.reduce_sum(b.tanh(b.matmul(x, w)), axes=(0, 1))]), bf16))
    graph f(%x: f32[2,3], %w: f32[3,4]) -> (f32[]) {
      %0 = cast %x {dtype=bf16}       : bf16[2,3]
      %1 = cast %w {dtype=bf16}       : bf16[3,4]
      %2 = matmul %0, %1              : f32[2,4]
      %3 = cast %2 {dtype=bf16}       : bf16[2,4]
      %4 = tanh %3                    : bf16[2,4]
      %5 = cast %4 {dtype=f32}        : f32[2,4]
      %6 = reduce_sum %5 {axes=(0,1)} : f32[]
      return %6
    }
    """
    if not low.is_16bit_float:
        raise ValueError(f"autocast needs a 16-bit float dtype, got {low}")
    rb = Rebuilder(g)
    precise: set[Value] = set()
    casts: dict[tuple[Value, DType], Value] = {}

    def cast(x: Operand, dtype: DType, n: Node) -> Operand:
        if isinstance(x, Literal):
            return Literal(x.value, dtype) if x.dtype.is_float else x
        if x.type.dtype == dtype:
            return x
        key = (x, dtype)
        if key not in casts:
            casts[key] = rb.b.emit_node("cast", [x], {"dtype": dtype}, (), n.loc).outputs[0]
        return casts[key]

    for n in g.nodes:
        inputs = list(rb.operands(n))
        floats = [x for x in inputs if isinstance(x, Value) and x.type.dtype.is_float]
        if n.subgraphs or n.op == "cast":
            # a body keeps its interface (autocast keeps input and output types)
            # and computes inside in mixed precision like the rest
            inputs = [cast(new, old.type.dtype, n) if isinstance(old, Value) else new
                      for new, old in zip(inputs, n.inputs)]  # fmt: skip
            bodies = tuple(autocast(s, low) for s in n.subgraphs)
            _emit(rb, n, inputs, precise, is_precise=False, subgraphs=bodies)
            continue
        if n.op in LOW_OPS:
            inputs = [cast(x, low, n) if _castable(x) else x for x in inputs]
            count("ops run in 16 bits")
            wide = rb.b.emit_node(n.op, inputs, n.attrs, n.subgraphs, n.loc).outputs
            # bfloat16 matmuls give float32 (ml_dtypes' rule): round the
            # float32 accumulator once, as a float16 matmul does
            rb.bind(n, [cast(v, low, n) if v.type.dtype.is_float else v for v in wide])
        elif n.op in FLOAT32_OPS or any(x in precise for x in floats):
            inputs = [cast(x, DType.f32, n) if _is(x, low) else x for x in inputs]
            _emit(rb, n, inputs, precise, is_precise=True)
        elif any(x.type.dtype == low for x in floats):
            inputs = [cast(x, low, n) if _castable(x) else x for x in inputs]
            _emit(rb, n, inputs, precise, is_precise=False)
        else:
            _emit(rb, n, inputs, precise, is_precise=False)
    outs = []
    for v in g.outputs:
        new = rb.operand(v)
        outs.append(cast(new, v.type.dtype, g.nodes[-1]) if g.nodes else new)
    with rb.b.at(None):
        return rb.b.build(outs, name=g.name)


def _castable(x: Operand) -> bool:
    """A float32 operand that may be rounded to 16 bits."""
    if isinstance(x, Literal):
        return x.dtype is DType.f32
    return x.type.dtype is DType.f32


def _is(x: Operand, dtype: DType) -> bool:
    return isinstance(x, Value) and x.type.dtype == dtype


def _emit(
    rb: Rebuilder,
    n: Node,
    inputs: list[Operand],
    precise: set[Value],
    *,
    is_precise: bool,
    subgraphs: tuple[Graph, ...] | None = None,
) -> None:
    bodies = n.subgraphs if subgraphs is None else subgraphs
    same_bodies = all(a is b for a, b in zip(bodies, n.subgraphs))
    if (
        same_bodies
        and len(inputs) == len(n.inputs)
        and all(a is b for a, b in zip(inputs, n.inputs))
    ):
        rb.b.nodes.append(n)
        outputs = n.outputs
    else:
        outputs = rb.b.emit_node(n.op, inputs, n.attrs, bodies, n.loc).outputs
        rb.bind(n, outputs)
    if is_precise:
        precise.update(v for v in outputs if v.type.dtype.is_float)
