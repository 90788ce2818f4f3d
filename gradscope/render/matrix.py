"""Recorded per-layer statistics as layers × records arrays, for the figures.

Renderers never compute statistics: they arrange what was recorded (one row per layer, one column
per record) and thin columns for display; the derived numbers (window medians, the first/last
gradient ratio, the verdict) come from the run's :class:`~gradscope.detect.summary.RunSummary`.
Everything here is shared by the HTML report, the terminal summary and the TensorBoard dashboard.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from gradscope.data.store import Run


@dataclass(frozen=True)
class StatMatrix:
    """One recorded statistic for several layers over the run.

    Attributes:
        stat: statistic name, e.g. ``"grad_norm"``.
        layers: layer names, one per row, in forward order.
        steps: step of each record (column), int64.
        values: float64 array of shape (layers, records); NaN where a layer has no value.
    """

    stat: str
    layers: tuple[str, ...]
    steps: np.ndarray
    values: np.ndarray

    def row(self, layer: str) -> np.ndarray:
        """Returns the values of one layer.

        Args:
            layer: a name from :attr:`layers`.

        Returns:
            The layer's row (NaN where not recorded).
        """
        return self.values[self.layers.index(layer)]

    def has_data(self) -> bool:
        """Returns True if at least one value was recorded."""
        return bool(self.values.size) and bool(np.isfinite(self.values).any())


def stat_matrices(
    run: Run, stats: Sequence[str], layers: Sequence[str] | None = None
) -> dict[str, StatMatrix]:
    """Arranges recorded statistics as layers × records arrays, in one pass over the records.

    Args:
        run: a loaded run.
        stats: statistic names, e.g. ``("grad_norm", "dead_frac")``.
        layers: the rows; default every layer of the model in forward order.

    Returns:
        stat -> :class:`StatMatrix`.

    Example:
        >>> m = stat_matrices(run, ["grad_norm"])["grad_norm"]  # doctest: +SKIP
        >>> m.values.shape  # doctest: +SKIP
        (11, 35)
    """
    names = tuple(run.layer_names if layers is None else layers)
    row_of = {name: i for i, name in enumerate(names)}
    steps = np.array([r.step for r in run.records], dtype=np.int64)
    out = {s: np.full((len(names), len(run.records)), np.nan) for s in stats}
    wanted = [(s, out[s]) for s in stats]
    for j, record in enumerate(run.records):
        for name, values in record.layers.items():
            i = row_of.get(name)
            if i is None:
                continue
            for stat, array in wanted:
                value = values.get(stat)
                if value is not None:
                    array[i, j] = value
    return {s: StatMatrix(s, names, steps, out[s]) for s in stats}


def thin_indices(n: int, max_points: int) -> np.ndarray:
    """Evenly spaced indices of at most ``max_points`` out of ``n``, first and last included.

    Display only: a heatmap of 5,000 columns is no more readable than one of 500.

    Args:
        n: number of items.
        max_points: upper bound on the number of indices (≥ 2).

    Returns:
        Sorted unique int indices.

    Example:
        >>> thin_indices(10, 4).tolist()
        [0, 3, 6, 9]
    """
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def moment_indices(n: int, count: int = 4) -> list[int]:
    """Indices of ``count`` moments spread over a run (first record, ..., last record).

    Args:
        n: number of records.
        count: number of moments.

    Returns:
        Distinct sorted indices (fewer when the run is shorter than ``count``).

    Example:
        >>> moment_indices(100, 4)
        [0, 33, 66, 99]
    """
    return sorted({int(i) for i in np.linspace(0, max(n - 1, 0), count).round()}) if n else []


def layers_with(matrices: Iterable[StatMatrix]) -> list[str]:
    """Names of the layers that have at least one finite value in any of the matrices.

    Args:
        matrices: statistics over the same layers.

    Returns:
        Layer names in forward order.

    Example:
        >>> layers_with([matrices["dead_frac"], matrices["sat_frac"]])  # doctest: +SKIP
    """
    matrices = list(matrices)
    if not matrices:
        return []
    names = matrices[0].layers
    keep = np.zeros(len(names), dtype=bool)
    for m in matrices:
        keep |= np.isfinite(m.values).any(axis=1) if m.values.size else keep
    return [n for n, k in zip(names, keep, strict=True) if k]


def positive_range(matrices: Iterable[StatMatrix]) -> tuple[float, float] | None:
    """Smallest and largest positive finite value over several matrices.

    Compared runs share one colour scale from this range: a run drawn on its own scale would
    stretch whatever it holds over the full scale, and a healthy run's smallest gradients would
    look as dark as a sick run's vanished ones.

    Args:
        matrices: statistics of one or more runs.

    Returns:
        ``(low, high)``, or None when no matrix holds a positive finite value.

    Example:
        >>> m = StatMatrix("g", ("a",), np.arange(2), np.array([[0.0, 1e-3]]))
        >>> positive_range([m])
        (0.001, 0.001)
    """
    lo, hi = np.inf, -np.inf
    for m in matrices:
        v = m.values[np.isfinite(m.values) & (m.values > 0)]
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    return (lo, hi) if np.isfinite(lo) else None
