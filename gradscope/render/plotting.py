"""What every report figure shares: its size, style, axes helpers and its PNG encoding.

A figure is returned as a :class:`Plot`: the PNG data URI and *facts* read back from the drawn
axes (colour-scale limits, axis ranges, colours of marked bars). The report writes the facts as
``data-*`` attributes of the ``<figure>``, so a reader (or a browser test) can check what was
drawn without decoding pixels.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ParamSpec

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator
from PIL import Image

from gradscope.render.matrix import thin_indices

#: Width of every report figure in inches. At :data:`DPI` this is 1248 px: about the width of a
#: report section in a 1400 px window, so the browser scales figures little either way.
WIDTH: float = 13.0
#: Resolution of the embedded PNGs.
DPI: int = 96

_P = ParamSpec("_P")


@dataclass(frozen=True)
class Plot:
    """A drawn figure.

    Attributes:
        src: a ``data:image/png;base64,...`` URI.
        facts: ``(name, value)`` pairs read from the drawn axes, e.g. ``("vmin", "1.2e-06")``.
    """

    src: str
    facts: tuple[tuple[str, str], ...] = ()


def styled(fn: Callable[_P, Plot]) -> Callable[_P, Plot]:
    """Runs a figure function inside a local rc context.

    The report's look never depends on (or changes) the user's ``rcParams``.

    Args:
        fn: a function that draws and returns a :class:`Plot`.

    Returns:
        The wrapped function.

    Example:
        >>> @styled
        ... def empty() -> Plot:
        ...     return to_plot(new_figure(1.0)[0])
        >>> empty().src.startswith("data:image/png;base64,")
        True
    """

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Plot:
        with matplotlib.rc_context({"font.size": 10, "axes.unicode_minus": True}):
            return fn(*args, **kwargs)

    return wrapper


def new_figure(height: float) -> tuple[Figure, Axes]:
    """A figure as wide as every report figure (:data:`WIDTH`), with one axes.

    Args:
        height: in inches.

    Returns:
        ``(figure, axes)``.

    Example:
        >>> new_figure(3.0)[0].get_size_inches().tolist()
        [13.0, 3.0]
    """
    fig = Figure(figsize=(WIDTH, height))
    return fig, fig.add_subplot()


def text(label: str) -> str:
    """Makes user text (layer names, run labels) safe for matplotlib.

    An unescaped ``$`` would switch matplotlib into mathtext, which misrenders the name or raises
    on malformed input.

    Args:
        label: the text.

    Returns:
        The text with ``$`` escaped.

    Example:
        >>> text("cost$") == "cost" + chr(92) + "$"
        True
    """
    return label.replace("$", r"\$")


def to_plot(fig: Figure, facts: Mapping[str, object] | None = None) -> Plot:
    """Encodes a drawn figure as a compact PNG data URI.

    Args:
        fig: the figure.
        facts: what the figure shows, as name -> value (values are turned into text).

    Returns:
        The :class:`Plot`.

    Example:
        >>> to_plot(new_figure(1.0)[0], {"vmin": 1e-6}).facts
        (('vmin', '1e-06'),)
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    # Plots use few colours: a 256-colour palette (no dithering, so lines stay crisp) makes the
    # PNG about 3x smaller, and a report with dozens of figures stays a file one can mail. Fast
    # octree quantizing costs ~3 ms a figure (median cut + optimize: ~25 ms) for smaller files.
    image = Image.open(buf).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
    return Plot(uri, tuple((k, _fact(v)) for k, v in (facts or {}).items()))


def _fact(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)):
        return ",".join(_fact(v) for v in value)
    return str(value)


def positive(values: np.ndarray) -> np.ndarray:
    """Masks what a log axis cannot show (0, negatives, NaN) as gaps, without clipping.

    Args:
        values: any float array.

    Returns:
        The array with non-positive and non-finite entries as NaN.

    Example:
        >>> positive(np.array([0.0, -1.0, 2.0])).tolist()
        [nan, nan, 2.0]
    """
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def log_y(ax: Axes) -> None:
    """Log y axis; call after plotting (the data range decides the ticks).

    Args:
        ax: the axes.

    Example:
        >>> fig, ax = new_figure(2.0)
        >>> _ = ax.plot([1e-6, 1.0])
        >>> log_y(ax)
        >>> ax.get_yscale()
        'log'
    """
    ax.set_yscale("log")
    sparse_log_ticks(ax.yaxis, *ax.get_ylim())


def sparse_log_ticks(axis: Axis, lo: float, hi: float) -> None:
    """Drops minor ticks on a log axis spanning more than two decades.

    They cost more to lay out than the data itself (they dominated report time); within two
    decades they are the only labelled ticks and stay.

    Args:
        axis: the axis.
        lo: its lower limit.
        hi: its upper limit.

    Example:
        >>> fig, ax = new_figure(2.0)
        >>> sparse_log_ticks(ax.yaxis, 1e-6, 1.0)
    """
    if lo > 0 and hi / lo > 100:
        axis.set_major_locator(LogLocator(numticks=7))
        axis.set_minor_locator(NullLocator())


def depth_colors(n: int) -> np.ndarray:
    """Viridis colours for ``n`` layers (or moments of one run), input side dark.

    Args:
        n: how many.

    Returns:
        An ``(n, 4)`` RGBA array.

    Example:
        >>> depth_colors(3).shape
        (3, 4)
    """
    return matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, max(n, 1)))


def layer_ticks(ax: Axes, names: Sequence[str], axis: str = "x", max_ticks: int = 25) -> None:
    """Labels an axis with layer names (thinned beyond ``max_ticks``).

    Args:
        ax: the axes; the axis coordinate is the layer index.
        names: layer names in forward order.
        axis: ``"x"`` or ``"y"``.
        max_ticks: labels at most.

    Example:
        >>> fig, ax = new_figure(2.0)
        >>> layer_ticks(ax, ["d0", "d1"])
        >>> [t.get_text() for t in ax.get_xticklabels()]
        ['d0', 'd1']
    """
    idx = thin_indices(len(names), max_ticks)
    labels = [text(names[i]) for i in idx]
    if axis == "x":
        ax.set_xticks(idx, labels, rotation=45, ha="right")
    else:
        ax.set_yticks(idx, labels)


def step_ticks(ax: Axes, steps: np.ndarray, max_ticks: int = 8) -> list[int]:
    """Puts round, evenly spaced step numbers on the x axis of a column-indexed image.

    Columns are records, which need not be evenly spaced in steps (thinned runs); each tick sits
    at the column position its step interpolates to, so labels are round (0, 50, 100, ...) and
    evenly spaced in steps.

    Args:
        ax: axes whose x coordinate is the column index.
        steps: the step of each column, increasing.
        max_ticks: ticks at most.

    Returns:
        The step numbers used as ticks.

    Example:
        >>> fig, ax = new_figure(2.0)
        >>> step_ticks(ax, np.array([0, 7, 13, 20, 26, 33, 40, 47, 53, 60]))
        [0, 10, 20, 30, 40, 50, 60]
    """
    if not len(steps):
        return []
    first, last = int(steps[0]), int(steps[-1])
    if first == last:
        ax.set_xticks([0], [str(first)])
        return [first]
    locator = MaxNLocator(nbins=max_ticks, integer=True, steps=[1, 2, 2.5, 5, 10])
    values = [int(v) for v in locator.tick_values(first, last) if first <= v <= last]
    positions = np.interp(values, steps.astype(float), np.arange(len(steps), dtype=float))
    ax.set_xticks(positions, [str(v) for v in values])
    return values
