"""Dying ReLU: ReLU layers where most units output 0 for every example, over a window.

``dead_frac`` (recorded per batch) is the fraction of units off for the whole batch; a unit off in
one batch may be alive in the next, so the detector takes the median over the last window.
"""

from __future__ import annotations

from gradscope.config import DetectThresholds
from gradscope.data.store import Run
from gradscope.detect.base import register
from gradscope.detect.progress import assess_progress, gate
from gradscope.detect.window import last_window, median_stat, sample_series, usable_records
from gradscope.findings import Finding, Severity, make_finding

KIND = "dying_relu"


@register(KIND)
def detect_dying_relu(run: Run, thresholds: DetectThresholds) -> list[Finding]:
    """Finds ReLU layers with a large fraction of dead units.

    Only hard-zero ReLUs (activation kind ``"relu"``) are judged: leaky variants keep a gradient.

    Args:
        run: a loaded run.
        thresholds: detector thresholds (uses ``dying_relu``, ``window``, ``progress``).

    Returns:
        Zero or one finding listing the affected layers.

    Example:
        >>> detect_dying_relu(load_run("runs/neg_bias"), DETECT_THRESHOLDS)  # doctest: +SKIP
        [Finding(code='GS103', kind='dying_relu', ...)]
    """
    th = thresholds.dying_relu
    window = last_window(usable_records(run.records), thresholds.window)
    if len(window) < thresholds.window.min_records:
        return []
    dead: dict[str, float] = {}
    for info in run.layers:
        if info.activation_kind != "relu":
            continue
        value = median_stat(window, info.name, "dead_frac")
        if value is not None and value >= th.warning_fraction:
            dead[info.name] = value
    if not dead:
        return []
    worst = max(dead.values())
    severity = Severity.ERROR if worst >= th.error_fraction else Severity.WARNING
    progress = assess_progress(run, thresholds.progress, thresholds.window)
    severity = gate(severity, progress)
    parts = ", ".join(f"'{n}' {v:.0%}" for n, v in dead.items())
    message = (
        f"Dying ReLU: most units never activate ({parts} of units output 0 for every example "
        "of a batch), so they pass no gradient and stop learning."
        + (" The model still learns, so this is informational." if progress.learning else "")
    )
    evidence = {
        "dead_frac": dead,
        "max_dead_frac": worst,
        "series": {n: sample_series(run.records, n, "dead_frac") for n in dead},
        "window_records": len(window),
        "progress": progress.to_evidence(),
    }
    return [make_finding(KIND, severity, tuple(dead), message, evidence)]
