"""Panels for a run recorded with diagnostics: gradient flow, weight norms, activations."""

from __future__ import annotations

from typing import Any

from .diagnostics import gradient_alerts


def has_diagnostics(history: Any) -> bool:
    return any(m.startswith("grad_norm/") for m in history.metrics)


def draw(axes: Any, history: Any, *, vanishing: float, exploding: float) -> None:
    """Fill three matplotlib axes: gradient norm per layer (log scale, with the
    vanishing/exploding band, offending layers marked), parameter norms, and
    the statistics of observed values."""
    grad_ax, weight_ax, act_ax = axes
    epochs = history["epoch"]
    alerts = gradient_alerts(history, vanishing=vanishing, exploding=exploding)
    for key in _keys(history, "grad_norm/"):
        layer = key.split("/", 1)[1]
        flagged = layer in alerts
        label = f"{layer} ({alerts[layer]})" if flagged else layer
        grad_ax.plot(
            epochs,
            history[key],
            marker="x" if flagged else "o",
            markersize=5 if flagged else 3,
            linewidth=2 if flagged else 1,
            label=label,
        )
    grad_ax.axhspan(vanishing, exploding, color="green", alpha=0.06)
    grad_ax.axhline(vanishing, color="tab:blue", linestyle="--", linewidth=1)
    grad_ax.axhline(exploding, color="tab:red", linestyle="--", linewidth=1)
    grad_ax.set_yscale("log")
    grad_ax.set_title("gradient norm per layer")
    grad_ax.set_xlabel("epoch")
    grad_ax.legend(fontsize=7)
    for key in _keys(history, "param_norm/"):
        weight_ax.plot(epochs, history[key], marker="o", markersize=3, label=key.split("/", 1)[1])
    weight_ax.set_yscale("log")
    weight_ax.set_title("parameter norm per layer")
    weight_ax.set_xlabel("epoch")
    weight_ax.legend(fontsize=7)
    observed = _keys(history, "observed/")
    for key in observed:
        act_ax.plot(epochs, history[key], marker="o", markersize=3, label=key[len("observed/") :])
    act_ax.set_title("observed values" if observed else "observed values (none: gc.observe)")
    act_ax.set_xlabel("epoch")
    if observed:
        act_ax.legend(fontsize=7)


def _keys(history: Any, prefix: str) -> list[str]:
    return [m for m in history.metrics if m.startswith(prefix)]
