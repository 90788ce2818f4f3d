"""A run's recorded statistics arranged once (layers × records), shared by every view of it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gradscope.data.store import Run
from gradscope.render.matrix import StatMatrix, layers_with, stat_matrices, window_median

#: Statistics the report arranges as layers × records.
REPORT_STATS: tuple[str, ...] = (
    "grad_norm",
    "update_ratio",
    "dead_frac",
    "sat_frac",
    "act_mean",
    "act_std",
    "nonfinite",
)


@dataclass(frozen=True)
class RunData:
    """A run with its statistics arranged once, shared by every figure and table of the run.

    Attributes:
        run: the run.
        matrices: :data:`REPORT_STATS` as layers × records.
        grad_layers: layers with recorded gradients, forward order.
        act_layers: layers with recorded activation statistics, forward order.
    """

    run: Run
    matrices: Mapping[str, StatMatrix]
    grad_layers: tuple[str, ...]
    act_layers: tuple[str, ...]

    @classmethod
    def of(cls, run: Run) -> RunData:
        """Arranges a run's statistics.

        Args:
            run: a loaded run.

        Returns:
            The arranged data.

        Example:
            >>> RunData.of(load_run("runs/mlp")).grad_layers  # doctest: +SKIP
            ('dense', 'dense_1')
        """
        matrices = stat_matrices(run, REPORT_STATS)
        grad = layers_with([matrices["grad_norm"]])
        acts = layers_with([matrices[s] for s in ("dead_frac", "sat_frac", "act_mean")])
        return cls(run, matrices, tuple(grad), tuple(acts))

    @property
    def output_layer(self) -> str | None:
        """The model's last layer: its saturation is confidence, never judged.

        The same rule as the saturation detector and the terminal table.

        Example:
            >>> RunData.of(load_run("runs/mlp")).output_layer  # doctest: +SKIP
            'output'
        """
        return self.run.layers[-1].name if self.run.layers else None

    def sub(self, stat: str, layers: Sequence[str]) -> StatMatrix:
        """Returns the rows of ``layers`` of one statistic.

        Args:
            stat: one of :data:`REPORT_STATS`.
            layers: layer names.

        Returns:
            A matrix with those rows only.

        Example:
            >>> RunData.of(run).sub("grad_norm", ["dense"]).values.shape  # doctest: +SKIP
            (1, 35)
        """
        m = self.matrices[stat]
        rows = [m.layers.index(x) for x in layers]
        return StatMatrix(stat, tuple(layers), m.steps, m.values[rows])

    def medians(self, stat: str) -> dict[str, float]:
        """Window median per layer of one statistic (finite values only).

        Args:
            stat: one of :data:`REPORT_STATS`.

        Returns:
            layer -> median, for layers that have one.

        Example:
            >>> RunData.of(run).medians("dead_frac")  # doctest: +SKIP
            {'dense': 0.0625}
        """
        m = self.matrices[stat]
        return {
            name: float(v)
            for name, v in zip(m.layers, window_median(m), strict=True)
            if math.isfinite(v)
        }
