"""Static rules: findings from the architecture and configuration alone, no data needed.

Each rule is a pure function ``(spec, thresholds) -> list[Finding]`` registered with
:func:`static_rule`; :func:`static_findings` runs them all. Rules never import Keras.

Recommended initialization per activation follows Géron, *Hands-On Machine Learning*, ch. 11
(table 11-1): Glorot for none/tanh/sigmoid/softmax, He for ReLU and variants, LeCun for SELU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gradscope.config import DETECT_THRESHOLDS, StaticThresholds
from gradscope.detect.rank import ModelTraits, rank_finding_fixes
from gradscope.findings import Finding, Severity, kind_info, make_finding, sort_findings
from gradscope.model.spec import LayerSpec, ModelSpec
from gradscope.model.taxonomy import RELU_FAMILY, SATURATING

StaticRule = Callable[[ModelSpec, StaticThresholds], list[Finding]]
_RULES: dict[str, StaticRule] = {}

# Variance scale (weight variance x fan_in) each activation needs to keep the signal's variance:
# 2 for ReLU-like (He 2015), 1 for SELU (Klambauer 2017), about 1 for tanh/sigmoid/linear (Glorot).
_IDEAL_SCALE = {**dict.fromkeys(RELU_FAMILY, 2.0), "selu": 1.0}


def static_rule(kind: str) -> Callable[[StaticRule], StaticRule]:
    """Decorator registering a static rule under the finding kind it produces.

    Args:
        kind: the finding kind, registered in :data:`gradscope.findings.kinds.KINDS`.

    Returns:
        The decorator (returns the rule unchanged).

    Raises:
        KeyError: if ``kind`` is not registered (raised at import: a typo never ships).

    Example:
        >>> @static_rule("missing_clipping")  # doctest: +SKIP
        ... def my_rule(spec, thresholds): return []
    """
    kind_info(kind)

    def decorator(fn: StaticRule) -> StaticRule:
        _RULES[kind] = fn
        return fn

    return decorator


def static_findings(
    spec: ModelSpec, thresholds: StaticThresholds = DETECT_THRESHOLDS.static
) -> list[Finding]:
    """Runs every static rule on a model description.

    Args:
        spec: the model description (:func:`gradscope.model.spec.spec_from_config`).
        thresholds: static-rule thresholds.

    Returns:
        The findings, most severe first, their fixes ranked for this model.

    Example:
        >>> [f.kind for f in static_findings(spec)]  # doctest: +SKIP
        ['init_activation_mismatch']
    """
    out: list[Finding] = []
    for rule in _RULES.values():
        out.extend(rule(spec, thresholds))
    return sort_findings(rank_finding_fixes(out, ModelTraits.from_spec(spec)))


def _hidden_kernel_layers(spec: ModelSpec) -> list[LayerSpec]:
    # The output layer is left out: its activation serves the loss, not the signal's flow.
    layers = spec.kernel_layers
    return [x for x in layers[:-1] if x.trainable]


def _finding(
    kind: str,
    severity: Severity,
    layers: list[LayerSpec],
    message: str,
    evidence: dict,
    fixes: tuple[str, ...] | None = None,
) -> Finding:
    # Code and default fixes from the kind registry; a rule's own picks must answer the kind.
    return make_finding(kind, severity, (x.name for x in layers), message, evidence, fixes)


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
    for layer in _hidden_kernel_layers(spec):
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
            _finding(
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
            _finding(
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
            _finding(
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
            _finding(
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


@static_rule("selu_misconfigured")
def selu_misconfigured(spec: ModelSpec, thresholds: StaticThresholds) -> list[Finding]:
    """SELU networks that cannot self-normalize (Klambauer et al. 2017; Géron ch. 11).

    Problems: BatchNormalization layers, plain Dropout instead of AlphaDropout, skip connections
    or recurrent layers (self-normalization is proven for plain feed-forward stacks).

    Args:
        spec: the model description.
        thresholds: static thresholds (unused; the rule has no numeric threshold).

    Returns:
        Zero or one warning listing the problems.

    Example:
        >>> selu_misconfigured(spec, StaticThresholds())  # doctest: +SKIP
    """
    selu = [x for x in spec.layers if x.effective_activation == "selu" or x.activation == "selu"]
    if not selu:
        return []
    problems: dict[str, list[str]] = {}
    for layer in spec.layers:
        if layer.class_name in ("BatchNormalization", "SyncBatchNormalization"):
            problems.setdefault("batch_norm", []).append(layer.name)
        elif layer.class_name in ("Dropout", "SpatialDropout1D", "SpatialDropout2D"):
            problems.setdefault("dropout", []).append(layer.name)
        elif layer.class_name in ("Add", "Concatenate", "Multiply", "Average", "Subtract"):
            problems.setdefault("skip_connections", []).append(layer.name)
        elif layer.recurrent:
            problems.setdefault("recurrent", []).append(layer.name)
    if not problems:
        return []
    text = {
        "batch_norm": "BatchNormalization layers",
        "dropout": "Dropout instead of AlphaDropout",
        "skip_connections": "skip/merge connections",
        "recurrent": "recurrent layers",
    }
    fixes = {"batch_norm": "remove_batch_norm", "dropout": "alpha_dropout"}
    message = (
        "SELU network that cannot self-normalize: it has "
        + ", ".join(text[p] for p in problems)
        + ". SELU needs a plain stack of Dense layers, lecun_normal init and AlphaDropout."
    )
    named = [x for x in spec.layers if any(x.name in v for v in problems.values())]
    return [
        _finding(
            "selu_misconfigured",
            Severity.WARNING,
            named,
            message,
            {"problems": problems, "selu_layers": [x.name for x in selu]},
            (*(fixes[p] for p in problems if p in fixes), "lecun_init"),
        )
    ]


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
    for layer in _hidden_kernel_layers(spec):
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
        _finding(
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
        _finding(
            "missing_clipping",
            Severity.WARNING if known else Severity.INFO,
            recurrent,
            message,
            {"optimizer": spec.optimizer.class_name if spec.optimizer else None},
        )
    ]


def selu_input_findings(
    spec: ModelSpec,
    feature_means: Sequence[float],
    feature_stds: Sequence[float],
    thresholds: StaticThresholds = DETECT_THRESHOLDS.static,
) -> list[Finding]:
    """With data: SELU networks fed inputs that are not standardized (Klambauer et al. 2017).

    Args:
        spec: the model description.
        feature_means: per-feature mean of the inputs.
        feature_stds: per-feature standard deviation of the inputs.
        thresholds: uses ``standardized_mean_tol`` and ``standardized_std_range``.

    Returns:
        Zero or one ``selu_misconfigured`` warning.

    Example:
        >>> selu_input_findings(spec, x.mean(0), x.std(0))  # doctest: +SKIP
    """
    if not any(x.effective_activation == "selu" for x in spec.layers):
        return []
    low, high = thresholds.standardized_std_range
    means = [float(m) for m, s in zip(feature_means, feature_stds, strict=True) if s > 0]
    stds = [float(s) for s in feature_stds if s > 0]
    if not stds:
        return []
    worst_mean = max(abs(m) for m in means)
    off_std = [s for s in stds if not low <= s <= high]
    if worst_mean <= thresholds.standardized_mean_tol and not off_std:
        return []
    selu = [x for x in spec.layers if x.effective_activation == "selu"]
    return [
        _finding(
            "selu_misconfigured",
            Severity.WARNING,
            selu[:1],
            "SELU network fed inputs that are not standardized (largest |feature mean| "
            f"{worst_mean:.2g}, {len(off_std)} feature(s) with std outside [{low:g}, {high:g}]); "
            "self-normalization assumes mean 0 and standard deviation 1.",
            {
                "problems": {"inputs_not_standardized": [selu[0].name]},
                "max_abs_feature_mean": worst_mean,
                "features_with_std_out_of_range": len(off_std),
                "std_min": min(stds),
                "std_max": max(stds),
            },
            ("standardize_inputs",),
        )
    ]
