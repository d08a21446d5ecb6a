"""Drawing graphs with Graphviz: SVG, PNG and PDF through the ``dot`` program.

The ``graphviz`` Python package (``pip install 'graphc[viz]'``) runs the
``dot`` program, which comes from the operating system's package manager.
Either one missing is a :class:`RenderError` that says how to install it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphc.ir import Graph, GraphcError, format_message

from .dot import dot_source

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL_DOT = (
    "install Graphviz's dot program: apt-get install graphviz (Debian/Ubuntu), "
    "dnf install graphviz (Fedora), brew install graphviz (macOS), or see graphviz.org/download"
)


class RenderError(GraphcError, RuntimeError):
    """A graph could not be drawn (Graphviz missing, unknown format)."""


def render(
    g: Graph,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    expand: int = 60,
    max_nodes: int = 300,
    title: str | None = None,
) -> Path:
    """Draw ``g`` into ``path``; the format comes from the extension (or ``format``).

    ``.dot`` writes the DOT source and needs nothing installed. See
    :func:`graphc.viz.dot.dot_source` for what is drawn and for the options.
    Returns the path written.

    >>> import numpy as np, graphc as gc, tempfile, os
    >>> g = gc.trace(lambda x: np.tanh(x) * 2.0, np.ones(3))
    >>> out = g.render(os.path.join(tempfile.mkdtemp(), "g.dot"))
    >>> out.read_text().startswith('digraph "lambda"')
    True
    """
    target = Path(path)
    fmt = (format or target.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise RenderError(
            format_message(
                f"cannot render to {str(target)!r}: unknown format {fmt!r}",
                hint=f"use one of the extensions {', '.join('.' + f for f in FORMATS)}",
            )
        )
    source = dot_source(
        g,
        input_names=input_names,
        output_names=output_names,
        expand=expand,
        max_nodes=max_nodes,
        title=title,
    )
    if fmt == "dot":
        target.write_text(source + "\n")
        return target
    target.write_bytes(run_dot(source, fmt))
    return target


def svg(g: Graph, **options: Any) -> str:
    """``g`` drawn as SVG text (for embedding in a page); options as :func:`render`.

    >>> import numpy as np, graphc as gc
    >>> svg(gc.trace(lambda x: np.exp(x), np.ones(2))).lstrip().startswith("<?xml")
    True
    """
    return run_dot(dot_source(g, **options), "svg").decode("utf-8")


def run_dot(source: str, fmt: str) -> bytes:
    """Lay out DOT ``source`` with Graphviz's ``dot`` and return the ``fmt`` bytes."""
    try:
        import graphviz
    except ImportError:
        raise RenderError(
            format_message(
                "rendering graphs needs the 'graphviz' Python package",
                hint="pip install 'graphc[viz]' (and " + INSTALL_DOT + ")",
            )
        ) from None
    try:
        return graphviz.Source(source).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RenderError(
            format_message("Graphviz's 'dot' program was not found on PATH", hint=INSTALL_DOT)
        ) from None
    except graphviz.CalledProcessError as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        raise RenderError(f"dot failed to lay out the graph: {stderr.strip()}") from None
