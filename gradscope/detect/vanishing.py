"""Vanishing gradients: gradients shrink by orders of magnitude from the output to the input.

Two signals, each judged on medians over the last window of records, on the weight layers
whose gradients are compared along the network (Embedding layers left out: their gradient reaches
only the rows of the batch's tokens, :func:`gradscope.detect.window.sparse_gradient`):

* gradient RMS (grad_norm / sqrt(params)) of the first weight layer over that of the last one
  below ``warning_ratio`` (AutoTrainer's ``gra_rate < 1e-3``);
* the median update ratio ‖ΔW‖/‖W‖ of the layers below the output layer under
  ``stalled_update_ratio``, or under ``stalled_relative_update`` times the output layer's, while
  the output layer's is at least
  ``training_update_ratio`` (early layers frozen in place, late layers training). Under Adam or
  RMSprop updates are rescaled per weight, so this signal mostly shows with SGD-like optimizers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradscope.config import VanishingThresholds
from gradscope.data.schema import StepRecord
from gradscope.detect.base import Judgement, RunWindow, WindowDetector, window_detector
from gradscope.detect.cause import CAUSE_FIXES, CAUSE_KEY, gradient_stop
from gradscope.detect.summary import GRAD_RATIO_KEY, GradientRatio, gradient_ratio
from gradscope.detect.window import gradient_flow_layers, gradient_rms
from gradscope.findings import Severity

KIND = "vanishing_gradients"


@window_detector(KIND)
class Vanishing(WindowDetector):
    """Finds vanishing gradients in a run (thresholds: ``vanishing``).

    Example:
        >>> Vanishing()(load_run("runs/deep_sigmoid"), DETECT_THRESHOLDS)  # doctest: +SKIP
        [Finding(code='GS101', kind='vanishing_gradients', ...)]
    """

    def judge(self, window: RunWindow) -> Judgement | None:
        """Judges the first/last gradient ratio and the hidden layers' update ratios.

        Args:
            window: the run's window.

        Returns:
            The judgement naming the layers whose gradients vanished, or None.
        """
        th = window.thresholds.vanishing
        # Embedding layers are left out: their gradient is sparse, not small (window.py).
        layers = gradient_flow_layers(window.run)
        if len(layers) < 2:
            return None
        rms = {x.name: gradient_rms(window.last, x) for x in layers}
        ratios = {x.name: window.median(x.name, "update_ratio") for x in layers}
        first, last = layers[0].name, layers[-1].name
        # The one definition of the first/last ratio (detect.summary), shared with every view.
        measured = gradient_ratio(window.run, window.thresholds.window)
        ratio = None if measured is None else measured.value
        upd_last = ratios[last]
        # "Early layers": every weight layer below the output layer, summarised by their median,
        # so one layer with unusually scaled inputs (often the first) neither triggers nor hides.
        hidden = [v for n, v in ratios.items() if n != last and v is not None]
        upd_hidden = float(np.median(hidden)) if hidden else None
        stalled = (
            upd_hidden is not None
            and upd_last is not None
            and upd_last >= th.training_update_ratio
            and (
                upd_hidden < th.stalled_update_ratio
                or upd_hidden < th.stalled_relative_update * upd_last
            )
        )
        by_ratio = ratio is not None and ratio < th.warning_ratio
        if not (by_ratio or stalled):
            return None
        error = ratio is not None and ratio < th.error_ratio
        if by_ratio and ratio == 0:
            what = f"no gradient at all reaches '{first}' (its gradient is exactly zero)"
        elif by_ratio and measured is not None:
            what = (
                f"the first/last gradient ratio (per weight, '{first}' over '{last}') is "
                f"{measured.text}"
            )
        else:
            slower = upd_last / upd_hidden if upd_hidden else math.inf
            what = (
                f"the layers below '{last}' barely move (median update ratio {upd_hidden:.1e} "
                f"per step, {slower:.0f}x slower than '{last}' at {upd_last:.1e})"
            )
        evidence = {
            **_ratio_evidence(measured, first, last, window.last),
            "grad_rms": rms,
            "update_ratio": ratios,
            "stalled_updates": stalled,
            "hidden_update_ratio_median": upd_hidden,
            "update_ratio_hidden_over_last": None
            if not (upd_hidden is not None and upd_last)
            else upd_hidden / upd_last,
        }
        severity = Severity.ERROR if error else Severity.WARNING
        affected = _affected(rms, ratios, rms[last], upd_last, th)
        # A measured cause outranks the symptom: name the layer that stops the gradient and
        # recommend what treats it, not the usual init/activation fixes (detect/cause.py).
        stop = gradient_stop(window.run, window.last, window.thresholds.dying_relu.error_fraction)
        if stop is not None:
            return Judgement(
                severity,
                affected,
                f"Vanishing gradients: {stop.text}.",
                {**evidence, CAUSE_KEY: stop.to_evidence()},
                CAUSE_FIXES,
            )
        return Judgement(
            severity,
            affected,
            f"Vanishing gradients: {what}, so the early layers learn little or nothing.",
            evidence,
        )


def _ratio_evidence(
    measured: GradientRatio | None, first: str, last: str, window: Sequence[StepRecord]
) -> dict[str, Any]:
    # Stalled updates can fire without a measurable ratio; the keys stay, with null values.
    if measured is not None:
        return measured.to_json()
    return {
        GRAD_RATIO_KEY: None,
        "first_layer": first,
        "last_layer": last,
        "window_steps": [window[0].step, window[-1].step],
        "window_records": len(window),
    }


def _affected(
    rms: dict[str, float | None],
    ratios: dict[str, float | None],
    rms_last: float | None,
    upd_last: float | None,
    th: VanishingThresholds,
) -> tuple[str, ...]:
    # Layers below the output whose gradient is small relative to the output layer's, or whose
    # own updates stalled by the thresholds of the stalled rule; the first layer stands in when
    # none qualifies alone (the finding then rests on the median).
    names = list(rms)
    out = []
    for name in names[:-1]:
        value, upd = rms[name], ratios.get(name)
        small = value is not None and bool(rms_last) and value / rms_last < th.warning_ratio
        slow = upd is not None and (
            upd < th.stalled_update_ratio
            or (upd_last is not None and upd < th.stalled_relative_update * upd_last)
        )
        if small or slow:
            out.append(name)
    return tuple(out) if out else (names[0],)
