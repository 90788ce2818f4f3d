"""Static rules: SELU networks that cannot self-normalize (Klambauer et al. 2017; Géron ch. 11)."""

from __future__ import annotations

from collections.abc import Sequence

from gradscope.config import DETECT_THRESHOLDS, StaticThresholds
from gradscope.detect.static.registry import rule_finding, static_rule
from gradscope.findings import Finding, Severity
from gradscope.model.spec import ModelSpec


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
        rule_finding(
            "selu_misconfigured",
            Severity.WARNING,
            named,
            message,
            {"problems": problems, "selu_layers": [x.name for x in selu]},
            (*(fixes[p] for p in problems if p in fixes), "lecun_init"),
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
        rule_finding(
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
