"""Static rule: initializers that do not match their layer's activation.

Recommended initialization per activation follows Géron, *Hands-On Machine Learning*, ch. 11
(table 11-1): Glorot for none/tanh/sigmoid/softmax, He for ReLU and variants, LeCun for SELU.
"""

from __future__ import annotations

from gradscope.config import StaticThresholds
from gradscope.detect.static.registry import hidden_kernel_layers, rule_finding, static_rule
from gradscope.findings import Finding, Severity
from gradscope.model.spec import LayerSpec, ModelSpec
from gradscope.model.taxonomy import RELU_FAMILY, SATURATING

# Variance scale (weight variance x fan_in) each activation needs to keep the signal's variance:
# 2 for ReLU-like (He 2015), 1 for SELU (Klambauer 2017), about 1 for tanh/sigmoid/linear (Glorot).
_IDEAL_SCALE = {**dict.fromkeys(RELU_FAMILY, 2.0), "selu": 1.0}


@static_rule("init_activation_mismatch")
def init_activation_mismatch(spec: ModelSpec, thresholds: StaticThresholds) -> list[Finding]:
    """Initializers that do not match their layer's activation.

    * ReLU family with a variance-1 scheme (Glorot, LeCun): info, a warning from
      ``mismatch_warning_depth`` such layers (the variance halves per layer, He et al. 2015);
    * SELU without LeCun init: warning (self-normalization needs it, Klambauer et al. 2017);
    * sigmoid/tanh with He init: info (Géron table 11-1 recommends Glorot);
    * fixed-scale RandomNormal/RandomUniform whose variance x fan_in is ``init_variance_factor``
      times off the activation's ideal: warning.

    Args:
        spec: the model description.
        thresholds: static thresholds.

    Returns:
        One finding per kind of mismatch.

    Example:
        >>> init_activation_mismatch(spec, StaticThresholds())  # doctest: +SKIP
    """
    groups: dict[str, list[LayerSpec]] = {"relu": [], "selu": [], "saturating": [], "scale": []}
    gains: dict[str, float] = {}
    for layer in hidden_kernel_layers(spec):
        act, init = layer.effective_activation or "linear", layer.kernel_init
        if init is None:
            continue
        if act in RELU_FAMILY and init.family in ("glorot", "lecun"):
            groups["relu"].append(layer)
        elif act == "selu" and init.family not in ("lecun", "fixed"):
            groups["selu"].append(layer)
        elif act in SATURATING and init.family == "he":
            groups["saturating"].append(layer)
        if init.family == "fixed" and init.stddev is not None and layer.fan_in:
            gain = init.stddev**2 * layer.fan_in / _IDEAL_SCALE.get(act, 1.0)
            factor = thresholds.init_variance_factor
            if gain >= factor or gain <= 1.0 / factor:
                groups["scale"].append(layer)
                gains[layer.name] = gain
    out: list[Finding] = []
    kind = "init_activation_mismatch"
    relu = groups["relu"]
    if relu:
        deep = len(relu) >= thresholds.mismatch_warning_depth
        out.append(
            rule_finding(
                kind,
                Severity.WARNING if deep else Severity.INFO,
                relu,
                f"{len(relu)} ReLU-family layer(s) use {relu[0].kernel_init.display} "
                "initialization (variance 1/fan); ReLU halves the variance at every layer, so "
                "the signal shrinks with depth. Use He initialization.",
                {"layers": _layer_inits(relu)},
                ("he_init",),
            )
        )
    if groups["selu"]:
        layers = groups["selu"]
        out.append(
            rule_finding(
                kind,
                Severity.WARNING,
                layers,
                "SELU layers without lecun_normal initialization do not self-normalize.",
                {"layers": {x.name: x.kernel_init.display for x in layers}},
                ("lecun_init",),
            )
        )
    if groups["saturating"]:
        layers = groups["saturating"]
        out.append(
            rule_finding(
                kind,
                Severity.INFO,
                layers,
                "sigmoid/tanh layers use He initialization, which is tuned for ReLU; the larger "
                "weights push units toward the flat tails. Glorot initialization fits them.",
                {"layers": _layer_inits(layers)},
                ("glorot_init",),
            )
        )
    if groups["scale"]:
        layers = groups["scale"]
        worst = max(gains.values(), key=lambda g: max(g, 1 / g))
        out.append(
            rule_finding(
                kind,
                Severity.WARNING,
                layers,
                f"Fixed-scale initializers make the weight variance {worst:.3g}x what the "
                "activation needs to keep the signal's scale (variance x fan_in); activations and "
                "gradients will grow or shrink layer after layer.",
                {
                    "variance_gain": gains,
                    "stddev": {x.name: x.kernel_init.stddev for x in layers},
                    "fan_in": {x.name: x.fan_in for x in layers},
                },
                _fixes_for_activation(layers[0].effective_activation),
            )
        )
    return out


def _layer_inits(layers: list[LayerSpec]) -> dict[str, list[str | None]]:
    # Evidence: layer -> [activation, initializer as users write it (he_normal, ...)].
    return {
        x.name: [x.effective_activation, x.kernel_init and x.kernel_init.display] for x in layers
    }


def _fixes_for_activation(act: str | None) -> tuple[str, ...]:
    if act in RELU_FAMILY:
        return ("he_init",)
    if act == "selu":
        return ("lecun_init",)
    return ("glorot_init",)
