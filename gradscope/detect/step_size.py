"""What the learning-rate detectors share: how far each step moves the weights, and the loss.

``unstable_loss`` (a rate too high) and ``slow_convergence`` (a rate too low) judge the same
measurements from opposite sides: the update ratio ‖ΔW‖/‖W‖ of each weight layer (CS231n: ≈ 1e-3
is healthy), the change of the loss between the first and last windows, and whether the model
already performs. They are computed here once, so both detectors and their evidence agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradscope.data.schema import StepRecord
from gradscope.detect.base import RunWindow
from gradscope.detect.window import gradient_flow_layers, median_stat

#: Evidence key of the median over layers of the window-median update ratio.
UPDATE_RATIO_KEY = "update_ratio_median"


@dataclass(frozen=True)
class StepSizes:
    """The update ratios of a run's last window, per weight layer and summarised.

    Attributes:
        by_layer: layer -> median update ratio ‖ΔW‖/‖W‖ over the window, forward order; the
            weight layers whose gradients are compared along the network
            (:func:`gradscope.detect.window.gradient_flow_layers`: frozen layers and lookup
            tables left out, an Embedding's ratio measures how many rows a batch touches).
        median: the median of :attr:`by_layer`'s values (one layer with unusually scaled inputs
            neither triggers nor hides a finding).
        largest: the largest of them.
        relative_gradient: the median over the same layers of ‖∇W‖/‖W‖ (window medians of the
            gradient and weight norms), or None when not recorded. Small steps with a gradient
            this small are what a minimum looks like; small steps despite a large gradient are a
            small learning rate.
        weight_growth: the median over the same layers of ‖W‖ in the last window over ‖W‖ in
            the first (window medians), or None when not recorded. Large steps that are
            minibatch noise point every way and leave the norm where it was; steps too large for
            the loss overshoot and add up, and the weights grow.
    """

    by_layer: dict[str, float]
    median: float
    largest: float
    relative_gradient: float | None = None
    weight_growth: float | None = None

    @classmethod
    def of(cls, window: RunWindow) -> StepSizes | None:
        """Measures a window's update ratios.

        Args:
            window: the run's window.

        Returns:
            The :class:`StepSizes`, or None when no weight layer recorded a finite update ratio.

        Example:
            >>> StepSizes.of(RunWindow.of(run, DETECT_THRESHOLDS)).median  # doctest: +SKIP
            0.045
        """
        by_layer: dict[str, float] = {}
        gradients: list[float] = []
        growths: list[float] = []
        for info in gradient_flow_layers(window.run):
            value = window.median(info.name, "update_ratio")
            if value is None:
                continue
            by_layer[info.name] = value
            grad = window.median(info.name, "grad_norm")
            weight = window.median(info.name, "weight_norm")
            start = median_stat(window.first, info.name, "weight_norm")
            if grad is not None and weight:
                gradients.append(grad / weight)
            if weight is not None and start:
                growths.append(weight / start)
        if not by_layer:
            return None
        values = list(by_layer.values())
        return cls(
            by_layer, float(np.median(values)), max(values), _median(gradients), _median(growths)
        )

    def to_evidence(self) -> dict[str, Any]:
        """JSON-safe evidence: the per-layer ratios, their median, the relative gradient."""
        return {
            "update_ratio": dict(self.by_layer),
            UPDATE_RATIO_KEY: self.median,
            "relative_gradient_median": self.relative_gradient,
            "weight_growth_median": self.weight_growth,
        }


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def went_nonfinite(window: RunWindow) -> bool:
    """True when NaN/Inf appeared anywhere in the run (the ``nonfinite`` detector owns it).

    Args:
        window: the run's window.

    Returns:
        Whether a record or an epoch's loss is non-finite.
    """
    # The usable records stop at the first non-finite step (has_nonfinite).
    if len(window.records) < len(window.run.records):
        return True
    return any(not math.isfinite(e.logs.get("loss", 0.0)) for e in window.run.epochs)


def fitted(window: RunWindow) -> bool:
    """True when a logged training accuracy reached ``progress.good_accuracy``.

    Such a model performs (AutoTrainer's convergence threshold), so a flat loss is convergence
    and not a learning rate far off, even when the accuracy no longer rises (the progress gate
    then says "not learning": fine-tuning a trained model, a run continued after convergence).

    Args:
        window: the run's window.

    Returns:
        Whether the best training accuracy is at least the threshold.
    """
    best = window.progress.best_accuracy
    return best is not None and best >= window.thresholds.progress.good_accuracy


def loss_decreased(window: RunWindow, max_drop: float) -> bool | None:
    """Whether the loss fell by at least ``max_drop`` between the first and last windows.

    Args:
        window: the run's window.
        max_drop: the relative drop that counts as a decrease.

    Returns:
        True or False, or None when the loss was not recorded (then nothing is judged).
    """
    drop = window.progress.loss_drop
    return None if drop is None else drop >= max_drop


def loss_spread(records: Sequence[StepRecord]) -> float | None:
    """Interquartile range of the records' losses over their median: how much batches differ.

    Args:
        records: step records (a window).

    Returns:
        The relative spread, or None without finite positive losses.

    Example:
        >>> loss_spread([StepRecord(i, 0, v, 0.1, {}) for i, v in enumerate([1.0, 2.0, 3.0])])
        0.5
    """
    losses = np.array([r.loss for r in records if r.loss is not None], dtype=np.float64)
    losses = losses[np.isfinite(losses)]
    if not losses.size:
        return None
    median = float(np.median(losses))
    if median <= 0:
        return None
    q1, q3 = np.percentile(losses, [25, 75])
    return float(q3 - q1) / median


def learning_rate(records: Sequence[StepRecord]) -> float | None:
    """The median recorded learning rate of some records (a schedule changes it).

    Args:
        records: step records.

    Returns:
        The rate, or None when none was recorded.
    """
    rates = [r.lr for r in records if r.lr is not None and math.isfinite(r.lr)]
    return float(np.median(rates)) if rates else None


def rate_text(rate: float | None) -> str:
    """The learning rate for a message: ``" (1e-06)"``, or nothing when unknown."""
    return "" if rate is None else f" ({rate:.3g})"
