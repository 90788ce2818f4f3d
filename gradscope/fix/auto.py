"""Fix a model end to end: trial the original, plan, apply, verify each step, keep what helps.

:func:`auto_fix` is what ``gradscope fix --auto`` runs; :func:`fix_model` applies the fixes a user
names (``--apply``) and verifies the result as a whole.

Example:
    >>> result = auto_fix(model, x, y)  # doctest: +SKIP
    >>> result.applied, result.verified  # doctest: +SKIP
    (['relu_activation'], True)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gradscope.detect.summary import GRAD_RATIO_KEY
from gradscope.findings import Finding, json_safe
from gradscope.fix.plan import FixPlan, plan_fixes
from gradscope.fix.transforms import FixNotApplicable, apply_fix, apply_fixes
from gradscope.fix.trials import ratio_change
from gradscope.fix.verify import (
    DEFAULT_STEPS,
    SYNTHETIC_EXAMPLES,
    TrialStats,
    Verification,
    compare,
    fix_trial,
    verify,
)
from gradscope.trial.data import feed


@dataclass(frozen=True)
class StepOutcome:
    """What happened to one planned fix.

    Attributes:
        fix_id: the fix.
        kept: True if it was verified and kept.
        reason: one line: why kept or dropped.
        verification: its trial comparison against the model before this step, if one ran.
    """

    fix_id: str
    kept: bool
    reason: str
    verification: Verification | None = None

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict (the verification summarized, without loss curves).

        Returns:
            ``{"fix_id", "kept", "reason", "verified", "resolved", "remaining",
            "first_last_grad_ratio": {"before", "after"} or None}``.
        """
        v = self.verification
        return {
            "fix_id": self.fix_id,
            "kept": self.kept,
            "reason": self.reason,
            "verified": None if v is None else v.verified,
            "resolved": [] if v is None else list(v.resolved),
            "remaining": [] if v is None else list(v.remaining),
            GRAD_RATIO_KEY: None
            if v is None
            else {
                "before": json_safe(v.before.first_last_grad_ratio),
                "after": json_safe(v.after.first_last_grad_ratio),
            },
        }


