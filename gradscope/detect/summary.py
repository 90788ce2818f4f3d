"""Derived numbers that several views show, each defined once, below the detectors and renderers.

The first/last gradient ratio is the chapter's "vanishing" number. Every place that shows it (the
vanishing and exploding findings, the demo headline, ``gradscope audit``, the fix trials, the
terminal summary, JSON, the HTML report and dashboard through the findings' evidence) takes it
from :func:`gradient_ratio` and writes it with :func:`format_grad_ratio`, under the JSON key
:data:`GRAD_RATIO_KEY`. Its definition:

* **layers**: the first and the last *weight layer* (trainable, watched, with a kernel;
  :func:`gradscope.detect.window.weight_layers`), in forward order;
* **statistic**: per-weight gradient RMS, ``grad_norm / sqrt(params)``, so layers of different
  sizes compare (the vanishing detector's choice, :func:`gradscope.detect.window.gradient_rms`);
* **window**: the median over the detectors' window, the last ``window.fraction`` of the records
  before any NaN/Inf (:func:`gradscope.detect.window.last_window` of
  :func:`gradscope.detect.window.usable_records`), at least ``window.min_records`` records.

Example:
    >>> ratio = gradient_ratio(load_run("reports/demo/before"))  # doctest: +SKIP
    >>> ratio.text  # doctest: +SKIP
    '6.2e-07 (6.2 orders of magnitude)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gradscope.config import DETECT_THRESHOLDS, WindowThresholds
from gradscope.data.store import Run
from gradscope.detect.window import gradient_rms, last_window, usable_records, weight_layers

#: The JSON key of the ratio's value, the same in evidence, trial summaries and documents.
GRAD_RATIO_KEY = "first_last_grad_ratio"
#: The JSON key of its formatted text (:func:`format_grad_ratio`).
GRAD_RATIO_TEXT_KEY = "first_last_grad_ratio_text"
#: What the ratio divides, for evidence and captions.
GRAD_RATIO_STATISTIC = "per-weight gradient RMS (grad_norm / sqrt(params)), window median"


def format_grad_ratio(value: float | None) -> str:
    """Formats a first/last gradient ratio the one way every view writes it.

    The number is given as is (its sign of the exponent says which end is smaller) with its
    distance from 1 in orders of magnitude, the unit the chapter reasons in.

    Args:
        value: the ratio, or None when it could not be measured.

    Returns:
        e.g. ``"6.2e-07 (6.2 orders of magnitude)"``; ``"0 (no gradient reaches the first
        layer)"`` for 0; ``"–"`` for None or NaN.

    Example:
        >>> format_grad_ratio(6.2e-07)
        '6.2e-07 (6.2 orders of magnitude)'
        >>> format_grad_ratio(2.0)
        '2.0e+00 (0.3 orders of magnitude)'
    """
    if value is None or math.isnan(value):
        return "–"  # render.fmt.MISSING; render sits above detect, so it is not imported here
    if value == 0:
        return "0 (no gradient reaches the first layer)"
    if math.isinf(value):
        return "inf"
    return f"{value:.1e} ({abs(math.log10(abs(value))):.1f} orders of magnitude)"


@dataclass(frozen=True)
class GradientRatio:
    """The first/last gradient ratio of a run and what it covers.

    Attributes:
        value: first layer's per-weight gradient RMS over the last layer's.
        first_layer: the first weight layer's name.
        last_layer: the last weight layer's name.
        first_rms: the first layer's median gradient RMS over the window.
        last_rms: the last layer's.
        window_steps: first and last step of the window.
        window_records: records in the window.
    """

    value: float
    first_layer: str
    last_layer: str
    first_rms: float
    last_rms: float
    window_steps: tuple[int, int]
    window_records: int

    @property
    def orders(self) -> float:
        """Distance of the ratio from 1 in orders of magnitude (inf when it is 0)."""
        return math.inf if self.value <= 0 else abs(math.log10(self.value))

    @property
    def text(self) -> str:
        """The ratio as :func:`format_grad_ratio` writes it."""
        return format_grad_ratio(self.value)

    def to_json(self) -> dict[str, Any]:
        """Returns the ratio as evidence / JSON fields.

        Returns:
            ``{GRAD_RATIO_KEY, GRAD_RATIO_TEXT_KEY, "orders_of_magnitude", "first_layer",
            "last_layer", "grad_ratio_statistic", "window_steps", "window_records"}``.

        Example:
            >>> gradient_ratio(run).to_json()["first_last_grad_ratio"]  # doctest: +SKIP
            6.2e-07
        """
        return {
            GRAD_RATIO_KEY: self.value,
            GRAD_RATIO_TEXT_KEY: self.text,
            # Strict JSON has no inf: a zero ratio (no gradient at all) has no finite distance.
            "orders_of_magnitude": self.orders if math.isfinite(self.orders) else None,
            "first_layer": self.first_layer,
            "last_layer": self.last_layer,
            "grad_ratio_statistic": GRAD_RATIO_STATISTIC,
            "window_steps": list(self.window_steps),
            "window_records": self.window_records,
        }


def gradient_ratio(
    run: Run, window: WindowThresholds = DETECT_THRESHOLDS.window
) -> GradientRatio | None:
    """Measures the first/last gradient ratio of a run (see the module docstring).

    Args:
        run: a loaded run.
        window: the window thresholds (the detectors' by default).

    Returns:
        The :class:`GradientRatio`, or None with fewer than two weight layers, fewer than
        ``window.min_records`` finite records, or no finite positive gradient at the last layer.

    Example:
        >>> gradient_ratio(load_run("runs/mlp")).value  # doctest: +SKIP
        0.42
    """
    records = last_window(usable_records(run.records), window)
    layers = weight_layers(run)
    if len(records) < window.min_records or len(layers) < 2:
        return None
    first, last = layers[0], layers[-1]
    rms_first, rms_last = gradient_rms(records, first), gradient_rms(records, last)
    if rms_first is None or rms_last is None or rms_last <= 0:
        return None
    return GradientRatio(
        value=rms_first / rms_last,
        first_layer=first.name,
        last_layer=last.name,
        first_rms=rms_first,
        last_rms=rms_last,
        window_steps=(records[0].step, records[-1].step),
        window_records=len(records),
    )
