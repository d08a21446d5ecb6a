"""Views of one compiled specialization: pytree labels, drawing, the report object."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from graphc.pytree import tree_paths, tree_unflatten

from .dot import path_label
from .render import render


def argument_labels(fn: Callable[..., Any], compiled: Any, static: Sequence[int]) -> list[str]:
    """``params['w1']``, ``x``... for each input leaf of ``compiled``'s graph."""
    try:
        names = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        names = []
    tree = compiled.signature.tree
    count = len(compiled.graph.inputs)
    dynamic = tree_unflatten(tree, range(count))
    labels = [""] * count
    positions = [i for i in range(len(dynamic) + len(static)) if i not in static]
    for arg, pos in zip(dynamic, positions):
        root = names[pos] if pos < len(names) else f"arg{pos}"
        for path, leaf in zip(tree_paths(arg), _leaves_of(arg)):
            labels[leaf] = path_label(root, path)
    return labels


def output_labels(compiled: Any) -> list[str]:
    """``output``, ``output[1]['b2']``... for each output of ``compiled``'s graph."""
    count = len(compiled.graph.outputs)
    tree = tree_unflatten(compiled.out_tree, range(count))
    labels = [""] * count
    for path, leaf in zip(tree_paths(tree), _leaves_of(tree)):
        labels[leaf] = path_label("output", path)
    return labels


def _leaves_of(tree: Any) -> list[int]:
    from graphc.pytree import tree_leaves

    return [int(x) for x in tree_leaves(tree)]


def render_compiled(
    fn: Callable[..., Any],
    compiled: Any,
    static: Sequence[int],
    path: str | os.PathLike[str],
    *,
    optimized: bool = True,
    **options: Any,
) -> Path:
    """Draw the traced or optimized graph of ``compiled`` with pytree labels."""
    g = compiled.optimized_graph if optimized else compiled.graph
    inputs = argument_labels(fn, compiled, static)
    outputs = output_labels(compiled)
    # Passes may drop unused inputs, never reorder or add them: labels still line up.
    if len(g.inputs) != len(inputs):
        inputs = []
    if len(g.outputs) != len(outputs):
        outputs = []
    kind = "optimized" if optimized else "traced"
    title = options.pop("title", f"{g.name} ({kind}, {compiled.backend})")
    return render(g, path, input_names=inputs, output_names=outputs, title=title, **options)


class Report:
    """The compile report of one specialization: ``str()`` is the per-pass
    table (as before), ``.html(path)`` writes the full page.

    Attribute access falls through to the pass manager's ``CompileReport``
    (``.passes``, ``.counts``, ``.record(name)``, ``.from_cache``).
    """

    def __init__(self, fn: Callable[..., Any], compiled: Any, static: Sequence[int]) -> None:
        self._fn = fn
        self._compiled = compiled
        self._static = tuple(static)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._compiled.report, name)

    def __str__(self) -> str:
        return str(self._compiled.report)

    def __repr__(self) -> str:
        return f"<Report of {self._compiled.graph.name} ({self._compiled.backend})>"

    def html(self, path: str | os.PathLike[str], *, max_nodes: int = 300) -> Path:
        """Write the report as one self-contained HTML page; returns its path.

        Graphs of more than ``max_nodes`` boxes are drawn collapsed (see
        :func:`graphc.viz.dot.dot_source`), with each collapsed body drawn
        on its own below, folded.

        >>> import numpy as np, graphc as gc, tempfile, os
        >>> f = gc.jit(lambda x: np.tanh(x).sum(), backend="numpy")
        >>> _ = f(np.ones(3))
        >>> page = f.report.html(os.path.join(tempfile.mkdtemp(), "report.html"))
        >>> "Per-pass table" in page.read_text()
        True
        """
        from .report import write_html

        c = self._compiled
        return write_html(
            path,
            traced=c.graph,
            optimized=c.optimized_graph,
            report=c.report,
            memory=c.memory,
            plan=c.stats.get("plan"),
            backend=c.backend,
            executable=c.executable,
            seconds=c.stats.get("seconds", {}),
            input_names=argument_labels(self._fn, c, self._static),
            output_names=output_labels(c),
            max_nodes=max_nodes,
        )
