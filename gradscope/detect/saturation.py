"""Saturation: hidden sigmoid/tanh layers with most outputs in the flat tails, over a window.

The output layer is never judged: a confident softmax or sigmoid prediction is the goal of
training, not a symptom.
"""

from __future__ import annotations

from gradscope.detect.base import Judgement, RunWindow, graded, window_detector
from gradscope.detect.cost import CostedDetector
from gradscope.detect.window import sample_series

KIND = "saturation"
_SATURATING = ("sigmoid", "tanh")


@window_detector(KIND)
class Saturation(CostedDetector):
    """Finds saturated sigmoid/tanh hidden layers (thresholds: ``saturation``).

    Example:
        >>> Saturation()(load_run("runs/deep_sigmoid"), DETECT_THRESHOLDS)  # doctest: +SKIP
        [Finding(code='GS104', kind='saturation', ...)]
    """

    def judge(self, window: RunWindow) -> Judgement | None:
        """Names the hidden sigmoid/tanh layers whose median saturated fraction is high.

        Args:
            window: the run's window.

        Returns:
            The judgement, or None when no hidden layer saturates that much.
        """
        th, layers = window.thresholds.saturation, window.run.layers
        if not layers:
            return None
        hidden = layers[:-1]  # the output layer's saturation is confidence, never judged
        names = (x.name for x in hidden if x.activation_kind in _SATURATING)
        saturated = window.at_least(names, "sat_frac", th.warning_fraction)
        if not saturated:
            return None
        worst = max(saturated.values())
        message = (
            f"Saturation: in {len(saturated)} sigmoid/tanh layer(s) up to {worst:.0%} of outputs "
            "sit in the flat tails, where the gradient is nearly zero."
        )
        evidence = {
            "sat_frac": saturated,
            "max_sat_frac": worst,
            "act_mean": {n: window.median(n, "act_mean") for n in saturated},
            "act_std": {n: window.median(n, "act_std") for n in saturated},
            "series": {n: sample_series(window.run.records, n, "sat_frac") for n in saturated},
        }
        return Judgement(graded(worst, th.error_fraction), tuple(saturated), message, evidence)
