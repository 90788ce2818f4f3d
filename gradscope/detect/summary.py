"""Derived numbers that several views show, each defined once, below the detectors and renderers.

:class:`RunSummary` holds them for one run, computed once (as coverage.py's ``Numbers`` are for a
file) and read by every reporter: the terminal summary, the HTML report, the TensorBoard dashboard
and ``gradscope audit --json``. Renderers format these numbers; they never compute them.

The first/last gradient ratio is the chapter's "vanishing" number. Every place that shows it (the
vanishing and exploding findings, the demo headline, ``gradscope audit``, the fix trials, the
terminal summary, JSON, the HTML report's summary and the dashboard's run header) takes it
from :func:`gradient_ratio` and writes it with :func:`format_grad_ratio`, under the JSON key
:data:`GRAD_RATIO_KEY`. Its definition:

* **layers**: the first and the last *weight layer* (trainable, watched, with a kernel;
  :func:`gradscope.detect.window.weight_layers`), in forward order, **Embedding layers skipped**
  (:func:`gradscope.detect.window.gradient_flow_layers`): a lookup table's gradient reaches only
  the rows of the batch's tokens, so its per-weight RMS is tiny even when it learns well and
  would make every text model look vanishing (:func:`gradscope.detect.window.sparse_gradient`);
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from gradscope.config import DETECT_THRESHOLDS, WindowThresholds
from gradscope.data.schema import StepRecord
from gradscope.data.store import Run
from gradscope.detect.window import (
    enough_records,
    gradient_flow_layers,
    gradient_rms,
    last_window,
    usable_records,
)
from gradscope.findings import Finding, Severity, json_safe, kind_title

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
        The :class:`GradientRatio`, or None with fewer than two weight layers (Embedding layers
        not counted), too few finite records (``window.enough_records``: a run NaN cut short
        counts the ones before it), or no finite positive gradient at the last layer.

    Example:
        >>> gradient_ratio(load_run("runs/mlp")).value  # doctest: +SKIP
        0.42
    """
    usable = usable_records(run.records)
    records = last_window(usable, window)
    layers = gradient_flow_layers(run)  # Embedding layers skipped (module docstring)
    if not enough_records(run.records, usable, window, cut_short=True) or len(layers) < 2:
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


#: Per-layer statistics summarised as window medians: the columns of every view's layer table.
SUMMARY_STATS: tuple[str, ...] = (
    "grad_norm",
    "update_ratio",
    "dead_frac",
    "sat_frac",
    "act_mean",
    "act_std",
)


def verdict(findings: Sequence[Finding], n_records: int) -> tuple[str, str]:
    """The one-line verdict on a run and its level, from its findings.

    Args:
        findings: the run's findings.
        n_records: recorded steps (a run without any cannot be judged).

    Returns:
        ``(text, level)``, level one of ``"error"``, ``"warning"``, ``"info"``, ``"ok"``.

    Example:
        >>> verdict([], 10)
        ('No problems found.', 'ok')
    """
    for severity, word in ((Severity.ERROR, "Problems"), (Severity.WARNING, "Warnings")):
        hits = [f for f in findings if f.severity == severity]
        if hits:
            kinds = list(dict.fromkeys(kind_title(f.kind).lower() for f in hits))
            return f"{word}: {', '.join(kinds)}.", str(severity)
    if n_records == 0:
        return "No training steps recorded: nothing to judge yet.", "info"
    if findings:
        return "Notes only, no problems found.", "info"
    return "No problems found.", "ok"


def window_medians(
    records: Sequence[StepRecord], layers: Iterable[str], stats: Sequence[str] = SUMMARY_STATS
) -> dict[str, dict[str, float]]:
    """Median of each layer statistic over some records, finite values only, in one pass.

    Args:
        records: the window's records.
        layers: the layers to summarise, in the order to keep.
        stats: statistic names.

    Returns:
        stat -> layer -> median; a layer without any finite value of a statistic is left out.

    Example:
        >>> record = StepRecord(0, 0, 1.0, 0.1, {"d": {"dead_frac": 0.5, "sat_frac": math.nan}})
        >>> window_medians([record], ["d"], ("dead_frac", "sat_frac"))
        {'dead_frac': {'d': 0.5}, 'sat_frac': {}}
    """
    names = list(layers)
    values: dict[str, dict[str, list[float]]] = {s: {n: [] for n in names} for s in stats}
    for record in records:
        for name in names:
            recorded = record.layers.get(name)
            if not recorded:
                continue
            for stat in stats:
                value = recorded.get(stat)
                if value is not None and math.isfinite(value):
                    values[stat][name].append(value)
    return {
        stat: {n: float(np.median(v)) for n, v in column.items() if v}
        for stat, column in values.items()
    }


