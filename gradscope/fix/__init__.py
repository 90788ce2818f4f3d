"""Fixes: the catalog of remedies, clone-based transforms, plans, and verification by trial.

Example::

    from gradscope.fix import apply_fix, auto_fix, plan_fixes, verify
    fixed = apply_fix(model, "relu_activation")
    result = verify(model, fixed, x, y)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradscope._lazy import lazy_exports

if TYPE_CHECKING:
    from gradscope.fix.auto import FixResult, SearchInfo, StepOutcome, auto_fix, fix_model
    from gradscope.fix.plan import FixPlan, PlanStep, plan_fixes
    from gradscope.fix.transforms import (
        TRANSFORMS,
        FixNotApplicable,
        Stage,
        Transform,
        UnsupportedModelError,
        apply_fix,
        apply_fixes,
        not_applicable_reason,
    )
    from gradscope.fix.verify import (
        TrialStats,
        Verification,
        fix_data,
        run_trial,
        trial_data,
        verify,
    )
    from gradscope.remedies import CATALOG, Fix, fixes_for, get_fix

# Resolved on first use: the catalog and plan are light, the transforms import Keras.
_LAZY = {
    "FixResult": "gradscope.fix.auto",
    "StepOutcome": "gradscope.fix.auto",
    "SearchInfo": "gradscope.fix.auto",
    "auto_fix": "gradscope.fix.auto",
    "fix_model": "gradscope.fix.auto",
    "CATALOG": "gradscope.remedies",
    "Fix": "gradscope.remedies",
    "fixes_for": "gradscope.remedies",
    "get_fix": "gradscope.remedies",
    "FixPlan": "gradscope.fix.plan",
    "PlanStep": "gradscope.fix.plan",
    "plan_fixes": "gradscope.fix.plan",
    "TRANSFORMS": "gradscope.fix.transforms",
    "FixNotApplicable": "gradscope.fix.transforms",
    "Stage": "gradscope.fix.transforms",
    "Transform": "gradscope.fix.transforms",
    "UnsupportedModelError": "gradscope.fix.transforms",
    "apply_fix": "gradscope.fix.transforms",
    "apply_fixes": "gradscope.fix.transforms",
    "not_applicable_reason": "gradscope.fix.transforms",
    "TrialStats": "gradscope.fix.verify",
    "Verification": "gradscope.fix.verify",
    "run_trial": "gradscope.fix.verify",
    "fix_data": "gradscope.fix.verify",
    "trial_data": "gradscope.fix.verify",
    "verify": "gradscope.fix.verify",
}

__all__ = [
    "CATALOG",
    "TRANSFORMS",
    "Fix",
    "FixNotApplicable",
    "FixPlan",
    "FixResult",
    "PlanStep",
    "SearchInfo",
    "Stage",
    "StepOutcome",
    "Transform",
    "TrialStats",
    "UnsupportedModelError",
    "Verification",
    "apply_fix",
    "apply_fixes",
    "auto_fix",
    "fix_data",
    "fix_model",
    "fixes_for",
    "get_fix",
    "not_applicable_reason",
    "plan_fixes",
    "run_trial",
    "trial_data",
    "verify",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
