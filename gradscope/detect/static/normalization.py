"""Static rule: per-example normalization over a single element.

LayerNormalization computes ``(x - mean(x)) / std(x)`` over its axes. Over an axis of size 1 the
mean is ``x`` itself, so the normalized value is exactly 0 and the layer outputs its offset beta
whatever its input: every gradient before it is exactly zero, and the layers after it never see
the input. The keras-io time-series transformer does this (its input has one feature and the
block normalizes over the last axis), and does not learn. GroupNormalization with one channel per
group and no other axis does the same; RMS and unit normalization, which only divide, output the
input's sign. Generic vanishing-gradient fixes (He init, ReLU, BatchNormalization) do not help;
normalizing over more than one element does.
"""

from __future__ import annotations

from gradscope.config import StaticThresholds
from gradscope.detect.static.registry import rule_finding, static_rule
from gradscope.findings import Finding, Severity
from gradscope.model.spec import LayerSpec, ModelSpec
from gradscope.model.taxonomy import CENTERING_NORMALIZATION


@static_rule("degenerate_normalization")
def degenerate_normalization(spec: ModelSpec, thresholds: StaticThresholds) -> list[Finding]:
    """Per-example normalization layers whose statistic covers a single element.

    Reads :attr:`gradscope.model.spec.LayerSpec.normalized_size`, known when the stored config
    records the layer's input shape (Keras 3 files and live models); the rule is silent when it
    is not.

    Args:
        spec: the model description.
        thresholds: static thresholds (unused: one element is degenerate by definition).

    Returns:
        Zero or one error naming every such layer.

    Example:
        >>> degenerate_normalization(spec, StaticThresholds())  # doctest: +SKIP
        [Finding(code='GS205', kind='degenerate_normalization', ...)]
    """
    layers = [x for x in spec.layers if x.normalized_size == 1]
    if not layers:
        return []
    named = ", ".join(f"'{x.name}' ({x.class_name} of input {_shape_text(x)})" for x in layers)
    centering = [x for x in layers if x.class_name in CENTERING_NORMALIZATION]
    effects = []
    if centering:
        effects.append(
            "a layer that subtracts the mean outputs its offset beta whatever the input "
            "(x minus its own mean is 0), so every gradient before it is exactly zero"
        )
    if len(centering) < len(layers):
        effects.append(
            "RMS/unit normalization outputs only the input's sign, so the gradient before it "
            "is (nearly) zero"
        )
    message = (
        f"Normalization over a single element in {named}: "
        + "; ".join(effects)
        + ". The layers before it cannot learn and the layers after it do not see the input; "
        "He init, ReLU or BatchNormalization do not help. Normalize over an axis with more "
        "than one element: project the input to d_model features first (a Dense or Conv1D of "
        "width > 1), or leave the normalization out where there is a single feature."
    )
    evidence = {
        "normalized_size": {x.name: x.normalized_size for x in layers},
        "class_name": {x.name: x.class_name for x in layers},
        "input_shape": {x.name: [None, *(x.input_shape or ())] for x in layers},
    }
    return [rule_finding("degenerate_normalization", Severity.ERROR, layers, message, evidence)]


def _shape_text(layer: LayerSpec) -> str:
    # As Keras prints shapes, batch axis first: (None, 500, 1).
    dims = ", ".join("None" if d is None else str(d) for d in (None, *(layer.input_shape or ())))
    return f"({dims})"
