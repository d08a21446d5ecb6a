"""Graph-to-graph passes and analyses."""

from .plan_memory import plan_memory

__all__ = ["plan_memory"]
