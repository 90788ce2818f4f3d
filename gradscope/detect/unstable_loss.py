"""Unstable loss: the loss does not decrease while each step moves the weights far too much.

AutoTrainer's (ICSE 2021) oscillating loss, judged like the other run detectors on medians over
windows, never on one batch. It needs all of:

* large steps: the median over the weight layers of each layer's median update ratio
  ‖ΔW‖/‖W‖ is at least ``unstable_loss.high_update_ratio`` (10× CS231n's healthy ≈ 1e-3);
* a loss that does not decrease: the last window's median loss is less than
  ``unstable_loss.max_loss_drop`` below the first window's (it oscillates around where it
  started, or rises). Minibatch noise makes single losses jump; medians of many batches do not.
  Or it ended above where it started: the last window's median at least ``max_loss_drop``
  above the first recorded loss, the model's before any of these steps. A first step too large
  throws the loss far up at once (an LSTM at Adam(1.0): 0.69, then 2.53), and the medians of the
  first and last windows then only show it falling back part of the way (1.48 to 1.14).
  Or a loss that oscillates from epoch to epoch, AutoTrainer's own test: an epoch's loss at
  least ``oscillation_rise`` above the previous one's in ``oscillation_share`` of the epochs
  (an LSTM at Adam(1.0): 1.05, 0.88, 0.92, 0.75, above the chance level ln 2 throughout);
* steps that add up: the weights' norm grew by ``unstable_loss.min_weight_growth`` between the
  first and last windows (median over the layers). Small batches, and noisy labels more so, make
  large steps too, but in every direction: they cancel and the norm stays where it was (measured:
  within 1 %, while the loss of a hard noisy task does not fall in a short run). Steps too
  large for the loss overshoot and accumulate: logits and pre-activations grow until units
  saturate or die;
* no model that performs: a logged training accuracy below ``progress.good_accuracy``, and
  the progress gate (a run that learns gets at most "info").

Overlap, decided here so a run gets one finding for one cause: a run that went NaN/Inf belongs
to ``nonfinite`` (which recommends a lower learning rate first), and one whose gradients blow up
to ``exploding_gradients`` (gradient norms above its bound, growing over steps or toward the
input); this detector then stays silent.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from gradscope.detect.base import Judgement, RunWindow, WindowDetector, window_detector
from gradscope.detect.exploding import Exploding
from gradscope.detect.step_size import (
    StepSizes,
    fitted,
    learning_rate,
    loss_decreased,
    loss_spread,
    rate_text,
    went_nonfinite,
)
from gradscope.findings import Severity

KIND = "unstable_loss"
#: Evidence key: the last window's median loss ended ``max_loss_drop`` above the first loss.
ABOVE_START_KEY = "loss_ended_above_start"


@window_detector(KIND)
class UnstableLoss(WindowDetector):
    """Finds a loss kept from decreasing by too large steps (thresholds: ``unstable_loss``).

    Example:
        >>> UnstableLoss()(load_run("runs/sgd_lr_100x"), DETECT_THRESHOLDS)  # doctest: +SKIP
        [Finding(code='GS106', kind='unstable_loss', ...)]
    """

    def settle(
        self, window: RunWindow, judged: Judgement
    ) -> tuple[Severity, str, Mapping[str, Any]]:
        """The progress gate, except for a loss that ended above where it started.

        After a first step that threw the loss far up, the loss falls back and the run's trend
        says "learning"; it learned nothing the run started with.

        Args:
            window: the run's window.
            judged: what :meth:`judge` concluded.

        Returns:
            ``(severity, message, extra evidence)``.
        """
        if judged.evidence.get(ABOVE_START_KEY):
            return judged.severity, judged.message, {}
        return super().settle(window, judged)

    def judge(self, window: RunWindow) -> Judgement | None:
        """Judges the update ratios and the loss of the window.

        Args:
            window: the run's window.

        Returns:
            The judgement, or None when the steps are not large, the loss decreases, the model
            performs, or another detector owns the run (NaN/Inf, exploding gradients).
        """
        th = window.thresholds.unstable_loss
        if went_nonfinite(window) or fitted(window):
            return None
        rises, epochs = _epoch_rises(window, th.oscillation_rise)
        oscillates = epochs >= 3 and rises >= max(1.0, th.oscillation_share * epochs)
        decreased = loss_decreased(window, th.max_loss_drop)
        first = _first_loss(window)
        progress = window.progress
        above_start = (
            first is not None
            and progress.loss_end is not None
            and progress.loss_end >= first * (1 + th.max_loss_drop)
        )
        if decreased is None or (decreased and not oscillates and not above_start):
            return None
        steps = StepSizes.of(window)
        if steps is None or steps.median < th.high_update_ratio:
            return None
        growth = steps.weight_growth
        if growth is None or growth < th.min_weight_growth:
            return None
        if Exploding().judge(window) is not None:
            return None
        spread = loss_spread(window.last)
        rate = learning_rate(window.last)
        large = [n for n, v in steps.by_layer.items() if v >= th.high_update_ratio]
        swing = "" if spread is None else f", batches differing by {spread:.0%} (IQR/median)"
        if not decreased:
            how = "does not decrease"
        elif oscillates:
            how = f"rose in {rises} of {epochs} epochs"
        else:
            how = f"ended above its first value, {first:.3g},"
        message = (
            f"Unstable loss: the loss {how} (median {progress.loss_start:.3g} at the "
            f"start, {progress.loss_end:.3g} at the end{swing}) while each step changes the "
            f"weights by {steps.median:.1e} of their norm (median over layers; CS231n: about "
            f"1e-3 is healthy) and the steps add up (the weights' norm grew {growth:.1f}x), so "
            f"the learning rate{rate_text(rate)} is likely too high."
        )
        evidence = {
            **steps.to_evidence(),
            "loss_spread": spread,
            "epoch_loss_rises": rises,
            "loss_first": first,
            ABOVE_START_KEY: above_start,
            "learning_rate": rate,
        }
        severity = Severity.ERROR if steps.median >= th.error_update_ratio else Severity.WARNING
        return Judgement(severity, tuple(large), message, evidence)


def _epoch_rises(window: RunWindow, rise: float) -> tuple[int, int]:
    # (epochs whose loss rose by ``rise`` over the previous epoch's, epochs with a finite loss)
    losses = [e.logs.get("loss") for e in window.run.epochs]
    finite = [v for v in losses if v is not None and math.isfinite(v)]
    rises = sum(1 for a, b in itertools.pairwise(finite) if a > 0 and b >= a * (1.0 + rise))
    return rises, len(finite)


def _first_loss(window: RunWindow) -> float | None:
    # The loss of the first usable record: the model's before the run's steps moved it.
    loss = window.records[0].loss if window.records else None
    return loss if loss is not None and math.isfinite(loss) and loss > 0 else None