@dataclass(frozen=True)
class FixResult:
    """The outcome of fixing a model.

    Attributes:
        model: the fixed model (the original object if nothing was kept).
        overall: the original versus the final model, on the same trial.
        outcomes: per fix, kept or not and why.
        plan: the plan followed (``auto_fix`` only).
    """

    model: keras.Model
    overall: Verification
    outcomes: tuple[StepOutcome, ...]
    plan: FixPlan | None = None

    @property
    def applied(self) -> list[str]:
        """Fix ids in the final model, in order."""
        return [o.fix_id for o in self.outcomes if o.kept]

    @property
    def verified(self) -> bool:
        """True if at least one fix was kept and the final model passes verification."""
        return bool(self.applied) and self.overall.verified

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict of the result.

        Returns:
            ``{"applied", "verified", "outcomes", "plan", "overall"}``.
        """
        return {
            "applied": self.applied,
            "verified": self.verified,
            "outcomes": [o.to_json() for o in self.outcomes],
            "plan": None if self.plan is None else self.plan.to_json(),
            "overall": self.overall.to_json(),
        }


def _root(run_dir: str | os.PathLike[str] | None) -> Path:
    return Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="gradscope-fix-"))


def auto_fix(
    model: keras.Model,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int = 32,
    run_dir: str | os.PathLike[str] | None = None,
    findings: Sequence[Finding] = (),
) -> FixResult:
    """Trials the model, plans fixes from the findings, and keeps each fix only if verified.

    Steps are tried in plan order on the model fixed so far. A step whose target findings are
    already gone (an earlier fix resolved them) is not applied: the smallest change that works.

    Args:
        model: the model (never modified).
        x: trial inputs; None for synthetic data matching the model.
        y: trial targets.
        steps: trial steps per model.
        seed: seed shared by every trial (same batches, same order).
        batch_size: examples per step.
        run_dir: where the trial runs go (``trial_0``, ``trial_1``, ...); temporary if None.
        findings: extra findings to plan from (e.g. an earlier audit's); the original's trial
            findings are always used.

    Returns:
        The :class:`FixResult`.

    Raises:
        GradscopeInputError: for unusable data or models that cannot be copied.

    Example:
        >>> auto_fix(sick_model, x, y, steps=40).applied  # doctest: +SKIP
        ['relu_activation']
    """
    root = _root(run_dir)
    # One data set for every trial of the chain: same examples, same batches, same seed.
    data = feed(model, x, y, n=SYNTHETIC_EXAMPLES, seed=seed)
    before = fix_trial(model, data, root / "original", steps, seed, batch_size)
    plan = plan_fixes([*findings, *before.findings], model)
    current, current_trial = model, before
    outcomes: list[StepOutcome] = []
    # Kinds reported from outside the trial (e.g. a full training run) stay open until a kept
    # fix has targeted them; the trial itself decides for everything it can observe.
    outside = {f.kind for f in findings}
    for i, step in enumerate(plan.steps):
        open_kinds = current_trial.kinds() | outside
        targets = [k for k in step.answers if k in open_kinds]
        if not targets:
            outcomes.append(
                StepOutcome(step.fix_id, False, "not needed: earlier fixes resolved its findings")
            )
            continue
        try:
            candidate = apply_fix(current, step.fix_id)
        except FixNotApplicable as err:
            outcomes.append(StepOutcome(step.fix_id, False, str(err)))
            continue
        v = verify(
            current,
            candidate,
            data,
            steps=steps,
            seed=seed,
            batch_size=batch_size,
            targets=targets,
            run_dir=root / f"step_{i}_{step.fix_id}",
            before=current_trial,
        )
        if v.verified:
            outside -= set(targets)
            current, current_trial = candidate, v.after
            outcomes.append(StepOutcome(step.fix_id, True, _why(v, kept=True), v))
        else:
            outcomes.append(StepOutcome(step.fix_id, False, _why(v, kept=False), v))
    overall = compare(before, current_trial, _all_targets(plan))
    return FixResult(current, overall, tuple(outcomes), plan)


def _all_targets(plan: FixPlan) -> list[str]:
    return list(dict.fromkeys(k for s in plan.steps for k in s.answers))


def _why(v: Verification, kept: bool) -> str:
    loss = f"{ratio_change(v)}; trial loss {_fmt(v.before.final_loss)} → {_fmt(v.after.final_loss)}"
    if kept:
        gone = ", ".join(v.resolved) or "no targeted finding left"
        return f"verified: {gone} resolved; {loss}"
    if v.remaining:
        return f"not verified: {', '.join(v.remaining)} still present; {loss}"
    return f"not verified: the trial loss got worse ({loss})"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def fix_model(
    model: keras.Model,
    fix_ids: Sequence[str],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int = 32,
    run_dir: str | os.PathLike[str] | None = None,
) -> FixResult:
    """Applies the named fixes (in stage order) and verifies the result against the original.

    Args:
        model: the model (never modified).
        fix_ids: fix ids to apply, e.g. ``["he_init", "batch_norm"]``.
        options: per fix id, options for its transform.
        x: trial inputs; None for synthetic data.
        y: trial targets.
        steps: trial steps per model.
        seed: seed shared by both trials.
        batch_size: examples per step.
        run_dir: where the two trial runs go; temporary if None.

    Returns:
        The :class:`FixResult`; ``model`` holds every requested fix whether or not it verified.

    Raises:
        KeyError: for ids without a transform.
        FixNotApplicable, UnsupportedModelError: if a fix cannot be applied (nothing is
            half-applied: no model is returned).

    Example:
        >>> fix_model(model, ["he_init"], x=x, y=y).verified  # doctest: +SKIP
    """
    fixed = apply_fixes(model, fix_ids, options)
    v = verify(model, fixed, x, y, steps=steps, seed=seed, batch_size=batch_size, run_dir=run_dir)
    applied = [f for f in dict.fromkeys(fix_ids)]
    outcomes = tuple(
        StepOutcome(f, True, _why(v, kept=True) if v.verified else _why(v, kept=False), v)
        for f in applied
    )
    return FixResult(fixed, v, outcomes)


__all__ = ["FixResult", "StepOutcome", "TrialStats", "auto_fix", "fix_model"]
