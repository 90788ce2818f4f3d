"""A run's recorded statistics arranged once (layers × records), with its :class:`RunSummary`.

The matrices feed the figures; every derived number (window medians, the first/last gradient
ratio, the verdict) is read from the run's one :class:`~gradscope.detect.summary.RunSummary`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gradscope.data.store import Run
from gradscope.detect.summary import SUMMARY_STATS, RunSummary
from gradscope.findings import Finding
from gradscope.render.matrix import StatMatrix, layers_with, stat_matrices

#: Statistics the report arranges as layers × records.
REPORT_STATS: tuple[str, ...] = (*SUMMARY_STATS, "nonfinite")


@dataclass(frozen=True)
class RunData:
    """A run with its statistics arranged once, shared by every figure and table of the run.

    Attributes:
        run: the run.
        matrices: :data:`REPORT_STATS` as layers × records.
        grad_layers: layers with recorded gradients, forward order.
        act_layers: layers with recorded activation statistics, forward order.
        summary: the run's derived numbers, computed once (its verdict from the findings given).
    """

    run: Run
    matrices: Mapping[str, StatMatrix]
    grad_layers: tuple[str, ...]
    act_layers: tuple[str, ...]
    summary: RunSummary

    @classmethod
    def of(cls, run: Run, findings: Sequence[Finding] = ()) -> RunData:
        """Arranges a run's statistics and computes its summary.

        Args:
            run: a loaded run.
            findings: the run's findings, for the summary's verdict and counts (figures alone
                do not need them).

        Returns:
            The arranged data.

        Example:
            >>> RunData.of(load_run("runs/mlp")).grad_layers  # doctest: +SKIP
            ('dense', 'dense_1')
        """
        matrices = stat_matrices(run, REPORT_STATS)
        grad = layers_with([matrices["grad_norm"]])
        acts = layers_with([matrices[s] for s in ("dead_frac", "sat_frac", "act_mean")])
        return cls(run, matrices, tuple(grad), tuple(acts), RunSummary.of(run, findings))

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
        """Window median per layer of one statistic, as the run's summary holds it.

        Args:
            stat: one of :data:`gradscope.detect.summary.SUMMARY_STATS`.

        Returns:
            layer -> median, for layers that have one.

        Example:
            >>> RunData.of(run).medians("dead_frac")  # doctest: +SKIP
            {'dense': 0.0625}
        """
        return dict(self.summary.medians[stat])

    def median_array(self, stat: str, layers: Sequence[str]) -> np.ndarray:
        """The summary's window medians of ``layers``, as an array for a figure.

        Args:
            stat: one of :data:`gradscope.detect.summary.SUMMARY_STATS`.
            layers: layer names.

        Returns:
            float64 array aligned with ``layers``; NaN where a layer has no median.

        Example:
            >>> RunData.of(run).median_array("sat_frac", ["dense", "out"])  # doctest: +SKIP
            array([0.  , 0.98])
        """
        medians = self.summary.medians[stat]
        return np.array([medians.get(name, np.nan) for name in layers], dtype=np.float64)
