"""Dying ReLU: ReLU layers where most units output 0 for every example, over a window.

``dead_frac`` (recorded per batch) is the fraction of units off for the whole batch; a unit off in
one batch may be alive in the next, so the detector takes the median over the last window.
"""

from __future__ import annotations

from gradscope.detect.base import Judgement, RunWindow, graded, window_detector
from gradscope.detect.cost import CostedDetector
from gradscope.detect.window import sample_series

KIND = "dying_relu"


@window_detector(KIND)
class DyingRelu(CostedDetector):
    """Finds ReLU layers with a large fraction of dead units (thresholds: ``dying_relu``).

    Only hard-zero ReLUs (activation kind ``"relu"``) are judged: leaky variants keep a gradient.

    Example:
        >>> DyingRelu()(load_run("runs/neg_bias"), DETECT_THRESHOLDS)  # doctest: +SKIP
        [Finding(code='GS103', kind='dying_relu', ...)]
    """

    def judge(self, window: RunWindow) -> Judgement | None:
        """Names the ReLU layers whose median dead fraction reaches the warning threshold.

        Args:
            window: the run's window.

        Returns:
            The judgement, or None when no ReLU layer is that dead.
        """
        th = window.thresholds.dying_relu
        relu = (x.name for x in window.run.layers if x.activation_kind == "relu")
        dead = window.at_least(relu, "dead_frac", th.warning_fraction)
        if not dead:
            return None
        worst = max(dead.values())
        parts = ", ".join(f"'{n}' {v:.0%}" for n, v in dead.items())
        message = (
            f"Dying ReLU: most units never activate ({parts} of units output 0 for every example "
            "of a batch), so they pass no gradient."
        )
        evidence = {
            "dead_frac": dead,
            "max_dead_frac": worst,
            "series": {n: sample_series(window.run.records, n, "dead_frac") for n in dead},
        }
        return Judgement(graded(worst, th.error_fraction), tuple(dead), message, evidence)
