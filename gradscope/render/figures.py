"""Matplotlib figures of gradients, updates and loss (activations: :mod:`~.act_figures`).

Each returns a :class:`~gradscope.render.plotting.Plot`. Every function takes arrays already
arranged by :mod:`gradscope.render.matrix` and draws them; none computes a statistic. Figures use
matplotlib's object API (``matplotlib.figure.Figure``), never pyplot, so no global figure state
leaks between reports and no GUI backend is needed. Colours come from
:mod:`gradscope.render.palette`, shared with the TensorBoard dashboard.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm, Normalize, to_hex

from gradscope.render import palette
from gradscope.render.matrix import StatMatrix, thin_indices
from gradscope.render.plotting import (
    Plot,
    depth_colors,
    layer_ticks,
    log_y,
    new_figure,
    positive,
    sparse_log_ticks,
    step_ticks,
    styled,
    text,
    to_plot,
)

#: Healthy update ratio ‖Δw‖/‖w‖ per step (CS231n, "neural-networks-3": ~1e-3).
UPDATE_RATIO_TARGET: float = 1e-3
#: The band drawn around the target: one order of magnitude either side.
UPDATE_RATIO_BAND: tuple[float, float] = (1e-4, 1e-2)
#: Columns drawn at most per heatmap/line chart; more records are thinned evenly for display.
MAX_COLUMNS: int = 600
#: Beyond this many layers, line charts show a depth colour bar instead of a legend.
MAX_LEGEND_ENTRIES: int = 10
#: Markers of compared runs, so before and after differ in shape too (greyscale prints).
RUN_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v")


def _legend_or_colorbar(ax: matplotlib.axes.Axes, n_layers: int) -> None:
    if n_layers <= MAX_LEGEND_ENTRIES:
        ax.legend(loc="best", fontsize=8, frameon=False)
        return
    mappable = matplotlib.cm.ScalarMappable(
        norm=Normalize(0, n_layers - 1), cmap=matplotlib.colormaps["viridis"]
    )
    bar = ax.figure.colorbar(mappable, ax=ax, pad=0.01)
    bar.set_label("layer depth (0 = input side)")


@styled
def grad_heatmap(
    matrix: StatMatrix,
    scale: tuple[float, float] | None = None,
    max_columns: int = MAX_COLUMNS,
) -> Plot:
    """Layers × steps heatmap of a positive statistic on a log colour scale.

    Args:
        matrix: the statistic, typically ``grad_norm``; rows in forward order (input on top).
        scale: ``(low, high)`` of the colour scale; compared runs pass the same one (see
            :func:`gradscope.render.matrix.positive_range`). Default: this matrix's range.
        max_columns: records beyond this are thinned evenly for display.

    Returns:
        The plot; facts ``vmin``/``vmax`` (colour scale), ``xlabel`` and ``xticks``. Cells
        without a positive finite value are drawn grey.

    Example:
        >>> grad_heatmap(stat_matrices(run, ["grad_norm"])["grad_norm"]).facts  # doctest: +SKIP
    """
    cols = thin_indices(matrix.values.shape[1], max_columns)
    data = positive(matrix.values[:, cols])
    n = len(matrix.layers)
    fig, ax = new_figure(min(8.0, 1.2 + 0.16 * max(n, 3)))
    finite = data[np.isfinite(data)]
    facts: dict[str, object] = {}
    if scale is None and finite.size:
        scale = (float(finite.min()), float(finite.max()))
    if scale is not None:
        lo, hi = scale
        norm = LogNorm(lo, hi if hi > lo else lo * 10)
        cmap = matplotlib.colormaps["magma"].with_extremes(bad=palette.MISSING)
        image = ax.imshow(
            np.ma.masked_invalid(data),
            aspect="auto",
            norm=norm,
            cmap=cmap,
            interpolation="nearest",
            extent=(-0.5, len(cols) - 0.5, n - 0.5, -0.5),
        )
        bar = fig.colorbar(image, ax=ax, pad=0.01)
        sparse_log_ticks(bar.ax.yaxis, norm.vmin, norm.vmax)
        bar.set_label(f"{matrix.stat} (log scale)")
        facts |= {"vmin": float(image.norm.vmin), "vmax": float(image.norm.vmax)}
    ticks = step_ticks(ax, matrix.steps[cols])
    layer_ticks(ax, matrix.layers, axis="y")
    ax.set_xlabel("step")
    ax.set_ylabel("layer (input → output)")
    return to_plot(fig, facts | {"xlabel": ax.get_xlabel(), "xticks": ticks})


def _reference(
    ax: matplotlib.axes.Axes, band: tuple[float, float] | None, target: float | None
) -> None:
    # The healthy band (shaded) and the target (dashed) a figure's values are read against.
    if band is not None:
        ax.axhspan(band[0], band[1], color=palette.HEALTHY, alpha=0.12, lw=0, label="healthy band")
    if target is not None:
        ax.axhline(target, color=palette.HEALTHY, ls="--", lw=1, label=f"{target:g}")


@styled
def depth_profile(
    layers: Sequence[str],
    profiles: Sequence[tuple[str, np.ndarray]],
    ylabel: str = "gradient L2 norm",
    highlight: Sequence[str] = (),
    colours: Sequence[str] | None = None,
    band: tuple[float, float] | None = None,
    target: float | None = None,
) -> Plot:
    """One value per layer along the depth, one line per moment (or per run), log scale.

    This is the chapter's vanishing-gradient picture: with vanishing gradients the lines fall
    steeply from the output layer back towards the input.

    Args:
        layers: layer names in forward order (x axis).
        profiles: ``(label, values)`` pairs; values have one entry per layer.
        ylabel: y-axis label.
        highlight: layers to mark (e.g. those named by a finding).
        colours: one colour per profile (compared runs: :func:`palette.run_colours`); default
            viridis, for moments of one run.
        band: optional ``(low, high)`` range shaded as the healthy band (as :func:`layer_lines`).
        target: optional value drawn as a dashed line.

    Returns:
        The plot; fact ``colours`` (of the drawn lines, in order).

    Example:
        >>> depth_profile(["d0", "d1"], [("step 0", np.array([1e-6, 1e-1]))])  # doctest: +SKIP
    """
    fig, ax = new_figure(3.6)
    x = np.arange(len(layers))
    for i in (i for i, name in enumerate(layers) if name in set(highlight)):
        ax.axvspan(i - 0.5, i + 0.5, color="#e4572e", alpha=0.12, lw=0)
    _reference(ax, band, target)
    runs = colours is not None
    lines = []
    for k, (label, values) in enumerate(profiles):
        (line,) = ax.plot(
            x,
            positive(np.asarray(values, dtype=float)),
            ls="-",
            marker=RUN_MARKERS[k % len(RUN_MARKERS)] if runs else "o",
            ms=6 if runs else 3,
            lw=2.2 if runs else 1.5,
            color=colours[k] if colours is not None else depth_colors(len(profiles))[k],
            label=text(label),
        )
        lines.append(line)
    log_y(ax)
    layer_ticks(ax, layers)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if profiles:
        ax.legend(loc="best", fontsize=9, frameon=False)
    return to_plot(fig, {"colours": [to_hex(ln.get_color()) for ln in lines]})


@styled
def layer_lines(
    matrix: StatMatrix,
    ylabel: str,
    log: bool = True,
    band: tuple[float, float] | None = None,
    target: float | None = None,
    max_columns: int = MAX_COLUMNS,
) -> Plot:
    """One line per layer over steps, coloured by depth.

    Args:
        matrix: the statistic; only layers with data should be passed.
        ylabel: y-axis label.
        log: log-scale y axis (non-positive values become gaps).
        band: optional ``(low, high)`` range shaded as the healthy band.
        target: optional value drawn as a dashed line.
        max_columns: records beyond this are thinned evenly.

    Returns:
        The plot.

    Example:
        >>> layer_lines(m, "update ratio", band=UPDATE_RATIO_BAND)  # doctest: +SKIP
    """
    cols = thin_indices(matrix.values.shape[1], max_columns)
    steps = matrix.steps[cols]
    fig, ax = new_figure(3.6)
    _reference(ax, band, target)
    colors = depth_colors(len(matrix.layers))
    for i, name in enumerate(matrix.layers):
        values = matrix.values[i, cols]
        ax.plot(steps, positive(values) if log else values, lw=1, color=colors[i], label=text(name))
    if log:
        log_y(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    _legend_or_colorbar(ax, len(matrix.layers))
    return to_plot(fig)


@styled
def loss_and_lr(
    series: Sequence[tuple[str, np.ndarray, np.ndarray]],
    lr: tuple[np.ndarray, np.ndarray] | None = None,
    colours: Sequence[str] | None = None,
    max_columns: int = MAX_COLUMNS,
) -> Plot:
    """Loss curves over steps (one per label) and, on a second axis, the learning rate.

    The learning-rate axis starts at 0; a constant rate is a flat line halfway up (an axis
    fitted to a constant would zoom into float noise, e.g. 0.048-0.052).

    Args:
        series: ``(label, steps, values)`` per curve, e.g. the step loss and epoch ``val_loss``.
        lr: optional ``(steps, learning_rate)``.
        colours: one colour per curve (compared runs: :func:`palette.run_colours`).
        max_columns: points beyond this are thinned evenly per curve.

    Returns:
        The plot; facts ``colours`` (of the loss curves) and, when a learning rate is drawn,
        ``lr-ylim`` and ``lr-constant``.

    Example:
        >>> loss_and_lr([("loss", steps, loss)], (steps, lr))  # doctest: +SKIP
    """
    fig, ax = new_figure(3.4)
    default = ("#333333", "#CC79A7", palette.HEALTHY, "#E69F00", "#56B4E9")
    positive_only = True
    drawn: list[str] = []
    for k, (label, steps, values) in enumerate(series):
        idx = thin_indices(len(steps), max_columns)
        vals = np.asarray(values, dtype=float)[idx]
        positive_only &= bool(np.all(vals[np.isfinite(vals)] > 0))
        colour = colours[k] if colours is not None else default[k % len(default)]
        (line,) = ax.plot(np.asarray(steps)[idx], vals, lw=1.6, color=colour, label=text(label))
        drawn.append(to_hex(line.get_color()))
    lo, hi = ax.get_ylim()
    if positive_only and series and lo > 0 and hi / lo > 20:  # log only when it spans decades
        log_y(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    facts: dict[str, object] = {"colours": drawn}
    rates = np.asarray(lr[1], dtype=float) if lr is not None else np.array([])
    finite = rates[np.isfinite(rates)]
    if lr is not None and finite.size:
        ax2 = ax.twinx()
        idx = thin_indices(len(lr[0]), max_columns)
        (line,) = ax2.plot(lr[0][idx], rates[idx], lw=1, ls="--", color="#888888")
        top, bottom = float(finite.max()), float(finite.min())
        constant = top - bottom <= 1e-6 * abs(top)
        if top > 0:
            ax2.set_ylim(0.0, 2.0 * top if constant else 1.1 * top)
        ax2.set_ylabel("learning rate" + (" (constant)" if constant else ""))
        handles.append(line)
        labels.append("learning rate")
        facts |= {"lr-ylim": [float(v) for v in ax2.get_ylim()], "lr-constant": constant}
    if handles:
        ax.legend(handles, labels, loc="best", fontsize=8, frameon=False)
    return to_plot(fig, facts)