def final_loss(run: Run) -> float | None:
    """The last finite recorded batch loss, or None.

    Args:
        run: a loaded run.

    Returns:
        The loss of the last record that has a finite one.

    Example:
        >>> final_loss(load_run("runs/mlp"))  # doctest: +SKIP
        0.0412
    """
    for record in reversed(run.records):
        if record.loss is not None and math.isfinite(record.loss):
            return record.loss
    return None


@dataclass(frozen=True)
class RunSummary:
    """The derived numbers of one run that every view shows, computed once.

    The per-layer medians cover the last ``window_fraction`` of all recorded steps (finite
    values only): the detectors' window, except that a run which went NaN keeps its last steps
    here, where their medians show as missing. The first/last gradient ratio is
    :func:`gradient_ratio` (the detectors' window exactly).

    Attributes:
        n_records: recorded steps.
        first_step: first recorded step, or None.
        last_step: last recorded step, or None.
        window_fraction: fraction of the records the medians cover.
        window_steps: first and last step of that window, or None without records.
        medians: stat (:data:`SUMMARY_STATS`) -> layer -> window median, layers in forward order.
        grad_ratio: the first/last gradient ratio, or None when it cannot be measured.
        final_loss: last finite batch loss, or None.
        counts: severity name -> number of findings, most severe first.
        verdict: the one-line verdict (:func:`verdict`).
        verdict_level: ``"error"``, ``"warning"``, ``"info"`` or ``"ok"``.

    Example:
        >>> summary = RunSummary.of(run, findings)  # doctest: +SKIP
        >>> summary.verdict, summary.median("hidden_1", "dead_frac")  # doctest: +SKIP
        ('Problems: vanishing gradients.', 0.0)
    """

    n_records: int
    first_step: int | None
    last_step: int | None
    window_fraction: float
    window_steps: tuple[int, int] | None
    medians: Mapping[str, Mapping[str, float]] = field(hash=False)
    grad_ratio: GradientRatio | None
    final_loss: float | None
    counts: Mapping[str, int] = field(hash=False)
    verdict: str
    verdict_level: str

    @classmethod
    def of(
        cls,
        run: Run,
        findings: Sequence[Finding] = (),
        window: WindowThresholds = DETECT_THRESHOLDS.window,
    ) -> RunSummary:
        """Computes a run's summary.

        Args:
            run: a loaded run.
            findings: the run's findings (they decide the verdict and counts).
            window: window thresholds (the detectors' by default).

        Returns:
            The :class:`RunSummary`.

        Example:
            >>> RunSummary.of(load_run("runs/mlp")).n_records  # doctest: +SKIP
            35
        """
        records = run.records
        # Any number of records gets a table: at least one record, not the detectors' minimum.
        cut = last_window(records, replace(window, min_records=1))
        medians = window_medians(cut, run.layer_names)
        text, level = verdict(findings, len(records))
        return cls(
            n_records=len(records),
            first_step=records[0].step if records else None,
            last_step=records[-1].step if records else None,
            window_fraction=window.fraction,
            window_steps=(cut[0].step, cut[-1].step) if cut else None,
            medians=MappingProxyType({s: MappingProxyType(m) for s, m in medians.items()}),
            grad_ratio=gradient_ratio(run, window),
            final_loss=final_loss(run),
            counts=MappingProxyType(
                {str(s): sum(f.severity == s for f in findings) for s in reversed(Severity)}
            ),
            verdict=text,
            verdict_level=level,
        )

    def median(self, layer: str, stat: str) -> float | None:
        """A layer's window median of one statistic.

        Args:
            layer: layer name.
            stat: one of :data:`SUMMARY_STATS`.

        Returns:
            The median, or None when the layer has no finite value of it in the window.
        """
        return self.medians[stat].get(layer)

    def to_json(self) -> dict[str, Any]:
        """Returns the summary as strict-JSON-safe data, under the keys every view uses.

        Returns:
            The first/last ratio's fields (:meth:`GradientRatio.to_json`; only
            ``first_last_grad_ratio: null`` when not measurable), then ``verdict``,
            ``verdict_level``, ``counts``, ``n_records``, ``final_loss`` and
            ``window_medians`` (``{"fraction", "steps", "layers": {layer: {stat: median}}}``).

        Example:
            >>> RunSummary.of(run).to_json()["first_last_grad_ratio_text"]  # doctest: +SKIP
            '6.2e-07 (6.2 orders of magnitude)'
        """
        ratio = {GRAD_RATIO_KEY: None} if self.grad_ratio is None else self.grad_ratio.to_json()
        layers: dict[str, dict[str, float]] = {}
        for stat, per_layer in self.medians.items():
            for name, value in per_layer.items():
                layers.setdefault(name, {})[stat] = value
        return json_safe(
            {
                **ratio,
                "verdict": self.verdict,
                "verdict_level": self.verdict_level,
                "counts": dict(self.counts),
                "n_records": self.n_records,
                "final_loss": self.final_loss,
                "window_medians": {
                    "fraction": self.window_fraction,
                    "steps": self.window_steps,
                    "layers": layers,
                },
            }
        )
