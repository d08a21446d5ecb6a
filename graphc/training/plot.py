"""Loss curves of a training run as a PNG."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["plot_history"]


def plot_history(
    history: Any,
    path: str | os.PathLike[str],
    *,
    vanishing: float = 1e-6,
    exploding: float = 1e2,
) -> None:
    """Write the loss curves (and any other metrics, in a second panel) to a PNG.

    A run recorded with ``train_step(..., diagnostics=True)`` gets a second row:
    the gradient flow (gradient norm per layer, log scale, with layers below
    ``vanishing`` or above ``exploding`` marked), parameter norms, and the
    statistics of values named with ``gc.observe``.

    matplotlib is imported only here, through its object-oriented API, so it
    neither slows down ``import graphc`` nor changes the caller's pyplot state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .diagnostics_plot import draw, has_diagnostics

    losses = [m for m in history.metrics if m.endswith("loss")]
    others = [
        m
        for m in history.metrics
        if m not in losses
        and m not in ("epoch", "time", "samples_per_second", "skipped_steps")
        and "/" not in m  # diagnostics get their own panels
    ]
    diagnostics = has_diagnostics(history)
    if diagnostics:
        fig = Figure(figsize=(15, 8), tight_layout=True)
        FigureCanvasAgg(fig)
        grid = fig.subplots(2, 3, squeeze=False)
        panels = grid[0]
        if not others:
            panels[1].set_visible(False)
        panels[2].set_visible(False)
        draw(grid[1], history, vanishing=vanishing, exploding=exploding)
    else:
        fig = Figure(figsize=(10 if others else 6, 4), tight_layout=True)
        FigureCanvasAgg(fig)
        panels = fig.subplots(1, 2 if others else 1, squeeze=False)[0]
    loss_ax = panels[0]
    metric_ax = panels[1] if others else None
    epochs = history["epoch"]
    for name in losses:
        loss_ax.plot(epochs, history[name], marker="o", markersize=3, label=name)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    loss_ax.legend()
    if metric_ax is not None:
        for name in others:
            metric_ax.plot(epochs, history[name], marker="o", markersize=3, label=name)
        metric_ax.set_xlabel("epoch")
        metric_ax.legend()
    if history.best_epoch is not None:
        loss_ax.axvline(history.best_epoch, color="gray", linestyle=":", linewidth=1)
    fig.savefig(os.fspath(path), format="png", dpi=100)
