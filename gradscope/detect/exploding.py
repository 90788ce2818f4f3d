"""Exploding gradients: growth toward the input, growth over steps, a bound, loss divergence.

Signals, each on medians over windows of records:

* toward the input: first/last gradient RMS ratio above ``toward_input_ratio`` (AutoTrainer: 70);
* over steps: total gradient norm of the last window over the first above ``growth_over_steps``;
* bound: a layer's median gradient norm in the last window above ``max_grad_norm``;
* loss: the loss of the last window ``loss_rise_factor`` times that of the first, or above
  ``loss_bound``.

One gradient signal is a warning; two signals, or one with the loss diverging, an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gradscope.data.schema import StepRecord
from gradscope.detect.base import Judgement, RunWindow, WindowDetector, window_detector
from gradscope.detect.summary import (
    GRAD_RATIO_KEY,
    GRAD_RATIO_TEXT_KEY,
    format_grad_ratio,
    gradient_ratio,
)
from gradscope.detect.window import gradient_rms, weight_layers
from gradscope.findings import Severity

KIND = "exploding_gradients"


def _total_norm(records: Sequence[StepRecord], names: Sequence[str]) -> float | None:
    # Global gradient norm per record = sqrt(sum of squared layer norms); median over records.
    totals = []
    for r in records:
        norms = [r.layers.get(n, {}).get("grad_norm") for n in names]
        finite = [v for v in norms if v is not None and math.isfinite(v)]
        if finite:
            totals.append(math.sqrt(sum(v * v for v in finite)))
    return float(np.median(totals)) if totals else None


@dataclass(frozen=True)
class NormGrowth:
    """The total gradient norm at the start and the end of a run, and their ratio.

    Attributes:
        start: median total gradient norm (the layers' norms in quadrature) of the first window.
        end: the same over the last window.
        growth: ``end / start``; None when the two windows overlap (too few records to compare)
            or ``start`` is 0.
        steps: usable records the windows were cut from.
    """

    start: float | None
    end: float | None
    growth: float | None
    steps: int


def gradient_norm_growth(window: RunWindow) -> NormGrowth:
    """Measures how the total gradient norm grew over a run: the exploding detector's signal.

    Args:
        window: the run's window (its first and last windows are compared).

    Returns:
        The :class:`NormGrowth`; the audit reads it to judge ``missing_clipping``.

    Example:
        >>> gradient_norm_growth(RunWindow.of(run, DETECT_THRESHOLDS)).growth  # doctest: +SKIP
        0.8
    """
    names = [x.name for x in weight_layers(window.run)]
    start, end = _total_norm(window.first, names), _total_norm(window.last, names)
    growth = None
    # Only compare distinct windows; otherwise "growth" compares a window to itself.
    if start and end is not None and len(window.records) >= 2 * len(window.first):
        growth = end / start
    return NormGrowth(start, end, growth, len(window.records))


@window_detector(KIND)
class Exploding(WindowDetector):
    """Finds exploding gradients in a run (thresholds: ``exploding``).

    Example:
        >>> Exploding()(load_run("runs/huge_lr"), DETECT_THRESHOLDS)  # doctest: +SKIP
        [Finding(code='GS102', kind='exploding_gradients', ...)]
    """

    #: NaN is where exploding gradients end: a run it cut short is judged on what came before.
    judges_cut_short = True

    def judge(self, window: RunWindow) -> Judgement | None:
        """Looks for the four signals; their number and the loss decide the severity.

        Args:
            window: the run's window.

        Returns:
            The judgement, or None without any gradient signal.
        """
        th = window.thresholds.exploding
        layers = weight_layers(window.run)
        if not layers:
            return None
        late = window.last
        names = [x.name for x in layers]
        rms = {x.name: gradient_rms(late, x) for x in layers}
        norms = {n: window.median(n, "grad_norm") for n in names}
        signals: list[str] = []
        # The one definition of the first/last ratio (detect.summary), shared with every view.
        measured = gradient_ratio(window.run, window.thresholds.window)
        ratio = None if measured is None else measured.value
        if ratio is not None and ratio > th.toward_input_ratio:
            signals.append("toward_input")
        norm = gradient_norm_growth(window)
        total_early, total_late, growth = norm.start, norm.end, norm.growth
        if growth is not None and growth > th.growth_over_steps:
            signals.append("growth_over_steps")
        above = [n for n in names if norms[n] is not None and norms[n] > th.max_grad_norm]
        if above:
            signals.append("above_bound")
        if not signals:
            return None
        progress = window.progress
        loss_diverging = _loss_diverging(
            progress.loss_start, progress.loss_end, th.loss_rise_factor, th.loss_bound
        )
        severity = Severity.ERROR if loss_diverging or len(signals) >= 2 else Severity.WARNING
        affected = (
            tuple(above) if above else (names[0],) if "toward_input" in signals else tuple(names)
        )
        message = (
            "Exploding gradients: "
            + "; ".join(_describe(s, ratio, growth, above, th.max_grad_norm) for s in signals)
            + (" and the loss is diverging." if loss_diverging else ".")
        )
        evidence = {
            "signals": signals,
            GRAD_RATIO_KEY: ratio,
            GRAD_RATIO_TEXT_KEY: format_grad_ratio(ratio),
            "growth_over_steps": growth,
            "total_grad_norm_start": total_early,
            "total_grad_norm_end": total_late,
            "grad_norm": norms,
            "grad_rms": rms,
            "loss_diverging": loss_diverging,
        }
        return Judgement(severity, affected, message, evidence)


def _loss_diverging(start: float | None, end: float | None, factor: float, bound: float) -> bool:
    if end is None:
        return False
    if end >= bound and (start is None or end > start):
        return True
    return start is not None and start > 0 and end > factor * start


def _describe(
    signal: str, ratio: float | None, growth: float | None, above: list[str], bound: float
) -> str:
    if signal == "toward_input":
        return (
            "gradients grow toward the input: the first/last gradient ratio (per weight) is "
            + format_grad_ratio(ratio)
        )
    if signal == "growth_over_steps":
        return f"the total gradient norm grew {growth:.0f}x during training"
    return f"gradient norms above {bound:g} in {', '.join(above)}"
