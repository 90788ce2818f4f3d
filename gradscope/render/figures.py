"""Matplotlib figures of recorded data, returned as ``data:image/png;base64,...`` URIs.

Every function takes arrays already arranged by :mod:`gradscope.render.matrix` and draws them; none
computes a statistic. Figures use matplotlib's object API (``matplotlib.figure.Figure``), never
pyplot, so no global figure state leaks between reports and no GUI backend is needed.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullLocator
from PIL import Image

from gradscope.render.matrix import StatMatrix, thin_indices

#: Healthy update ratio ‖Δw‖/‖w‖ per step (CS231n, "neural-networks-3": ~1e-3).
UPDATE_RATIO_TARGET: float = 1e-3
#: The band drawn around the target: one order of magnitude either side.
UPDATE_RATIO_BAND: tuple[float, float] = (1e-4, 1e-2)
#: Columns drawn at most per heatmap/line chart; more records are thinned evenly for display.
MAX_COLUMNS: int = 600
#: Beyond this many layers, line charts show a depth colour bar instead of a legend.
MAX_LEGEND_ENTRIES: int = 10

_DPI = 96
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _styled(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    # A local rc context, so the report's look never depends on (or changes) the user's rcParams.
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with matplotlib.rc_context({"font.size": 9, "axes.unicode_minus": True}):
            return fn(*args, **kwargs)

    return wrapper


def _text(label: str) -> str:
    # Layer names and run labels are user text: an unescaped "$" would switch matplotlib into
    # mathtext, which misrenders the name or raises on malformed input.
    return label.replace("$", r"\$")


def _to_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    # Plots use few colours: a 256-colour palette (no dithering, so lines stay crisp) makes the
    # PNG about 3x smaller, and a report with dozens of figures stays a file one can mail. Fast
    # octree quantizing costs ~3 ms a figure (median cut + optimize: ~25 ms) for smaller files.
    image = Image.open(buf).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _positive(values: np.ndarray) -> np.ndarray:
    # Log axes cannot show 0, negatives or NaN; they are masked (left as gaps), not clipped.
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _log_y(ax: Axes) -> None:
    """Log y axis; call after plotting (the data range decides the ticks)."""
    ax.set_yscale("log")
    _sparse_log_ticks(ax.yaxis, *ax.get_ylim())


def _sparse_log_ticks(axis: Axis, lo: float, hi: float) -> None:
    # Minor ticks on a log axis spanning many decades cost more to lay out than the data itself
    # (they dominated report time), so they are dropped there; within two decades they are the
    # only labelled ticks and stay.
    if lo > 0 and hi / lo > 100:
        axis.set_major_locator(LogLocator(numticks=7))
        axis.set_minor_locator(NullLocator())


def _depth_colors(n: int) -> np.ndarray:
    return matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, max(n, 1)))


def _layer_ticks(ax: Axes, names: Sequence[str], axis: str = "x", max_ticks: int = 25) -> None:
    idx = thin_indices(len(names), max_ticks)
    labels = [_text(names[i]) for i in idx]
    if axis == "x":
        ax.set_xticks(idx, labels, rotation=45, ha="right")
    else:
        ax.set_yticks(idx, labels)


def _lines_legend_or_colorbar(fig: Figure, ax: Axes, n_layers: int) -> None:
    if n_layers <= MAX_LEGEND_ENTRIES:
        ax.legend(loc="best", fontsize=7, frameon=False)
    else:
        mappable = matplotlib.cm.ScalarMappable(
            norm=Normalize(0, n_layers - 1), cmap=matplotlib.colormaps["viridis"]
        )
        bar = fig.colorbar(mappable, ax=ax, pad=0.01)
        bar.set_label("layer depth (0 = input side)")


@_styled
def grad_heatmap(matrix: StatMatrix, max_columns: int = MAX_COLUMNS) -> str:
    """Layers × steps heatmap of a positive statistic on a log colour scale.

    Args:
        matrix: the statistic, typically ``grad_norm``; rows in forward order (input on top).
        max_columns: records beyond this are thinned evenly for display.

    Returns:
        A PNG data URI. Cells without a positive finite value are drawn grey.

    Example:
        >>> uri = grad_heatmap(stat_matrices(run, ["grad_norm"])["grad_norm"])  # doctest: +SKIP
    """
    cols = thin_indices(matrix.values.shape[1], max_columns)
    data = _positive(matrix.values[:, cols])
    n = len(matrix.layers)
    fig = Figure(figsize=(9.0, min(8.0, 1.2 + 0.16 * max(n, 3))))
    ax = fig.add_subplot()
    finite = data[np.isfinite(data)]
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        norm = LogNorm(lo, hi if hi > lo else lo * 10)
        cmap = matplotlib.colormaps["magma"].with_extremes(bad="#bbbbbb")
        extent = (-0.5, len(cols) - 0.5, n - 0.5, -0.5)
        image = ax.imshow(
            np.ma.masked_invalid(data),
            aspect="auto",
            norm=norm,
            cmap=cmap,
            interpolation="nearest",
            extent=extent,
        )
        bar = fig.colorbar(image, ax=ax, pad=0.01)
        _sparse_log_ticks(bar.ax.yaxis, norm.vmin, norm.vmax)
        bar.set_label(f"{matrix.stat} (log scale)")
    steps = matrix.steps[cols]
    if len(steps):
        xt = thin_indices(len(steps), 8)
        ax.set_xticks(xt, [str(int(steps[i])) for i in xt])
    _layer_ticks(ax, matrix.layers, axis="y")
    ax.set_xlabel("step")
    ax.set_ylabel("layer (input → output)")
    return _to_data_uri(fig)


@_styled
def depth_profile(
    layers: Sequence[str],
    profiles: Sequence[tuple[str, np.ndarray]],
    ylabel: str = "gradient L2 norm",
    highlight: Sequence[str] = (),
) -> str:
    """One value per layer along the depth, one line per moment (or per run), log scale.

    This is the chapter's vanishing-gradient picture: with vanishing gradients the lines fall
    steeply from the output layer back towards the input.

    Args:
        layers: layer names in forward order (x axis).
        profiles: ``(label, values)`` pairs; values have one entry per layer.
        ylabel: y-axis label.
        highlight: layers to mark (e.g. those named by a finding).

    Returns:
        A PNG data URI.

    Example:
        >>> depth_profile(["d0", "d1"], [("step 0", np.array([1e-6, 1e-1]))])  # doctest: +SKIP
    """
    fig = Figure(figsize=(8.0, 3.4))
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    marked = [i for i, name in enumerate(layers) if name in set(highlight)]
    for i in marked:
        ax.axvspan(i - 0.5, i + 0.5, color="#e4572e", alpha=0.12, lw=0)
    colors = _depth_colors(len(profiles))
    for (label, values), color in zip(profiles, colors, strict=True):
        ax.plot(
            x,
            _positive(np.asarray(values, dtype=float)),
            "o-",
            ms=3,
            color=color,
            label=_text(label),
        )
    _log_y(ax)
    _layer_ticks(ax, layers)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if profiles:
        ax.legend(loc="best", fontsize=7, frameon=False)
    return _to_data_uri(fig)


@_styled
def layer_lines(
    matrix: StatMatrix,
    ylabel: str,
    log: bool = True,
    band: tuple[float, float] | None = None,
    target: float | None = None,
    max_columns: int = MAX_COLUMNS,
) -> str:
    """One line per layer over steps, coloured by depth.

    Args:
        matrix: the statistic; only layers with data should be passed.
        ylabel: y-axis label.
        log: log-scale y axis (non-positive values become gaps).
        band: optional ``(low, high)`` range shaded as the healthy band.
        target: optional value drawn as a dashed line.
        max_columns: records beyond this are thinned evenly.

    Returns:
        A PNG data URI.

    Example:
        >>> layer_lines(m, "update ratio", band=UPDATE_RATIO_BAND)  # doctest: +SKIP
    """
    cols = thin_indices(matrix.values.shape[1], max_columns)
    steps = matrix.steps[cols]
    fig = Figure(figsize=(8.0, 3.4))
    ax = fig.add_subplot()
    if band is not None:
        ax.axhspan(band[0], band[1], color="#59a14f", alpha=0.12, lw=0, label="healthy band")
    if target is not None:
        ax.axhline(target, color="#59a14f", ls="--", lw=1, label=f"{target:g}")
    colors = _depth_colors(len(matrix.layers))
    for i, name in enumerate(matrix.layers):
        values = matrix.values[i, cols]
        ax.plot(
            steps, _positive(values) if log else values, lw=1, color=colors[i], label=_text(name)
        )
    if log:
        _log_y(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    _lines_legend_or_colorbar(fig, ax, len(matrix.layers))
    return _to_data_uri(fig)


@_styled
def fraction_bars(
    layers: Sequence[str], series: Sequence[tuple[str, np.ndarray]], xlabel: str
) -> str:
    """Horizontal grouped bars per layer of fractions in [0, 1] (dead units, saturated units).

    Args:
        layers: layer names in forward order (input on top).
        series: ``(label, values)`` pairs; one value per layer, NaN for none.
        xlabel: x-axis label.

    Returns:
        A PNG data URI.

    Example:
        >>> fraction_bars(["d0"], [("dead", np.array([0.7]))], "fraction")  # doctest: +SKIP
    """
    n = len(layers)
    fig = Figure(figsize=(8.0, min(10.0, 1.0 + 0.24 * max(n, 3) * max(1, len(series)) / 1.5)))
    ax = fig.add_subplot()
    height = 0.8 / max(1, len(series))
    palette = ("#e15759", "#f28e2b", "#4e79a7", "#76b7b2")
    y = np.arange(n)
    for k, (label, values) in enumerate(series):
        vals = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
        offset = (k - (len(series) - 1) / 2) * height
        ax.barh(y + offset, vals, height=height, color=palette[k % 4], label=_text(label))
    _layer_ticks(ax, list(layers), axis="y")
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    return _to_data_uri(fig)


@_styled
def activation_stats(layers: Sequence[str], mean: np.ndarray, std: np.ndarray) -> str:
    """Activation mean ± standard deviation per layer.

    Args:
        layers: layer names in forward order.
        mean: recorded activation mean per layer (window median).
        std: recorded activation standard deviation per layer (window median).

    Returns:
        A PNG data URI.

    Example:
        >>> activation_stats(["d0"], np.array([0.5]), np.array([0.2]))  # doctest: +SKIP
    """
    fig = Figure(figsize=(8.0, 3.0))
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    ax.errorbar(x, mean, yerr=np.nan_to_num(std), fmt="o", ms=4, capsize=3, color="#4e79a7")
    ax.axhline(0.0, color="#888888", lw=0.8)
    _layer_ticks(ax, layers)
    ax.set_ylabel("activation mean ± std")
    ax.grid(True, alpha=0.3)
    return _to_data_uri(fig)


@_styled
def histogram_ridges(
    layers: Sequence[str], edges: Sequence[np.ndarray], counts: Sequence[np.ndarray], xlabel: str
) -> str:
    """Recorded histograms (one per layer) stacked as a ridgeline, input layer on top.

    Args:
        layers: layer names, one per histogram.
        edges: bin edges per histogram (len = bins + 1).
        counts: bin counts per histogram.
        xlabel: x-axis label.

    Returns:
        A PNG data URI.

    Example:
        >>> histogram_ridges(["d0"], [np.linspace(0, 1, 5)], [np.ones(4)], "a")  # doctest: +SKIP
    """
    n = len(layers)
    fig = Figure(figsize=(8.0, min(10.0, 1.0 + 0.35 * max(n, 2))))
    ax = fig.add_subplot()
    colors = _depth_colors(n)
    for i, (e, c) in enumerate(zip(edges, counts, strict=True)):
        total = float(np.sum(c))
        heights = np.asarray(c, dtype=float) / (float(np.max(c)) if total > 0 else 1.0)
        centers = (np.asarray(e[:-1]) + np.asarray(e[1:])) / 2
        base = n - 1 - i
        ax.fill_between(centers, base, base + 0.9 * heights, color=colors[i], alpha=0.7, lw=0)
    _layer_ticks(ax, list(layers)[::-1], axis="y")
    ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", alpha=0.3)
    return _to_data_uri(fig)


@_styled
def loss_and_lr(
    series: Sequence[tuple[str, np.ndarray, np.ndarray]],
    lr: tuple[np.ndarray, np.ndarray] | None = None,
    max_columns: int = MAX_COLUMNS,
) -> str:
    """Loss curves over steps (one per label) and, on a second axis, the learning rate.

    Args:
        series: ``(label, steps, values)`` per curve, e.g. the step loss and epoch ``val_loss``.
        lr: optional ``(steps, learning_rate)``.
        max_columns: points beyond this are thinned evenly per curve.

    Returns:
        A PNG data URI.

    Example:
        >>> loss_and_lr([("loss", steps, loss)], (steps, lr))  # doctest: +SKIP
    """
    fig = Figure(figsize=(8.0, 3.2))
    ax = fig.add_subplot()
    palette = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1")
    positive = True
    for k, (label, steps, values) in enumerate(series):
        idx = thin_indices(len(steps), max_columns)
        vals = np.asarray(values, dtype=float)[idx]
        positive &= bool(np.all(vals[np.isfinite(vals)] > 0))
        ax.plot(np.asarray(steps)[idx], vals, lw=1.2, color=palette[k % 5], label=_text(label))
    lo, hi = ax.get_ylim()
    if positive and series and lo > 0 and hi / lo > 20:  # log only when the loss spans decades
        _log_y(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if lr is not None and len(lr[0]):
        ax2 = ax.twinx()
        idx = thin_indices(len(lr[0]), max_columns)
        (line,) = ax2.plot(lr[0][idx], lr[1][idx], lw=1, ls="--", color="#888888", label="lr")
        ax2.set_ylabel("learning rate")
        handles.append(line)
        labels.append("learning rate")
    if handles:
        ax.legend(handles, labels, loc="best", fontsize=7, frameon=False)
    return _to_data_uri(fig)
