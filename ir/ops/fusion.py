"""fusion: a group of nodes that a backend compiles as one kernel.

The body is an ordinary graph over whole tensors whose inputs have exactly
the types of the node's operands, so the semantics is simply "call the body".
(Bodies over full tensor types, rather than over scalars, keep broadcasting
and a reduction tail visible to the verifier and to every pass.)
"""

from __future__ import annotations

from typing import Any

from ..core import Graph, TensorType
from .registry import Attr, OpDef, register
from .rules import call_types


def _fusion_rule(
    *xs: TensorType, kind: str, _subgraphs: tuple[Graph, ...]
) -> tuple[TensorType, ...]:
    return call_types(xs, _subgraphs[0], "fusion")


def _fusion_ref(*xs: Any, kind: str, _subgraphs: tuple[Graph, ...], _interpret: Any) -> Any:
    return _interpret(_subgraphs[0], *xs)


register(
    OpDef(
        "fusion",
        ("*xs",),
        (Attr("kind", "str", "elementwise"),),
        _fusion_rule,
        _fusion_ref,
        None,
        # Only lowering passes, which run after differentiation, form fusions.
        frozenset({"pure", "lowering_only"}),
        num_subgraphs=1,
        doc="call of the body subgraph; backends compile the body as one kernel",
    )
)
