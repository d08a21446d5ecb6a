"""Seeing inside a compilation: drawn graphs and the HTML compile report.

Everything here reads graphs, plans and reports; nothing in the compiler
imports it (``Graph.render`` reaches it through a hook set on import).
"""

from graphc.ir.core import set_renderer

from .dot import dot_source
from .render import RenderError, render, svg

set_renderer(render)

__all__ = ["RenderError", "dot_source", "render", "svg"]
