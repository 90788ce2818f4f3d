"""What a saturated or dead layer costs the run: the policy of the saturation and dying detectors.

A layer with most units saturated (or dead) is a symptom that may cost nothing: a tanh layer with
its outputs at ±1 in a network whose gradients flow and whose loss falls trains fine, and warning
about it would teach users to ignore gradscope. It costs something when the run shows it:

* **starved**: the layer's own gradient (per-weight RMS, window median) is below
  ``starved_ratio`` times that of the next weight layer toward the output, the one the gradient
  reaches it from. A saturated or dead layer multiplies the gradient by about zero where it is
  saturated or dead, so its own kernel gradient, and everything below it, drops there; a
  standalone activation layer (``Dense(64), ReLU()``) is judged by the weight layer before it;
* **blocked**: the network's first/last gradient ratio (:func:`gradscope.detect.summary.
  gradient_ratio`, the one definition) is outside the healthy band (below the vanishing
  detector's ``warning_ratio`` or above the exploding detector's ``toward_input_ratio``);
* **not learning**: the loss does not fall (:class:`gradscope.detect.progress.Progress`:
  neither learning nor a significant falling trend).

Any of the three keeps the detector's own severity (warning or error); none of them makes the
finding ``info``, with a sentence saying what was measured.

Example:
    >>> cost = layer_cost(window, ("dense_3",))  # doctest: +SKIP
    >>> cost.costly, cost.starved  # doctest: +SKIP
    (False, {})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gradscope.data.schema import LayerInfo
from gradscope.detect.base import Judgement, RunWindow, WindowDetector
from gradscope.detect.summary import GradientRatio, gradient_ratio
from gradscope.detect.window import gradient_flow_layers, gradient_rms
from gradscope.findings import Severity


@dataclass(frozen=True)
class LayerCost:
    """What the flagged layers cost the run, as measured.

    Attributes:
        starved: flagged layer -> its gradient RMS over the next weight layer's, for the layers
            below ``starved_ratio`` (empty when none is).
        ratios: the same ratio for every flagged layer that has one.
        grad_ratio: the network's first/last gradient ratio, or None when not measurable.
        blocked: the first/last ratio is outside the healthy band.
        loss_falls: the run learns or its loss falls significantly.
    """

    starved: dict[str, float]
    ratios: dict[str, float]
    grad_ratio: GradientRatio | None
    blocked: bool
    loss_falls: bool

    @property
    def costly(self) -> bool:
        """True when any of starved, blocked or not learning holds."""
        return bool(self.starved) or self.blocked or not self.loss_falls

    def severity(self, judged: Severity) -> Severity:
        """The detector's severity when the layers cost something, else info.

        Args:
            judged: what the statistics alone call for.

        Returns:
            ``judged`` or ``Severity.INFO``.
        """
        return judged if self.costly else Severity.INFO

    @property
    def sentence(self) -> str:
        """What was measured, as one sentence appended to the finding's message."""
        flow = "" if self.grad_ratio is None else f", first/last ratio {self.grad_ratio.text}"
        if self.starved:
            parts = ", ".join(f"'{n}' {v:.1e}" for n, v in self.starved.items())
            return (
                f" Their gradient falls well below that of the layer after them ({parts} of "
                "it), so the layers below receive little."
            )
        if self.blocked and self.grad_ratio is not None:
            ratio = self.grad_ratio.text
            return f" The gradient does not flow through the network (first/last ratio {ratio})."
        if self.costly:
            return " The loss does not fall, so these layers barely learn."
        worst = min(self.ratios.values(), default=None)
        within = "" if worst is None else f" (at least {worst:.2g}x that of the layer after)"
        return (
            f" It costs nothing measurable here: their gradient flows{within}{flow} and the "
            "loss falls, so this is informational."
        )

    def to_evidence(self) -> dict[str, Any]:
        """Returns the measurements as JSON-safe evidence.

        Returns:
            ``{"costly", "starved", "grad_over_next_layer", "first_last_grad_ratio",
            "blocked", "loss_falls"}``.
        """
        return {
            "costly": self.costly,
            "starved": self.starved,
            "grad_over_next_layer": self.ratios,
            "first_last_grad_ratio": None if self.grad_ratio is None else self.grad_ratio.value,
            "blocked": self.blocked,
            "loss_falls": self.loss_falls,
        }


def _weight_layer_of(name: str, layers: Sequence[LayerInfo], flow: list[str]) -> str | None:
    # The flagged layer itself when it has weights, else the weight layer before it (the Dense
    # of a Dense + ReLU pair).
    before = None
    for info in layers:
        if info.name in flow:
            before = info.name
        if info.name == name:
            return before
    return None


def layer_cost(window: RunWindow, flagged: Sequence[str]) -> LayerCost:
    """Measures what saturated or dead layers cost a run (see the module docstring).

    Args:
        window: the run's window.
        flagged: the layers the detector flagged, in forward order.

    Returns:
        The :class:`LayerCost`.

    Example:
        >>> layer_cost(window, ("dense_2",)).severity(Severity.WARNING)  # doctest: +SKIP
        <Severity.INFO: 0>
    """
    th = window.thresholds
    flow = gradient_flow_layers(window.run)
    names = [x.name for x in flow]
    rms = {x.name: gradient_rms(window.last, x) for x in flow}
    ratios: dict[str, float] = {}
    for name in flagged:
        own = _weight_layer_of(name, window.run.layers, names)
        if own is None or names.index(own) + 1 >= len(names):
            continue
        mine, nxt = rms[own], rms[names[names.index(own) + 1]]
        if mine is not None and nxt:
            ratios[name] = mine / nxt
    starved = {n: v for n, v in ratios.items() if v < th.vanishing.starved_ratio}
    measured = gradient_ratio(window.run, th.window)
    blocked = measured is not None and not (
        th.vanishing.warning_ratio <= measured.value <= th.exploding.toward_input_ratio
    )
    progress = window.progress
    return LayerCost(starved, ratios, measured, blocked, progress.learning or progress.loss_falling)


class CostedDetector(WindowDetector):
    """A window detector whose symptom may cost nothing: warning or error only when it does.

    Saturated or dead units in a net whose gradients flow and whose loss falls are harmless, so
    subclasses (saturation, dying ReLU) settle their severity by :func:`layer_cost` instead of
    the progress gate alone.

    Example:
        >>> @window_detector("saturation")  # doctest: +SKIP
        ... class Saturation(CostedDetector): ...
    """

    def settle(
        self, window: RunWindow, judged: Judgement
    ) -> tuple[Severity, str, Mapping[str, Any]]:
        """Warning or error only when the layers cost the run something, else info.

        Args:
            window: the run's window.
            judged: what :meth:`judge` concluded.

        Returns:
            ``(severity, message, {"cost": ...})`` (:func:`gradscope.detect.cost.layer_cost`).
        """
        cost = layer_cost(window, judged.layers)
        return (
            cost.severity(judged.severity),
            judged.message + cost.sentence,
            {"cost": cost.to_evidence()},
        )
