"""graphc.ir: types, the SSA graph, the op registry, printer, parser,
verifier and reference interpreter.

This package imports nothing from the rest of graphc: passes and backends
depend on it, never the other way round.
"""

from . import ops
from .builder import GraphBuilder
from .core import Graph, Literal, Node, Operand, TensorType, Value
from .dtypes import DType, promote
from .errors import (
    BackendError,
    DifferentiationError,
    GraphcError,
    GraphcIndexError,
    GraphcOverflowError,
    InputError,
    InputOverflowError,
    InterpretError,
    OpTypeError,
    ParseError,
    TracingError,
    UnsupportedError,
    VerifyError,
    format_message,
)
from .inputs import coerce_input, scalar_fits
from .interpret import interpret, run_node
from .liveness import prune
from .loc import Loc
from .ops.registry import Attr, OpDef, all_ops, get_op
from .parser import parse
from .printer import print_graph
from .verify import verify

bool_ = DType.bool
i8 = DType.i8
i16 = DType.i16
i32 = DType.i32
i64 = DType.i64
u8 = DType.u8
u16 = DType.u16
u32 = DType.u32
u64 = DType.u64
f16 = DType.f16
bf16 = DType.bf16
f32 = DType.f32
f64 = DType.f64

__all__ = [
    "Attr",
    "BackendError",
    "DType",
    "DifferentiationError",
    "Graph",
    "GraphBuilder",
    "GraphcError",
    "GraphcIndexError",
    "GraphcOverflowError",
    "InputError",
    "InputOverflowError",
    "InterpretError",
    "Literal",
    "Loc",
    "Node",
    "OpDef",
    "OpTypeError",
    "Operand",
    "ParseError",
    "TensorType",
    "TracingError",
    "UnsupportedError",
    "Value",
    "VerifyError",
    "all_ops",
    "bool_",
    "coerce_input",
    "f32",
    "f64",
    "f16",
    "bf16",
    "format_message",
    "get_op",
    "i32",
    "i64",
    "i8",
    "i16",
    "u8",
    "u16",
    "u32",
    "u64",
    "interpret",
    "ops",
    "parse",
    "print_graph",
    "promote",
    "prune",
    "run_node",
    "scalar_fits",
    "verify",
]
