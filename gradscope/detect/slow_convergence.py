"""Slow convergence: every layer's steps are far too small and the loss stays flat.

AutoTrainer's (ICSE 2021) slow convergence, judged on medians over windows. It needs all of:

* small steps: the median over the weight layers of each layer's median update ratio
  ‖ΔW‖/‖W‖ is below ``slow_convergence.low_update_ratio`` (half a decade under CS231n's
  healthy ≈ 1e-3; an error under DeepDiagnosis's floor 1e-5), and no layer reaches
  ``slow_convergence.max_layer_update_ratio`` (CS231n's 1e-3): one rate moves all layers;
* a flat loss: the last window's median loss is less than ``slow_convergence.max_loss_drop``
  below the first window's;
* a model that has not converged. Small steps and a flat loss are also what a minimum looks like
  (a trained model fine-tuned at Keras's 1e-5, a run continued after convergence), so the
  detector asks two things: a logged training accuracy below ``progress.good_accuracy``, and a
  gradient that is not small, ‖∇W‖/‖W‖ at least ``slow_convergence.min_relative_gradient``
  (median over the layers): at a minimum only minibatch noise is left of the gradient, far from
  one the steps are small *despite* a large gradient, which is the rate's fault;
* the progress gate: a run that learns gets at most "info".

Overlap: when the vanishing detector fires (the gradient does not reach the early layers, or
they stall under a training output layer), the small steps are its finding, not this one's.

Frozen layers (``trainable=False``) are not judged, so fine-tuning a head on a frozen backbone is
judged on the head alone.
"""

from __future__ import annotations

from gradscope.detect.base import Judgement, RunWindow, WindowDetector, window_detector
from gradscope.detect.step_size import (
    StepSizes,
    fitted,
    learning_rate,
    loss_decreased,
    rate_text,
    went_nonfinite,
)
from gradscope.detect.vanishing import Vanishing
from gradscope.findings import Severity

KIND = "slow_convergence"


@window_detector(KIND)
class SlowConvergence(WindowDetector):
    """Finds a flat loss under steps far too small (thresholds: ``slow_convergence``).

    Example:
        >>> SlowConvergence()(load_run("runs/sgd_lr_1e-6"), DETECT_THRESHOLDS)  # doctest: +SKIP
        [Finding(code='GS107', kind='slow_convergence', ...)]
    """

    def judge(self, window: RunWindow) -> Judgement | None:
        """Judges the update ratios of every weight layer and the loss of the window.

        Args:
            window: the run's window.

        Returns:
            The judgement, or None when some layer's steps are large enough, the loss falls,
            the model performs, or the run went NaN/Inf.
        """
        th = window.thresholds.slow_convergence
        if went_nonfinite(window) or fitted(window):
            return None
        if loss_decreased(window, th.max_loss_drop) is not False:
            return None
        steps = StepSizes.of(window)
        if steps is None or steps.median >= th.low_update_ratio:
            return None
        if steps.largest >= th.max_layer_update_ratio:
            return None
        gradient = steps.relative_gradient
        if gradient is None or gradient < th.min_relative_gradient:
            return None
        # Steps that stall below a training layer are the gradient's fault, not the rate's.
        if Vanishing().judge(window) is not None:
            return None
        progress = window.progress
        rate = learning_rate(window.last)
        message = (
            f"Slow convergence: each step changes the weights by {steps.median:.1e} of their "
            f"norm (median over {len(steps.by_layer)} layer(s), at most {steps.largest:.1e}; "
            f"CS231n: about 1e-3 is healthy) although the gradient is {gradient:.1e} of the "
            f"weights, and the loss stays flat (median {progress.loss_start:.3g} at the start, "
            f"{progress.loss_end:.3g} at the end), so the learning rate{rate_text(rate)} is "
            "likely far too low."
        )
        evidence = {**steps.to_evidence(), "learning_rate": rate}
        severity = Severity.ERROR if steps.median < th.error_update_ratio else Severity.WARNING
        return Judgement(severity, tuple(steps.by_layer), message, evidence)
