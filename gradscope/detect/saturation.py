"""Saturation: hidden sigmoid/tanh layers with most outputs in the flat tails, over a window.

The output layer is never judged: a confident softmax or sigmoid prediction is the goal of
training, not a symptom.
"""

from __future__ import annotations

from gradscope.config import DetectThresholds
from gradscope.data.store import Run
from gradscope.detect.base import register
from gradscope.detect.progress import assess_progress, gate
from gradscope.detect.window import last_window, median_stat, sample_series, usable_records
from gradscope.findings import Finding, Severity, make_finding

KIND = "saturation"
_SATURATING = ("sigmoid", "tanh")


@register(KIND)
def detect_saturation(run: Run, thresholds: DetectThresholds) -> list[Finding]:
    """Finds saturated sigmoid/tanh hidden layers.

    Args:
        run: a loaded run.
        thresholds: detector thresholds (uses ``saturation``, ``window``, ``progress``).

    Returns:
        Zero or one finding listing the saturated layers.

    Example:
        >>> detect_saturation(load_run("runs/deep_sigmoid"), DETECT_THRESHOLDS)  # doctest: +SKIP
        [Finding(code='GS104', kind='saturation', ...)]
    """
    th = thresholds.saturation
    window = last_window(usable_records(run.records), thresholds.window)
    if len(window) < thresholds.window.min_records or not run.layers:
        return []
    output = run.layers[-1].name
    saturated: dict[str, float] = {}
    for info in run.layers:
        if info.activation_kind not in _SATURATING or info.name == output:
            continue
        value = median_stat(window, info.name, "sat_frac")
        if value is not None and value >= th.warning_fraction:
            saturated[info.name] = value
    if not saturated:
        return []
    worst = max(saturated.values())
    severity = Severity.ERROR if worst >= th.error_fraction else Severity.WARNING
    progress = assess_progress(run, thresholds.progress, thresholds.window)
    severity = gate(severity, progress)
    message = (
        f"Saturation: in {len(saturated)} sigmoid/tanh layer(s) up to {worst:.0%} of outputs sit "
        "in the flat tails, where the gradient is nearly zero, so these layers barely learn."
        + (" The model still learns, so this is informational." if progress.learning else "")
    )
    evidence = {
        "sat_frac": saturated,
        "max_sat_frac": worst,
        "act_mean": {n: median_stat(window, n, "act_mean") for n in saturated},
        "act_std": {n: median_stat(window, n, "act_std") for n in saturated},
        "series": {n: sample_series(run.records, n, "sat_frac") for n in saturated},
        "window_records": len(window),
        "progress": progress.to_evidence(),
    }
    return [make_finding(KIND, severity, tuple(saturated), message, evidence)]
