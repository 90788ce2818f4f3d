"""Evidence order: a measurement outranks a prior.

A static rule (:mod:`gradscope.detect.static`) predicts a problem from the architecture alone:
a prior. When a run (the audit's probe, a recorded fit) measured what the rule predicts, the
measurement decides, per rule (:data:`EVIDENCE_ORDER`):

* **confirmed**: a run detector found the predicted problem at warning or above. The static
  finding becomes the *cause* of that dynamic finding (evidence ``cause`` and ``causes``, its
  fixes first, its message appended) and is not listed a second time;
* **not confirmed**: the run measured it and saw no such problem. The static finding stays, at
  ``info``, its message saying what was measured ("11 consecutive tanh layers without
  normalization; measured first/last gradient ratio 4.0e-01 (0.4 orders of magnitude) over 20
  steps: no vanishing gradients or costly saturation observed");
* **not measured** (no run: ``--steps 0``, a probe that could not run, too few records): the
  static finding keeps its prior severity.

Rules without an entry keep their prior whatever was measured: ``selu_misconfigured`` names a
plain misconfiguration (BatchNormalization or Dropout in a SELU net, inputs not standardized)
whose harm a short run does not show, and ``degenerate_normalization`` is proven by the shapes
alone (its effect, an exactly zero gradient, is named by the vanishing detector's own cause).

Pure data: findings and a run in, findings out; no Keras.

Example:
    >>> measured = Measurements.of(run, DETECT_THRESHOLDS)  # doctest: +SKIP
    >>> reconcile(static_findings(spec), detect(run), measured)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from gradscope.config import DETECT_THRESHOLDS, DetectThresholds
from gradscope.data.store import Run
from gradscope.detect.base import RunWindow
from gradscope.detect.cause import CAUSE_KEY
from gradscope.detect.exploding import NormGrowth, gradient_norm_growth
from gradscope.detect.progress import Progress
from gradscope.detect.rank import ModelTraits, rank_finding_fixes
from gradscope.detect.summary import GradientRatio, gradient_ratio
from gradscope.findings import Finding, Severity, kind_info, kind_title, sort_findings

#: The evidence key listing every static cause attached to a dynamic finding (``cause`` holds
#: the first, unless the run itself named one, :mod:`gradscope.detect.cause`).
CAUSES_KEY = "causes"
#: The evidence key of what the run measured, on a static finding it did not confirm.
MEASURED_KEY = "measured"


@dataclass(frozen=True)
class Measurements:
    """What a run measured that static rules predict.

    Attributes:
        steps: records before any NaN/Inf (the usable ones).
        grad_ratio: the first/last gradient ratio (:func:`gradient_ratio`), or None.
        norm: the total gradient norm's growth over the run (:func:`gradient_norm_growth`).
        progress: whether the run learns.
        layer_order: the run's layer names in forward order (to match layers of a standalone
            activation to the Dense before it).
        thresholds: the thresholds the run was judged with.
    """

    steps: int
    grad_ratio: GradientRatio | None
    norm: NormGrowth
    progress: Progress
    layer_order: tuple[str, ...]
    thresholds: DetectThresholds = DETECT_THRESHOLDS

    @classmethod
    def of(cls, run: Run, thresholds: DetectThresholds = DETECT_THRESHOLDS) -> Measurements:
        """Takes a run's measurements.

        Args:
            run: a loaded run.
            thresholds: detector thresholds (window and growth).

        Returns:
            The :class:`Measurements`.
        """
        window = RunWindow.of(run, thresholds)
        return cls(
            steps=len(window.records),
            grad_ratio=gradient_ratio(run, thresholds.window),
            norm=gradient_norm_growth(window),
            progress=window.progress,
            layer_order=tuple(run.layer_names),
            thresholds=thresholds,
        )


@dataclass(frozen=True)
class MeasuredBy:
    """How one static rule is measured.

    Attributes:
        confirmed_by: dynamic finding kinds that confirm the rule at warning or above.
        local: those of them that must concern the rule's layers (a saturated layer elsewhere
            does not confirm a deep stack).
        measured: what the run measured, as a clause, or None when it cannot tell (too few
            records): the rule then keeps its prior.
        absent: what was not observed, e.g. ``"no vanishing gradients or saturated layers"``
            (``{clipping_growth}`` is replaced by that threshold).
        confirms: a measurement that confirms the rule without a dynamic finding (norm growth
            for missing clipping), or None.
    """

    confirmed_by: tuple[str, ...]
    local: frozenset[str]
    measured: Callable[[Measurements], str | None]
    absent: str
    confirms: Callable[[Measurements], bool] | None = None


def _flow(m: Measurements) -> str | None:
    if m.grad_ratio is None:
        return None
    return f"measured first/last gradient ratio {m.grad_ratio.text} over {m.steps} steps"


def _growth(m: Measurements) -> str | None:
    n = m.norm
    if n.growth is None or n.start is None or n.end is None:
        return None
    return (
        f"measured total gradient norm {n.start:.3g} -> {n.end:.3g} over {n.steps} steps "
        f"({n.growth:.2g}x)"
    )


def _norm_grows(m: Measurements) -> bool:
    return m.norm.growth is not None and m.norm.growth >= m.thresholds.exploding.clipping_growth


#: Per static rule: which measurements confirm it. Rules not listed keep their prior.
EVIDENCE_ORDER: Mapping[str, MeasuredBy] = MappingProxyType(
    {
        "deep_saturating_stack": MeasuredBy(
            ("vanishing_gradients", "saturation"),
            frozenset({"saturation"}),
            _flow,
            "no vanishing gradients or costly saturation",
        ),
        "init_activation_mismatch": MeasuredBy(
            ("vanishing_gradients", "exploding_gradients", "nonfinite", "dying_relu", "saturation"),
            frozenset({"dying_relu", "saturation"}),
            _flow,
            "no vanishing or exploding gradients, no costly dead or saturated layers",
        ),
        "missing_clipping": MeasuredBy(
            ("exploding_gradients", "nonfinite"),
            frozenset(),
            _growth,
            "no growth of the gradient norm to {clipping_growth:g}x or more",
            _norm_grows,
        ),
    }
)


def _premise(finding: Finding) -> str:
    # The rule's first clause: what it saw in the architecture, without the predicted harm.
    return re.split(r"[;:.](?:\s|$)", finding.message, maxsplit=1)[0]


def _concerns(dynamic: Finding, static: Finding, order: Sequence[str]) -> bool:
    # A dynamic layer belongs to a static one when it is that layer, or an activation or
    # normalization layer at most two places after it (Dense, BN, Activation).
    mine = set(static.layers)
    for name in dynamic.layers:
        if name in mine:
            return True
        if name in order:
            i = order.index(name)
            if mine.intersection(order[max(0, i - 2) : i]):
                return True
    return False


def _confirming(
    static: Finding, rule: MeasuredBy, dynamic: Sequence[Finding], order: Sequence[str]
) -> Finding | None:
    for finding in sort_findings(dynamic):
        if finding.severity < Severity.WARNING or finding.kind not in rule.confirmed_by:
            continue
        if finding.kind in rule.local and not _concerns(finding, static, order):
            continue
        return finding
    return None


def cause_evidence(static: Finding) -> dict[str, Any]:
    """A static finding as the cause of a dynamic one (the evidence ``cause``/``causes`` item).

    Args:
        static: the confirmed static finding.

    Returns:
        ``{"kind", "code", "layer", "layers", "message", "prior_severity", "evidence"}``.

    Example:
        >>> cause_evidence(finding)["kind"]  # doctest: +SKIP
        'deep_saturating_stack'
    """
    return {
        "kind": static.kind,
        "code": static.code,
        "layer": static.layers[0] if static.layers else None,
        "layers": list(static.layers),
        "message": static.message,
        "prior_severity": str(static.severity),
        "evidence": dict(static.evidence),
    }


def _attach(dynamic: Finding, causes: Sequence[Finding]) -> Finding:
    items = [cause_evidence(c) for c in causes]
    evidence = dict(dynamic.evidence)
    named = CAUSE_KEY in evidence  # the run itself named the cause: its fix stays alone
    evidence[CAUSES_KEY] = items
    evidence.setdefault(CAUSE_KEY, items[0])
    info = kind_info(dynamic.kind)
    allowed = set(info.answers + info.causes)
    fixes = dynamic.fixes
    if not named:
        mine = [f for c in causes for f in c.fixes if f in allowed]
        fixes = tuple(dict.fromkeys([*mine, *dynamic.fixes]))
    text = " ".join(f"Cause, from the architecture ({c.code}): {c.message}" for c in causes)
    return replace(dynamic, message=f"{dynamic.message} {text}", evidence=evidence, fixes=fixes)


def _demoted(
    static: Finding, rule: MeasuredBy, measured: str, m: Measurements, dynamic: Sequence[Finding]
) -> Finding:
    learns = "; the run learns" if m.progress.learning else ""
    absent = rule.absent.format(clipping_growth=m.thresholds.exploding.clipping_growth)
    # A confirming symptom the run found harmless (info) is named, not denied.
    noted = sorted({kind_title(f.kind).lower() for f in dynamic if f.kind in rule.confirmed_by})
    also = f" ({', '.join(noted)} only at info: it costs nothing measurable)" if noted else ""
    message = f"{_premise(static)}; {measured}: {absent} observed{also}{learns}."
    evidence = {
        **static.evidence,
        MEASURED_KEY: measured,
        "prior_severity": str(static.severity),
        "prior_message": static.message,
    }
    return replace(static, severity=Severity.INFO, message=message, evidence=evidence)


def reconcile(
    static: Sequence[Finding],
    dynamic: Sequence[Finding],
    measured: Measurements | None,
    traits: ModelTraits | None = None,
) -> list[Finding]:
    """Decides each static finding by what was measured (see the module docstring).

    Args:
        static: the static rules' findings (priors).
        dynamic: the run detectors' findings on the measured run.
        measured: the run's :class:`Measurements`; None when nothing ran (priors stand).
        traits: the model's traits, to rank the merged fixes (:mod:`gradscope.detect.rank`);
            None keeps their order (the static rule's fixes first).

    Returns:
        All findings, most severe first: the dynamic ones (with their confirmed causes), the
        static ones not confirmed (info when measured, else as they were).

    Example:
        >>> [f.kind for f in reconcile(static, dynamic, measured)]  # doctest: +SKIP
        ['vanishing_gradients', 'saturation']
    """
    if measured is None:
        return sort_findings([*dynamic, *static])
    causes: dict[int, list[Finding]] = {}
    kept: list[Finding] = []
    for finding in static:
        rule = EVIDENCE_ORDER.get(finding.kind)
        if rule is None:
            kept.append(finding)
            continue
        confirming = _confirming(finding, rule, dynamic, measured.layer_order)
        if confirming is not None:
            causes.setdefault(id(confirming), []).append(finding)
            continue
        clause = rule.measured(measured)
        if clause is None:
            kept.append(finding)  # nothing measured that could tell: the prior stands
        elif rule.confirms is not None and rule.confirms(measured):
            evidence = {**finding.evidence, MEASURED_KEY: clause}
            kept.append(
                replace(finding, message=f"{finding.message} ({clause}.)", evidence=evidence)
            )
        else:
            kept.append(_demoted(finding, rule, clause, measured, dynamic))
    merged = [_attach(f, causes[id(f)]) if id(f) in causes else f for f in dynamic]
    if traits is not None:
        merged = rank_finding_fixes(merged, traits)
    return sort_findings([*merged, *kept])


def reported_kinds(findings: Sequence[Finding], at_least: Severity = Severity.WARNING) -> set[str]:
    """The kinds reported at ``at_least`` or above, with the kinds of their attached causes.

    A confirmed static rule is reported as the cause of a dynamic finding, not listed on its
    own; this counts it where it is.

    Args:
        findings: findings of one audit or run.
        at_least: the lowest severity counted.

    Returns:
        The kinds.

    Example:
        >>> sorted(reported_kinds(audit(model).findings))  # doctest: +SKIP
        ['deep_saturating_stack', 'saturation', 'vanishing_gradients']
    """
    out: set[str] = set()
    for finding in findings:
        if finding.severity >= at_least:
            out.add(finding.kind)
            out.update(str(c.get("kind")) for c in finding.evidence.get(CAUSES_KEY) or ())
    return out
