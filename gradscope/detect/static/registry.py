"""The static-rule registry and what every rule shares.

Each rule is a pure function ``(spec, thresholds) -> list[Finding]`` registered with
:func:`static_rule` under the finding kind it produces; :func:`static_findings` runs them all.
Rules never import Keras.
"""

from __future__ import annotations

from collections.abc import Callable

from gradscope.config import DETECT_THRESHOLDS, StaticThresholds
from gradscope.detect.rank import ModelTraits, rank_finding_fixes
from gradscope.findings import Finding, Severity, kind_info, make_finding, sort_findings
from gradscope.model.spec import LayerSpec, ModelSpec

StaticRule = Callable[[ModelSpec, StaticThresholds], list[Finding]]
_RULES: dict[str, StaticRule] = {}


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


def hidden_kernel_layers(spec: ModelSpec) -> list[LayerSpec]:
    """The trainable kernel layers below the output layer, in forward order.

    The output layer is left out: its activation serves the loss, not the signal's flow.

    Args:
        spec: the model description.

    Returns:
        The layers.
    """
    layers = spec.kernel_layers
    return [x for x in layers[:-1] if x.trainable]


def rule_finding(
    kind: str,
    severity: Severity,
    layers: list[LayerSpec],
    message: str,
    evidence: dict,
    fixes: tuple[str, ...] | None = None,
) -> Finding:
    """A static rule's finding: code and default fixes from the kind registry.

    Args:
        kind: a registered kind.
        severity: how bad it is.
        layers: the layers concerned, in forward order.
        message: plain-language sentences.
        evidence: JSON-safe numbers and names behind it.
        fixes: the rule's own picks, all answering the kind; default the kind's fixes.

    Returns:
        The :class:`Finding`.
    """
    return make_finding(kind, severity, (x.name for x in layers), message, evidence, fixes)
