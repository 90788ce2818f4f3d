"""Plan fixes: from findings to an ordered, deduplicated list of transforms that apply.

Order: what fits this model's layers first, then what verifies most often
(:mod:`gradscope.detect.rank`): for an all-sigmoid net the ReLU swap comes before He init, which has
no ReLU layer to act on; for a ReLU net with a poor init, He init comes first; for a recurrent
net, clipping. Each step says why it is there. Only one activation swap is planned (they are
alternatives); fixes that would change nothing in this model (clipping that is already on, He
init without ReLU layers, ...) are skipped with the reason, and fixes with no automatic transform
(data changes) are listed as manual advice.

Example:
    >>> plan = plan_fixes(findings, model)  # doctest: +SKIP
    >>> [s.fix_id for s in plan.steps]  # doctest: +SKIP
    ['relu_activation', 'batch_norm']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import keras

from gradscope.detect.rank import Fit, ModelTraits, RankedFix, rank_fixes
from gradscope.findings import KINDS, Finding, Severity, sort_findings
from gradscope.fix.transforms import (
    TRANSFORMS,
    FixNotApplicable,
    Stage,
    UnsupportedModelError,
    apply_fix,
)
from gradscope.model.extract import spec_from_model
from gradscope.remedies import get_fix

#: Activation swaps: alternatives, at most one is planned.
ACTIVATION_SWAPS = frozenset(
    {"relu_activation", "leaky_relu_activation", "elu_activation", "selu_activation"}
)


@dataclass(frozen=True)
class PlanStep:
    """One planned fix.

    Attributes:
        fix_id: the catalog id.
        stage: its stage (init/activation, normalization, optimizer).
        answers: finding kinds it answers, among those found.
        reason: one line saying what it does and which findings it answers.
        advice: extra advice for the user, if any.
        why: why it is recommended for this model and placed here (fit to the layers, prior).
        fit: ``"targets"``, ``"generic"`` (see :class:`gradscope.detect.rank.Fit`).
        prior: share of benchmark trials in which it verified, or None.
    """

    fix_id: str
    stage: Stage
    answers: tuple[str, ...]
    reason: str
    advice: str | None = None
    why: str = ""
    fit: str = "generic"
    prior: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict of this step.

        Returns:
            ``{"fix_id", "stage", "answers", "reason", "why", "fit", "prior", "advice"}``.
        """
        return {
            "fix_id": self.fix_id,
            "stage": self.stage.name.lower(),
            "answers": list(self.answers),
            "reason": self.reason,
            "why": self.why,
            "fit": self.fit,
            "prior": self.prior,
            "advice": self.advice,
        }


@dataclass(frozen=True)
class FixPlan:
    """The ordered fixes for a model, plus what was left out and why.

    Attributes:
        steps: fixes to apply, in order.
        skipped: ``(fix_id, reason)`` for recommended fixes that do not apply to this model.
        manual: ``(fix_id, description)`` for recommended fixes with no automatic transform.
    """

    steps: tuple[PlanStep, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    manual: tuple[tuple[str, str], ...] = ()

    @property
    def fix_ids(self) -> list[str]:
        """The planned fix ids in order."""
        return [s.fix_id for s in self.steps]

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict of the plan.

        Returns:
            ``{"steps": [...], "skipped": [...], "manual": [...]}``.
        """
        return {
            "steps": [s.to_json() for s in self.steps],
            "skipped": [{"fix_id": f, "reason": r} for f, r in self.skipped],
            "manual": [{"fix_id": f, "description": d} for f, d in self.manual],
        }


def _candidates(findings: list[Finding]) -> dict[str, list[Finding]]:
    # fix id -> findings recommending it: the finding's own fixes (most recommended first), then
    # every fix the kind registry says answers its kind, so a finding without fix ids, or whose
    # recommended fixes do not fit this model, still gets candidates.
    out: dict[str, list[Finding]] = {}
    for finding in findings:
        info = KINDS.get(finding.kind)  # None for a kind from another gradscope's document
        ids = finding.fixes + (info.answers if info is not None else ())
        for fix_id in dict.fromkeys(ids):
            out.setdefault(fix_id, []).append(finding)
    return out


def _reason(fix_id: str, findings: list[Finding]) -> str:
    parts = []
    for f in findings:
        where = (
            f" in {', '.join(f.layers[:3])}{'…' if len(f.layers) > 3 else ''}" if f.layers else ""
        )
        parts.append(f"{f.kind} ({f.code}, {f.severity}){where}")
    return f"{get_fix(fix_id).title} — answers {'; '.join(parts)}."


def plan_fixes(
    findings: Iterable[Finding],
    model: keras.Model,
    min_severity: Severity = Severity.WARNING,
) -> FixPlan:
    """Orders the fixes the findings recommend and keeps those that apply to the model.

    Each candidate is tried on a copy of the model with the earlier steps already applied, so a
    fix made redundant by an earlier one (He init after a ReLU swap, clip_value after clip_norm)
    is skipped with the transform's own reason. The model is never modified.

    Args:
        findings: findings from detection/audit (any order).
        model: the model the plan is for.
        min_severity: findings below this are ignored (info findings describe models that
            learn; fixing them is optional).

    Returns:
        The :class:`FixPlan`.

    Example:
        >>> plan_fixes(detect(run), model).fix_ids  # doctest: +SKIP
        ['relu_activation', 'batch_norm']
    """
    relevant = [f for f in sort_findings(findings) if f.severity >= min_severity]
    candidates = _candidates(relevant)
    ranked = {r.fix_id: r for r in rank_fixes(candidates, _traits(model))}
    manual = tuple(
        (fix_id, get_fix(fix_id).description) for fix_id in ranked if fix_id not in TRANSFORMS
    )
    automatic = [fix_id for fix_id in ranked if fix_id in TRANSFORMS]
    steps: list[PlanStep] = []
    skipped: list[tuple[str, str]] = []
    current = model
    for fix_id in automatic:
        rank = ranked[fix_id]
        if rank.fit is Fit.NO_FIT:
            skipped.append((fix_id, f"does not fit this model: {rank.fit_reason}."))
            continue
        chosen = [s.fix_id for s in steps]
        swap = next((s for s in chosen if s in ACTIVATION_SWAPS), None)
        if fix_id in ACTIVATION_SWAPS and swap is not None:
            skipped.append((fix_id, f"an alternative to {swap}, which is planned first."))
            continue
        if fix_id == "batch_norm" and "selu_activation" in chosen:
            skipped.append((fix_id, "SELU networks normalize themselves; BN would break that."))
            continue
        try:
            current = apply_fix(current, fix_id)
        except (FixNotApplicable, UnsupportedModelError) as err:
            skipped.append((fix_id, str(err)))
            continue
        steps.append(_step(fix_id, candidates[fix_id], rank))
    return FixPlan(tuple(steps), tuple(skipped), manual)


def _traits(model: keras.Model) -> ModelTraits:
    try:
        return ModelTraits.from_spec(spec_from_model(model))
    except Exception:
        # A model Keras cannot serialize (some subclassed ones): rank by prior alone.
        return ModelTraits()


def _step(fix_id: str, answers: list[Finding], rank: RankedFix) -> PlanStep:
    return PlanStep(
        fix_id,
        TRANSFORMS[fix_id].stage,
        tuple(dict.fromkeys(f.kind for f in answers)),
        _reason(fix_id, answers),
        TRANSFORMS[fix_id].advice,
        why=rank.reason,
        fit=str(rank.fit),
        prior=rank.prior,
    )
