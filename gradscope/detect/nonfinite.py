"""NaN/Inf in the loss, gradients or weights: where and when it first showed.

Always an error and never gated on progress: one record with NaN is proof, not noise.
"""

from __future__ import annotations

import math

from gradscope.config import DetectThresholds
from gradscope.data.schema import StepRecord
from gradscope.data.store import Run
from gradscope.detect.base import register
from gradscope.findings import Finding, Severity, make_finding

KIND = "nonfinite"


def _bad(value: float | None) -> bool:
    return value is not None and not math.isfinite(value)


def _sources(record: StepRecord, order: list[str]) -> tuple[list[str], list[str]]:
    """Returns (sources, layers) of non-finite values in one record, layers in forward order."""
    sources: list[str] = []
    layers: list[str] = []
    if _bad(record.loss):
        sources.append("loss")
    for name in order:
        stats = record.layers.get(name)
        if not stats:
            continue
        grads = stats.get("nonfinite", 0.0) > 0 or any(
            _bad(stats.get(s)) for s in ("grad_norm", "grad_max_abs")
        )
        weights = _bad(stats.get("weight_norm"))
        if grads and "gradients" not in sources:
            sources.append("gradients")
        if weights and "weights" not in sources:
            sources.append("weights")
        if grads or weights:
            layers.append(name)
    return sources, layers


@register(KIND)
def detect_nonfinite(run: Run, thresholds: DetectThresholds) -> list[Finding]:
    """Finds NaN/Inf values in the loss, gradients or weights.

    Args:
        run: a loaded run.
        thresholds: detector thresholds (uses ``nonfinite``).

    Returns:
        Zero or one error finding with the first step and first layer affected.

    Example:
        >>> detect_nonfinite(load_run("runs/nan"), DETECT_THRESHOLDS)[0].evidence["first_step"]
        ... # doctest: +SKIP
        12
    """
    order = run.layer_names + sorted(
        {n for r in run.records for n in r.layers} - set(run.layer_names)
    )
    affected_steps: list[int] = []
    first: tuple[StepRecord, list[str], list[str]] | None = None
    for record in run.records:
        sources, layers = _sources(record, order)
        if sources:
            affected_steps.append(record.step)
            if first is None:
                first = (record, sources, layers)
    bad_epochs = [e.epoch for e in run.epochs if _bad(e.logs.get("loss"))]
    if first is None and not bad_epochs:
        return []
    evidence: dict[str, object] = {
        "affected_records": len(affected_steps),
        "steps": affected_steps[: thresholds.nonfinite.max_steps_listed],
        "epochs_with_nonfinite_loss": bad_epochs,
    }
    if first is None:
        message = (
            f"Non-finite loss: the epoch loss became NaN/Inf (epoch {bad_epochs[0]}); "
            "training produced no usable updates from then on."
        )
        return [make_finding(KIND, Severity.ERROR, (), message, evidence)]
    record, sources, layers = first
    evidence.update(
        {
            "first_step": record.step,
            "first_epoch": record.epoch,
            "first_layer": layers[0] if layers else None,
            "layers_at_first_step": layers,
            "sources": sources,
            "loss_at_first_step": record.loss,
        }
    )
    where = f" first in layer '{layers[0]}'" if layers else ""
    message = (
        f"NaN/Inf values appeared in the {' and '.join(sources)} at step {record.step}{where}; "
        "from then on the weights are corrupted and training cannot recover."
    )
    return [make_finding(KIND, Severity.ERROR, tuple(layers), message, evidence)]
