"""Matplotlib figures of activation statistics: dead/saturated fractions, mean ± std, histograms.

Returned as :class:`~gradscope.render.plotting.Plot`; arrays come arranged by
:mod:`gradscope.render.matrix`, colours from :mod:`gradscope.render.palette`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import to_hex

from gradscope.render import palette
from gradscope.render.plotting import (
    Plot,
    depth_colors,
    layer_ticks,
    new_figure,
    styled,
    text,
    to_plot,
)


@styled
def fraction_bars(
    layers: Sequence[str],
    series: Sequence[tuple[str, np.ndarray]],
    xlabel: str,
    confidence_layer: str | None = None,
) -> Plot:
    """Horizontal grouped bars per layer of fractions in [0, 1] (dead units, saturated units).

    Args:
        layers: layer names in forward order (input on top).
        series: ``(label, values)`` pairs, ``"dead"`` and/or ``"saturated"``; one value per
            layer, NaN for none.
        xlabel: x-axis label.
        confidence_layer: the output layer, whose saturation is its confidence and is never
            judged: its ``"saturated"`` bar is drawn neutral grey (:data:`palette.CONFIDENCE`).

    Returns:
        The plot; facts ``series`` and, with a confidence layer, ``confidence-layer`` and
        ``confidence-colour`` (read from the drawn bar).

    Example:
        >>> fraction_bars(["d0"], [("dead", np.array([0.7]))], "fraction")  # doctest: +SKIP
    """
    n = len(layers)
    fig, ax = new_figure(min(10.0, 1.0 + 0.24 * max(n, 3) * max(1, len(series)) / 1.5))
    height = 0.8 / max(1, len(series))
    colours = {"dead": palette.DEAD, "saturated": palette.SATURATED}
    y = np.arange(n)
    facts: dict[str, object] = {"series": [label for label, _ in series]}
    grey = None
    for k, (label, values) in enumerate(series):
        vals = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
        offset = (k - (len(series) - 1) / 2) * height
        judged = np.isfinite(np.asarray(values, dtype=float))
        if label == "saturated" and confidence_layer in layers:
            judged[list(layers).index(confidence_layer)] = False
        bars = ax.barh(
            y + offset,
            vals,
            height=height,
            color=colours.get(label, "#4e79a7"),
            # No legend entry for a series whose only bar is the output's grey one.
            label=text(label) if judged.any() else "_nolegend_",
        )
        if label == "saturated" and confidence_layer in layers:
            grey = bars[list(layers).index(confidence_layer)]
            grey.set_facecolor(palette.CONFIDENCE)
    layer_ticks(ax, list(layers), axis="y")
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if grey is not None:
        # The legend shows each series by its first bar; the grey one gets its own entry.
        handles.append(grey)
        labels.append(text(f"saturated, {confidence_layer} (output): confidence, never judged"))
        facts |= {
            "confidence-layer": str(confidence_layer),
            "confidence-colour": to_hex(grey.get_facecolor()),
        }
    # Beside the axes: inside, the legend would hide the bars of the last layers.
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    return to_plot(fig, facts)


@styled
def activation_stats(layers: Sequence[str], mean: np.ndarray, std: np.ndarray) -> Plot:
    """Activation mean ± standard deviation per layer.

    Args:
        layers: layer names in forward order.
        mean: recorded activation mean per layer (window median).
        std: recorded activation standard deviation per layer (window median).

    Returns:
        The plot.

    Example:
        >>> activation_stats(["d0"], np.array([0.5]), np.array([0.2]))  # doctest: +SKIP
    """
    fig, ax = new_figure(3.2)
    x = np.arange(len(layers))
    ax.errorbar(x, mean, yerr=np.nan_to_num(std), fmt="o", ms=4, capsize=3, color="#333333")
    ax.axhline(0.0, color="#888888", lw=0.8)
    layer_ticks(ax, layers)
    ax.set_ylabel("activation mean ± std")
    ax.grid(True, alpha=0.3)
    return to_plot(fig)


@styled
def histogram_ridges(
    layers: Sequence[str], edges: Sequence[np.ndarray], counts: Sequence[np.ndarray], xlabel: str
) -> Plot:
    """Recorded histograms (one per layer) stacked as a ridgeline, input layer on top.

    The x axis spans the bins that hold values (over all layers), not the whole recorded range:
    a ReLU layer's empty negative bins, for instance, are not drawn. Heights are relative to each
    layer's tallest inner bin; the end bins (values beyond the range land there) are cut at full
    height.

    Args:
        layers: layer names, one per histogram.
        edges: bin edges per histogram (len = bins + 1).
        counts: bin counts per histogram.
        xlabel: x-axis label.

    Returns:
        The plot; fact ``xlim`` (the drawn x range).

    Example:
        >>> histogram_ridges(["d0"], [np.linspace(0, 1, 5)], [np.ones(4)], "a")  # doctest: +SKIP
    """
    n = len(layers)
    fig, ax = new_figure(min(10.0, 1.0 + 0.35 * max(n, 2)))
    colors = depth_colors(n)
    lo, hi = np.inf, -np.inf
    for i, (e, c) in enumerate(zip(edges, counts, strict=True)):
        e, c = np.asarray(e, dtype=float), np.asarray(c, dtype=float)
        # Heights are relative to the tallest inner bin: the end bins also collect the values
        # beyond the range (and a ReLU's zeros) and would flatten everything else; they are cut
        # at full height instead.
        inner = c[1:-1] if c.size > 2 and np.max(c[1:-1]) > 0 else c
        heights = np.minimum(c / (float(np.max(inner)) if np.sum(c) > 0 else 1.0), 1.0)
        base = n - 1 - i
        # Steps over the bin edges: each bin is drawn as wide as it was recorded.
        ax.stairs(base + 0.9 * heights, e, baseline=base, fill=True, color=colors[i], alpha=0.7)
        filled = np.flatnonzero(c > 0)
        if filled.size:
            lo, hi = min(lo, e[filled[0]]), max(hi, e[filled[-1] + 1])
    if np.isfinite(lo):
        ax.set_xlim(lo, hi)
    layer_ticks(ax, list(layers)[::-1], axis="y")
    ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", alpha=0.3)
    return to_plot(fig, {"xlim": [float(v) for v in ax.get_xlim()]})
