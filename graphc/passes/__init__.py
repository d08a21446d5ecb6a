"""Graph-to-graph passes, the pass manager and the optimization pipeline.

``optimize(g)`` runs :data:`PIPELINE` (verify, fold_constants, simplify, CSE,
simplify, DCE) and returns ``(graph, CompileReport)``.
"""

from .cse import eliminate_common_subexpressions
from .dce import DCE_RULES, eliminate_dead_code
from .fold import fold_constants
from .manager import CompileReport, Pass, PassRecord, PipelineError, count, run_passes
from .pipeline import PIPELINE, optimize
from .plan_memory import plan_memory
from .simplify import Rule, simplify
from .simplify_rules import SIMPLIFY_RULES

__all__ = [
    "DCE_RULES",
    "PIPELINE",
    "SIMPLIFY_RULES",
    "CompileReport",
    "Pass",
    "PassRecord",
    "PipelineError",
    "Rule",
    "count",
    "eliminate_common_subexpressions",
    "eliminate_dead_code",
    "fold_constants",
    "optimize",
    "plan_memory",
    "run_passes",
    "simplify",
]
