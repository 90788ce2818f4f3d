"""Static rules on the stack's shape: deep saturating stacks, recurrent nets without clipping."""

from __future__ import annotations

from gradscope.config import StaticThresholds
from gradscope.detect.static.registry import hidden_kernel_layers, rule_finding, static_rule
from gradscope.findings import Finding, Severity
from gradscope.model.spec import LayerSpec, ModelSpec
from gradscope.model.taxonomy import SATURATING


@static_rule("deep_saturating_stack")
def deep_saturating_stack(spec: ModelSpec, thresholds: StaticThresholds) -> list[Finding]:
    """Many consecutive hidden sigmoid/tanh layers with no normalization between them.

    Args:
        spec: the model description.
        thresholds: uses ``saturating_stack_depth``.

    Returns:
        Zero or one warning naming the longest such stack.

    Example:
        >>> deep_saturating_stack(spec, StaticThresholds())  # doctest: +SKIP
    """
    best: list[LayerSpec] = []
    current: list[LayerSpec] = []
    for layer in hidden_kernel_layers(spec):
        if layer.effective_activation in SATURATING:
            current.append(layer)
            if len(current) > len(best):
                best = list(current)
            if layer.normalized_after:
                current = []  # normalization re-centres the next layer's inputs
        else:
            current = []
    if len(best) < thresholds.saturating_stack_depth:
        return []
    acts = sorted({x.effective_activation or "" for x in best})
    return [
        rule_finding(
            "deep_saturating_stack",
            Severity.WARNING,
            best,
            f"{len(best)} consecutive {'/'.join(acts)} layers without normalization: the "
            "gradient is multiplied by at most 0.25 (sigmoid) or 1 (tanh) per layer and units "
            "drift into the flat tails, so early layers learn slowly.",
            {
                "depth": len(best),
                "activations": acts,
                "min_depth": thresholds.saturating_stack_depth,
            },
        )
    ]


@static_rule("missing_clipping")
def missing_clipping(spec: ModelSpec, thresholds: StaticThresholds) -> list[Finding]:
    """Recurrent layers trained without gradient clipping (Pascanu et al. 2013; Géron ch. 11).

    Args:
        spec: the model description.
        thresholds: static thresholds (unused).

    Returns:
        Zero or one finding: a warning if the optimizer is known and does not clip, info if the
        model was saved without a compiled optimizer.

    Example:
        >>> missing_clipping(spec, StaticThresholds())  # doctest: +SKIP
    """
    recurrent = [x for x in spec.layers if x.recurrent]
    if not recurrent or (spec.optimizer is not None and spec.optimizer.clips):
        return []
    known = spec.optimizer is not None
    message = (
        f"Recurrent layers ({', '.join(x.name for x in recurrent)}) and "
        + (f"the {spec.optimizer.class_name} optimizer has " if spec.optimizer else "")
        + "no clipnorm/clipvalue/global_clipnorm: gradients through time can explode. "
        "Compile with e.g. clipnorm=1.0."
    )
    if not known:
        message = message.replace(" and no clipnorm", ": no compiled optimizer, so no clipnorm")
    return [
        rule_finding(
            "missing_clipping",
            Severity.WARNING if known else Severity.INFO,
            recurrent,
            message,
            {"optimizer": spec.optimizer.class_name if spec.optimizer else None},
        )
    ]
